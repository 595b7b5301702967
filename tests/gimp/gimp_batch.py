"""Runs *inside* GIMP 3 (python-fu-eval batch interpreter); driven by tests/test_gimp_e2e.py.

Usage (inside the chroot)::

    LR_E2E_SPEC=/path/spec.json gimp-console-3.0 -i --batch-interpreter=python-fu-eval \
        -b 'exec(open("/path/gimp_batch.py").read())' --quit

``spec.json``: ``{"out": DIR, "cases": [CASE, ...]}``, each CASE::

    name       label, used for file names
    file       image to load (a JPEG)
    opened     optional bool: GIMP itself opened ``file`` from its command line, as File > Open
               does (the image then knows its file; one loaded by ``Gimp.file_load`` from a
               script does not); the case takes that image instead of loading it
    rgb        optional bool: convert the (gray) image to RGB first
    precision  optional Gimp.Precision member name to convert the image to first
    alpha      optional bool: add an alpha channel to the layer first
    offsets    optional [x, y]: move the layer first
    read       Babl format to read every layer in (e.g. "Y' u8", "R'G'B'A u16")
    args       the procedure's arguments, e.g. {"server": "ws://...", "mask-method": "otsu"}
    run_mode   optional Gimp.RunMode member name (default NONINTERACTIVE); with INTERACTIVE the
               plug-in shows its dialog, pre-filled with ``args`` (tests/gimp/interactive.sh
               presses OK)

For each case it loads the file, reads the source layer, calls ``plug-in-lineart-restore``
non-interactively through the PDB, then reads the source again and every layer of the image.
Pixels go to ``DIR/<case>-<i>.raw`` (layer i from the bottom), everything else to
``DIR/report.json``. Any Python error is written to the report instead of being lost.
"""

import json
import os
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402


def _read(drawable, fmt):
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    return bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.CLAMP))


def _layer_info(layer):
    _ok, x, y = layer.get_offsets()
    return {
        "name": layer.get_name(),
        "width": layer.get_width(),
        "height": layer.get_height(),
        "offsets": [x, y],
        "visible": bool(layer.get_visible()),
        "has_alpha": bool(layer.has_alpha()),
        "type": layer.type().value_name,
    }


def _opened_image(path):
    for image in Gimp.get_images():
        f = image.get_file()
        if f is not None and f.get_path() == path:
            return image
    raise RuntimeError(f"GIMP has not opened {path} (pass it on GIMP's command line)")


def _run_case(proc, case, out):
    if case.get("opened"):
        image = _opened_image(case["file"])
    else:
        image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(case["file"]))
    if case.get("rgb"):
        image.convert_rgb()
    if case.get("precision"):
        image.convert_precision(getattr(Gimp.Precision, case["precision"]))
    layer = image.get_layers()[0]
    if case.get("alpha"):
        layer.add_alpha()
    if case.get("offsets"):
        layer.set_offsets(*case["offsets"])
    rec = {
        "name": case["name"],
        "image_base": image.get_base_type().value_name,
        "precision": image.get_precision().value_name,
        "source": _layer_info(layer),
        "file": image.get_file().get_path() if image.get_file() is not None else None,
    }
    before = _read(layer, case["read"])
    with open(os.path.join(out, f"{case['name']}-source-before.raw"), "wb") as f:
        f.write(before)

    config = proc.create_config()
    config.set_property("run-mode", getattr(Gimp.RunMode, case.get("run_mode", "NONINTERACTIVE")))
    config.set_property("image", image)
    config.set_core_object_array("drawables", [layer])
    for key, value in case["args"].items():
        config.set_property(key, value)
    t0 = time.monotonic()
    result = proc.run(config)
    rec["status"] = result.index(0).value_name
    rec["return_values"] = [str(result.index(i)) for i in range(1, result.length())]
    rec["last_error"] = Gimp.get_pdb().get_last_error()

    rec["seconds"] = round(time.monotonic() - t0, 2)
    rec["selected"] = [item.get_name() for item in image.get_selected_layers()]
    rec["source_unchanged"] = _read(layer, case["read"]) == before
    layers = list(reversed(image.get_layers()))  # bottom to top
    rec["layers"] = []
    for i, item in enumerate(layers):
        info = _layer_info(item)
        with open(os.path.join(out, f"{case['name']}-{i}.raw"), "wb") as f:
            f.write(_read(item, case["read"]))
        rec["layers"].append(info)
    image.delete()
    return rec


def main():
    spec_path = os.environ["LR_E2E_SPEC"]
    with open(spec_path) as f:
        spec = json.load(f)
    out = spec["out"]
    report = {"gimp_version": Gimp.version(), "cases": []}
    try:
        proc = Gimp.get_pdb().lookup_procedure("plug-in-lineart-restore")
        if proc is None:
            raise RuntimeError("plug-in-lineart-restore is not registered (plug-in not installed or not executable)")
        report["procedure"] = {
            "menu_label": proc.get_menu_label(),
            "menu_paths": list(proc.get_menu_paths()),
            "image_types": proc.get_image_types(),
            "arguments": [a.name for a in proc.get_arguments()],
        }
        for case in spec["cases"]:
            try:
                report["cases"].append(_run_case(proc, case, out))
            except Exception:
                report["cases"].append({"name": case["name"], "exception": traceback.format_exc()})
    except Exception:
        report["exception"] = traceback.format_exc()
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)


main()
