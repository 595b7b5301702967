"""The parts both plug-ins share, found where they are: the installed plug-in's ``lrclient``
package (bundled by ``python -m gimp_plugin.install`` next to the entry file), or the checkout's
``plugin_common`` under pytest. Nothing here imports GIMP."""

from __future__ import annotations

try:
    from lrclient import errors, launcher, protocol  # type: ignore[import-not-found]  # installed plug-in
except ImportError:  # a source checkout (tests): the originals
    from plugin_common import errors, launcher  # type: ignore[no-redef]
    from server import protocol  # type: ignore[no-redef]

PluginError = errors.PluginError

__all__ = ["errors", "launcher", "protocol", "PluginError"]
