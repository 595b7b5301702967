"""kritarunner script for ``tests/test_krita_e2e.py``: the plug-in's restore path in real Krita.

    PYTHONPATH=<pykrita dir with the installed plug-in>:tests/krita QT_QPA_PLATFORM=offscreen \
        kritarunner -s run_restore <jpeg> <server url> <out dir> <down url> <other-encoder jpeg> <colour jpeg>

Runs the same code as the Filter action minus the dialog: ``restore.prepare`` on the Krita
adapter, the worker thread (``worker.Worker`` + ``connection.job_task``) driven by a local Qt event
loop, then ``restore.apply``. Scenarios (one Krita start for all, to keep it short):

* ``gray``: the JPEG as opened (GRAYA U8), whole layer, with the mask layer;
* ``own_table``: a JPEG with a quantization table no IJG quality gives, as opened;
* ``colour``: an RGB JPEG of brown strokes, as opened (RGBA U8), default mask;
* ``rgba16_sel``: the document converted to RGBA U16 with a rectangular selection;
* ``f32``: an RGBA F32 document (converted by Krita to RGBA U16 for the request);
* errors: a group layer, an empty paint layer, a server that is not running.

Writes raw pixel dumps and ``result.json`` into the out dir; the pytest side checks them against a
direct client call. Everything is caught and reported in the JSON so a failure has a reason.
"""

import json
import os
import sys
import traceback

from PyQt5.QtCore import QByteArray, QEventLoop, QTimer

from krita import Krita, Selection


def _save(out, name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes(data))


def _run_worker(task, timeout_ms=120000):
    from lineart_restore.worker import Worker

    loop = QEventLoop()
    box = {"progress": []}
    w = Worker(task)
    w.progress.connect(lambda f, t: box["progress"].append([f, t]))
    w.succeeded.connect(lambda r: box.update(result=r))
    w.failed.connect(lambda e, tb: box.update(error=e, tb=tb))
    w.done.connect(loop.quit)
    QTimer.singleShot(timeout_ms, loop.quit)
    w.start()
    loop.exec_()
    if "error" in box:
        raise box["error"]
    if "result" not in box:
        w.cancel()
        raise TimeoutError("the worker did not finish in time")
    return box["result"], box["progress"]


def _restore(doc, node, settings, out, tag):
    from lineart_restore import restore
    from lineart_restore.connection import job_task
    from lineart_restore.krita_editor import KritaDocument

    kdoc = KritaDocument(doc, active=node)
    job = restore.prepare(kdoc, kdoc.active_layer, settings)
    outcome, progress = _run_worker(job_task(job))
    layers = restore.apply(kdoc, job, outcome)
    t = job.target
    info = {
        "target": [t.x, t.y, t.w, t.h],
        "context": [job.context.x, job.context.y, job.context.w, job.context.h],
        "job_model": [job.model, job.depth],
        "progress": progress,
        "notes": outcome.notes,
        "layers": [],
        "children": [c.name() for c in (node.parentNode() or doc.rootNode()).childNodes()],
    }
    _save(out, f"{tag}_sent.bin", job.data)
    for i, layer in enumerate(layers):
        n = layer.node
        _save(out, f"{tag}_layer{i}.bin", n.pixelData(t.x, t.y, t.w, t.h))
        info["layers"].append(
            {
                "name": n.name(),
                "model": n.colorModel(),
                "depth": n.colorDepth(),
                "visible": n.visible(),
                "bounds": [n.bounds().x(), n.bounds().y(), n.bounds().width(), n.bounds().height()],
            }
        )
    return info


def _error_of(fn):
    try:
        fn()
    except Exception as e:
        return {"code": getattr(e, "code", type(e).__name__), "message": str(e)}
    return None


