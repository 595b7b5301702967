"""Reference client for the restoration server: a blocking one for worker threads and an asyncio one.

Dependencies: the standard library, ``websockets`` (>= 13, pure Python is fine), ``msgpack`` (its
pure-Python fallback is fine) and :mod:`protocol` and :mod:`jpegfile` from this folder. Plug-ins
bundle the three files *side by side* in one vendored package (e.g.
``krita_plugin/vendor/lrclient/`` with an ``__init__.py``): ``client.py`` first tries relative imports
(``from . import protocol``) and, when it was loaded as a top-level module (its folder on
``sys.path``), falls back to ``import protocol``.

Quick use::

    from server.client import restore
    result = restore("ws://127.0.0.1:8765", pixels, width, height, "rgba8",
                     {"mask": "learnt", "background": "transparent"},
                     on_progress=lambda f: print(f"{f:.0%}"))
    result.data, result.format, result.mask, result.qf_estimate

``source_file=`` names the file the image was opened from: when it is a JPEG and the server takes
the ``jpeg_table`` option, its quantization table is sent along (see ``jpegfile``).

Token: ``python -m server`` requires a per-user token by default and writes it to
:func:`token_file` (``~/.local/share/lineart-restore/token``, mode 0600). With ``token=None`` (the
default) a client of a loopback URL reads it from there (or from ``$LINEART_RESTORE_TOKEN``), so
nobody types it; pass ``token="..."`` for a remote server, ``token=""`` to send none.

A call that finds the connection dropped (the server was restarted) reconnects once by itself.
The request bookkeeping (replies, cancel, timeouts) is one sans-I/O :class:`RequestTracker` shared
by the blocking and the asyncio client, which only move bytes.

Errors (all carry a stable ``code``; branch on it, not on the message)::

    ClientError                                 "client_error"
    ├── ServerUnavailableError (ConnectionError)  "server_unavailable"  nothing listens at the URL
    ├── ConnectionLostError (ConnectionError)     "connection_lost"     the connection dropped
    ├── HandshakeRefusedError                     "unauthorized" (HTTP 401), "forbidden_origin"
    │                                             (HTTP 403), "too_many_connections" (HTTP 503)
    │                                             or "handshake_refused"
    ├── InvalidArgumentError (TypeError)          "invalid_argument"    e.g. str where bytes belong
    ├── BadReplyError                             the server broke the protocol ("bad_message",
    │                                             "unsupported_version")
    ├── RequestTimeoutError (TimeoutError)        "timeout"             (the request was cancelled)
    └── ServerError                               the server's ``error`` code: "invalid_image",
        │                                         "too_large", "queue_full", ...; ``request_id``
        └── RequestCancelledError                 "cancelled"
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import ipaddress
import operator
import os
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Union

try:  # bundled in a package next to protocol.py (normal case)
    from . import jpegfile, protocol
except ImportError:  # loaded as a top-level module with protocol.py beside it on sys.path
    import jpegfile  # type: ignore[no-redef]
    import protocol  # type: ignore[no-redef]

from websockets.asyncio.client import connect as _async_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import connect as _sync_connect

# websockets >= 17 wants connect() used as a context manager unless ``legacy=True`` says we hold
# the connection ourselves (older versions, which plug-ins may bundle, have no such argument).
_SYNC_EXTRA = {"legacy": True} if "legacy" in inspect.signature(_sync_connect).parameters else {}

__all__ = [
    "DEFAULT_URL",
    "START_HINT",
    "ClientError",
    "ServerUnavailableError",
    "ConnectionLostError",
    "HandshakeRefusedError",
    "BadReplyError",
    "RequestTimeoutError",
    "ServerError",
    "RequestCancelledError",
    "InvalidArgumentError",
    "TOKEN_ENV",
    "token_file",
    "read_token",
    "RequestTracker",
    "Client",
    "AsyncClient",
    "restore",
    "restore_async",
]

#: Where ``python -m server`` listens by default.
DEFAULT_URL = f"ws://127.0.0.1:{protocol.DEFAULT_PORT}"
#: Told to users whenever no server answers.
START_HINT = "start the server with `python -m server` in the lineart-restore environment"
#: Largest reply the client accepts (a 8192^2 rgba16 result plus its mask is ~580 MiB).
MAX_REPLY_BYTES = 1 << 30
#: Environment variable holding the server's token (read by the server and by the client).
TOKEN_ENV = "LINEART_RESTORE_TOKEN"
#: Environment variable naming another token file (tests, several users' setups).
TOKEN_FILE_ENV = "LINEART_RESTORE_TOKEN_FILE"


def token_file() -> Path:
    """Where ``python -m server`` writes its per-user token and clients read it:
    ``$LINEART_RESTORE_TOKEN_FILE`` when set, else ``%LOCALAPPDATA%\\lineart-restore\\token`` on
    Windows and ``~/.local/share/lineart-restore/token`` elsewhere."""
    named = os.environ.get(TOKEN_FILE_ENV)
    if named:
        return Path(named).expanduser()
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "lineart-restore" / "token"
    return Path.home() / ".local" / "share" / "lineart-restore" / "token"


def read_token() -> str | None:
    """The local server's token: ``$LINEART_RESTORE_TOKEN``, else the first line of
    :func:`token_file`; None when neither is there (a server started with ``--no-token``)."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    try:
        token = token_file().read_text(encoding="utf-8").strip().splitlines()[0].strip()
    except (OSError, UnicodeDecodeError, IndexError):
        return None
    return token or None


