"""Krita glue: the "Restore JPEG Line Art..." action in the Filter menu and its run.

Flow of one run (all on Krita's main thread except the marked step):

1. check there is a document and a paint layer (else a message box);
2. the options dialog (settings loaded from and saved to kritarc); *Check server* and *Start
   server* work on worker threads and report in the dialog;
3. ``restore.prepare`` reads the pixels;
4. worker thread: start the server if asked and needed, connect, ``restore.run_on_server``; a
   non-modal progress window with Cancel meanwhile (Cancel sends the protocol's ``cancel``);
5. ``restore.apply`` adds the new layers above the source in the document the job started on,
   and makes the restored layer active; notes go to that document's canvas and the status bar.
Only errors open a message box.
"""

from __future__ import annotations

from krita import Extension, Krita  # type: ignore[import-not-found]
from PyQt5.QtCore import QTimer
from PyQt5.QtGui import QIcon
from PyQt5.QtWidgets import QMessageBox

from . import restore
from .connection import job_task, launch_config, plugin_error, query_server, start_server
from .editor import LayerKind
from .errors import PluginError
from .krita_editor import KritaSettingsBackend, active_document
from .settings import Settings, SettingsStore
from .ui import ProgressDialog, RestoreDialog
from .worker import Worker

__all__ = ["ACTION_ID", "ACTION_TEXT", "ACTION_MENU", "LineArtRestoreExtension", "RestoreRun"]

ACTION_ID = "lineart_restore_jpeg"
ACTION_TEXT = "Restore JPEG Line Art..."
ACTION_MENU = "Filter"
TITLE = "Restore JPEG Line Art"
#: The most recent finished run (its ``events`` tell what happened).
LAST_RUN: RestoreRun | None = None
#: The runs in progress (dialog open or job running), oldest first.
RUNS: list[RestoreRun] = []
#: Workers whose thread still runs (a closed dialog must not take a running thread with it).
_RUNNING: set = set()


def _keep(worker: Worker) -> Worker:
    _RUNNING.add(worker)
    worker.done.connect(lambda: _RUNNING.discard(worker))
    return worker


def _main_window():
    win = Krita.instance().activeWindow()
    return win.qwindow() if win is not None else None


def _status(text: str, parent, msecs: int = 15000) -> None:
    """Show ``text`` in the main window's status bar (server notes are not worth a message box)."""
    bar = parent.statusBar() if parent is not None and hasattr(parent, "statusBar") else None
    if bar is not None:
        bar.showMessage(text, msecs)


def _notify(doc, lines: list[str], parent) -> None:
    """Non-modal notes: a short status-bar line, and every line on the canvas of ``doc``'s view."""
    _status("Restore JPEG Line Art: " + lines[0], parent)
    for view in Krita.instance().views():
        if view.document() == doc:
            try:
                view.showFloatingMessage("\n".join(lines), QIcon(), 8000, 1)
            except (AttributeError, TypeError):  # older Krita without floating messages
                pass
            break


def _show_error(err: PluginError, parent=None) -> None:
    box = QMessageBox(QMessageBox.Warning, TITLE, err.message, QMessageBox.Ok, parent)
    if err.details:
        box.setDetailedText(err.details)
    box.exec_()


