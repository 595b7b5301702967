#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Enhance > Restore JPEG Line Art...

Sends the active layer to the lineart-restore server (``python -m server``; started by the
plug-in when none answers at a local address, see ``lrclient/launcher.py``) and adds the result
above it as a new layer "restored" (and, on request, a hidden layer "line mask"), in one undo
group, and selects the restored layer; the source layer is only read. Server notes go to the
Error Console (non-modal); only errors open a message box.

Procedure ``plug-in-lineart-restore`` (image procedure, RGB* and GRAY* images, any precision).
Arguments after run-mode/image/drawables (see ``lineart_gimp/settings.py``):

    server       string   ws://host:port of the server        (default ws://127.0.0.1:8765)
    mask-method  choice   learnt | otsu | otsu_d | agt | none  (default learnt)
    threshold    int      0..255, near-white snap; 255 = off    (default 251)
    background   choice   white | transparent                   (default white)
    mask-layer   boolean  also add the line mask as a layer     (default false)
    quality      choice   standard | x2 | x4 | x8: passes of the server's self-ensemble
                                                                (default standard)
    start-server boolean  start a local server when none answers (default true)

A server started with ``--token`` needs the same secret in GIMP's environment variable
``LINEART_RESTORE_TOKEN``.

Interactive calls show a dialog built from those arguments; non-interactive calls (scripts,
``gimp-console-3.0 --batch-interpreter=python-fu-eval``) pass them through a procedure config.

This file is the only one that touches GIMP's API: ``GimpEditor`` adapts it to the GIMP-free
``lineart_gimp.editor.Editor`` that ``lineart_gimp.job`` drives. Bundled pure-Python packages
(websockets, msgpack, lrclient = the project's protocol and client) sit next to this file, so its
folder goes first on ``sys.path``.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402
from lineart_gimp.editor import Editor, SourceInfo  # noqa: E402
from lineart_gimp.formats import PixelLayout  # noqa: E402
from lineart_gimp.job import PluginError, run_restore  # noqa: E402
from lineart_gimp.settings import ARGUMENTS, Settings, SettingsError  # noqa: E402

PROC_NAME = "plug-in-lineart-restore"
MENU_LABEL = "Restore JPEG Line Art..."
MENU_PATH = "<Image>/Filters/Enhance"
TITLE = "Restore JPEG Line Art"
#: Same variable as the server's: a token-protected server's secret, read from GIMP's environment.
TOKEN_ENV = "LINEART_RESTORE_TOKEN"


def _kind(drawable):
    """Our name for the sort of drawable (see SourceInfo.kind)."""
    if isinstance(drawable, Gimp.LayerMask):
        return "layer_mask"
    if isinstance(drawable, Gimp.Channel):
        return "channel"
    if isinstance(drawable, Gimp.Layer):
        if drawable.is_group():
            return "group"
        if drawable.is_text_layer():
            return "text"
        return "layer"
    return "other"


def _base(drawable):
    if drawable.is_rgb():
        return "rgb"
    if drawable.is_gray():
        return "gray"
    return "indexed"


def _file_path(image):
    """Local path of the file the image came from ("" for a new image or a remote file)."""
    f = image.get_file()
    return (f.get_path() or "") if f is not None else ""


class GimpEditor(Editor):
    """The job's view of one GIMP image and its selected drawable(s)."""

    def __init__(self, image, drawables):
        self.image = image
        self.drawables = list(drawables)
        self._src = self.drawables[0] if len(self.drawables) == 1 else None
        self._top = self._src  # new layers go directly above the last one added
        self._added = {}

    def source(self):
        d = self._src
        if d is None:
            return None
        return SourceInfo(
            name=d.get_name(),
            kind=_kind(d),
            base=_base(d),
            precision=self.image.get_precision().value_name,
            has_alpha=bool(d.has_alpha()),
            width=d.get_width(),
            height=d.get_height(),
            file=_file_path(self.image),
        )

    def _rect(self):
        return Gegl.Rectangle.new(0, 0, self._src.get_width(), self._src.get_height())

    def read_pixels(self, layout: PixelLayout) -> bytes:
        buffer = self._src.get_buffer()
        return bytes(buffer.get(self._rect(), 1.0, layout.babl, Gegl.AbyssPolicy.CLAMP))

    def add_layer(self, name, layout, data, visible=True):
        src = self._src
        w, h = src.get_width(), src.get_height()
        base = "GRAY" if self.image.get_base_type() == Gimp.ImageBaseType.GRAY else "RGB"
        image_type = getattr(Gimp.ImageType, f"{base}{'A' if layout.alpha else ''}_IMAGE")
        layer = Gimp.Layer.new(self.image, name, w, h, image_type, 100.0, Gimp.LayerMode.NORMAL)
        parent = self._top.get_parent()
        position = self.image.get_item_position(self._top)
        self.image.insert_layer(layer, parent, position)
        _ok, x, y = src.get_offsets()
        layer.set_offsets(x, y)
        buffer = layer.get_buffer()
        buffer.set(self._rect(), layout.babl, data)
        buffer.flush()
        layer.update(0, 0, w, h)
        layer.set_visible(bool(visible))
        self._top = layer
        self._added[name] = layer

    def select_layer(self, name):
        self.image.set_selected_layers([self._added[name]])

    def begin_undo(self):
        self.image.undo_group_start()

    def end_undo(self):
        self.image.undo_group_end()

    def progress_start(self, text):
        Gimp.progress_init(text)

    def progress(self, fraction, text=None):
        if text:
            Gimp.progress_set_text(text)
        Gimp.progress_update(fraction)

    def progress_end(self):
        Gimp.progress_end()

    def flush(self):
        Gimp.displays_flush()


def _failure(procedure, message):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(f"{TITLE}: {message}"))


