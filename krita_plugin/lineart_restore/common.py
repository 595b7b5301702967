"""The parts both plug-ins share (``plugin_common`` and the server's ``protocol``), found where
they are: the bundled copies in ``vendor/lrclient`` inside an installed plug-in, the checkout's
``plugin_common`` and ``server`` packages under pytest.

``vendor`` goes on ``sys.path`` first because ``websockets`` and ``msgpack`` import themselves by
absolute name. No Qt or Krita here.
"""

from __future__ import annotations

import os
import sys

VENDOR_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
BUNDLED = os.path.isdir(os.path.join(VENDOR_DIR, "lrclient"))

if BUNDLED:
    if VENDOR_DIR not in sys.path:
        sys.path.insert(0, VENDOR_DIR)
    from .vendor.lrclient import errors, launcher, protocol  # type: ignore[import-not-found]
else:  # a source checkout (tests): the originals
    from plugin_common import errors, launcher  # type: ignore[no-redef]
    from server import protocol  # type: ignore[no-redef]

PluginError = errors.PluginError

__all__ = ["BUNDLED", "VENDOR_DIR", "errors", "launcher", "protocol", "PluginError"]
