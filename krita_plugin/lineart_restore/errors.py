"""What the plug-in tells the artist when something goes wrong: the shared
``plugin_common.errors`` (one ``PluginError`` and one wording for both plug-ins).

Codes raised by this plug-in: "no_document", "no_layer", "wrong_layer_type", "empty_layer",
"unsupported_color", "bad_settings", "bundle_missing", "apply_failed"; the launcher's and the
client's codes pass through (see ``plugin_common/errors.py``). The plug-in branches on ``code``
only; messages may be reworded at any time.
"""

from __future__ import annotations

from .common import errors as _shared

PluginError = _shared.PluginError
describe = _shared.describe
server_down_message = _shared.server_down_message

__all__ = ["PluginError", "describe", "server_down_message"]
