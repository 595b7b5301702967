"""The wire protocol between the restoration server and its clients (plug-ins, scripts, tests).

This module is *sans-I/O*: it turns messages into bytes and bytes into messages and checks them, and
nothing else. It imports only the standard library and ``msgpack`` (no torch, numpy or websockets),
and reads the option table ``core/options.py`` (standard library only) by path, so the Krita and GIMP
plug-ins copy both verbatim into their own vendored package. Keep it that way.

Transport
    One WebSocket connection per client; every WebSocket message is one *binary* frame holding one
    msgpack map. Pixels travel as raw msgpack ``bin`` bytes (never base64). The full description, with
    an example exchange, is in ``docs/protocol.md``.

Messages (``type`` tag -> class; every map also carries ``"v": PROTOCOL_VERSION``)::

    client -> server   "hello"     Hello      first message on a connection
                       "restore"   Restore    one image to restore, tagged with a client-chosen id
                       "cancel"    Cancel     drop a queued or running request by id
    server -> client   "welcome"   Welcome    reply to hello: versions, device, models, options, limits
                       "queued"    Queued     a request's place in the queue (sent when it changes)
                       "progress"  Progress   fraction of a request done (per tile and ensemble pass)
                       "result"    Result     restored pixels (same size and format family as sent)
                       "error"     Error      a stable ``code`` and a human message, maybe for one id

Errors raised here::

    ProtocolError (ValueError)   code: one of ErrorCode's values ("bad_message", "invalid_image",
                                 "invalid_option", "unsupported_version", ...); ``request_id`` holds
                                 the id of the restore/cancel message when it could be read.

Calling contract: ``encode(message) -> bytes`` checks the message first (so a sender cannot put a
malformed message on the wire) and leaves out every field that holds its default; ``decode(data) ->
Message`` parses with size limits, fills left-out fields with their defaults, rejects unknown types,
unknown or missing required fields and wrong value types, then runs the message's ``check()``.
Leaving defaults out keeps a newer client working with an older server as long as it sets none of
the options the server lacks (:func:`non_default_options` lists what a request sets).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import importlib.util
import math
import struct
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Union

import msgpack

__all__ = [
    "PROTOCOL_VERSION",
    "DEFAULT_PORT",
    "MAX_ID_LENGTH",
    "MAX_FRAGMENT_BYTES",
    "HEADER_BYTES",
    "STALL_TIMEOUT",
    "ENSEMBLE_SIZES",
    "option_table",
    "PixelFormat",
    "FormatInfo",
    "FORMAT_INFO",
    "RAW_FORMATS",
    "MaskMethod",
    "Background",
    "ErrorCode",
    "ProtocolError",
    "Options",
    "Limits",
    "Message",
    "Hello",
    "Welcome",
    "Restore",
    "Cancel",
    "Queued",
    "Progress",
    "Result",
    "Error",
    "MESSAGE_TYPES",
    "expected_size",
    "with_alpha",
    "options_schema",
    "parse_options",
    "non_default_options",
    "encode",
    "decode",
    "peek",
    "fragments",
    "Cut",
]

#: Module name the option table is loaded under (see :func:`_load_option_table`).
_TABLE_MODULE = "_lineart_restore_options"


def _load_option_table() -> types.ModuleType:
    """``core/options.py``, the one table of restore options (names, values, defaults, labels).

    The plug-ins bundle it as ``options.py`` beside this file; in the source tree it is
    ``core/options.py``. It is loaded by path because importing the ``core`` package would bring
    numpy and OpenCV, which this module must not need.
    """
    if _TABLE_MODULE in sys.modules:
        return sys.modules[_TABLE_MODULE]
    here = Path(__file__).resolve().parent
    for path in (here / "options.py", here.parent / "core" / "options.py"):
        if path.is_file():
            spec = importlib.util.spec_from_file_location(_TABLE_MODULE, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[_TABLE_MODULE] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[_TABLE_MODULE]
                raise
            return module
    raise ImportError(f"the option table options.py is missing beside {Path(__file__).name} (re-install the plug-in)")


#: The restore options' table (``core/options.py``): :class:`Options`' defaults, checks and
#: schema, and the plug-in dialogs' choices and labels, come from it.
option_table = _load_option_table()

#: Bumped on any incompatible change of a message's fields or meaning.
PROTOCOL_VERSION = 1
#: The port ``python -m server`` listens on unless told otherwise.
DEFAULT_PORT = option_table.DEFAULT_PORT
#: Longest accepted request id (characters).
MAX_ID_LENGTH = 64
#: Largest WebSocket frame the server takes by default. A longer message must come as fragments
#: (RFC 6455 continuation frames; :func:`fragments`), so the server can read a request's header
#: from its first fragment and refuse it before the rest arrives. The server reports its own value
#: as ``max_fragment_bytes`` in ``Welcome.info["limits"]``.
MAX_FRAGMENT_BYTES = 8 * 2**20
#: A message sent in fragments must have its ``type``, ``v``, ``id``, ``width``, ``height`` and
#: ``format`` (and a PNG's header) within its first this many bytes.
HEADER_BYTES = 64 * 2**10
#: Seconds the server waits for the next fragment of a message before it closes the connection
#: (close code 1008) and drops the message (its ``stall_timeout`` in ``Welcome.info["limits"]``).
STALL_TIMEOUT = 30.0
_MAX_TEXT = 4096  # longest free-text field (messages, notes, client names)
_MAX_NAME = 128  # longest model name
#: Self-ensemble sizes a restore request may ask for (``Options.ensemble``).
ENSEMBLE_SIZES = option_table.ENSEMBLE_SIZES


class _StrEnum(str, enum.Enum):
    """A string enum whose ``str()`` is its wire value (Python 3.10 has no ``enum.StrEnum``)."""

    def __str__(self) -> str:
        return self.value


class PixelFormat(_StrEnum):
    """Layout of the pixel bytes of a restore request or result.

    Raw formats are row-major, top row first, channels interleaved, no padding between rows.
    16-bit samples are little-endian unsigned. White is 255 (8-bit) or 65535 (16-bit); alpha 0 is
    transparent. ``bgra*`` is Krita's native order for RGBA layers. ``png`` carries a whole PNG file
    instead (``width``/``height`` must match its header).
    """

    GRAY8 = "gray8"
    GRAY16 = "gray16"
    GRAYA8 = "graya8"
    GRAYA16 = "graya16"
    RGB8 = "rgb8"
    RGB16 = "rgb16"
    RGBA8 = "rgba8"
    RGBA16 = "rgba16"
    BGRA8 = "bgra8"
    BGRA16 = "bgra16"
    PNG = "png"


@dataclass(frozen=True)
class FormatInfo:
    """Channels, bytes per sample and channel order of a raw pixel format."""

    channels: int
    sample_bytes: int
    alpha: bool
    order: str  # "gray", "graya", "rgb", "rgba" or "bgra"

    @property
    def pixel_bytes(self) -> int:
        return self.channels * self.sample_bytes


FORMAT_INFO: dict[PixelFormat, FormatInfo] = {
    PixelFormat.GRAY8: FormatInfo(1, 1, False, "gray"),
    PixelFormat.GRAY16: FormatInfo(1, 2, False, "gray"),
    PixelFormat.GRAYA8: FormatInfo(2, 1, True, "graya"),
    PixelFormat.GRAYA16: FormatInfo(2, 2, True, "graya"),
    PixelFormat.RGB8: FormatInfo(3, 1, False, "rgb"),
    PixelFormat.RGB16: FormatInfo(3, 2, False, "rgb"),
    PixelFormat.RGBA8: FormatInfo(4, 1, True, "rgba"),
    PixelFormat.RGBA16: FormatInfo(4, 2, True, "rgba"),
    PixelFormat.BGRA8: FormatInfo(4, 1, True, "bgra"),
    PixelFormat.BGRA16: FormatInfo(4, 2, True, "bgra"),
}
#: Every format whose payload is raw samples (all but ``png``).
RAW_FORMATS = frozenset(FORMAT_INFO)

_ADD_ALPHA = {
    PixelFormat.GRAY8: PixelFormat.GRAYA8,
    PixelFormat.GRAY16: PixelFormat.GRAYA16,
    PixelFormat.RGB8: PixelFormat.RGBA8,
    PixelFormat.RGB16: PixelFormat.RGBA16,
}


def expected_size(fmt: PixelFormat | str, width: int, height: int) -> int | None:
    """Exact byte count of a raw ``fmt`` image of ``width x height`` pixels (None for ``png``)."""
    fmt = PixelFormat(fmt)
    if fmt is PixelFormat.PNG:
        return None
    return width * height * FORMAT_INFO[fmt].pixel_bytes


def with_alpha(fmt: PixelFormat | str) -> PixelFormat:
    """The format a result takes with a transparent background: alpha is added when missing
    (gray8 -> graya8, rgb16 -> rgba16); formats with alpha, and png, are unchanged."""
    fmt = PixelFormat(fmt)
    return _ADD_ALPHA.get(fmt, fmt)


MaskMethod = _StrEnum("MaskMethod", [(m.upper(), m) for m in option_table.MASK_METHODS])
MaskMethod.__doc__ = """How the line mask fed to the restoration network is made (``none``: plain baseline network).
Members: LEARNT, OTSU, OTSU_D, AGT, NONE (``core.options.MASK_METHODS``)."""

Background = _StrEnum("Background", [(b.upper(), b) for b in option_table.BACKGROUNDS])
Background.__doc__ = """What non-line pixels become: white, or transparent (the result gains an alpha channel).
Members: WHITE, TRANSPARENT (``core.options.BACKGROUNDS``)."""


class ErrorCode(_StrEnum):
    """Stable error codes of ``Error`` messages. The engine's codes mirror ``core.errors``.

    Clients must accept codes they do not know (a newer server may add some) and treat them as a
    generic failure of the request.
    """

    # engine (core.errors)
    RESTORE_ERROR = "restore_error"
    INVALID_IMAGE = "invalid_image"
    INVALID_OPTION = "invalid_option"
    BAD_WEIGHTS = "bad_weights"
    UNSUPPORTED_MODEL = "unsupported_model"
    OUT_OF_MEMORY = "out_of_memory"
    CANCELLED = "cancelled"
    # protocol and server
    BAD_MESSAGE = "bad_message"  # not msgpack, not a map, unknown type, wrong field types...
    UNSUPPORTED_VERSION = "unsupported_version"  # the peer speaks another protocol version
    NOT_READY = "not_ready"  # a request before the hello/welcome exchange
    DUPLICATE_ID = "duplicate_id"  # the client already has a live request with this id
    TOO_LARGE = "too_large"  # message bigger than max_message_bytes or image over max_pixels
    QUEUE_FULL = "queue_full"  # the client (or the server) has too many jobs queued
    UNAUTHORIZED = "unauthorized"  # missing or wrong token (HTTP 401 during the handshake)
    TOO_MANY_CONNECTIONS = "too_many_connections"  # the server's connection cap (HTTP 503, handshake)
    FORBIDDEN_ORIGIN = "forbidden_origin"  # a browser Origin not allowed (HTTP 403)
    SHUTTING_DOWN = "shutting_down"  # the server is stopping; the request was dropped
    INTERNAL_ERROR = "internal_error"  # a bug in the server; the message says what to report


class ProtocolError(ValueError):
    """A message could not be encoded or decoded, or broke a rule of the protocol.

    Attributes:
        code: an :class:`ErrorCode` value (a ``str``), stable across versions.
        message: what was wrong, for people.
        request_id: id of the restore/cancel message concerned, when it could be read, else None.
    """

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


# --------------------------------------------------------------------------------------------------
# Message bodies


def _default(name: str) -> Any:
    return option_table.BY_NAME[name].default


@dataclass(frozen=True)
class Options:
    """Restoration options of a ``restore`` request; every field has a default, so ``{}`` is valid.

    Field names and meanings match ``core.pipeline.RestoreOptions`` (the server passes them on);
    defaults, values and ranges come from the option table (:data:`option_table`).

    Attributes:
        mask: how the line mask is made (see :class:`MaskMethod`).
        threshold: snap near-white output pixels to white (theta below).
        theta: gray level 0..255 above which output pixels become white when ``threshold`` is on.
        qf: JPEG quality hint 1..100 for models that take one; None lets the model estimate it.
        background: ``white`` or ``transparent`` (see :func:`with_alpha`).
        return_mask: send the line mask back with the result.
        model: name of a restoration model listed in ``Welcome.models``; None = the server default.
        jpeg_consistency: make the result consistent with the JPEG the layer was decoded from,
            when its pixels show one (standard tables); otherwise it has no effect.
        jpeg_table: the luminance quantization table of the JPEG file the layer was opened from
            (64 steps 1..65535 in natural row-major order, as ``server.jpegfile`` reads it), or
            nil. With it the consistency step serves files of any encoder; the server still
            checks that it reproduces the pixels and goes without it when it does not.
        normalize_ink: restore a drawing in flat light ink at full contrast and scale it back
            (``core.ink``); layers with darker lines, or grainy ones, are left as they are.
        enlarged: restore a layer that looks like a JPEG enlarged after its save at the JPEG's own
            size and scale it back (``core.resample``); on by default.
        wild_network: restore a gray 8-bit layer resized after its JPEG save (its JPEG noise no
            longer on an 8-pixel grid) with the backbone trained on such layers, and a coloured 8-bit
            layer resized after its save (or with no JPEG grid at all) with the colour backbone
            trained on resized JPEGs too, where the server has them (docs/wild.md); on by default.
        ensemble: self-ensemble size, one of :data:`ENSEMBLE_SIZES`: the networks run on that many
            flips and turns of the layer and are averaged (1 = off); up to that many times slower.
    """

    mask: MaskMethod = MaskMethod(_default("mask"))
    threshold: bool = _default("threshold")
    theta: int = _default("theta")
    qf: int | None = _default("qf")
    background: Background = Background(_default("background"))
    return_mask: bool = _default("return_mask")
    model: str | None = _default("model")
    jpeg_consistency: bool = _default("jpeg_consistency")
    jpeg_table: list[int] | None = _default("jpeg_table")
    normalize_ink: bool = _default("normalize_ink")
    enlarged: bool = _default("enlarged")
    wild_network: bool = _default("wild_network")
    ensemble: int = _default("ensemble")

    def check(self) -> None:
        # Types are already checked by decode(); values against the option table.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            value = value.value if isinstance(value, enum.Enum) else value
            problem = option_table.problem(f.name, value)
            if problem is not None:
                raise ProtocolError(ErrorCode.INVALID_OPTION, problem)
        if self.model is not None and not 0 < len(self.model) <= _MAX_NAME:
            raise ProtocolError(ErrorCode.INVALID_OPTION, f"model must be a name of 1..{_MAX_NAME} characters or nil")


@dataclass(frozen=True)
class Limits:
    """Limits the server enforces before it allocates anything for a request.

    Always sent complete in ``Welcome.limits`` (even at the defaults). Newer limits (connections,
    the queue budget) travel in ``Welcome.info["limits"]`` instead: a version-1 peer refuses
    unknown fields here.

    Attributes:
        max_message_bytes: largest WebSocket message accepted (a bigger one closes the connection
            with close code 1009, "message too big").
        max_pixels: largest ``width * height`` of a restore request.
        max_jobs_per_client: queued plus running requests one connection may have.
        max_queue: queued plus running requests over all connections.
    """

    max_message_bytes: int = 256 * 2**20 + 2**16
    max_pixels: int = 8192 * 8192
    max_jobs_per_client: int = 4
    max_queue: int = 64

    def check(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) < 1:
                raise ProtocolError(ErrorCode.BAD_MESSAGE, f"limit {f.name} must be at least 1")


class Message:
    """Base of every message: subclasses are frozen dataclasses with a ``TYPE`` tag."""

    TYPE: ClassVar[str] = ""

    def check(self) -> None:
        """Raise :class:`ProtocolError` when a field holds a value the protocol forbids."""


def _check_id(request_id: str) -> None:
    if not 0 < len(request_id) <= MAX_ID_LENGTH:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE,
            f"request id must have 1..{MAX_ID_LENGTH} characters, got {len(request_id)}",
        )


def _check_text(name: str, text: str, limit: int = _MAX_TEXT) -> None:
    if len(text) > limit:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{name} is longer than {limit} characters")


def _check_pixels(fmt: PixelFormat, width: int, height: int, data: bytes, request_id: str | None, what: str) -> None:
    if width < 1 or height < 1:
        raise ProtocolError(
            ErrorCode.INVALID_IMAGE, f"{what} is {width}x{height} pixels; both sides must be >= 1", request_id
        )
    need = expected_size(fmt, width, height)
    if need is None:
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ProtocolError(ErrorCode.INVALID_IMAGE, f"{what} data is not a PNG file", request_id)
    elif len(data) != need:
        info = FORMAT_INFO[fmt]
        raise ProtocolError(
            ErrorCode.INVALID_IMAGE,
            f"{what} has {len(data)} bytes but {width}x{height} {fmt} needs {need} "
            f"({info.channels} channel(s) x {info.sample_bytes} byte(s) per pixel)",
            request_id,
        )


@dataclass(frozen=True)
class Hello(Message):
    """First client message. ``client`` names the client for the server's log (e.g. "krita 0.1")."""

    TYPE: ClassVar[str] = "hello"
    client: str = ""

    def check(self) -> None:
        _check_text("client", self.client, _MAX_NAME)


