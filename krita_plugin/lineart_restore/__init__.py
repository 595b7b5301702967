"""Krita plug-in "Restore JPEG Line Art": Filter > Restore JPEG Line Art... sends the active paint
layer to a running lineart-restore server and adds the restored pixels as new layers.

Modules (only ``extension``, ``krita_editor``, ``ui`` and ``worker`` need Krita or Qt):

* ``geometry``  rectangles, target/context regions, layer names
* ``pixels``    Krita pixel layouts <-> the server's wire formats, crop, selection alpha
* ``settings``  the dialog's options and their store
* ``editor``    plain editor wrapper (document, layer, selection) used by the logic
* ``restore``   prepare -> run_on_server -> apply, the restore path itself
* ``connection`` the shared ``server/client.py`` (bundled in ``vendor/``) and error wording
* ``krita_editor``, ``worker``, ``ui``, ``extension``  Krita adapters, thread, widgets, action

Outside Krita (``import krita`` fails) nothing is registered, so the logic modules import under
plain Python for the unit tests.
"""

__version__ = "0.1.0"

try:
    import krita as _krita  # type: ignore[import-not-found]
except ImportError:  # plain Python: tests, packaging
    _krita = None

if _krita is not None and hasattr(_krita, "Krita"):
    from .extension import LineArtRestoreExtension

    _app = _krita.Krita.instance()
    _app.addExtension(LineArtRestoreExtension(_app))
