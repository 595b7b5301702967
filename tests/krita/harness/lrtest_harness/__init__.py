"""GUI test harness plug-in for ``tests/test_krita_e2e.py::test_filter_menu_and_dialog``.

Installed next to the real plug-in in a throw-away Krita resource folder and enabled in a
throw-away kritarc. No server runs when Krita starts. Once Krita's main window exists it, step by
step on Qt timers (the GUI keeps running between steps):

1. records the Filter menu's entries and whether our action is among them;
2. opens the test JPEG and a large drawn document (many tiles) in views;
3. on the large document: triggers the action, presses "Check server" (nothing answers: the
   dialog must show the start command in full), then "Start server" (the plug-in starts
   ``python -m server`` itself), waits for "Connected", presses Restore with 2 passes, presses
   the progress window's Cancel once the bar has moved, and times how long the server's log
   takes to say "cancelled";
4. on the JPEG: the action again, "Check server", a screenshot, mask layer and 2 passes, Restore;
   the big document is brought to the front meanwhile; a QTimer counts its ticks while the job
   runs (the event loop must keep running), the progress values are recorded, and the new layers
   (in the JPEG's document), the active layer and the status bar are checked;
5. two undos; writes ``result.json`` and quits Krita.

The configuration comes from the JSON file named by ``$LRTEST_CONFIG``:
``{"jpeg": ..., "url": ..., "out": ..., "screenshot": ..., "server_log": ...}``.
"""

import json
import os
import sys
import time
import traceback

from krita import Extension, Krita
from PyQt5.QtCore import QByteArray, QTimer
from PyQt5.QtWidgets import QApplication, QPushButton

ACTION_ID = "lineart_restore_jpeg"