@dataclass(frozen=True)
class Welcome(Message):
    """Server reply to ``hello``.

    Attributes:
        server_version: version of the lineart-restore package serving.
        device: where inference runs, e.g. "cpu" or "cuda:0 (NVIDIA H100)".
        models: names accepted by ``Options.model`` (the first is the default).
        formats: pixel formats accepted (values of :class:`PixelFormat`).
        options: per option, a map with "type", "default" and, for fixed sets, "choices"
            (see :func:`options_schema`); choices may be narrower than the enums here when a
            model is missing (e.g. no "learnt" mask without a mask network).
        limits: what the server enforces (see :class:`Limits`).
        info: free-form description of the loaded models (names, architectures, modes).
    """

    TYPE: ClassVar[str] = "welcome"
    server_version: str
    device: str
    models: list[str]
    formats: list[str]
    options: dict[str, Any]
    limits: Limits
    info: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        _check_text("server_version", self.server_version, _MAX_NAME)
        _check_text("device", self.device, _MAX_TEXT)
        self.limits.check()


@dataclass(frozen=True)
class Restore(Message):
    """Restore one image.

    Attributes:
        id: chosen by the client, unique among its live requests (1..64 characters); every
            ``queued``/``progress``/``result``/``error`` about this request carries it.
        width, height: image size in pixels.
        format: layout of ``data`` (see :class:`PixelFormat`).
        data: ``width * height * channels * bytes_per_sample`` raw bytes, or a PNG file.
        options: see :class:`Options`.
    """

    TYPE: ClassVar[str] = "restore"
    id: str
    width: int
    height: int
    format: PixelFormat
    data: bytes
    options: Options = field(default_factory=Options)

    def check(self) -> None:
        _check_id(self.id)
        _check_pixels(self.format, self.width, self.height, self.data, self.id, "image")
        try:
            self.options.check()
        except ProtocolError as e:
            raise ProtocolError(e.code, e.message, self.id) from None