def _show_dialog(procedure, config):
    """Interactive mode: the argument dialog. True when the user pressed OK."""
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init(PROC_NAME)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, TITLE)
    dialog.fill(None)
    ok = dialog.run()
    dialog.destroy()
    return ok


def run(procedure, run_mode, image, drawables, config, data):
    if run_mode == Gimp.RunMode.INTERACTIVE and not _show_dialog(procedure, config):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        settings = Settings.from_arguments({a.name: config.get_property(a.name) for a in ARGUMENTS})
    except SettingsError as e:
        return procedure.new_return_values(Gimp.PDBStatusType.CALLING_ERROR, GLib.Error(f"{TITLE}: {e}"))
    try:
        outcome = run_restore(GimpEditor(image, drawables), settings, token=os.environ.get(TOKEN_ENV) or None)
    except PluginError as e:
        return _failure(procedure, str(e))
    if outcome.notes:
        _notify(outcome.notes)
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _notify(notes):
    """The server's notes, one per line, in the Error Console (non-modal) rather than in a
    message box: GIMP's message handler is switched for this one message and then restored."""
    text = f"{TITLE}:\n" + "\n".join(notes)
    try:
        previous = Gimp.message_get_handler()
    except Exception:  # an API without the handler calls: GIMP's own choice
        Gimp.message(text)
        return
    Gimp.message_set_handler(Gimp.MessageHandlerType.ERROR_CONSOLE)
    try:
        Gimp.message(text)
    finally:
        Gimp.message_set_handler(previous)


def _add_argument(procedure, spec):
    flags = GObject.ParamFlags.READWRITE
    if spec.kind == "string":
        procedure.add_string_argument(spec.name, spec.label, spec.blurb, spec.default, flags)
    elif spec.kind == "int":
        procedure.add_int_argument(spec.name, spec.label, spec.blurb, spec.minimum, spec.maximum, spec.default, flags)
    elif spec.kind == "boolean":
        procedure.add_boolean_argument(spec.name, spec.label, spec.blurb, spec.default, flags)
    elif spec.kind == "choice":
        choice = Gimp.Choice.new()
        for index, (nick, label) in enumerate(spec.choices):
            choice.add(nick, index, label, "")
        procedure.add_choice_argument(spec.name, spec.label, spec.blurb, choice, spec.default, flags)
    else:  # a programming error in settings.ARGUMENTS
        raise ValueError(f"unknown argument kind {spec.kind!r}")


class LineartRestore(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROC_NAME]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label(MENU_LABEL)
        procedure.add_menu_path(MENU_PATH)
        procedure.set_documentation(
            "Repair JPEG artifacts in line art with the lineart-restore server",
            "Sends the selected layer to the lineart-restore server (started by the plug-in when needed) "
            "and adds the restored drawing above it as a new layer 'restored', optionally with the "
            "line mask as a hidden layer 'line mask'. The source layer is not changed.",
            name,
        )
        procedure.set_attribution("lineart-restore contributors", "lineart-restore contributors", "2026")
        for spec in ARGUMENTS:
            _add_argument(procedure, spec)
        return procedure


if __name__ == "__main__":
    Gimp.main(LineartRestore.__gtype__, sys.argv)
