"""Errors raised by the restoration engine.

Every error the engine raises on purpose derives from :class:`RestoreError` and carries a stable
``code`` string. Callers (the server, the plug-ins) branch on ``code``; the message is for people.

    RestoreError                      code "restore_error"
    ├── InvalidImageError (ValueError)    "invalid_image"    wrong dtype, shape, channels, NaNs...
    ├── InvalidOptionError (ValueError)   "invalid_option"   unknown mask method, theta out of range...
    ├── WeightsError                      "bad_weights"      missing, truncated or foreign weights file
    │   └── UnsupportedModelError         "unsupported_model" architecture/format we cannot build
    ├── OutOfMemoryError                  "out_of_memory"    even the smallest tile did not fit
    └── CancelledError                    "cancelled"        the caller's cancel flag was set
"""

from __future__ import annotations

__all__ = [
    "RestoreError",
    "InvalidImageError",
    "InvalidOptionError",
    "WeightsError",
    "UnsupportedModelError",
    "OutOfMemoryError",
    "CancelledError",
]


class RestoreError(Exception):
    """Root of the engine's errors. ``code`` is stable; the message is human-readable."""

    code = "restore_error"


class InvalidImageError(RestoreError, ValueError):
    """The image (or mask) given to the engine cannot be used as it is."""

    code = "invalid_image"


class InvalidOptionError(RestoreError, ValueError):
    """An option has an unknown name or a value outside its range."""

    code = "invalid_option"


class WeightsError(RestoreError):
    """A weights file is missing, unreadable, truncated or lacks our metadata."""

    code = "bad_weights"


class UnsupportedModelError(WeightsError):
    """The weights describe a model (architecture, format version) this build cannot construct."""

    code = "unsupported_model"


class OutOfMemoryError(RestoreError):
    """The device ran out of memory even at the smallest tile size."""

    code = "out_of_memory"


class CancelledError(RestoreError):
    """The job was cancelled by its caller between two tiles."""

    code = "cancelled"
