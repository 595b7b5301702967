"""What the plug-in tells the artist when something goes wrong.

    PluginError                 ``code`` (stable) + ``message`` (for people)
      codes raised by the plug-in itself:
        "no_document"          no image is open
        "no_layer"             no layer is active
        "wrong_layer_type"     group, vector, file, filter, fill or clone layer, or a mask
        "empty_layer"          nothing on the canvas (or in the selection) to restore
        "unsupported_color"    a colour space Krita could not convert for us
        "bad_settings"         a dialog value that cannot be used
        "bundle_missing"       the plug-in was installed without its bundled libraries
      codes from the server or the client (``server.protocol.ErrorCode``, ``server.client``),
      passed through with a friendlier message: "server_down", "cancelled", "too_large", ...

The plug-in branches on ``code`` only; messages may be reworded at any time.
"""

from __future__ import annotations

__all__ = ["PluginError", "START_SERVER_COMMAND", "describe"]

#: What the artist has to run when no server answers.
START_SERVER_COMMAND = "python -m server"


class PluginError(Exception):
    """A failure explained in words an artist understands.

    Attributes:
        code: a stable identifier (see the module docstring).
        message: the explanation shown in the message box.
        details: technical text (for the "details" part of the box), may be "".
    """

    def __init__(self, code: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


def server_down_message(url: str, port: int | None) -> str:
    """The text for "nothing answers at ``url``", with the exact command that starts a server."""
    cmd = START_SERVER_COMMAND
    if port is not None and port != 8765:
        cmd += f" --port {port}"
    return (
        f"The restore server is not running (nothing answers at {url}).\n\n"
        f"Start it in a terminal, in the folder where lineart-restore is installed:\n\n"
        f"    {cmd}\n\n"
        "then run Restore JPEG Line Art again."
    )


# Friendlier words for server error codes (server.protocol.ErrorCode); unknown codes fall back
# to the server's own message.
_SERVER_CODES = {
    "invalid_image": "The server could not use the pixels of this layer: {msg}",
    "invalid_option": "The server rejected an option from the dialog: {msg}",
    "bad_weights": "The server's model files are missing or damaged: {msg}",
    "unsupported_model": "The server cannot load the chosen model: {msg}",
    "out_of_memory": (
        "The server ran out of memory on this image. Restore a smaller area (make a selection) "
        "or restart the server on a machine with more memory.\n\n{msg}"
    ),
    "cancelled": "Cancelled.",
    "too_large": (
        "The layer is too large for the server. Select a smaller area and run the filter again."
        "\n\n{msg}"
    ),
    "queue_full": "The server is busy with other images. Try again in a moment.\n\n{msg}",
    "unsupported_version": (
        "The plug-in and the server are different versions and cannot talk to each other. "
        "Install the plug-in zip built from the same lineart-restore version as the server."
        "\n\n{msg}"
    ),
    "unauthorized": "The server asks for a token this plug-in does not have: {msg}",
    "shutting_down": "The server is shutting down. Start it again and retry.\n\n{msg}",
    "internal_error": "The server hit an internal error: {msg}",
}


def describe(code: str, message: str) -> str:
    """Artist-facing text for an error ``code`` reported by the server or client."""
    template = _SERVER_CODES.get(code)
    if template is None:
        return f"The restore server reported a problem: {message}"
    return template.format(msg=message)