@dataclass(frozen=True)
class Cancel(Message):
    """Cancel request ``id``: dropped if queued, stopped at the next tile if running. The server
    answers with an ``error`` of code ``cancelled`` (or the ``result``, if it finished first).
    Cancelling an unknown or finished id does nothing."""

    TYPE: ClassVar[str] = "cancel"
    id: str

    def check(self) -> None:
        _check_id(self.id)


@dataclass(frozen=True)
class Queued(Message):
    """Request ``id`` waits: ``position`` requests (of any client, the running one included) will
    run before it; ``depth`` requests are queued or running in the server in all."""

    TYPE: ClassVar[str] = "queued"
    id: str
    position: int
    depth: int

    def check(self) -> None:
        _check_id(self.id)
        if self.position < 0 or self.depth < 1 or self.position >= self.depth:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, f"queued: need 0 <= position < depth, got {self.position}, {self.depth}"
            )


@dataclass(frozen=True)
class Progress(Message):
    """Request ``id`` is running and ``fraction`` (0..1) of its work is done (it moves on per tile
    and per self-ensemble pass)."""

    TYPE: ClassVar[str] = "progress"
    id: str
    fraction: float

    def check(self) -> None:
        _check_id(self.id)
        if not 0.0 <= self.fraction <= 1.0:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"progress fraction must be in 0..1, got {self.fraction}")


