"""The dialog's choices, remembered between runs.

:class:`Settings` is a plain dataclass. :class:`SettingsStore` saves it through any object with
``read(key, default) -> str`` and ``write(key, value: str)``; inside Krita that is
``Krita.instance().readSetting/writeSetting`` under the group :data:`GROUP` (see
``krita_editor.KritaSettingsBackend``), in tests a dict (:class:`MemoryBackend`).
Stored values that no longer parse (hand-edited kritarc, older versions) fall back to defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Protocol

__all__ = [
    "GROUP",
    "DEFAULT_PORT",
    "MASK_METHODS",
    "BACKGROUNDS",
    "ENSEMBLE_SIZES",
    "OPTIONS",
    "Settings",
    "SettingsBackend",
    "MemoryBackend",
    "SettingsStore",
    "normalize_server",
]


def _load_option_table():
    """The project's option table (``core/options.py``): the copy bundled in the installed plug-in,
    else the one the protocol of a source checkout reads (tests, development)."""
    try:
        from .vendor.lrclient import options  # type: ignore[import-not-found]
    except ImportError:
        from server.protocol import option_table as options  # type: ignore[import-not-found]
    return options


#: The restore options' names, values, defaults and labels (``core/options.py``).
OPTIONS = _load_option_table()

#: Section of kritarc the settings live in.
GROUP = "lineart_restore"
#: Port ``python -m server`` listens on by default.
DEFAULT_PORT = OPTIONS.DEFAULT_PORT
#: Mask methods offered when the server does not list its own: the learnt mask network, the direct
#: masks and "none" (baseline restoration without a mask).
MASK_METHODS = OPTIONS.MASK_METHODS
#: What the restored layer's background becomes.
BACKGROUNDS = OPTIONS.BACKGROUNDS
#: Self-ensemble sizes (passes over flipped and turned copies, averaged) a server may be asked
#: for; 1 is a plain run.
ENSEMBLE_SIZES = OPTIONS.ENSEMBLE_SIZES


def normalize_server(text: str) -> str:
    """Accept ``host``, ``host:port`` or ``ws://host:port[/path]`` and return a ``ws://`` URL.

    Raises:
        ValueError: empty text, a non-WebSocket scheme or a port that is not a number 1..65535.
    """
    t = text.strip()
    if not t:
        raise ValueError("the server address is empty")
    if "://" in t:
        scheme, rest = t.split("://", 1)
        if scheme.lower() not in ("ws", "wss"):
            raise ValueError(f"the server address must start with ws:// (got {scheme}://)")
        scheme = scheme.lower()
    else:
        scheme, rest = "ws", t
    hostport, slash, path = rest.partition("/")
    host, colon, port = hostport.rpartition(":")
    if not colon:
        host, port = hostport, str(DEFAULT_PORT)
    if not host:
        raise ValueError(f"the server address {text!r} has no host name")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"the server port must be a number from 1 to 65535, got {port!r}")
    return f"{scheme}://{host}:{int(port)}{slash}{path}"


@dataclass(frozen=True)
class Settings:
    """One run's options.

    Attributes:
        server: WebSocket URL of the restore server (``ws://127.0.0.1:8765``).
        model: model name to ask the server for; "" means the server's default.
        mask_method: one of :data:`MASK_METHODS` (or a name the server listed).
        threshold: snap near-white output pixels to white.
        theta: gray level 0..255 above which output pixels become white when ``threshold`` is on.
        background: "white" or "transparent" (the server makes the background transparent).
        add_mask_layer: also add a "<name> line mask" layer.
        ensemble: one of :data:`ENSEMBLE_SIZES`; more passes are slower and more exact.
        auto_start: start the server (``plugin_common.launcher``) when none answers at a local
            address, instead of only offering the Start server button.
        server_python: the Python that starts the server; "" means the one recorded by
            ``python -m krita_plugin.package`` (kritarc only, no dialog field).
    """

    server: str = f"ws://127.0.0.1:{DEFAULT_PORT}"
    model: str = ""
    mask_method: str = OPTIONS.BY_NAME["mask"].default
    threshold: bool = OPTIONS.BY_NAME["threshold"].default
    theta: int = OPTIONS.BY_NAME["theta"].default
    background: str = OPTIONS.BY_NAME["background"].default
    add_mask_layer: bool = False
    ensemble: int = OPTIONS.BY_NAME["ensemble"].default
    auto_start: bool = True
    server_python: str = ""

    def check(self) -> Settings:
        """Return a copy with ``server`` normalised; raise ``ValueError`` naming a bad field."""
        server = normalize_server(self.server)
        if not self.mask_method:
            raise ValueError("choose a mask method")
        if isinstance(self.theta, bool) or not isinstance(self.theta, int) or not 0 <= self.theta <= 255:
            raise ValueError(f"the threshold level must be a whole number from 0 to 255, got {self.theta!r}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        if isinstance(self.ensemble, bool) or self.ensemble not in ENSEMBLE_SIZES:
            raise ValueError(f"the number of passes must be one of {ENSEMBLE_SIZES}, got {self.ensemble!r}")
        return replace(self, server=server, threshold=bool(self.threshold))


class SettingsBackend(Protocol):
    def read(self, key: str, default: str) -> str: ...

    def write(self, key: str, value: str) -> None: ...


class MemoryBackend:
    """A dict-backed :class:`SettingsBackend` (tests, and a fallback outside Krita)."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values: dict[str, str] = dict(values or {})

    def read(self, key: str, default: str) -> str:
        return self.values.get(key, default)

    def write(self, key: str, value: str) -> None:
        self.values[key] = value


def _encode(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decode(text: str, default: object) -> object:
    if isinstance(default, bool):
        low = text.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError(text)
    if isinstance(default, int):
        return int(text.strip())
    return text


class SettingsStore:
    """Load and save :class:`Settings` field by field through a backend."""

    def __init__(self, backend: SettingsBackend, defaults: Settings | None = None) -> None:
        self.backend = backend
        self.defaults = defaults if defaults is not None else Settings()

    def load(self) -> Settings:
        """The saved settings; each missing or unparsable field takes its default."""
        defaults = self.defaults
        values = {}
        for f in fields(Settings):
            default = getattr(defaults, f.name)
            raw = self.backend.read(f.name, _encode(default))
            try:
                values[f.name] = _decode(raw, default)
            except ValueError:
                values[f.name] = default
        s = Settings(**values)
        try:
            return s.check()
        except ValueError:
            # Keep the fields that are fine, reset the ones that are not.
            good = {}
            for name, value in asdict(s).items():
                try:
                    replace(defaults, **{name: value}).check()
                    good[name] = value
                except ValueError:
                    pass
            return replace(defaults, **good).check()

    def save(self, settings: Settings) -> None:
        """Write every field (as text) to the backend."""
        for name, value in asdict(settings).items():
            self.backend.write(name, _encode(value))