class Harness(Extension):
    def __init__(self, parent):
        super().__init__(parent)
        self.started = False
        self.report = {"steps": []}
        self.cfg = {}

    def setup(self):
        pass

    def createActions(self, window):
        if self.started:
            return
        self.started = True
        with open(os.environ["LRTEST_CONFIG"]) as f:
            self.cfg = json.load(f)
        errors = self.report.setdefault("uncaught", [])
        sys.excepthook = lambda t, v, tb: errors.append("".join(traceback.format_exception(t, v, tb)))
        QTimer.singleShot(1500, lambda: self.step(self.check_menu))

    # -- plumbing ----------------------------------------------------------------------------
    def step(self, fn):
        self.report["steps"].append(fn.__name__)
        try:
            fn()
        except Exception:
            self.report["exception"] = traceback.format_exc()
            self.finish()

    def later(self, ms, fn):
        QTimer.singleShot(ms, lambda: self.step(fn))

    def poll(self, cond, then, timeout_s, what):
        deadline = time.monotonic() + timeout_s

        def tick():
            if cond():
                self.step(then)
            elif time.monotonic() > deadline:
                self.report["timeout"] = what
                self.report["visible_windows"] = [
                    [
                        type(w).__name__,
                        w.windowTitle(),
                        getattr(w, "text", lambda: "")(),
                        getattr(w, "detailedText", lambda: "")(),
                    ]
                    for w in QApplication.topLevelWidgets()
                    if w.isVisible()
                ]
                self.report["last_run_events"] = self.run_events()
                self.finish()
            else:
                QTimer.singleShot(200, tick)

        tick()

    def run_events(self):
        from lineart_restore import extension

        run = extension.RUNS[-1] if extension.RUNS else extension.LAST_RUN
        return None if run is None else [list(e) for e in run.events]

    def current_run(self):
        from lineart_restore import extension

        return extension.RUNS[-1] if extension.RUNS else None

    def show(self, doc):
        """Bring ``doc``'s view to the front, as clicking its tab does."""
        window = Krita.instance().activeWindow()
        for view in window.views():
            if view.document() == doc:
                window.showView(view)
                view.setVisible()
        Krita.instance().setActiveDocument(doc)

    def finish(self):
        with open(os.path.join(self.cfg["out"], "result.json"), "w") as f:
            json.dump(self.report, f, indent=1)
        for doc in Krita.instance().documents():
            doc.setModified(False)
        QTimer.singleShot(300, lambda: Krita.instance().action("file_quit").trigger())

    # -- steps -------------------------------------------------------------------------------
    def check_menu(self):
        window = Krita.instance().activeWindow()
        qwin = window.qwindow()
        menus = {}
        for act in qwin.menuBar().actions():
            if act.menu() is not None:
                menus[act.text().replace("&", "")] = act.menu()
        filter_menu = menus.get("Filter")
        self.report["menus"] = sorted(menus)
        ours = Krita.instance().action(ACTION_ID)
        self.report["action_registered"] = ours is not None
        if filter_menu is not None:
            entries = [a for a in filter_menu.actions() if not a.isSeparator()]
            self.report["filter_menu"] = [a.text().replace("&", "") for a in entries]
            self.report["action_in_filter_menu"] = ours is not None and ours in entries
        self.later(100, self.open_document)

    def open_document(self):
        app = Krita.instance()
        app.writeSetting("lineart_restore", "server", self.cfg["url"])
        app.writeSetting("lineart_restore", "add_mask_layer", "false")
        app.writeSetting("lineart_restore", "auto_start", "false")
        doc = app.openDocument(self.cfg["jpeg"])
        app.activeWindow().addView(doc)
        self.doc = doc
        # A large drawing: many tiles, so the job lasts long enough to be cancelled half-way.
        side = 1024
        big = app.createDocument(side, side, "big drawing", "GRAYA", "U8", "", 300.0)
        app.activeWindow().addView(big)
        layer = big.topLevelNodes()[0]
        pix = bytearray(side * side * 2)
        for y in range(side):
            for x in range(side):
                i = 2 * (y * side + x)
                pix[i] = 0 if (x % 37 < 2 or (x + y) % 53 < 2) else 255
                pix[i + 1] = 255
        layer.setPixelData(QByteArray(bytes(pix)), 0, 0, side, side)
        big.setActiveNode(layer)
        big.refreshProjection()
        self.big = big
        self.poll(lambda: app.activeDocument() is not None, self.cancel_job_dialog, 20, "document views")

    # -- 3: start the server from the dialog, then cancel a job half-way ----------------------
    def cancel_job_dialog(self):
        self.show(self.big)
        self.big_layers_before = [n.name() for n in self.big.topLevelNodes()]
        Krita.instance().action(ACTION_ID).trigger()
        self.poll(lambda: self.find_dialog() is not None, self.check_server_down, 20, "the dialog (big)")

    def check_server_down(self):
        dialog = self.find_dialog()
        self.dialog = dialog
        dialog.check_button.click()
        self.poll(lambda: "not running" in dialog.status.text(), self.record_down, 30, "server-down text")

    def record_down(self):
        dialog = self.dialog
        QApplication.processEvents()
        status = dialog.status
        self.report["down_text"] = status.text()
        # the whole text is visible at the dialog's own size (no hand resizing)
        self.report["down_sizes"] = [
            status.width(),
            status.height(),
            status.heightForWidth(status.width()),
            dialog.width(),
            dialog.height(),
            dialog.sizeHint().width(),
            dialog.sizeHint().height(),
        ]
        self.report["down_text_fits"] = (
            status.height() >= status.heightForWidth(status.width()) and dialog.height() >= dialog.sizeHint().height()
        )
        dialog.grab().save(os.path.join(self.cfg["out"], "dialog_server_down.png"), "PNG")
        self.t_start = time.monotonic()
        dialog.start_button.click()
        self.poll(lambda: dialog.status.text().startswith("Connected"), self.restore_big, 300, "Start server")

    def restore_big(self):
        dialog = self.dialog
        self.report["start_s"] = round(time.monotonic() - self.t_start, 1)
        self.report["started_status"] = dialog.status.text()
        dialog.quality.setCurrentIndex(dialog.quality.findData(2))
        dialog.accept()
        self.poll(lambda: self.moved(), self.press_cancel, 120, "progress of the big job")

    def moved(self):
        run = self.current_run()
        return run is not None and any(0.05 < f < 0.6 for f, _ in run.progress_values)

    def press_cancel(self):
        run = self.current_run()
        self.cancel_run = run
        progress = None
        for w in QApplication.topLevelWidgets():
            if w.objectName() == "lineart_restore_progress" and w.isVisible():
                progress = w
        self.report["progress_window_modal"] = None if progress is None else progress.isModal()
        button = progress.findChild(QPushButton) if progress is not None else None
        self.report["cancel_button"] = None if button is None else button.text()
        self.t_cancel = time.monotonic()
        button.click()
        self.poll(self.log_says_cancelled, self.after_cancel, 30, "the server's cancellation")

    def log_says_cancelled(self):
        try:
            with open(self.cfg["server_log"], encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            return False
        if "cancelled after" in text and not hasattr(self, "t_logged"):
            self.t_logged = time.monotonic()
        return hasattr(self, "t_logged") and self.cancel_run not in self.runs()

    def runs(self):
        from lineart_restore import extension

        return extension.RUNS

    def after_cancel(self):
        self.report["cancel_logged_after_s"] = round(self.t_logged - self.t_cancel, 3)
        self.report["cancel_events"] = [list(e) for e in self.cancel_run.events]
        self.report["big_layers_after_cancel"] = [n.name() for n in self.big.topLevelNodes()]
        self.report["big_layers_before"] = self.big_layers_before
        self.later(200, self.select_layer)

    # -- 4: the JPEG, with the mask layer and 2 passes ------------------------------------------
    def select_layer(self):
        doc = self.doc
        self.show(doc)
        layer = doc.topLevelNodes()[0]
        doc.setActiveNode(layer)
        self.source_name = layer.name()
        self.source_before = bytes(layer.pixelData(0, 0, doc.width(), doc.height()))
        self.poll(
            lambda: doc.activeNode() is not None and Krita.instance().activeDocument() == doc,
            self.trigger_action,
            10,
            "active layer",
        )

    def trigger_action(self):
        Krita.instance().action(ACTION_ID).trigger()
        self.poll(lambda: self.find_dialog() is not None, self.check_server, 20, "the dialog")

    def find_dialog(self):
        for w in QApplication.topLevelWidgets():
            if w.objectName() == "lineart_restore_dialog" and w.isVisible():
                return w
        return None

    def check_server(self):
        dialog = self.find_dialog()
        self.dialog = dialog
        dialog.check_button.click()
        self.poll(lambda: dialog.status.text().startswith("Connected"), self.screenshot, 30, "server check")

    def screenshot(self):
        dialog = self.dialog
        QApplication.processEvents()
        self.report["dialog_status"] = dialog.status.text()
        self.report["dialog_models"] = [dialog.model.itemText(i) for i in range(dialog.model.count())]
        self.report["dialog_masks"] = [dialog.mask.itemData(i) for i in range(dialog.mask.count())]
        self.report["dialog_size"] = [dialog.width(), dialog.height()]
        self.report["dialog_quality"] = [dialog.quality.itemData(i) for i in range(dialog.quality.count())]
        dialog.add_mask.setChecked(True)
        dialog.auto_start.setChecked(True)  # the default (the first run turned it off)
        dialog.quality.setCurrentIndex(dialog.quality.findData(2))
        QApplication.processEvents()
        self.report["screenshot_saved"] = dialog.grab().save(self.cfg["screenshot"], "PNG")
        self.later(100, self.press_restore)

    def press_restore(self):
        doc = self.doc
        before = len(doc.topLevelNodes())
        self.ticks = 0
        self.ticker = QTimer()
        self.ticker.timeout.connect(self.tick)
        self.ticker.start(50)
        self.t_job = time.monotonic()
        self.dialog.accept()
        self.job_run = self.current_run()
        # the artist switches to the other document while the job runs
        QTimer.singleShot(50, lambda: self.show(self.big))
        # The status-bar note is shown just after the layers are added: wait for both.
        bar = Krita.instance().activeWindow().qwindow().statusBar()
        self.poll(
            lambda: len(doc.topLevelNodes()) >= before + 2 and "added" in bar.currentMessage(),
            lambda: self.later(600, self.check_layers),
            120,
            "the new layers and the status-bar note",
        )

    def tick(self):
        self.ticks += 1

    def check_layers(self):
        self.ticker.stop()
        self.report["job_s"] = round(time.monotonic() - self.t_job - 0.6, 2)
        self.report["timer_ticks_during_job"] = self.ticks
        run = self.job_run
        self.report["progress_values"] = [[round(f, 4), t] for f, t in run.progress_values]
        doc = self.doc
        self.report["front_document_during_job"] = Krita.instance().activeDocument().name()
        self.report["big_layers_after_job"] = [n.name() for n in self.big.topLevelNodes()]
        self.show(doc)  # back to the JPEG's document
        self.later(800, self.check_layers_shown)

    def check_layers_shown(self):
        doc = self.doc
        active = doc.activeNode()
        self.report["active_layer"] = active.name() if active is not None else None
        nodes = doc.topLevelNodes()
        self.report["layers"] = [n.name() for n in nodes]
        src = [n for n in nodes if n.name() == self.source_name][0]
        self.report["source_unchanged"] = bytes(src.pixelData(0, 0, doc.width(), doc.height())) == self.source_before
        self.report["settings_saved"] = Krita.instance().readSetting("lineart_restore", "add_mask_layer", "")
        self.report["ensemble_saved"] = Krita.instance().readSetting("lineart_restore", "ensemble", "")
        status = Krita.instance().activeWindow().qwindow().statusBar().currentMessage()
        self.report["status_bar"] = status
        Krita.instance().activeWindow().qwindow().grab().save(os.path.join(self.cfg["out"], "window.png"), "PNG")
        # Adding each layer is one undo step (Krita 5.1's Python API has no undo grouping).
        count = len(nodes)
        undo = Krita.instance().action("edit_undo")
        if undo is not None:
            undo.trigger()
            QApplication.processEvents()
        self.later(1000, lambda: self.after_undo(count))

    def after_undo(self, count):
        doc = self.doc
        self.report["layers_after_one_undo"] = [n.name() for n in doc.topLevelNodes()]
        Krita.instance().action("edit_undo").trigger()
        self.later(1000, self.after_second_undo)

    def after_second_undo(self):
        doc = self.doc
        nodes = doc.topLevelNodes()
        self.report["layers_after_two_undos"] = [n.name() for n in nodes]
        src = [n for n in nodes if n.name() == self.source_name][0]
        self.report["source_unchanged_after_undo"] = (
            bytes(src.pixelData(0, 0, doc.width(), doc.height())) == self.source_before
        )
        self.finish()


Krita.instance().addExtension(Harness(Krita.instance()))