@dataclass(frozen=True)
class Result(Message):
    """The restored image of request ``id``.

    Attributes:
        width, height: same as the request.
        format: the request's format, or :func:`with_alpha` of it with a transparent background
            (a PNG request gets a PNG back).
        data: the restored pixels in ``format``.
        mask: the line mask as gray8 bytes (``width * height``, 255 on lines, 0 elsewhere), or nil
            when not asked for or when the method makes none.
        qf_estimate: the JPEG quality the model estimated, or nil.
        timings: seconds spent per stage (keys such as "queue", "decode", "restore", "encode").
        notes: remarks for people (e.g. "colour input restored on luminance").
    """

    TYPE: ClassVar[str] = "result"
    id: str
    width: int
    height: int
    format: PixelFormat
    data: bytes
    mask: bytes | None = None
    qf_estimate: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def check(self) -> None:
        _check_id(self.id)
        _check_pixels(self.format, self.width, self.height, self.data, self.id, "result")
        if self.mask is not None and len(self.mask) != self.width * self.height:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                f"result mask has {len(self.mask)} bytes, expected {self.width * self.height} (gray8)",
                self.id,
            )
        for note in self.notes:
            _check_text("note", note)


@dataclass(frozen=True)
class Error(Message):
    """A failure: of request ``id``, or of the connection when ``id`` is nil.

    ``code`` is a stable string (see :class:`ErrorCode`; unknown codes are allowed so that newer
    servers can add some); ``message`` is for people and may change at any time.
    """

    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    id: str | None = None

    def check(self) -> None:
        if not 0 < len(self.code) <= 64:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "error code must have 1..64 characters")
        _check_text("message", self.message)
        if self.id is not None:
            _check_id(self.id)


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls for cls in (Hello, Welcome, Restore, Cancel, Queued, Progress, Result, Error)
}


