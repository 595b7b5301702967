"""GIMP-free logic of the "Restore JPEG Line Art" GIMP 3 plug-in.

Nothing in this package imports ``gi``/GIMP/GTK, so pytest runs it on any Python. The GIMP
entry file (``lineart_restore.py`` one folder up) adapts GIMP's API to :mod:`.editor` and calls
:func:`.job.run_restore`.

Modules:
    formats  GIMP precision / base type <-> Babl format string <-> protocol pixel format.
    settings the procedure's arguments (server, mask, threshold, background, mask layer).
    editor   the small editor interface the job talks to, with a do-nothing base class.
    job      read -> send -> write new layers, and turning failures into clear messages.
"""

__all__ = ["formats", "settings", "editor", "job"]
