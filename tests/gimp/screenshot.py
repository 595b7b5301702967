"""Save an X window as a PNG; run *inside* the GIMP chroot by tests/gimp/interactive.sh.

Usage: python3 screenshot.py WINDOW_ID OUT.png (with $DISPLAY set). The chroot has no xwd or
ImageMagick, but GIMP 3 brings GTK 3, whose Gdk can read a foreign window's pixels. This is how
docs/img/gimp_dialog.png is made (tests/test_gimp_e2e.py::test_interactive_dialog_ok_restores,
with $GIMP_SCREENSHOT_DIR set).
"""

import os
import sys

import gi

gi.require_version("Gdk", "3.0")
gi.require_version("GdkX11", "3.0")
from gi.repository import Gdk, GdkX11  # noqa: E402

window_id, out = int(sys.argv[1], 0), sys.argv[2]
display = Gdk.Display.open(os.environ["DISPLAY"])
if display is None:
    sys.exit(f"cannot open display {os.environ['DISPLAY']}")
window = GdkX11.X11Window.foreign_new_for_display(display, window_id)
pixbuf = Gdk.pixbuf_get_from_window(window, 0, 0, window.get_width(), window.get_height())
if pixbuf is None:
    sys.exit(f"window {window_id} has no readable pixels")
pixbuf.savev(out, "png", [], [])
print(f"saved {pixbuf.get_width()}x{pixbuf.get_height()} to {out}")