def options_schema(
    masks: typing.Iterable[str] | None = None, models: typing.Iterable[str] | None = None
) -> dict[str, Any]:
    """Describe :class:`Options` for ``Welcome.options``: per field its type, default and choices.

    Args:
        masks: mask methods the server can run (default: all of :class:`MaskMethod`).
        models: model names the server accepts in ``Options.model`` (default: any name).
    """
    schema: dict[str, Any] = {}
    for f in dataclasses.fields(Options):
        opt = option_table.BY_NAME[f.name]
        kind = {"path": "str", "table": "list[int]"}.get(opt.type, opt.type)
        entry: dict[str, Any] = {"type": kind + ("|nil" if opt.nullable else ""), "default": opt.default}
        if opt.type == "table":
            entry.update(length=64, min=1, max=65535)
        if opt.choices:
            entry["choices"] = list(opt.choices)
        elif opt.type == "int":
            entry.update({k: v for k, v in (("min", opt.minimum), ("max", opt.maximum)) if v is not None})
        schema[f.name] = entry
    if masks is not None:
        schema["mask"]["choices"] = [str(m) for m in masks]
    if models is not None:
        schema["model"]["choices"] = [str(m) for m in models]
    return schema


# --------------------------------------------------------------------------------------------------
# Encoding and decoding

_MAX_PLAIN_DEPTH = 8
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls, vars(sys.modules[__name__]))
        hints = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
        _HINTS[cls] = hints
    return hints