def _is_local(url: str) -> bool:
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
    except ValueError:
        return False
    return is_loopback(host)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


OptionsLike = Union["protocol.Options", Mapping[str, Any], None]
PathLike = Union[str, "os.PathLike[str]", None]
CancelLike = Union[threading.Event, Callable[[], bool], None]


class ClientError(Exception):
    """Root of the client's errors. ``code`` is stable, ``message`` is for people."""

    code = "client_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ServerUnavailableError(ClientError, ConnectionError):
    """Nothing answered at the URL (server not started, wrong port)."""

    code = "server_unavailable"


class ConnectionLostError(ClientError, ConnectionError):
    """The connection closed while a request was in flight (server stopped or crashed)."""

    code = "connection_lost"


class HandshakeRefusedError(ClientError):
    """The server refused the WebSocket handshake: ``unauthorized`` (missing or wrong token),
    ``forbidden_origin`` (a browser Origin) or ``handshake_refused`` (anything else)."""

    code = "handshake_refused"


class BadReplyError(ClientError):
    """The server sent something this client cannot read (other protocol version, bad message)."""

    code = "bad_message"


class RequestTimeoutError(ClientError, TimeoutError):
    """No result before the timeout; the client sent a ``cancel`` for the request."""

    code = "timeout"


class ServerError(ClientError):
    """The server answered a request (or the connection) with an ``error`` message.

    Attributes:
        code: the server's stable code (see ``protocol.ErrorCode``; may be one this client
            does not know).
        request_id: the request concerned, or None for a connection-level error.
    """

    def __init__(self, message: str, code: str, request_id: str | None = None) -> None:
        super().__init__(message, code)
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


class RequestCancelledError(ServerError):
    """The request was cancelled (by this client) before it finished."""

    code = "cancelled"


class InvalidArgumentError(ClientError, TypeError):
    """A call got an argument of the wrong type (e.g. a ``str`` as the pixel data)."""

    code = "invalid_argument"


def _server_error(msg: protocol.Error) -> ServerError:
    cls = RequestCancelledError if msg.code == protocol.ErrorCode.CANCELLED else ServerError
    return cls(msg.message, msg.code, msg.id)


def _connect_error(url: str, exc: BaseException) -> ClientError:
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        body = exc.response.body.decode("utf-8", "replace").strip() if exc.response.body else ""
        if status == 401:
            return HandshakeRefusedError(
                f"the server at {url} needs the right token (--token): {body or 'unauthorized'}",
                protocol.ErrorCode.UNAUTHORIZED,
            )
        if status == 403:
            return HandshakeRefusedError(
                f"the server at {url} refused this client's Origin: {body or 'forbidden'}",
                protocol.ErrorCode.FORBIDDEN_ORIGIN,
            )
        if status == 503:
            return HandshakeRefusedError(
                f"the server at {url} refused the connection: {body or 'too many connections'}",
                protocol.ErrorCode.TOO_MANY_CONNECTIONS,
            )
        return HandshakeRefusedError(f"the server at {url} refused the connection: HTTP {status} {body}")
    if isinstance(exc, InvalidURI):
        return ClientError(f"bad server URL {url!r}: {exc}", "bad_url")
    if isinstance(exc, InvalidHandshake):
        return HandshakeRefusedError(f"{url} did not complete a WebSocket handshake ({exc}); is it this server?")
    return ServerUnavailableError(f"no lineart-restore server answers at {url} ({exc}); {START_HINT}")


