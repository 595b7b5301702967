"""One run of the plug-in: read the source drawable, restore it on the server, add new layers.

This module never imports GIMP. It talks to the editor through :class:`.editor.Editor` and to the
server through the project's reference client (``server/client.py``, bundled by the installer as
the package ``lrclient`` next to the entry file).

Errors: everything the user should read arrives as the shared :class:`PluginError`
(``plugin_common/errors.py``, one for both plug-ins) with a stable ``code`` (the client's, the
server's or the launcher's code when it came from there, else "no_drawable",
"unsuitable_drawable", "invalid_option", "missing_dependency", "bad_result") and a message that
says what to do. With ``settings.start_server`` a missing local server is started first
(``plugin_common.launcher``, with the Python recorded at install time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .common import PluginError, errors, launcher
from .editor import Editor, SourceInfo
from .formats import LAYOUTS, PixelLayout, from_wire_order, layout_of_wire, read_layout, to_wire_order
from .settings import Settings, SettingsError

__all__ = [
    "RESTORED_LAYER",
    "MASK_LAYER",
    "CLIENT_NAME",
    "PluginError",
    "Outcome",
    "load_client",
    "check_source",
    "run_restore",
]

#: Names of the layers the plug-in adds.
RESTORED_LAYER = "restored"
MASK_LAYER = "line mask"
#: How the server's log names this plug-in.
CLIENT_NAME = "gimp-plugin 0.1"

_LAYER_KINDS = ("layer", "text")

RestoreFn = Callable[..., Any]


@dataclass
class Outcome:
    """What a successful run did.

    Attributes:
        layers: names of the layers added, bottom to top.
        format: the protocol pixel format sent ("gray8", "rgba16", ...).
        qf_estimate: JPEG quality estimated by the server's model, if any.
        notes: remarks for the user (from the server and from the plug-in).
        timings: the server's seconds per stage.
    """

    layers: list[str] = field(default_factory=list)
    format: str = ""
    qf_estimate: float | None = None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def load_client() -> Any:
    """Import the reference client: the bundled ``lrclient.client`` inside an installed plug-in,
    else ``server.client`` from a lineart-restore checkout (tests, development).

    Raises:
        PluginError: code "missing_dependency" when neither imports (e.g. the plug-in folder was
            copied by hand without its bundled packages).
    """
    try:
        import lrclient.client as bundled  # type: ignore[import-not-found]

        return bundled
    except ImportError as e:
        first = f"lrclient.client: {e}"
    try:
        return errors.load_client()[0]
    except PluginError as e:
        raise PluginError(
            "missing_dependency",
            "the plug-in's bundled client (websockets, msgpack, protocol) cannot be imported: "
            f"{first}; {e.details}. Reinstall it with `python -m gimp_plugin.install`.",
        ) from None


#: What to change in this dialog when the server has no self-ensemble.
ENSEMBLE_FIX = "In this dialog: set Quality to Standard."


def client_restore(
    url: str,
    data: bytes,
    width: int,
    height: int,
    fmt: str,
    options: dict,
    on_progress=None,
    *,
    on_queued=None,
    timeout=None,
    name: str = "",
    token=None,
    source_file=None,
) -> Any:
    """One restore over a fresh connection with the reference client; several passes are
    refused before sending when the server's welcome does not list the option."""
    client = load_client()
    with client.Client(url, token=token, name=name) as c:
        errors.check_offered(c.welcome, int(options.get("ensemble", 1)), ENSEMBLE_FIX)
        return c.restore(
            data,
            width,
            height,
            fmt,
            options,
            on_progress=on_progress,
            on_queued=on_queued,
            timeout=timeout,
            source_file=source_file,
        )


def check_source(src: SourceInfo | None) -> PixelLayout:
    """Check that ``src`` can be restored and return the layout to read it in.

    Raises:
        PluginError: "no_drawable" (nothing or several selected) or "unsuitable_drawable"
            (a group, channel or mask, an indexed image, an empty layer).
    """
    if src is None:
        raise PluginError("no_drawable", "select exactly one layer to restore")
    if src.kind not in _LAYER_KINDS:
        what = {"group": "a layer group", "channel": "a channel", "layer_mask": "a layer mask"}.get(
            src.kind, f"a {src.kind}"
        )
        raise PluginError(
            "unsuitable_drawable",
            f"'{src.name}' is {what}; select a normal pixel layer (merge a group with "
            "Layer > Merge Down or Image > Flatten Image first)",
        )
    if src.width < 1 or src.height < 1:
        raise PluginError("unsuitable_drawable", f"'{src.name}' is empty ({src.width}x{src.height} pixels)")
    try:
        return read_layout(src.base, src.has_alpha, src.precision)
    except ValueError as e:
        raise PluginError("unsuitable_drawable", f"'{src.name}': {e}") from None