def _show(value: Any, limit: int = 40) -> str:
    """A value a peer sent, for an error message: a string quoted, escaped and cut short; a
    number or bool as such; anything else by its msgpack kind (never a Python repr)."""
    if isinstance(value, str):
        text = value[:limit]
        if not text.isprintable():
            text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
        return f'"{text}"' + ("..." if len(value) > limit else "")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)[:limit]
    if value is None:
        return "nil"
    return {bytes: "binary bytes", list: "a list", dict: "a map"}.get(type(value), "a value of another kind")


def _kind(value: Any) -> str:
    """The msgpack kind of ``value`` in words ("a string", "a boolean")."""
    for tp, name in (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (bytes, "binary bytes"),
        (list, "a list"),
        (dict, "a map"),
    ):
        if isinstance(value, tp):
            return name
    return "nil" if value is None else "a value of another kind"


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "nil"
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return "one of " + ", ".join(f'"{m.value}"' for m in tp)
        return {
            "str": "a string",
            "int": "an integer",
            "float": "a number",
            "bool": "a boolean",
            "bytes": "binary bytes",
        }.get(tp.__name__, tp.__name__)
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        return "a list of " + {int: "integers", str: "strings"}.get(item, _type_name(item))
    return str(tp).replace("typing.", "")


def _plain(value: Any, path: str, depth: int = 0) -> Any:
    """Check that ``value`` is plain data (nil, bool, int, float, str, bytes, list, str-keyed map)."""
    if depth > _MAX_PLAIN_DEPTH:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{path} is nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{path} has a non-string key")
            out[k] = _plain(v, f"{path}.{k}", depth + 1)
        return out
    raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{path} holds a {type(value).__name__}, not plain data")