def _close_error(code: int | None, reason: str, during: str) -> ClientError:
    if code == 1009:
        return ServerError(
            f"the server closed the connection: a message was larger than its limit ({reason or 'too big'})",
            protocol.ErrorCode.TOO_LARGE,
        )
    if code == 1001:
        return ConnectionLostError(f"the server is shutting down ({during}); {START_HINT}")
    what = f"close code {code} {reason}".strip() if code is not None else "no close frame"
    return ConnectionLostError(f"connection to the server lost {during} ({what}); {START_HINT}")


def _closed_error(exc: ConnectionClosed, during: str) -> ClientError:
    rcvd = exc.rcvd
    return _close_error(rcvd.code if rcvd else None, rcvd.reason if rcvd else "", during)


def _options(options: OptionsLike) -> protocol.Options:
    try:
        return protocol.parse_options(options)
    except protocol.ProtocolError as e:
        raise ServerError(e.message, e.code) from None
    except TypeError as e:
        raise InvalidArgumentError(str(e)) from None


def _pixels(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise InvalidArgumentError(
        f"data must be bytes (the raw pixels, or a PNG file for format png), got {type(data).__name__}"
    )


def _size(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be an integer, got a bool")
    try:
        return operator.index(value)
    except TypeError:
        raise InvalidArgumentError(f"{name} must be an integer, got {type(value).__name__}") from None


def _token_for(url: str, token: str | None) -> str | None:
    """The token to send: the one given (``""``: none), else for a loopback URL the local server's
    (:func:`read_token`); a remote server's token is never guessed."""
    if token is not None:
        return token or None
    return read_token() if _is_local(url) else None


def _connect_options(token: str | None, open_timeout: float) -> dict[str, Any]:
    """Keyword arguments of websockets' connect shared by the sync and asyncio clients: no
    compression (pixels do not compress), no proxy (loopback), our size limit and user agent."""
    return {
        "additional_headers": _headers(token),
        "compression": None,
        "proxy": None,
        "open_timeout": open_timeout,
        "max_size": MAX_REPLY_BYTES,
        "user_agent_header": f"lineart-restore-client/{protocol.PROTOCOL_VERSION}",
    }


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _is_set(cancel: CancelLike) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


class _Common:
    """What the sync and async clients share: request building and the local limit checks."""

    url: str = ""
    welcome: protocol.Welcome | None = None

    def _wire(self, frame: bytes) -> bytes | list[memoryview]:
        """``frame`` as websockets sends it: whole, or, when it is longer than the server's frame
        limit (``max_fragment_bytes`` in ``welcome.info["limits"]``), as one message in fragments
        whose first holds the request's header, so the server can refuse it before the rest."""
        limits = self.welcome.info.get("limits") if self.welcome is not None else None
        size = limits.get("max_fragment_bytes") if isinstance(limits, dict) else None
        if type(size) is not int or size < 1024:
            size = protocol.MAX_FRAGMENT_BYTES
        return frame if len(frame) <= size else protocol.fragments(frame, size)

    def takes_option(self, name: str) -> bool:
        """Whether the connected server lists ``name`` among its restore options (older servers
        refuse options they do not know)."""
        return self.welcome is not None and name in (self.welcome.options or {})

    def _check_offered(self, msg: protocol.Restore) -> None:
        """Refuse, before sending, a request that sets an option the server does not list.

        Options at their default are not sent (see ``protocol.encode``), so only the ones a request
        changes need the server's support; an older server would refuse them as unknown."""
        offered = self.welcome.options if self.welcome is not None else None
        if not offered:
            return
        missing = [name for name in protocol.non_default_options(msg.options) if name not in offered]
        if missing:
            one = len(missing) == 1
            raise ServerError(
                f"the server at {self.url} does not offer the option{'' if one else 's'} "
                f"{', '.join(repr(n) for n in missing)}: it is older than this client. Update and restart "
                f"the server, or leave {'that option' if one else 'those options'} at the default",
                protocol.ErrorCode.INVALID_OPTION,
                msg.id,
            )

    def _with_file_table(self, options: protocol.Options, source_file: PathLike) -> protocol.Options:
        """``options`` plus the quantization table of ``source_file`` when that is a JPEG, the
        caller gave none, consistency is on and the server takes the option."""
        if (
            source_file is None
            or options.jpeg_table is not None
            or not options.jpeg_consistency
            or not self.takes_option("jpeg_table")
        ):
            return options
        table = jpegfile.luma_table(source_file)
        return options if table is None else dataclasses.replace(options, jpeg_table=list(table))

    def _request(
        self,
        data: bytes,
        width: int,
        height: int,
        fmt: str,
        options: OptionsLike,
        request_id: str | None,
        source_file: PathLike = None,
    ) -> protocol.Restore:
        if request_id is not None and not isinstance(request_id, str):
            raise InvalidArgumentError(f"request_id must be a string, got {type(request_id).__name__}")
        try:
            fmt = protocol.PixelFormat(fmt)
        except ValueError:
            raise ServerError(
                f"unknown pixel format {str(fmt)[:40]!r}; valid formats: "
                + ", ".join(f.value for f in protocol.PixelFormat),
                protocol.ErrorCode.INVALID_IMAGE,
            ) from None
        msg = protocol.Restore(
            id=request_id or _new_id(),
            width=_size("width", width),
            height=_size("height", height),
            format=fmt,
            data=_pixels(data),
            options=self._with_file_table(_options(options), source_file),
        )
        try:
            msg.check()
        except protocol.ProtocolError as e:
            raise ServerError(e.message, e.code, e.request_id) from None
        self._check_offered(msg)
        limits = self.welcome.limits if self.welcome is not None else None
        if limits is not None:
            if msg.width * msg.height > limits.max_pixels:
                raise ServerError(
                    f"{msg.width}x{msg.height} is {msg.width * msg.height} pixels; the server takes at most "
                    f"{limits.max_pixels} (checked before sending)",
                    protocol.ErrorCode.TOO_LARGE,
                    msg.id,
                )
            if len(msg.data) + 4096 > limits.max_message_bytes:
                raise ServerError(
                    f"the image is {len(msg.data)} bytes; the server takes messages of at most "
                    f"{limits.max_message_bytes} bytes (checked before sending)",
                    protocol.ErrorCode.TOO_LARGE,
                    msg.id,
                )
        return msg

    @staticmethod
    def _decode(raw: Any) -> protocol.Message:
        try:
            return protocol.decode(raw)
        except protocol.ProtocolError as e:
            raise BadReplyError(f"unreadable message from the server: {e.message}", e.code) from None


@dataclasses.dataclass
class Event:
    """Something that happened to a request (see :class:`RequestTracker`).

    ``message`` is the server's ``queued``/``progress``/``result`` message, or None when
    ``error`` ends the request. ``final`` is true for a result or an error."""

    request_id: str
    message: protocol.Message | None = None
    error: ClientError | None = None

    @property
    def final(self) -> bool:
        return self.error is not None or isinstance(self.message, protocol.Result)

    def dispatch(
        self, on_progress: Callable[[float], None] | None, on_queued: Callable[[int, int], None] | None
    ) -> protocol.Result | None:
        """Call the matching callback; return the result, raise the error, None otherwise."""
        if self.error is not None:
            raise self.error
        msg = self.message
        if isinstance(msg, protocol.Result):
            return msg
        if isinstance(msg, protocol.Progress) and on_progress is not None:
            on_progress(msg.fraction)
        elif isinstance(msg, protocol.Queued) and on_queued is not None:
            on_queued(msg.position, msg.depth)
        return None


@dataclasses.dataclass
class _Live:
    deadline: float | None
    timeout: float | None
    cancel_sent: bool = False


class RequestTracker:
    """The requests in flight on one connection, without any I/O (websockets' sans-I/O pattern).

    The sync and asyncio clients feed it what they receive and send what it returns; it decides
    what each reply means for which request, when a cancel goes out, and when a request timed out.
    Times are the caller's clock (``time.monotonic()`` or the event loop's ``time()``).

        frame = tracker.start(msg, timeout, now)     # bytes to send
        events = tracker.receive(raw)                # Event per request concerned
        frame = tracker.cancel(request_id)           # bytes to send, or None when sent already
        frame, event = tracker.expire(request_id, now)  # past its deadline: cancel + timeout error
        events = tracker.lost(error)                 # the connection dropped: every request fails
    """

    def __init__(self) -> None:
        self._live: dict[str, _Live] = {}

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._live

    def start(self, msg: protocol.Restore, timeout: float | None, now: float) -> bytes:
        if msg.id in self._live:
            raise ServerError(f"request id {msg.id} is already in flight", protocol.ErrorCode.DUPLICATE_ID, msg.id)
        frame = protocol.encode(msg)
        self._live[msg.id] = _Live(None if timeout is None else now + timeout, timeout)
        return frame

    def forget(self, request_id: str) -> None:
        """The caller stopped waiting for ``request_id`` (late replies are then ignored)."""
        self._live.pop(request_id, None)

    def deadline(self, request_id: str) -> float | None:
        live = self._live.get(request_id)
        return None if live is None else live.deadline

    def cancel(self, request_id: str) -> bytes | None:
        live = self._live.get(request_id)
        if live is None or live.cancel_sent:
            return None
        live.cancel_sent = True
        return protocol.encode(protocol.Cancel(id=request_id))

    def expire(self, request_id: str, now: float) -> tuple[bytes | None, Event | None]:
        """When ``request_id`` is past its deadline: the cancel to send (or None) and the timeout
        event that ends it; ``(None, None)`` before the deadline."""
        live = self._live.get(request_id)
        if live is None or live.deadline is None or now < live.deadline:
            return None, None
        frame = self.cancel(request_id)
        self._live.pop(request_id, None)
        error = RequestTimeoutError(f"no result for request {request_id} after {live.timeout} s; cancelled it")
        return frame, Event(request_id, error=error)

    def receive(self, raw: Any) -> list[Event]:
        """What one message from the server means.

        Raises:
            BadReplyError: the message is unreadable (the caller closes the connection).
        """
        try:
            msg = protocol.decode(raw)
        except protocol.ProtocolError as e:
            raise BadReplyError(f"unreadable message from the server: {e.message}", e.code) from None
        rid = getattr(msg, "id", None)
        if isinstance(msg, protocol.Error) and rid is None:  # about the connection: fails them all
            return self.lost(_server_error(msg))
        if rid not in self._live:
            return []  # late messages of an abandoned request
        if isinstance(msg, protocol.Error):
            del self._live[rid]
            return [Event(rid, error=_server_error(msg))]
        if isinstance(msg, protocol.Result):
            del self._live[rid]
        return [Event(rid, message=msg)]

    def lost(self, error: ClientError) -> list[Event]:
        """Every request in flight fails with ``error``."""
        events = [Event(rid, error=error) for rid in self._live]
        self._live.clear()
        return events


class Client(_Common):
    """Blocking client; one request at a time. Call it from a worker thread, never a UI thread.

    Args:
        url: ``ws://host:port`` of the server.
        token: the server's token; None (default): the local server's, read from
            :func:`token_file` for a loopback URL; ``""``: send none.
        name: how the server's log names this client (e.g. "krita-plugin 0.1").
        open_timeout: seconds to wait for the connection and the welcome.

    Use as a context manager, or call :meth:`connect` and :meth:`close`.
    """

    def __init__(
        self, url: str = DEFAULT_URL, *, token: str | None = None, name: str = "", open_timeout: float = 10.0
    ) -> None:
        self.url = url
        self.token = token
        self.name = name
        self.open_timeout = open_timeout
        self._ws: Any = None
        self._tracker = RequestTracker()

    def connect(self) -> protocol.Welcome:
        """Open the connection and exchange hello/welcome. Returns (and keeps) the welcome.

        Raises:
            ServerUnavailableError, HandshakeRefusedError, BadReplyError, ServerError.
        """
        if self._ws is not None:
            assert self.welcome is not None
            return self.welcome
        try:
            ws = _sync_connect(
                self.url, **_connect_options(_token_for(self.url, self.token), self.open_timeout), **_SYNC_EXTRA
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as e:
            raise _connect_error(self.url, e) from None
        try:
            ws.send(protocol.encode(protocol.Hello(client=self.name[:128])))
            reply = self._decode(ws.recv(timeout=self.open_timeout))
        except TimeoutError:
            ws.close()
            raise ServerUnavailableError(f"the server at {self.url} did not say welcome in time") from None
        except ConnectionClosed as e:
            raise _closed_error(e, "during the handshake") from None
        except BaseException:
            ws.close()
            raise
        if isinstance(reply, protocol.Error):
            ws.close()
            raise _server_error(reply)
        if not isinstance(reply, protocol.Welcome):
            ws.close()
            raise BadReplyError(f"expected a welcome from the server, got {reply.TYPE!r}")
        self._ws = ws
        self.welcome = reply
        self._tracker = RequestTracker()
        return reply

    def close(self) -> None:
        """Close the connection (the server cancels whatever this client still had queued)."""
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()

    def __enter__(self) -> Client:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def restore(
        self,
        data: bytes,
        width: int,
        height: int,
        fmt: str,
        options: OptionsLike = None,
        *,
        on_progress: Callable[[float], None] | None = None,
        on_queued: Callable[[int, int], None] | None = None,
        cancel: CancelLike = None,
        timeout: float | None = None,
        request_id: str | None = None,
        source_file: PathLike = None,
    ) -> protocol.Result:
        """Restore one image and wait for the result.

        Args:
            data: pixel bytes in ``fmt`` (see ``protocol.PixelFormat``), or a PNG file for "png".
            width, height: image size in pixels.
            fmt: pixel format name, e.g. "rgba8", "graya16", "bgra8", "png".
            options: ``protocol.Options`` or a mapping of its fields (unknown keys raise).
            on_progress: called with the fraction done (0..1) as tiles and self-ensemble passes
                finish.
            on_queued: called with (position, depth) while the request waits in the queue.
            cancel: a ``threading.Event`` or a callable returning True to cancel; checked every
                0.1 s. Cancelling raises :class:`RequestCancelledError`.
            timeout: seconds to wait for the result (None: no limit).
            request_id: id to use (default: a random one).
            source_file: the file the image was opened from, if any. When it is a JPEG (any
                encoder) and the server takes the option, its luminance quantization table goes
                along as ``jpeg_table`` for the JPEG-consistency step (unless ``options`` holds
                one or turns the step off). The server checks that the table reproduces the
                pixels, so an edited layer or another file's table does no harm.

        Returns:
            The ``protocol.Result`` (``data``, ``format``, ``mask``, ``qf_estimate``, ``timings``...).

        Raises:
            InvalidArgumentError for arguments of the wrong type; the other ClientErrors.
            A connection found dropped when sending (a restarted server) is opened again once.
        """
        self.connect()
        msg = self._request(data, width, height, fmt, options, request_id, source_file)
        heard: list[Event] = []
        for attempt in (1, 2):
            frame = self._tracker.start(msg, timeout, time.monotonic())
            try:
                self._send(frame, "while sending the image")
                return self._wait(msg.id, on_progress, on_queued, cancel, heard)
            except ConnectionLostError:
                # Lost before the server said anything of this request (e.g. it was restarted
                # while this client sat idle): connect again and send it once more.
                if attempt == 2 or heard:
                    raise
                self.close()
                self.connect()
            finally:
                self._tracker.forget(msg.id)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, frame: bytes | None, during: str) -> None:
        if frame is None:
            return
        try:
            self._ws.send(self._wire(frame))
        except ConnectionClosed as e:
            self._ws = None
            raise _closed_error(e, during) from None

    def _wait(self, request_id: str, on_progress, on_queued, cancel: CancelLike, heard: list) -> protocol.Result:
        tracker, ws = self._tracker, self._ws
        while True:
            if _is_set(cancel):
                self._send(tracker.cancel(request_id), "while cancelling")
            frame, timed_out = tracker.expire(request_id, time.monotonic())
            if timed_out is not None:
                with contextlib.suppress(ClientError):
                    self._send(frame, "while cancelling")
                timed_out.dispatch(on_progress, on_queued)
            deadline = tracker.deadline(request_id)
            wait = 0.1 if cancel is not None else None
            if deadline is not None:
                left = max(0.0, deadline - time.monotonic())
                wait = left if wait is None else min(wait, left)
            try:
                raw = ws.recv(timeout=wait)
            except TimeoutError:
                continue
            except ConnectionClosed as e:
                self._ws = None
                events = tracker.lost(_closed_error(e, "while waiting for the result"))
            else:
                events = tracker.receive(raw)
            for event in events:
                if event.request_id == request_id:
                    if event.message is not None:
                        heard.append(event)
                    result = event.dispatch(on_progress, on_queued)
                    if result is not None:
                        return result


class AsyncClient(_Common):
    """asyncio client; any number of concurrent :meth:`restore` calls share one connection.

    Same arguments as :class:`Client`. Use ``async with AsyncClient(url) as c: await c.restore(...)``.
    Cancelling the task awaiting :meth:`restore` sends a ``cancel`` for its request.
    """

    def __init__(
        self, url: str = DEFAULT_URL, *, token: str | None = None, name: str = "", open_timeout: float = 10.0
    ) -> None:
        self.url = url
        self.token = token
        self.name = name
        self.open_timeout = open_timeout
        self._ws: Any = None
        self._reader: asyncio.Task | None = None
        self._tracker = RequestTracker()
        self._pending: dict[str, asyncio.Queue] = {}
        self._heard: dict[str, bool] = {}
        self._dropped = False
        self._generation = 0  # connections opened so far
        self._connect_lock: asyncio.Lock | None = None

    async def connect(self) -> protocol.Welcome:
        """Open the connection and exchange hello/welcome; same errors as :meth:`Client.connect`."""
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:  # concurrent calls that found it dropped connect once
            return await self._connect()

    async def _connect(self) -> protocol.Welcome:
        if self._ws is not None and not self._dropped:
            assert self.welcome is not None
            return self.welcome
        if self._ws is not None:  # dropped (server restarted): start over
            await self._drop_connection()
        try:
            ws = await _async_connect(self.url, **_connect_options(_token_for(self.url, self.token), self.open_timeout))
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as e:
            raise _connect_error(self.url, e) from None
        try:
            await ws.send(protocol.encode(protocol.Hello(client=self.name[:128])))
            reply = self._decode(await asyncio.wait_for(ws.recv(), self.open_timeout))
        except asyncio.TimeoutError:
            await ws.close()
            raise ServerUnavailableError(f"the server at {self.url} did not say welcome in time") from None
        except ConnectionClosed as e:
            raise _closed_error(e, "during the handshake") from None
        except BaseException:
            await ws.close()
            raise
        if isinstance(reply, protocol.Error):
            await ws.close()
            raise _server_error(reply)
        if not isinstance(reply, protocol.Welcome):
            await ws.close()
            raise BadReplyError(f"expected a welcome from the server, got {reply.TYPE!r}")
        self._ws = ws
        self.welcome = reply
        self._dropped = False
        self._generation += 1
        self._reader = asyncio.create_task(self._read_loop(ws))
        return reply

    async def close(self) -> None:
        """Close the connection; pending :meth:`restore` calls raise ConnectionLostError."""
        await self._drop_connection()
        self._deliver(self._tracker.lost(ConnectionLostError("the client closed its connection to the server")))

    async def _drop_connection(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _deliver(self, events: list[Event]) -> None:
        for event in events:
            queue = self._pending.get(event.request_id)
            if queue is not None:
                queue.put_nowait(event)

    async def _read_loop(self, ws: Any) -> None:
        error: ClientError | None = None
        try:
            async for raw in ws:
                try:
                    self._deliver(self._tracker.receive(raw))
                except BadReplyError as e:
                    error = e
                    await ws.close(1002, "unreadable message")
                    break
        except ConnectionClosed as e:
            error = _closed_error(e, "while waiting for results")
        finally:
            if error is None:
                error = _close_error(ws.close_code, ws.close_reason or "", "while waiting for results")
            if ws is self._ws:  # not when this client closed it (close() or a reconnection)
                self._dropped = True
                self._deliver(self._tracker.lost(error))

    async def restore(
        self,
        data: bytes,
        width: int,
        height: int,
        fmt: str,
        options: OptionsLike = None,
        *,
        on_progress: Callable[[float], None] | None = None,
        on_queued: Callable[[int, int], None] | None = None,
        cancel: asyncio.Event | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
        source_file: PathLike = None,
    ) -> protocol.Result:
        """Restore one image; arguments as :meth:`Client.restore` (``cancel`` is an asyncio.Event)."""
        await self.connect()
        msg = self._request(data, width, height, fmt, options, request_id, source_file)
        if msg.id in self._tracker:
            raise ServerError(f"request id {msg.id} is already in flight", protocol.ErrorCode.DUPLICATE_ID, msg.id)
        queue: asyncio.Queue = asyncio.Queue()
        self._pending[msg.id] = queue
        cancel_task = asyncio.create_task(cancel.wait()) if cancel is not None else None
        try:
            for attempt in (1, 2):
                generation = self._generation
                try:
                    await self._send_request(msg, timeout)
                    return await self._wait(msg.id, queue, cancel_task, on_progress, on_queued)
                except ConnectionLostError:
                    # Lost before the server said anything of this request (e.g. it was
                    # restarted while this client sat idle): connect again and send it once more.
                    if attempt == 2 or self._heard.pop(msg.id, False):
                        raise
                    self._tracker.forget(msg.id)
                    while not queue.empty():
                        queue.get_nowait()
                    if self._generation == generation:  # no other call has connected again yet
                        self._dropped = True
                    await self.connect()
            raise AssertionError("unreachable")  # pragma: no cover
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._send(self._tracker.cancel(msg.id)))
            raise
        finally:
            self._tracker.forget(msg.id)
            self._pending.pop(msg.id, None)
            self._heard.pop(msg.id, None)
            if cancel_task is not None:
                cancel_task.cancel()

    async def _wait(
        self, request_id: str, queue: asyncio.Queue, cancel_task, on_progress, on_queued
    ) -> protocol.Result:
        loop = asyncio.get_running_loop()
        while True:
            get = asyncio.ensure_future(queue.get())
            waits = {get} if cancel_task is None or cancel_task.done() else {get, cancel_task}
            deadline = self._tracker.deadline(request_id)
            left = None if deadline is None else max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            if get in done:
                event = get.result()
                if event.message is not None:
                    self._heard[request_id] = True
                result = event.dispatch(on_progress, on_queued)
                if result is not None:
                    return result
                continue
            get.cancel()
            if cancel_task is not None and cancel_task in done:
                await self._send(self._tracker.cancel(request_id))
            frame, timed_out = self._tracker.expire(request_id, loop.time())
            if timed_out is not None:
                await self._send(frame)
                timed_out.dispatch(on_progress, on_queued)

    async def _send_request(self, msg: protocol.Restore, timeout: float | None) -> None:
        frame = self._tracker.start(msg, timeout, asyncio.get_running_loop().time())
        if self._dropped or self._ws is None:
            raise ConnectionLostError("the connection to the server was lost")
        try:
            await self._ws.send(self._wire(frame))
        except ConnectionClosed as e:
            raise _closed_error(e, "while sending the image") from None

    async def _send(self, frame: bytes | None) -> None:
        if frame is None or self._ws is None:
            return
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(frame)  # a gone connection: the server cancels the client's jobs itself


def restore(
    url: str,
    data: bytes,
    width: int,
    height: int,
    fmt: str,
    options: OptionsLike = None,
    on_progress: Callable[[float], None] | None = None,
    *,
    token: str | None = None,
    cancel: CancelLike = None,
    timeout: float | None = None,
    name: str = "",
    source_file: PathLike = None,
) -> protocol.Result:
    """Connect, restore one image, disconnect (see :meth:`Client.restore`)."""
    with Client(url, token=token, name=name) as client:
        return client.restore(
            data,
            width,
            height,
            fmt,
            options,
            on_progress=on_progress,
            cancel=cancel,
            timeout=timeout,
            source_file=source_file,
        )


async def restore_async(
    url: str,
    data: bytes,
    width: int,
    height: int,
    fmt: str,
    options: OptionsLike = None,
    on_progress: Callable[[float], None] | None = None,
    *,
    token: str | None = None,
    cancel: asyncio.Event | None = None,
    timeout: float | None = None,
    name: str = "",
    source_file: PathLike = None,
) -> protocol.Result:
    """asyncio version of :func:`restore`."""
    async with AsyncClient(url, token=token, name=name) as client:
        return await client.restore(
            data,
            width,
            height,
            fmt,
            options,
            on_progress=on_progress,
            cancel=cancel,
            timeout=timeout,
            source_file=source_file,
        )
