"""GUI test harness plug-in for ``tests/test_krita_e2e.py::test_filter_menu_and_dialog``.

Installed next to the real plug-in in a throw-away Krita resource folder and enabled in a
throw-away kritarc. Once Krita's main window exists it, step by step on Qt timers (the GUI keeps
running between steps):

1. records the Filter menu's entries and whether our action is among them;
2. opens the test JPEG in a view and makes its layer active;
3. triggers the action like a menu click, finds the dialog, presses "Check server", saves a
   screenshot of the dialog;
4. ticks "also add mask layer", presses Restore and waits for the new layers;
5. writes ``result.json`` and quits Krita.

The configuration comes from the JSON file named by ``$LRTEST_CONFIG``:
``{"jpeg": ..., "url": ..., "out": ..., "screenshot": ...}``.
"""

import json
import os
import sys
import time
import traceback

from krita import Extension, Krita
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication

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
                    [type(w).__name__, w.windowTitle(), getattr(w, "text", lambda: "")(),
                     getattr(w, "detailedText", lambda: "")()]
                    for w in QApplication.topLevelWidgets() if w.isVisible()
                ]
                self.report["last_run_events"] = self.run_events()
                self.finish()
            else:
                QTimer.singleShot(200, tick)

        tick()

    def run_events(self):
        from lineart_restore import extension

        run = extension.LAST_RUN
        return None if run is None else [list(e) for e in run.events]

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
        doc = app.openDocument(self.cfg["jpeg"])
        app.activeWindow().addView(doc)
        self.doc = doc
        self.poll(lambda: app.activeDocument() is not None, self.select_layer, 20, "document view")

    def select_layer(self):
        doc = Krita.instance().activeDocument()
        layer = doc.topLevelNodes()[0]
        doc.setActiveNode(layer)
        self.source_name = layer.name()
        self.source_before = bytes(layer.pixelData(0, 0, doc.width(), doc.height()))
        self.poll(lambda: doc.activeNode() is not None, self.trigger_action, 10, "active layer")

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
        dialog.quality.setCurrentIndex(dialog.quality.findData(2))
        QApplication.processEvents()
        self.report["screenshot_saved"] = dialog.grab().save(self.cfg["screenshot"], "PNG")
        self.later(100, self.press_restore)

    def press_restore(self):
        doc = Krita.instance().activeDocument()
        before = len(doc.topLevelNodes())
        self.dialog.accept()
        # The status-bar note is shown just after the layers are added: wait for both.
        bar = Krita.instance().activeWindow().qwindow().statusBar()
        self.poll(lambda: len(doc.topLevelNodes()) >= before + 2 and "added" in bar.currentMessage(),
                  self.check_layers, 120, "the new layers and the status-bar note")

    def check_layers(self):
        doc = Krita.instance().activeDocument()
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
        doc = Krita.instance().activeDocument()
        self.report["layers_after_one_undo"] = [n.name() for n in doc.topLevelNodes()]
        Krita.instance().action("edit_undo").trigger()
        self.later(1000, self.after_second_undo)

    def after_second_undo(self):
        doc = Krita.instance().activeDocument()
        nodes = doc.topLevelNodes()
        self.report["layers_after_two_undos"] = [n.name() for n in nodes]
        src = [n for n in nodes if n.name() == self.source_name][0]
        self.report["source_unchanged_after_undo"] = (
            bytes(src.pixelData(0, 0, doc.width(), doc.height())) == self.source_before
        )
        self.finish()


Krita.instance().addExtension(Harness(Krita.instance()))