def __main__(args):
    jpeg, url, out, down_url, own_table_jpeg, colour_jpeg = args[0], args[1], args[2], args[3], args[4], args[5]
    report = {"python": sys.version.split()[0], "krita": Krita.instance().version()}
    try:
        import lineart_restore
        from lineart_restore import restore
        from lineart_restore.krita_editor import KritaDocument
        from lineart_restore.settings import Settings

        report["plugin_file"] = lineart_restore.__file__
        app = Krita.instance()
        app.setBatchmode(True)

        # -- gray: the JPEG as opened ------------------------------------------------------
        doc = app.openDocument(jpeg)
        doc.setBatchmode(True)
        src = doc.topLevelNodes()[0]
        w, h = doc.width(), doc.height()
        before = bytes(src.pixelData(0, 0, w, h))
        _save(out, "gray_src_before.bin", before)
        report["gray_src"] = {"name": src.name(), "model": src.colorModel(), "depth": src.colorDepth(), "size": [w, h]}
        settings = Settings(server=url, mask_method="learnt", add_mask_layer=True)
        report["gray"] = _restore(doc, src, settings, out, "gray")
        report["gray"]["src_unchanged"] = bytes(src.pixelData(0, 0, w, h)) == before
        report["gray"]["src_still"] = [src.name(), src.colorModel(), src.colorDepth()]

        # -- errors --------------------------------------------------------------------------
        kdoc = KritaDocument(doc)
        group = doc.createGroupLayer("Group")
        doc.rootNode().addChildNode(group, None)
        empty = doc.createNode("Empty", "paintlayer")
        doc.rootNode().addChildNode(empty, None)
        report["err_group"] = _error_of(
            lambda: restore.prepare(KritaDocument(doc, group), KritaDocument(doc, group).active_layer, settings)
        )
        report["err_empty"] = _error_of(
            lambda: restore.prepare(KritaDocument(doc, empty), KritaDocument(doc, empty).active_layer, settings)
        )

        def down():
            from lineart_restore.connection import job_task

            job = restore.prepare(
                KritaDocument(doc, src), KritaDocument(doc, src).active_layer, Settings(server=down_url)
            )
            _run_worker(job_task(job))

        report["err_down"] = _error_of(down)

        def cancelled():
            import threading

            from lineart_restore.connection import job_task

            job = restore.prepare(KritaDocument(doc, src), KritaDocument(doc, src).active_layer, settings)
            stop = threading.Event()
            stop.set()  # the artist pressed Cancel before the image was sent
            job_task(job)(stop, lambda f, t: None)

        report["err_cancel"] = _error_of(cancelled)
        group.remove()
        empty.remove()
        del kdoc

        # -- a JPEG from another encoder: the plug-in sends the file's table ------------------
        odoc = app.openDocument(own_table_jpeg)
        odoc.setBatchmode(True)
        osrc = odoc.topLevelNodes()[0]
        report["own_table"] = _restore(odoc, osrc, Settings(server=url, mask_method="otsu"), out, "own_table")
        report["own_table"]["file"] = odoc.fileName()
        odoc.close()

        # -- a coloured JPEG: the layer comes back in its colours -------------------------------
        cdoc = app.openDocument(colour_jpeg)
        cdoc.setBatchmode(True)
        csrc = cdoc.topLevelNodes()[0]
        cw, ch = cdoc.width(), cdoc.height()
        cbefore = bytes(csrc.pixelData(0, 0, cw, ch))
        report["colour"] = _restore(cdoc, csrc, Settings(server=url), out, "colour")
        report["colour"]["src_model"] = [csrc.colorModel(), csrc.colorDepth()]
        report["colour"]["src_unchanged"] = bytes(csrc.pixelData(0, 0, cw, ch)) == cbefore
        cdoc.close()

        # -- rgba16 + selection ------------------------------------------------------------
        ok = doc.setColorSpace("RGBA", "U16", "sRGB-elle-V2-srgbtrc.icc")
        report["rgba16_convert_ok"] = ok
        src = doc.topLevelNodes()[0]
        before16 = bytes(src.pixelData(0, 0, w, h))
        sel = Selection()
        sel.select(37, 29, 90, 61, 255)
        doc.setSelection(sel)
        settings16 = Settings(server=url, mask_method="otsu", background="white")
        report["rgba16_sel"] = _restore(doc, src, settings16, out, "rgba16_sel")
        report["rgba16_sel"]["src_unchanged"] = bytes(src.pixelData(0, 0, w, h)) == before16
        report["rgba16_sel"]["src_model"] = [src.colorModel(), src.colorDepth()]
        doc.close()

        # -- f32 document (converted for the request) ------------------------------------------
        fdoc = app.createDocument(40, 24, "f32", "RGBA", "F32", "", 72.0)
        fdoc.setBatchmode(True)
        fsrc = fdoc.topLevelNodes()[0]
        import struct

        px = []
        for y in range(24):
            for x in range(40):
                v = 0.0 if (x == 10 or y == 12) else 1.0
                px += [v, v, v, 1.0]
        fsrc.setPixelData(QByteArray(struct.pack(f"={len(px)}f", *px)), 0, 0, 40, 24)
        fbefore = bytes(fsrc.pixelData(0, 0, 40, 24))
        report["f32"] = _restore(fdoc, fsrc, Settings(server=url, mask_method="agt"), out, "f32")
        report["f32"]["src_unchanged"] = bytes(fsrc.pixelData(0, 0, 40, 24)) == fbefore
        report["f32"]["src_model"] = [fsrc.colorModel(), fsrc.colorDepth()]
        fdoc.close()
    except Exception as e:
        report["exception"] = f"{type(e).__name__}: {e}"
        report["traceback"] = traceback.format_exc()
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(report, f, indent=1)
