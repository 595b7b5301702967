"""What both plug-ins tell the artist, and how they reach the client.

    PluginError(code, message, details)     ``code`` is stable, ``message`` is for people
      codes raised by the plug-ins: "no_document", "no_layer", "wrong_layer_type", "empty_layer",
        "unsupported_color", "bad_settings", "bundle_missing", "no_ensemble", "bad_result", ...
      codes of the launcher: "port_taken", "bad_python", "server_failed", "start_timeout",
        "not_local", "no_python"
      codes from the server or the client (``server.protocol.ErrorCode``, ``server.client``),
        passed through with friendlier words: "server_down", "cancelled", "too_large", ...

The plug-ins branch on ``code`` only (never on message text); messages may be reworded at any
time. Capabilities come from the server's ``welcome`` (:func:`offers`).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PluginError",
    "describe",
    "server_down_message",
    "from_client_error",
    "offers",
    "check_offered",
    "layer_notes",
    "load_client",
]


class PluginError(Exception):
    """A failure explained in words an artist understands.

    Attributes:
        code: a stable identifier (see the module docstring).
        message: the explanation shown to the artist.
        details: technical text (a "details" part of a message box), may be "".
    """

    def __init__(self, code: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


def load_client() -> tuple[Any, Any]:
    """The ``(client, protocol)`` modules: the bundled copies next to this file in an installed
    plug-in (package ``lrclient``), else the ``server`` package of a lineart-restore checkout.

    Raises:
        PluginError: ``bundle_missing`` when neither imports.
    """
    try:
        from . import client, protocol  # type: ignore[attr-defined]  # bundled in lrclient
    except ImportError:
        try:
            from server import client, protocol  # type: ignore[no-redef]
        except ImportError as e:
            raise PluginError(
                "bundle_missing",
                "The plug-in was installed without its bundled libraries (websockets, msgpack, the "
                "server protocol). Install it again: `python -m krita_plugin.package` (Krita) or "
                "`python -m gimp_plugin.install` (GIMP), run in the lineart-restore environment.",
                details=repr(e),
            ) from None
    return client, protocol


def server_down_message(url: str, command: str = "") -> str:
    """The text for "nothing answers at ``url``", with the exact command that starts a server."""
    if not command:
        from . import launcher  # launcher imports this module

        command = launcher.manual_command(url)
    return (
        f"The restore server is not running (nothing answers at {url}).\n\n"
        "The plug-in can start it for you (Start server in its dialog), or start it yourself in a terminal:\n\n"
        f"    {command}\n\n"
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
        "The server ran out of memory on this image. Restore a smaller area (make a selection, or "
        "crop or scale the layer) or restart the server on a machine with more memory.\n\n{msg}"
    ),
    "cancelled": "Cancelled.",
    "too_large": (
        "The layer is too large for the server. Select a smaller area (or crop or scale the layer) "
        "and run the filter again, or restart the server with a larger --max-pixels.\n\n{msg}"
    ),
    "queue_full": "The server is busy with other images. Try again in a moment.\n\n{msg}",
    "unsupported_version": (
        "The plug-in and the server are different versions and cannot talk to each other. "
        "Install the plug-in from the same lineart-restore version as the server.\n\n{msg}"
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


def from_client_error(exc: BaseException, url: str, command: str = "") -> PluginError:
    """Translate a client error (anything with a ``code``) into artist-facing words; ``command``
    is the one that starts a server by hand (default: :func:`launcher.manual_command`)."""
    if isinstance(exc, PluginError):
        return exc
    code = str(getattr(exc, "code", None) or "client_error")
    message = getattr(exc, "message", None) or str(exc)
    if code in ("server_unavailable", "connection_lost"):
        text = server_down_message(url, command)
        if code == "connection_lost":
            text = "The connection to the restore server was lost (it may have stopped).\n\n" + text
        return PluginError("server_down", text, details=message)
    if code == "timeout":
        return PluginError("timeout", "The server took too long and the request was cancelled.", details=message)
    if code == "bad_url":
        return PluginError("bad_settings", f"The server address {url!r} is not valid.", details=message)
    if code == "handshake_refused":
        return PluginError(
            "server_error",
            f"Something answers at {url}, but it is not a lineart-restore server. Check the address and port.",
            details=message,
        )
    return PluginError(code, describe(code, message), details=message)


def offers(welcome: Any, option: str) -> bool:
    """Whether the server whose ``welcome`` this is takes the restore option ``option`` (its
    ``welcome.options`` maps option names to schemas; older servers lack newer names)."""
    options = getattr(welcome, "options", None) or {}
    return option in options


def check_offered(welcome: Any, ensemble: int, fix: str) -> None:
    """Refuse, before sending, several passes to a server without the self-ensemble.

    Raises:
        PluginError: ``no_ensemble``; ``fix`` says what to change in this editor's dialog.
    """
    if ensemble > 1 and not offers(welcome, "ensemble"):
        raise PluginError(
            "no_ensemble",
            f"This server restores in one pass only: it is older than the plug-in and has no self-ensemble. {fix}",
        )


def layer_notes(notes: list[str]) -> list[str]:
    """The server's notes for the layer, each once and stripped (the server only sends notes that
    apply to the layer it got, e.g. the alpha note only when some pixel was transparent)."""
    out: list[str] = []
    for note in notes:
        text = str(note).strip()
        if text and text not in out:
            out.append(text)
    return out
