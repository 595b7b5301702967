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

Errors (all carry a stable ``code``; branch on it, not on the message)::

    ClientError                                 "client_error"
    ├── ServerUnavailableError (ConnectionError)  "server_unavailable"  nothing listens at the URL
    ├── ConnectionLostError (ConnectionError)     "connection_lost"     the connection dropped
    ├── HandshakeRefusedError                     "unauthorized" (HTTP 401), "forbidden_origin"
    │                                             (HTTP 403) or "handshake_refused"
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
import os
import threading
import time
import uuid
from typing import Any, Callable, Mapping, Union

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
        try:
            msg = protocol.Restore(
                id=request_id or _new_id(),
                width=int(width),
                height=int(height),
                format=protocol.PixelFormat(fmt),
                data=bytes(data) if not isinstance(data, bytes) else data,
                options=self._with_file_table(_options(options), source_file),
            )
        except ValueError as e:  # unknown format name
            raise ServerError(f"unknown pixel format {fmt!r}: {e}", protocol.ErrorCode.INVALID_IMAGE) from None
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


class Client(_Common):
    """Blocking client; one request at a time. Call it from a worker thread, never a UI thread.

    Args:
        url: ``ws://host:port`` of the server.
        token: the server's ``--token``, if it has one.
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

    def connect(self) -> protocol.Welcome:
        """Open the connection and exchange hello/welcome. Returns (and keeps) the welcome.

        Raises:
            ServerUnavailableError, HandshakeRefusedError, BadReplyError, ServerError.
        """
        if self._ws is not None:
            assert self.welcome is not None
            return self.welcome
        try:
            ws = _sync_connect(self.url, **_connect_options(self.token, self.open_timeout), **_SYNC_EXTRA)
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
            on_progress: called with the fraction done (0..1) as tiles finish.
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
        """
        self.connect()
        msg = self._request(data, width, height, fmt, options, request_id, source_file)
        ws = self._ws
        try:
            ws.send(protocol.encode(msg))
        except ConnectionClosed as e:
            self._ws = None
            raise _closed_error(e, "while sending the image") from None
        deadline = None if timeout is None else time.monotonic() + timeout
        cancel_sent = False
        while True:
            if not cancel_sent and _is_set(cancel):
                self._send_cancel(msg.id)
                cancel_sent = True
            wait = 0.1 if cancel is not None and not cancel_sent else None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    if not cancel_sent:
                        self._send_cancel(msg.id)
                    raise RequestTimeoutError(f"no result for request {msg.id} after {timeout} s; cancelled it")
                wait = left if wait is None else min(wait, left)
            try:
                raw = ws.recv(timeout=wait)
            except TimeoutError:
                continue
            except ConnectionClosed as e:
                self._ws = None
                raise _closed_error(e, "while waiting for the result") from None
            reply = self._decode(raw)
            if isinstance(reply, protocol.Error) and reply.id is None:
                raise _server_error(reply)
            if getattr(reply, "id", None) != msg.id:
                continue  # late messages of an earlier, abandoned request
            if isinstance(reply, protocol.Result):
                return reply
            if isinstance(reply, protocol.Error):
                raise _server_error(reply)
            if isinstance(reply, protocol.Progress) and on_progress is not None:
                on_progress(reply.fraction)
            elif isinstance(reply, protocol.Queued) and on_queued is not None:
                on_queued(reply.position, reply.depth)

    def _send_cancel(self, request_id: str) -> None:
        try:
            self._ws.send(protocol.encode(protocol.Cancel(id=request_id)))
        except ConnectionClosed as e:
            self._ws = None
            raise _closed_error(e, "while cancelling") from None


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
        self._pending: dict[str, asyncio.Queue] = {}
        self._closed_exc: ClientError | None = None

    async def connect(self) -> protocol.Welcome:
        """Open the connection and exchange hello/welcome; same errors as :meth:`Client.connect`."""
        if self._ws is not None:
            assert self.welcome is not None
            return self.welcome
        try:
            ws = await _async_connect(self.url, **_connect_options(self.token, self.open_timeout))
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
        self._closed_exc = None
        self._reader = asyncio.create_task(self._read_loop(ws))
        return reply

    async def close(self) -> None:
        """Close the connection; pending :meth:`restore` calls raise ConnectionLostError."""
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

    async def _read_loop(self, ws: Any) -> None:
        error: ClientError | None = None
        try:
            async for raw in ws:
                try:
                    reply = self._decode(raw)
                except BadReplyError as e:
                    error = e
                    await ws.close(1002, "unreadable message")
                    break
                rid = getattr(reply, "id", None)
                if rid is None and isinstance(reply, protocol.Error):
                    error = _server_error(reply)
                    continue
                queue = self._pending.get(rid)
                if queue is not None:
                    queue.put_nowait(reply)
        except ConnectionClosed as e:
            error = _closed_error(e, "while waiting for results")
        finally:
            if error is None:
                error = _close_error(ws.close_code, ws.close_reason or "", "while waiting for results")
            self._closed_exc = error
            for queue in self._pending.values():
                queue.put_nowait(error)

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
        if msg.id in self._pending:
            raise ServerError(f"request id {msg.id} is already in flight", protocol.ErrorCode.DUPLICATE_ID, msg.id)
        queue: asyncio.Queue = asyncio.Queue()
        self._pending[msg.id] = queue
        ws = self._ws
        cancel_task = asyncio.create_task(cancel.wait()) if cancel is not None else None
        cancel_sent = False
        try:
            try:
                await ws.send(protocol.encode(msg))
            except ConnectionClosed as e:
                raise _closed_error(e, "while sending the image") from None
            deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
            while True:
                if self._closed_exc is not None and queue.empty():
                    raise self._closed_exc
                get = asyncio.ensure_future(queue.get())
                waits = {get} if cancel_task is None or cancel_sent else {get, cancel_task}
                left = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
                done, _ = await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    if cancel_task is not None and cancel_task in done and not cancel_sent:
                        await self._send_cancel(msg.id)
                        cancel_sent = True
                        continue
                    await self._send_cancel(msg.id)
                    cancel_sent = True
                    raise RequestTimeoutError(f"no result for request {msg.id} after {timeout} s; cancelled it")
                reply = get.result()
                if isinstance(reply, ClientError):
                    raise reply
                if isinstance(reply, protocol.Result):
                    return reply
                if isinstance(reply, protocol.Error):
                    raise _server_error(reply)
                if isinstance(reply, protocol.Progress) and on_progress is not None:
                    on_progress(reply.fraction)
                elif isinstance(reply, protocol.Queued) and on_queued is not None:
                    on_queued(reply.position, reply.depth)
        except asyncio.CancelledError:
            if not cancel_sent and self._ws is ws and self._closed_exc is None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._send_cancel(msg.id))
            raise
        finally:
            self._pending.pop(msg.id, None)
            if cancel_task is not None:
                cancel_task.cancel()

    async def _send_cancel(self, request_id: str) -> None:
        try:
            await self._ws.send(protocol.encode(protocol.Cancel(id=request_id)))
        except (ConnectionClosed, AttributeError):
            pass  # the connection is gone: the server cancels the client's jobs itself


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
            data, width, height, fmt, options, on_progress=on_progress, cancel=cancel, timeout=timeout,
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
            data, width, height, fmt, options, on_progress=on_progress, cancel=cancel, timeout=timeout,
            source_file=source_file,
        )