class RestoreRun:
    """One run of the action. Keeps the dialog, worker and progress alive until it finishes."""

    def __init__(self, on_finished=None) -> None:
        self.on_finished = on_finished
        port = launch_config().port
        self.store = SettingsStore(KritaSettingsBackend(), Settings(server=f"ws://127.0.0.1:{port}"))
        self.parent = _main_window()
        self.doc = active_document()
        self.job: restore.Job | None = None
        self.worker: Worker | None = None
        self.progress: ProgressDialog | None = None
        self.dialog: RestoreDialog | None = None
        self.checker: Worker | None = None
        self.added: list = []
        self._when_shown = None
        #: (fraction, text) of every progress report of the job, in order.
        self.progress_values: list[tuple[float, str]] = []
        #: What happened, in order (for the GUI test and for bug reports): ("step", detail).
        self.events: list[tuple[str, str]] = []

    # -- step 1-2 ------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            layer = self._check_layer()
        except PluginError as e:
            _show_error(e, self.parent)
            self._finish()
            return
        text = (
            f'Layer: "{layer.name}" ({layer.color_model} {layer.color_depth}). '
            + (
                "Only the selected area is restored."
                if self.doc.selection is not None
                else "The whole layer is restored."
            )
            + " New layers are added above it; the layer itself is not changed."
        )
        self.dialog = RestoreDialog(self.store.load(), text, self.parent)
        self.dialog.check_button.clicked.connect(self._check_server)
        self.dialog.start_button.clicked.connect(self._start_server)
        self.dialog.accepted.connect(self._accepted)
        self.dialog.rejected.connect(self._finish)
        self.dialog.open()

    def _check_layer(self):
        if not self.doc.is_open:
            raise PluginError("no_document", "Open an image first: there is no document to restore.")
        layer = self.doc.active_layer
        if layer is None:
            raise PluginError("no_layer", "Select the paint layer that holds the JPEG line art.")
        if layer.kind is not LayerKind.PAINT:
            # prepare() words it; reuse it by running its checks only.
            restore.prepare(self.doc, layer, self.store.load())
        return layer

    def _dialog_url(self) -> str | None:
        try:
            return self.dialog.settings().check().server
        except ValueError as e:
            self.dialog.show_status(f"Bad address: {e}")
            return None

    def _server_task(self, url: str, start: bool):
        """Worker task: (start the server if ``start``, then) read its welcome."""
        python = self.dialog.settings().server_python

        def task(cancel, progress):
            if start:
                start_server(url, python, cancel, lambda text: progress(0.0, text))
            return query_server(url)

        return task

    def _ask_server(self, start: bool) -> None:
        dialog = self.dialog
        url = self._dialog_url()
        if url is None:
            return
        python = dialog.settings().server_python
        dialog.show_status("Starting the restore server..." if start else "Checking...")
        for button in (dialog.check_button, dialog.start_button):
            button.setEnabled(False)
        self.checker = _keep(Worker(self._server_task(url, start)))

        def ok(info) -> None:
            self.events.append(("server_ok", info.version))
            dialog.show_server(
                info.models,
                info.mask_methods,
                f"Connected: server {info.version} on {info.device}.",
                info.ensemble_sizes,
            )

        def failed(exc, tb) -> None:
            err = plugin_error(exc, url, python)
            self.events.append(("server_failed", err.code))
            dialog.show_status(err.message)

        def enable() -> None:
            for button in (dialog.check_button, dialog.start_button):
                button.setEnabled(True)

        self.checker.progress.connect(lambda f, text: dialog.show_status(text))
        self.checker.succeeded.connect(ok)
        self.checker.failed.connect(failed)
        self.checker.done.connect(enable)
        self.checker.start()

    def _check_server(self) -> None:
        self._ask_server(start=False)

    def _start_server(self) -> None:
        self.events.append(("start_server", ""))
        self._ask_server(start=True)

    # -- step 3-4 ------------------------------------------------------------------------------
    def _accepted(self) -> None:
        settings = self.dialog.settings()
        try:
            settings = settings.check()
        except ValueError as e:
            _show_error(PluginError("bad_settings", f"Please check the dialog: {e}."), self.parent)
            self._finish()
            return
        self.store.save(settings)
        self.events.append(("accepted", settings.server))
        try:
            self.job = restore.prepare(self.doc, self.doc.active_layer, settings)
        except PluginError as e:
            _show_error(e, self.parent)
            self._finish()
            return
        self.progress = ProgressDialog(self.parent)
        self.worker = _keep(Worker(job_task(self.job, start=settings.auto_start, python=settings.server_python)))
        self.worker.progress.connect(self.progress.update_progress)
        self.worker.progress.connect(lambda f, text: self.progress_values.append((f, text)))
        self.progress.canceled.connect(self._cancel)
        self.worker.succeeded.connect(self._succeeded)
        self.worker.failed.connect(self._failed)
        self.progress.show()
        self.worker.start()

    def _cancel(self) -> None:
        self.events.append(("cancel", ""))
        if self.worker is not None:
            self.progress.setLabelText("Cancelling...")
            self.worker.cancel()

    # -- step 5 --------------------------------------------------------------------------------
    def _succeeded(self, outcome: restore.Outcome) -> None:
        self.events.append(("succeeded", ""))
        cancelled = self.worker is not None and self.worker.cancel_event.is_set()
        self._close_progress()
        if cancelled:
            self._finish()  # the result arrived after Cancel: the artist does not want it
            return
        try:
            if self.doc.doc not in Krita.instance().documents():
                raise PluginError("no_document", "The document was closed while it was being restored.")
            self.added = restore.apply(self.doc, self.job, outcome)
            self.events.append(("applied", ",".join(layer.name for layer in self.added)))
            # Krita activates each added node once its view has caught up (after this call
            # returns): make the restored layer active again then, never the hidden mask.
            restored = self.added[0]
            for delay in (0, 300):
                QTimer.singleShot(delay, lambda: self._activate(restored))
        except PluginError as e:
            self.events.append(("apply_failed", e.code))
            _show_error(e, self.parent)
        except Exception as e:  # e.g. the source layer was deleted meanwhile
            self.events.append(("apply_failed", repr(e)))
            _show_error(
                PluginError("apply_failed", "The restored pixels could not be added as a layer.", repr(e)), self.parent
            )
        else:
            names = ", ".join(f'"{layer.name}"' for layer in self.added)
            _notify(self.doc.doc, [f"added {names}."] + list(outcome.notes), self.parent)
        self._finish()

    def _activate(self, layer) -> None:
        app = Krita.instance()
        try:
            if self.doc.doc not in app.documents():
                return
            self.doc.set_active_layer(layer)
        except RuntimeError:  # the layer was deleted meanwhile
            return
        window = app.activeWindow()
        if app.activeDocument() != self.doc.doc and window is not None and self._when_shown is None:
            # Another document is in front: a view restores its own active layer when it comes
            # back, so make the restored layer active once this document's view is shown again.
            def shown() -> None:
                view = window.activeView()
                if view is not None and view.document() == self.doc.doc:
                    window.activeViewChanged.disconnect(shown)
                    QTimer.singleShot(0, lambda: self._activate(layer))

            self._when_shown = shown
            window.activeViewChanged.connect(shown)

    def _failed(self, exc, tb: str) -> None:
        self.events.append(("failed", f"{getattr(exc, 'code', '')}: {exc}"))
        self._close_progress()
        settings = self.job.settings if self.job else None
        err = plugin_error(exc, settings.server if settings else "", settings.server_python if settings else "")
        if err.code != "cancelled":
            if not isinstance(exc, PluginError) and getattr(exc, "code", None) is None:
                err = PluginError("internal_error", f"The plug-in hit an unexpected error: {exc!r}", tb)
            _show_error(err, self.parent)
        self._finish()

    def _close_progress(self) -> None:
        if self.progress is not None:
            # QProgressDialog emits canceled() when it is closed: that is not the artist's Cancel.
            self.progress.canceled.disconnect(self._cancel)
            self.progress.close()
            self.progress.deleteLater()
            self.progress = None

    def _finish(self) -> None:
        global LAST_RUN
        LAST_RUN = self
        self.events.append(("finished", ""))
        if self.on_finished is not None:
            self.on_finished(self)


class LineArtRestoreExtension(Extension):
    """Registers the action; each trigger starts a :class:`RestoreRun`."""

    def __init__(self, parent) -> None:
        super().__init__(parent)
        self.runs = RUNS

    def setup(self) -> None:
        pass

    def createActions(self, window) -> None:
        action = window.createAction(ACTION_ID, ACTION_TEXT, ACTION_MENU)
        action.setToolTip("Repair JPEG compression damage in line art with the lineart-restore server")
        action.triggered.connect(self.trigger)

    def trigger(self) -> None:
        run = RestoreRun(on_finished=self._forget)
        self.runs.append(run)
        run.start()

    def _forget(self, run: RestoreRun) -> None:
        if run in self.runs:
            self.runs.remove(run)