def _convert(value: Any, tp: Any, path: str, code: str) -> Any:
    """Turn a decoded msgpack value into the Python value of type ``tp``, or raise ProtocolError."""
    origin = typing.get_origin(tp)
    if origin is Union or origin is getattr(types, "UnionType", None):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            with contextlib.suppress(ProtocolError):
                return _convert(value, arg, path, code)
        raise ProtocolError(code, f"{path} must be {' or '.join(_type_name(a) for a in args)}")
    if tp is Any:
        return _plain(value, path)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ProtocolError(code, f"{path} must be a list")
        return [_convert(v, item, f"{path}[{i}]", code) for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ProtocolError(code, f"{path} must be a map")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ProtocolError(code, f"{path} keys must be strings")
            out[k] = _convert(v, item, f"{path}.{k}", code)
        return out
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except (ValueError, TypeError):
            raise ProtocolError(code, f"{path} must be {_type_name(tp)}, got {_show(value)}") from None
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ProtocolError(code, f"{path} must be a map")
        sub_code = ErrorCode.INVALID_OPTION if tp is Options else code
        return _build(tp, value, path, sub_code)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return value if isinstance(value, bytes) else bytes(value)
    else:  # pragma: no cover - a type used in a message class but not handled here
        raise TypeError(f"protocol: unsupported field type {tp!r}")
    raise ProtocolError(code, f"{path} must be {_type_name(tp)}, got {_kind(value)}")


def _build(cls: type, raw: dict, path: str, code: str) -> Any:
    hints = _hints(cls)
    unknown = sorted(str(k) for k in raw if k not in hints)
    if unknown:
        what = "option" if cls is Options else "field"
        shown = ", ".join(_show(k) for k in unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
        raise ProtocolError(code, f"{path}: unknown {what}(s) {shown} (known: {', '.join(hints)})")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            kwargs[f.name] = _convert(raw[f.name], hints[f.name], f"{path}.{f.name}", code)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ProtocolError(code, f'{path}: missing field "{f.name}"')
    obj = cls(**kwargs)
    obj.check()
    return obj


def parse_options(options: Options | typing.Mapping[str, Any] | None) -> Options:
    """Build checked :class:`Options` from a mapping of option names (None or ``{}``: defaults).

    Raises:
        ProtocolError: ``invalid_option`` for an unknown name or a bad value.
        TypeError: ``options`` is neither Options, a mapping nor None.
    """
    if options is None:
        return Options()
    if isinstance(options, Options):
        options.check()
        return options
    if not isinstance(options, typing.Mapping):
        raise TypeError(f"options must be Options or a mapping, got {type(options).__name__}")
    return _build(Options, dict(options), "options", ErrorCode.INVALID_OPTION)


def _at_default(f: dataclasses.Field, value: Any) -> bool:
    """Whether ``value`` is field ``f``'s default (of the same type: ``1`` is not ``True``)."""
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return False
    return type(value) is type(default) and value == default


def non_default_options(options: Options) -> dict[str, Any]:
    """The options of ``options`` that differ from their defaults, as they travel on the wire.

    Only these are sent (a missing option means its default), so a request that leaves the
    options newer than a server at their defaults is understood by that server too.
    """
    return {
        f.name: _to_wire(getattr(options, f.name))
        for f in dataclasses.fields(Options)
        if not _at_default(f, getattr(options, f.name))
    }


def _to_wire(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Limits):  # always complete, so that a client can check sizes before sending
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # A field at its default is left out; the receiver's _build fills it back in.
        return {
            f.name: _to_wire(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not _at_default(f, getattr(value, f.name))
        }
    if isinstance(value, dict):
        return {k: _to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_wire(v) for v in value]
    return value


def encode(message: Message) -> bytes:
    """Check ``message`` and serialize it to one msgpack map (a WebSocket binary frame's payload).

    Field values are re-validated against the field types, so e.g. a ``str`` where an enum belongs
    is accepted but an ``int`` where ``bytes`` belong raises.

    Raises:
        ProtocolError: the message breaks the protocol (bad field type or value).
        TypeError: ``message`` is not a protocol message.
    """
    cls = type(message)
    if MESSAGE_TYPES.get(getattr(cls, "TYPE", None)) is not cls:
        raise TypeError(f"not a protocol message: {cls.__name__}")
    raw = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
    checked = _build(cls, raw, cls.TYPE, ErrorCode.BAD_MESSAGE)  # type and value checks
    body = {"type": cls.TYPE, "v": PROTOCOL_VERSION}
    body.update(_to_wire(checked))
    return msgpack.packb(body, use_bin_type=True)


_FIXED = {0xC0: None, 0xC2: False, 0xC3: True}
_SIZED = {  # type byte -> (bytes of the length, kind)
    0xC4: (1, "bin"),
    0xC5: (2, "bin"),
    0xC6: (4, "bin"),
    0xD9: (1, "str"),
    0xDA: (2, "str"),
    0xDB: (4, "str"),
    0xDC: (2, "array"),
    0xDD: (4, "array"),
    0xDE: (2, "map"),
    0xDF: (4, "map"),
    0xC7: (1, "ext"),
    0xC8: (2, "ext"),
    0xC9: (4, "ext"),
}
_NUMBERS = {
    0xCA: ">f",
    0xCB: ">d",
    0xCC: ">B",
    0xCD: ">H",
    0xCE: ">I",
    0xCF: ">Q",
    0xD0: ">b",
    0xD1: ">h",
    0xD2: ">i",
    0xD3: ">q",
}


def _walk(buf: memoryview, pos: int, depth: int, head: int) -> tuple[Any, int]:
    """Read the msgpack object at ``pos``: scalars and short strings as values, bin as their first
    ``head`` bytes, containers skipped (None); returns (value, position after it)."""
    if depth > _MAX_PLAIN_DEPTH:
        raise ValueError("nested too deeply")
    b = buf[pos]
    pos += 1
    if b <= 0x7F:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if 0xA0 <= b <= 0xBF or b in (0xD9, 0xDA, 0xDB) or b in (0xC4, 0xC5, 0xC6):
        if 0xA0 <= b <= 0xBF:
            n, kind = b & 0x1F, "str"
        else:
            width, kind = _SIZED[b]
            n = int.from_bytes(buf[pos : pos + width], "big")
            pos += width
        if pos + n > len(buf):
            raise ValueError("truncated")
        raw = bytes(buf[pos : pos + min(n, head if kind == "bin" else _MAX_TEXT)])
        value = raw if kind == "bin" else (raw.decode("utf-8", "replace") if n <= _MAX_TEXT else None)
        return value, pos + n
    if b in _FIXED:
        return _FIXED[b], pos
    if b in _NUMBERS:
        fmt = _NUMBERS[b]
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, bytes(buf[pos : pos + size]))[0], pos + size
    if 0x90 <= b <= 0x9F or 0x80 <= b <= 0x8F or b in (0xDC, 0xDD, 0xDE, 0xDF):
        if b <= 0x9F and b >= 0x80:
            count, is_map = b & 0x0F, b <= 0x8F
        else:
            width, kind = _SIZED[b]
            count, is_map = int.from_bytes(buf[pos : pos + width], "big"), kind == "map"
            pos += width
        for _ in range(count * (2 if is_map else 1)):
            _, pos = _walk(buf, pos, depth + 1, 0)
        return None, pos
    if b in (0xD4, 0xD5, 0xD6, 0xD7, 0xD8):
        return None, pos + 1 + (1 << (b - 0xD4))
    if b in (0xC7, 0xC8, 0xC9):
        width, _ = _SIZED[b]
        return None, pos + width + 1 + int.from_bytes(buf[pos : pos + width], "big")
    raise ValueError(f"byte 0x{b:02x} does not start a msgpack object")


def peek(data: bytes | bytearray | memoryview, head: int = 64, partial: bool = False) -> dict[str, Any]:
    """The top-level fields of a message without decoding it: numbers, booleans, nil and short
    strings as they are, binary fields as their first ``head`` bytes, nested maps and lists as
    None. Nothing is copied but those few bytes, so a server can check a big request's size
    against its limits before :func:`decode` copies the pixels. Not a check of the message:
    anything unreadable gives ``{}``.

    ``partial=True`` reads the start of a message (its first fragments): the fields that lie
    wholly in ``data``, and a binary field cut short as the first ``head`` bytes it has (a
    :class:`Cut`: the message goes on beyond ``data``), then stops there."""
    buf = memoryview(data) if not isinstance(data, str) else None
    if buf is None or not len(buf):
        return {}
    out: dict[str, Any] = {}
    try:
        b = buf[0]
        if 0x80 <= b <= 0x8F:
            count, pos = b & 0x0F, 1
        elif b in (0xDE, 0xDF):
            width = 2 if b == 0xDE else 4
            count, pos = int.from_bytes(buf[1 : 1 + width], "big"), 1 + width
        else:
            return {}
        for _ in range(min(count, 1 << 12)):
            key, pos = _walk(buf, pos, 1, 0)
            cut = partial and isinstance(key, str) and _bin_cut(buf, pos)
            if cut:
                out[key] = Cut(buf[cut : cut + head])
                return out
            value, pos = _walk(buf, pos, 1, head)
            if isinstance(key, str):
                out[key] = value
        return out
    except (ValueError, IndexError, UnicodeDecodeError, struct.error):
        return out if partial else {}


class Cut(bytes):
    """The first bytes of a binary field that the data given to :func:`peek` ends within."""


def _bin_cut(buf: memoryview, pos: int) -> int:
    """Where the bytes of the msgpack ``bin`` at ``pos`` start when ``buf`` ends before it
    does, else 0."""
    b = buf[pos]
    if b not in (0xC4, 0xC5, 0xC6):
        return 0
    width = _SIZED[b][0]
    start = pos + 1 + width
    return start if start <= len(buf) and start + int.from_bytes(buf[pos + 1 : start], "big") > len(buf) else 0


def fragments(frame: bytes | bytearray | memoryview, size: int = MAX_FRAGMENT_BYTES) -> list[memoryview]:
    """``frame`` cut into pieces of at most ``size`` bytes (no copy), for a WebSocket library's
    fragmented send (websockets: ``send(iterable)`` sends one message as continuation frames).
    The first piece holds the message's header, since :func:`encode` puts the small fields
    before the pixels."""
    view = memoryview(frame)
    return [view[i : i + size] for i in range(0, max(len(view), 1), size)]


def _no_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(ErrorCode.BAD_MESSAGE, f"msgpack extension type {code} is not used by this protocol")


def decode(data: bytes | bytearray | memoryview) -> Message:
    """Parse and check one message.

    Args:
        data: the payload of one binary WebSocket frame.

    Returns:
        The message, an instance of one of :data:`MESSAGE_TYPES`' classes, already checked.

    Raises:
        ProtocolError: ``bad_message`` for anything malformed (not msgpack, not a map, trailing
            bytes, unknown type, unknown/missing field, wrong value type), ``unsupported_version``
            for another protocol version, ``invalid_option``/``invalid_image`` for bad options or
            pixel byte counts. ``request_id`` is set when the message's id could be read.
    """
    if isinstance(data, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "messages are binary msgpack frames, not text")
    n = len(data)
    try:
        raw = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_no_ext,
            max_str_len=n,
            max_bin_len=n,
            max_array_len=min(n, 1 << 16),
            max_map_len=min(n, 1 << 12),
            max_ext_len=0,
        )
    except ProtocolError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, RecursionError) as e:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"not a valid msgpack message ({type(e).__name__})") from None
    except Exception as e:  # msgpack's fallback raises a few other types on corrupt input
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"not a valid msgpack message ({type(e).__name__})") from None
    if not isinstance(raw, dict):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"a message must be a msgpack map, got {_kind(raw)}")
    request_id = raw.get("id")
    if not (isinstance(request_id, str) and 0 < len(request_id) <= MAX_ID_LENGTH):
        request_id = None
    mtype = raw.pop("type", None)
    version = raw.pop("v", None)
    if not isinstance(mtype, str) or mtype not in MESSAGE_TYPES:
        known = ", ".join(MESSAGE_TYPES)
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"unknown message type {_show(mtype)} (known: {known})", request_id)
    if version is None or type(version) is not int:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f'the protocol version "v" must be the integer {PROTOCOL_VERSION}, got '
            + ("nothing" if version is None else f"{_kind(version)} ({_show(version)})"),
            request_id,
        )
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"message speaks protocol version {_show(version)}; this side speaks {PROTOCOL_VERSION}",
            request_id,
        )
    try:
        return _build(MESSAGE_TYPES[mtype], raw, mtype, ErrorCode.BAD_MESSAGE)
    except ProtocolError as e:
        if e.request_id is None and request_id is not None:
            e.request_id = request_id
        raise
