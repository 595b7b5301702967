"""The procedure's arguments, described once for both GIMP registration and the job.

The GIMP entry file turns :data:`ARGUMENTS` into ``add_*_argument`` calls, so the interactive
dialog (``GimpUi.ProcedureDialog``) and a scripted, non-interactive call see the same names,
ranges and defaults. :class:`Settings` is what the job receives after validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .common import launcher

__all__ = [
    "ArgSpec",
    "ARGUMENTS",
    "DEFAULT_SERVER",
    "MASK_CHOICES",
    "BACKGROUND_CHOICES",
    "QUALITY_CHOICES",
    "QUALITY_PASSES",
    "OPTIONS",
    "SettingsError",
    "Settings",
    "normalize_server",
]


def _load_option_table():
    """The project's option table (``core/options.py``): the copy bundled in the installed plug-in
    (``lrclient/options.py``), else the one the protocol of a source checkout reads (tests)."""
    try:
        from lrclient import options  # type: ignore[import-not-found]
    except ImportError:
        from server.protocol import option_table as options  # type: ignore[import-not-found]
    return options


#: The restore options' names, values, defaults and labels (``core/options.py``).
OPTIONS = _load_option_table()
_MASK, _BACKGROUND, _ENSEMBLE = (OPTIONS.BY_NAME[n] for n in ("mask", "background", "ensemble"))

#: Where the server listens: the port ``python -m gimp_plugin.install --port`` recorded
#: (``launch.json``), else ``python -m server``'s default (``core/options.py``), on the loopback.
DEFAULT_SERVER = f"ws://127.0.0.1:{launcher.LaunchConfig.load().port}"

#: Mask methods offered (protocol ``MaskMethod`` values) with their labels in the dialog.
MASK_CHOICES: tuple[tuple[str, str], ...] = tuple(zip(_MASK.choices, _MASK.choice_labels))
#: Background choices (protocol ``Background`` values) with their labels.
BACKGROUND_CHOICES: tuple[tuple[str, str], ...] = tuple(zip(_BACKGROUND.choices, _BACKGROUND.choice_labels))

#: Passes for each quality nick: the server's self-ensemble (protocol ``Options.ensemble``), the
#: layer restored that many times, flipped and turned, and averaged.
QUALITY_PASSES = {("standard" if n == 1 else f"x{n}"): n for n in _ENSEMBLE.choices}
#: Quality choices with their labels.
QUALITY_CHOICES: tuple[tuple[str, str], ...] = tuple(
    (nick, _ENSEMBLE.label_of(n)) for nick, n in QUALITY_PASSES.items()
)


@dataclass(frozen=True)
class ArgSpec:
    """One procedure argument.

    Attributes:
        name: GIMP argument name (lower case and dashes, as GParamSpec names must be).
        kind: "string", "choice", "int" or "boolean".
        label: short text shown in the dialog; "_" marks the mnemonic (Alt+letter) GIMP wants;
            it must not clash with the dialog's buttons (C, H, L, O, R, S).
        blurb: one-sentence help text.
        default: default value (a choice's default is its nick).
        choices: for "choice": (nick, label) pairs; nicks are the protocol's values.
        minimum, maximum: for "int": inclusive range.
    """

    name: str
    kind: str
    label: str
    blurb: str
    default: Any
    choices: tuple[tuple[str, str], ...] = ()
    minimum: int = 0
    maximum: int = 0


ARGUMENTS: tuple[ArgSpec, ...] = (
    ArgSpec(
        "server",
        "string",
        "Server a_ddress",
        "WebSocket address of the lineart-restore server (the plug-in starts it here when needed)",
        DEFAULT_SERVER,
    ),
    ArgSpec(
        "mask-method",
        "choice",
        "Line _mask",
        "How the line mask given to the restoration network is made",
        _MASK.default,
        MASK_CHOICES,
    ),
    ArgSpec(
        "threshold",
        "int",
        "_White threshold",
        "Restored gray levels above this value (0-255 scale) become pure white; 255 turns it off",
        OPTIONS.DEFAULT_THETA,
        minimum=0,
        maximum=255,
    ),
    ArgSpec(
        "background",
        "choice",
        "_Background",
        "What non-line pixels become in the restored layer",
        _BACKGROUND.default,
        BACKGROUND_CHOICES,
    ),
    ArgSpec(
        "mask-layer",
        "boolean",
        "_Add line mask layer",
        "Also add the line mask (white lines on black) as a hidden layer",
        False,
    ),
    ArgSpec(
        "quality",
        "choice",
        "_Quality",
        "More passes restore flipped and turned copies and average them: a little more exact, "
        "up to that many times slower",
        "standard",
        QUALITY_CHOICES,
    ),
    ArgSpec(
        "start-server",
        "boolean",
        "Start the server if it is _not running",
        "When nothing answers at a local address, start the lineart-restore server (with the Python "
        "recorded by python -m gimp_plugin.install; its log is in the user's state folder)",
        True,
    ),
)


class SettingsError(ValueError):
    """An argument value is unusable; ``code`` is "invalid_option" like the engine's."""

    code = "invalid_option"


def normalize_server(text: str) -> str:
    """Turn what a user typed into a ``ws://`` or ``wss://`` URL.

    Accepts "ws://host:port[/path]", "wss://...", "host:port", "host" (port 8765), and
    "http(s)://" (mapped to ws(s)://). Surrounding spaces are ignored.

    Raises:
        SettingsError: empty text, another scheme, no host, or a bad port.
    """
    raw = (text or "").strip()
    if not raw:
        raise SettingsError(f"the server address is empty; the default is {DEFAULT_SERVER}")
    url = raw if "://" in raw else "ws://" + raw
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in ("ws", "wss"):
        raise SettingsError(f"server address {raw!r}: use ws://host:port (got scheme {parts.scheme!r})")
    try:
        port = parts.port
    except ValueError:
        raise SettingsError(f"server address {raw!r} has an invalid port") from None
    host = parts.hostname
    if not host:
        raise SettingsError(f"server address {raw!r} names no host")
    if port is None:
        port = OPTIONS.DEFAULT_PORT if scheme == "ws" else 443
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{parts.path}"


@dataclass(frozen=True)
class Settings:
    """Validated arguments of one run.

    Attributes:
        server: ``ws://host:port`` URL (see :func:`normalize_server`).
        mask: a :data:`MASK_CHOICES` nick.
        threshold: 0..255; 255 disables the near-white snap.
        background: "white" or "transparent".
        mask_layer: add the line mask as a layer (asks the server to return it).
        quality: a :data:`QUALITY_CHOICES` nick.
        start_server: start a local server when none answers (``plugin_common.launcher``).
    """

    server: str = DEFAULT_SERVER
    mask: str = _MASK.default
    threshold: int = OPTIONS.DEFAULT_THETA
    background: str = _BACKGROUND.default
    mask_layer: bool = False
    quality: str = "standard"
    start_server: bool = True

    @classmethod
    def from_arguments(cls, values: Mapping[str, Any]) -> Settings:
        """Build from ``{argument name: value}`` (names as in :data:`ARGUMENTS`; missing ones take
        their default) and validate.

        Raises:
            SettingsError: unknown argument name, or a value out of range / not a choice.
        """
        specs = {a.name: a for a in ARGUMENTS}
        unknown = sorted(set(values) - set(specs))
        if unknown:
            raise SettingsError(f"unknown argument(s) {', '.join(unknown)}; known: {', '.join(specs)}")
        v = {name: values.get(name, spec.default) for name, spec in specs.items()}
        for name, spec in specs.items():
            if spec.kind == "choice" and v[name] not in {nick for nick, _ in spec.choices}:
                nicks = ", ".join(nick for nick, _ in spec.choices)
                raise SettingsError(f"{name} must be one of {nicks}, got {v[name]!r}")
            if spec.kind == "int":
                if isinstance(v[name], bool) or not isinstance(v[name], int):
                    raise SettingsError(f"{name} must be an integer, got {v[name]!r}")
                if not spec.minimum <= v[name] <= spec.maximum:
                    raise SettingsError(f"{name} must be in {spec.minimum}..{spec.maximum}, got {v[name]}")
        return cls(
            server=normalize_server(str(v["server"])),
            mask=v["mask-method"],
            threshold=int(v["threshold"]),
            background=v["background"],
            mask_layer=bool(v["mask-layer"]),
            quality=v["quality"],
            start_server=bool(v["start-server"]),
        )

    def options(self) -> dict[str, Any]:
        """The protocol ``Options`` fields for this run (a dict, ready for ``Options(**...)``).
        ``ensemble`` is left out for a one-pass run (the protocol does not send defaults anyway, so
        a server older than the option restores it)."""
        options: dict[str, Any] = {
            "mask": self.mask,
            "threshold": self.threshold < 255,
            "theta": self.threshold,
            "background": self.background,
            "return_mask": self.mask_layer,
        }
        if QUALITY_PASSES[self.quality] > 1:
            options["ensemble"] = QUALITY_PASSES[self.quality]
        return options