def _client_failure(exc: BaseException, settings: Settings) -> PluginError:
    url = settings.server
    return errors.from_client_error(exc, url, launcher.manual_command(url, launcher.LaunchConfig.load()))


def run_restore(
    editor: Editor,
    settings: Settings,
    restore: RestoreFn | None = None,
    *,
    timeout: float | None = None,
    token: str | None = None,
) -> Outcome:
    """Restore the editor's source drawable into new layers above it.

    Args:
        editor: the image being edited (see :class:`Editor` for the call sequence).
        settings: validated procedure arguments.
        restore: ``restore(url, data, width, height, fmt, options, on_progress, *, on_queued,
            timeout, name)`` returning a ``protocol.Result``; default: :func:`client_restore`.
        timeout: seconds to wait for the result (None: no limit).
        token: the server's ``--token``, when it was started with one.

    Returns:
        An :class:`Outcome`. The source drawable is only read. All new layers are added inside
        one undo group; if anything fails before the first layer is added, nothing changes.

    Raises:
        PluginError: with a stable ``code``; nothing else is expected.
    """
    if not isinstance(settings, Settings):
        raise TypeError("settings must be a Settings (build it with Settings.from_arguments)")
    src = editor.source()
    layout = check_source(src)
    assert src is not None
    start = False
    if restore is None:
        load_client()  # a missing bundle is reported before anything else happens
        restore = client_restore
        start = settings.start_server and launcher.is_local(settings.server)
    try:
        options = settings.options()
    except SettingsError as e:
        raise PluginError(e.code, str(e)) from None

    data = editor.read_pixels(layout)
    need = layout.size(src.width, src.height)
    if len(data) != need:
        raise PluginError(
            "bad_read",
            f"reading '{src.name}' as {layout.babl} gave {len(data)} bytes, expected {need}",
        )

    editor.progress_start(f"Restoring line art of '{src.name}'")
    try:
        if start:
            launcher.ensure_server(
                settings.server,
                launcher.LaunchConfig.load(),
                on_status=lambda text: editor.progress(0.0, text),
            )
            editor.progress(0.0, f"Restoring line art of '{src.name}'")

        def queued(position: int, depth: int) -> None:
            editor.progress(0.0, f"Waiting for the server ({position} job(s) ahead)...")

        def progress(fraction: float) -> None:
            editor.progress(
                max(0.0, min(1.0, float(fraction))), f"Restoring line art of '{src.name}'... {fraction:.0%}"
            )

        try:
            result = restore(
                settings.server,
                to_wire_order(data, layout),
                src.width,
                src.height,
                layout.wire,
                options,
                progress,
                on_queued=queued,
                timeout=timeout,
                name=CLIENT_NAME,
                **({"token": token} if token else {}),
                **({"source_file": src.file} if src.file else {}),
            )
        except PluginError:
            raise
        except Exception as e:  # the client's errors all carry a code; anything else is a bug
            if hasattr(e, "code"):
                raise _client_failure(e, settings) from None
            raise PluginError("client_error", f"restoring failed unexpectedly: {type(e).__name__}: {e}") from e
        res_layout = _check_result(result, src, layout)
        outcome = Outcome(
            format=layout.wire,
            qf_estimate=result.qf_estimate,
            notes=errors.layer_notes(list(result.notes)),
            timings=dict(result.timings),
        )
        editor.progress(1.0, "Adding layers")
        editor.begin_undo()
        try:
            editor.add_layer(RESTORED_LAYER, res_layout, from_wire_order(result.data, res_layout))
            outcome.layers.append(RESTORED_LAYER)
            if settings.mask_layer:
                if result.mask is not None:
                    editor.add_layer(MASK_LAYER, LAYOUTS["gray8"], bytes(result.mask), visible=False)
                    outcome.layers.append(MASK_LAYER)
                else:
                    outcome.notes.append(
                        f"the '{settings.mask}' mask method makes no line mask, so no mask layer was added"
                    )
            editor.select_layer(RESTORED_LAYER)  # never the hidden mask layer
        finally:
            editor.end_undo()
    finally:
        editor.progress_end()
    editor.flush()
    return outcome


def _check_result(result: Any, src: SourceInfo, sent: PixelLayout) -> PixelLayout:
    """The layout of the server's result, after checking it matches what was sent."""
    try:
        res_layout = layout_of_wire(str(result.format))
    except ValueError as e:
        raise PluginError("bad_result", str(e)) from None
    if (result.width, result.height) != (src.width, src.height):
        raise PluginError(
            "bad_result",
            f"the server returned {result.width}x{result.height} pixels for a {src.width}x{src.height} layer",
        )
    if res_layout.base != sent.base or res_layout.sample_bytes != sent.sample_bytes:
        raise PluginError("bad_result", f"the server answered {result.format} to a {sent.wire} request")
    if len(result.data) != res_layout.size(src.width, src.height):
        raise PluginError("bad_result", f"the server's {result.format} result has {len(result.data)} bytes")
    return res_layout
