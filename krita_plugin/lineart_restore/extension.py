"""Krita glue: the "Restore JPEG Line Art..." action in the Filter menu and its run.

Flow of one run (all on Krita's main thread except the marked step):

1. check there is a document and a paint layer (else a message box);
2. the options dialog (settings loaded from and saved to kritarc);
3. ``restore.prepare`` reads the pixels;
4. worker thread: connect, ``restore.run_on_server`` (progress dialog with Cancel meanwhile);
5. ``restore.apply`` adds the new layers above the source.
"""

from __future__ import annotations

from krita import Extension, Krita  # type: ignore[import-not-found]
from PyQt5.QtWidgets import QMessageBox

from . import restore
from .connection import job_task, plugin_error, query_server
from .editor import LayerKind
from .errors import PluginError
from .krita_editor import KritaSettingsBackend, active_document
from .settings import SettingsStore
from .ui import ProgressDialog, RestoreDialog
from .worker import Worker

__all__ = ["ACTION_ID", "ACTION_TEXT", "ACTION_MENU", "LineArtRestoreExtension", "RestoreRun"]

ACTION_ID = "lineart_restore_jpeg"
ACTION_TEXT = "Restore JPEG Line Art..."
ACTION_MENU = "Filter"
TITLE = "Restore JPEG Line Art"
#: The most recent finished run (its ``events`` tell what happened).
LAST_RUN: "RestoreRun | None" = None


def _main_window():
    win = Krita.instance().activeWindow()
    return win.qwindow() if win is not None else None


def _status(text: str, parent, msecs: int = 15000) -> None:
    """Show ``text`` in the main window's status bar (server notes are not worth a message box)."""
    bar = parent.statusBar() if parent is not None and hasattr(parent, "statusBar") else None
    if bar is not None:
        bar.showMessage(text, msecs)


def _show_error(err: PluginError, parent=None) -> None:
    box = QMessageBox(QMessageBox.Warning, TITLE, err.message, QMessageBox.Ok, parent)
    if err.details:
        box.setDetailedText(err.details)
    box.exec_()


class RestoreRun:
    """One run of the action. Keeps the dialog, worker and progress alive until it finishes."""

    def __init__(self, on_finished=None) -> None:
        self.on_finished = on_finished
        self.store = SettingsStore(KritaSettingsBackend())
        self.parent = _main_window()
        self.doc = active_document()
        self.job: restore.Job | None = None
        self.worker: Worker | None = None
        self.progress: ProgressDialog | None = None
        self.dialog: RestoreDialog | None = None
        self.checker: Worker | None = None
        self.added: list = []
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
            + ("Only the selected area is restored." if self.doc.selection is not None else "The whole layer is restored.")
            + " New layers are added above it; the layer itself is not changed."
        )
        self.dialog = RestoreDialog(self.store.load(), text, self.parent)
        self.dialog.check_button.clicked.connect(self._check_server)
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

    def _check_server(self) -> None:
        dialog = self.dialog
        try:
            url = dialog.settings().check().server
        except ValueError as e:
            dialog.show_status(f"Bad address: {e}")
            return
        dialog.show_status("Checking...")
        dialog.check_button.setEnabled(False)
        self.checker = Worker(lambda cancel, progress: query_server(url))

        def ok(info) -> None:
            dialog.show_server(
                info.models,
                info.mask_methods,
                f"Connected: server {info.version} on {info.device}.",
                info.ensemble_sizes,
            )

        def failed(exc, tb) -> None:
            dialog.show_status(plugin_error(exc, url).message)

        self.checker.succeeded.connect(ok)
        self.checker.failed.connect(failed)
        self.checker.done.connect(lambda: dialog.check_button.setEnabled(True))
        self.checker.start()

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
        self.worker = Worker(job_task(self.job))
        self.worker.progress.connect(self.progress.update_progress)
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
        except PluginError as e:
            self.events.append(("apply_failed", e.code))
            _show_error(e, self.parent)
        except Exception as e:  # e.g. the source layer was deleted meanwhile
            self.events.append(("apply_failed", repr(e)))
            _show_error(PluginError("apply_failed", "The restored pixels could not be added as a layer.", repr(e)), self.parent)
        else:
            names = ", ".join(f'"{layer.name}"' for layer in self.added)
            _status(f"Restore JPEG Line Art: added {names}. " + " ".join(outcome.notes), self.parent)
        self._finish()

    def _failed(self, exc, tb: str) -> None:
        self.events.append(("failed", f"{getattr(exc, 'code', '')}: {exc}"))
        self._close_progress()
        err = plugin_error(exc, self.job.settings.server if self.job else "")
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
        self.runs: list[RestoreRun] = []

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
