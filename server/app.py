"""The restoration server: WebSocket front end, fair bounded job queue, jobs taking turns by tiles.

    RestoreServer(restorer, host=..., port=..., token=..., limits=..., max_connections=...)
        start()          listen (port 0 picks a free port; ``server.port`` tells which)
        stop()           cancel jobs, close connections with 1001 "going away", stop the worker
        serve_in_thread  a context manager running a server on its own event loop (tests, benchmarks)

Flow of a request: the connection's handler decodes the message (``protocol.decode``), checks the
limits, options and the queue's budget of decoded bytes and pixels (from the message and PNG
headers, before any image is decoded), and queues a :class:`jobs.Job` in the :class:`jobs.FairQueue`.
A few jobs run at once (``max_active_jobs``, of different clients, one big one at most), each in a
worker thread off the event loop: pixels -> numpy (``images.to_array``), ``Restorer.restore``, numpy
-> reply bytes (``images.from_array``, ``protocol.encode``). Their threads take turns
(:class:`jobs.Turns`): only one computes, and it hands over at every tile and self-ensemble pass
(``core.tiling.step_hook``), where cancel is checked too, so a small job sent while a huge one runs
is done in about its own time. Progress callbacks cross back to the loop with
``call_soon_threadsafe``; each connection has its own outbox and sender task so one slow client
never blocks another.

Security: the HTTP upgrade is refused with 403 when it carries an ``Origin`` header not listed in
``allowed_origins`` (browsers always send one; native clients do not), and with 401 when a token is
set and the ``Authorization: Bearer <token>`` header does not match, and with 503 when
``max_connections`` are open. Clients never name files: the ``model`` option picks one of the names
the server was started with. Whatever a client sends reaches the log escaped and cut short
(:func:`printable`); its mistakes are logged one by one at DEBUG only, with an INFO summary at most
once a minute.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import dataclasses
import hmac
import itertools
import logging
import math
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from importlib import metadata
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import MultipleValuesError
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from core.errors import CancelledError, InvalidImageError, InvalidOptionError, RestoreError
from core.pipeline import RestoreOptions, Restorer
from core.steps import step_hook

from . import images, protocol
from .jobs import FairQueue, Job, QueueFullError, Turns, mib

__all__ = ["SERVER_VERSION", "DEFAULT_MODEL", "RestoreServer", "serve_in_thread", "printable", "default_budget"]

log = logging.getLogger("server")

try:
    SERVER_VERSION = metadata.version("lineart-restore")
except metadata.PackageNotFoundError:  # running from a source tree that was not installed
    SERVER_VERSION = "0.0.0+source"

#: Name of the Restorer's own restoration model in ``Welcome.models``.
DEFAULT_MODEL = "default"
#: Messages bigger than this are decoded in a helper thread, not on the event loop.
_DECODE_OFF_LOOP = 1 << 20
#: Minimum seconds between two progress messages of one request (the last one always goes out).
_PROGRESS_INTERVAL = 0.05
#: Part of a job's progress fraction that its whole-image preparation (before the first tile)
#: covers: the fraction moves within it at the preparation's row-chunk step boundaries, and the
#: tiles and passes cover the rest. An 8192^2 job spends about 2 % of its time there.
PREP_SHARE = 0.01
#: Tile side on the CPU when no --tile is given: a 768-pixel tile takes about 0.6 s with the
#: shipped models on one core, so that other jobs get a turn, and a cancel lands, within about a
#: second (2048-pixel tiles, the pipeline's own CPU maximum, take several seconds each).
CPU_TILE = 768
#: Jobs running (taking turns) at once, and the part of the queue budget one client may use.
MAX_ACTIVE_JOBS = 3
CLIENT_SHARE = 0.5
#: Seconds between two INFO summaries of client mistakes (each one is logged at DEBUG).
_MISTAKE_SUMMARY_INTERVAL = 60.0
#: Longest client-supplied text put into a log line.
_LOG_TEXT = 200


def _room(nbytes: int) -> int:
    """Longest restore message the server takes in fragments for an image of ``nbytes`` decoded
    bytes: the pixels (a PNG may be a little longer than its pixels), the header and options."""
    return nbytes + nbytes // 32 + 2**20


class _Stalled(Exception):
    """A client stopped sending in the middle of a fragmented message."""


def printable(text: object, limit: int = _LOG_TEXT) -> str:
    """``text`` fit for a log line: control and other non-printable characters escaped (a newline
    becomes ``\\n``), cut to ``limit`` characters with the count of what was left out."""
    text = str(text)
    cut = len(text) > limit
    head = text[:limit]
    if not head.isprintable():
        head = "".join(c if c.isprintable() else repr(c)[1:-1] for c in head)
    return f"{head}...(+{len(text) - limit} chars)" if cut else head


def _available_ram() -> float:
    """Bytes available to new allocations (Linux ``MemAvailable``; else 4 GiB)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    return 4.0 * 2**30


def default_budget(available: float | None = None) -> tuple[int, int]:
    """The default queue budget ``(bytes, pixels)`` from the memory available now.

    Decoded image bytes: a sixteenth of the available memory, between 256 and 512 MiB (queued
    images are held in memory as received, and each connection may hold a message of up to
    ``max_message_bytes`` while it arrives, beside the budget). Pixels: what the pipeline's working memory (about
    32 bytes a pixel, measured on an 8192^2 job) allows in a quarter of the available memory,
    between one and four 8192^2 images.
    """
    available = _available_ram() if available is None else available
    nbytes = int(min(max(available / 16, 256 * 2**20), 512 * 2**20))
    pixels = int(min(max(available / 4 / 32, 8192 * 8192), 4 * 8192 * 8192))
    return nbytes, pixels


class _Mistakes:
    """Client mistakes (bad messages, refused requests): each logged at DEBUG, and an INFO summary
    at most once per interval, so a hostile client cannot flood the log."""

    def __init__(self, interval: float = _MISTAKE_SUMMARY_INTERVAL) -> None:
        self.interval = interval
        self._last = -math.inf
        self._count = 0
        self._codes: dict[str, int] = {}
        self._clients: set[int] = set()

    def note(self, conn: _Connection, code: str, message: str) -> None:
        log.debug("%s: %s [%s]", conn, printable(message, 500), printable(code, 64))
        self._count += 1
        self._codes[str(code)] = self._codes.get(str(code), 0) + 1
        self._clients.add(conn.serial)
        now = time.monotonic()
        if now - self._last >= self.interval:
            codes = ", ".join(f"{printable(c, 64)} x{n}" for c, n in sorted(self._codes.items())[:12])
            log.info(
                "%d refused message(s) from %d client(s) (%s)%s; run with -v to log each",
                self._count,
                len(self._clients),
                codes,
                "" if self._last == -math.inf else f" in the last {now - self._last:.0f} s",
            )
            self._last = now
            self._count = 0
            self._codes.clear()
            self._clients.clear()


def _find_malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl...)
        return None


_MALLOC_TRIM = _find_malloc_trim()


def release_memory() -> None:
    """Hand freed heap memory back to the OS (glibc only; a no-op elsewhere).

    A job allocates several buffers of the image's size; glibc keeps much of that memory in its
    arenas after it is freed, so without this the server's resident size stays near its peak
    (measured: +485 MiB after 2048^2 jobs, see benchmarks/bench_server.py).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as msgpack-able plain data (numbers, strings, lists, str-keyed maps); other
    objects (numpy scalars, paths, devices) become their ``str``."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if depth < 6 and isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if depth < 6 and isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if hasattr(value, "item") and callable(value.item):
        with contextlib.suppress(Exception):
            return _plain(value.item(), depth + 1)
    return str(value)


class _Connection:
    """One client: its WebSocket, its live jobs and its outbox."""

    _serials = itertools.count()

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.serial = next(self._serials)  # tells clients apart after they closed (id() may be reused)
        self.name = ""
        self.greeted = False
        self.closed = False
        self.jobs: dict[str, Job] = {}
        self.outbox: asyncio.Queue[bytes | None] = asyncio.Queue()

    def __repr__(self) -> str:
        peer = self.ws.remote_address
        where = f"{peer[0]}:{peer[1]}" if peer else "?"
        return f"<client {where} {self.name}>" if self.name else f"<client {where}>"  # name: printable()

    def send(self, data: bytes) -> None:
        if not self.closed:
            self.outbox.put_nowait(data)


class RestoreServer:
    """Serves one :class:`core.pipeline.Restorer` over WebSocket + msgpack (see ``docs/protocol.md``).

    Args:
        restorer: the loaded models; used from one worker thread only.
        host, port: where to listen; port 0 picks a free port (read :attr:`port` after start).
        token: when set, clients must send ``Authorization: Bearer <token>``.
        allowed_origins: browser ``Origin`` values let through (default: none; native clients
            send no Origin and are always let through).
        limits: see :class:`protocol.Limits`.
        models: extra restoration models clients may pick with the ``model`` option, as
            name -> weights file (a file of the server's operator; clients only send the name).
        tile: tile side for every request (None: :data:`CPU_TILE` on the CPU, else the pipeline
            picks it from free memory).
        max_connections: connections open at once; more are refused with HTTP 503.
        max_queued_bytes, max_queued_pixels: the budget of decoded image bytes and pixels over all
            queued and running jobs (None: :func:`default_budget`, from the memory available).
        client_share: the part of that budget one client may use.
        max_active_jobs: jobs that run at once, taking turns tile by tile.
        max_fragment_bytes: largest WebSocket frame; a longer message must come as fragments,
            whose header is checked (limits, queue budget) before the rest is stored.
        stall_timeout: seconds a fragmented message may go without its next fragment.
    """

    def __init__(
        self,
        restorer: Restorer,
        *,
        host: str = "127.0.0.1",
        port: int = protocol.DEFAULT_PORT,
        token: str | None = None,
        allowed_origins: tuple[str, ...] | list[str] = (),
        limits: protocol.Limits | None = None,
        models: Mapping[str, str | Path] | None = None,
        tile: int | None = None,
        max_connections: int = 64,
        max_queued_bytes: int | None = None,
        max_queued_pixels: int | None = None,
        client_share: float = CLIENT_SHARE,
        max_active_jobs: int = MAX_ACTIVE_JOBS,
        max_fragment_bytes: int = protocol.MAX_FRAGMENT_BYTES,
        stall_timeout: float = protocol.STALL_TIMEOUT,
    ) -> None:
        self.restorer = restorer
        self.host = host
        self.port = port
        self.token = token or None
        self.allowed_origins = frozenset(allowed_origins)
        self.limits = limits or protocol.Limits()
        self.limits.check()
        self.models: dict[str, str] = {DEFAULT_MODEL: ""}
        for name, path in (models or {}).items():
            if name == DEFAULT_MODEL or not name or len(name) > 128:
                raise ValueError(f"bad model name {name!r} (1..128 characters, not {DEFAULT_MODEL!r})")
            if not Path(path).is_file():
                raise FileNotFoundError(f"model {name!r}: no weights file at {path}")
            self.models[name] = str(Path(path).resolve())
        self.tile = tile
        RestoreOptions(tile=tile)  # raises InvalidOptionError for a bad tile size
        if max_connections < 1 or max_active_jobs < 1:
            raise ValueError("max_connections and max_active_jobs must be at least 1")
        if max_fragment_bytes < 1024 or not stall_timeout > 0:
            raise ValueError("max_fragment_bytes must be at least 1024 and stall_timeout above 0")
        self.max_connections = max_connections
        self.max_fragment_bytes = min(max_fragment_bytes, self.limits.max_message_bytes)
        self.stall_timeout = float(stall_timeout)
        budget_bytes, budget_pixels = default_budget()
        self.queue = FairQueue(
            self.limits.max_jobs_per_client,
            self.limits.max_queue,
            max_bytes=max_queued_bytes or budget_bytes,
            max_pixels=max_queued_pixels or budget_pixels,
            client_share=client_share,
            max_active=max_active_jobs,
            big_pixels=1024 * 1024,
        )
        self._turns = Turns()
        self._mistakes = _Mistakes()
        info = restorer.info()
        self._mask_methods = [str(m) for m in info.get("mask_methods", [])]
        self._engines = sorted(
            {
                f"{m.get('engine', '?')} {m.get('precision', '?')}"
                for m in info.get("models", {}).values()
                if isinstance(m, dict)
            }
        )
        self._files = [
            f"{role} {m['name']}" for role, m in info.get("models", {}).items() if isinstance(m, dict) and m.get("name")
        ]
        self._welcome = protocol.Welcome(
            server_version=SERVER_VERSION,
            device=self._device_name(),
            models=list(self.models),
            formats=[str(f) for f in protocol.PixelFormat],
            options=protocol.options_schema(self._mask_methods, list(self.models)),
            limits=self.limits,
            info=_plain({**info, "limits": self.all_limits()}),
        )
        self._welcome_bytes = protocol.encode(self._welcome)
        self._server: Server | None = None
        self._worker: asyncio.Task | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[_Connection] = set()
        self._runs: set[asyncio.Task] = set()
        self._stopping = False

    # -- life cycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def welcome(self) -> protocol.Welcome:
        return self._welcome

    def all_limits(self) -> dict[str, Any]:
        """Every limit the server enforces: ``protocol.Limits``' fields (sent as ``welcome.limits``)
        and the newer ones (sent in ``welcome.info["limits"]`` with those, since a client of
        protocol version 1 refuses unknown fields in ``welcome.limits``)."""
        return {
            **dataclasses.asdict(self.limits),
            "max_connections": self.max_connections,
            "max_queued_bytes": self.queue.max_bytes,
            "max_queued_pixels": self.queue.max_pixels,
            "client_share": self.queue.client_share,
            "max_active_jobs": self.queue.max_active,
            "max_fragment_bytes": self.max_fragment_bytes,
            "stall_timeout": self.stall_timeout,
        }

    def _device_name(self) -> str:
        device = getattr(self.restorer, "device", None)
        name = str(device) if device is not None else str(self.restorer.info().get("device", "?"))
        if getattr(device, "type", None) == "cuda":
            import torch

            name += f" ({torch.cuda.get_device_name(device)})"
        return name

    async def start(self) -> None:
        """Start listening and the worker. Raises OSError when the address is taken."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.queue.max_active, thread_name_prefix="restore-worker"
        )
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            # A frame over max_fragment_bytes closes the connection (1009): a long message comes
            # in fragments, so that its header is checked before the rest is stored.
            max_size=(self.limits.max_message_bytes, self.max_fragment_bytes),
            max_queue=1,  # frames read ahead per connection: each at most max_fragment_bytes
            compression=None,
            ping_timeout=120,  # a client sending 256 MiB messages back to back answers pings late
            server_header=f"lineart-restore/{SERVER_VERSION}",
        )
        sockets = list(self._server.sockets)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._worker = asyncio.create_task(self._work(), name="restore-worker")
        log.info(
            "lineart-restore server %s listening on %s (device %s, %s; models: %s; mask methods: %s%s)",
            SERVER_VERSION,
            self.url,
            self._welcome.device,
            " + ".join(self._engines) or "?",
            ", ".join(self.models),
            ", ".join(self._mask_methods),
            "; token required" if self.token else "; no token",
        )
        log.info(
            "limits: %d connections, %d jobs per client, %d in all, queue budget %s and %.0f MP "
            "(%.0f%% per client), %d jobs running at once",
            self.max_connections,
            self.limits.max_jobs_per_client,
            self.limits.max_queue,
            mib(self.queue.max_bytes or 0),
            (self.queue.max_pixels or 0) / 1e6,
            100 * self.queue.client_share,
            self.queue.max_active,
        )
        if self._files:
            log.info("weights: %s", ", ".join(self._files))

    async def stop(self) -> None:
        """Stop: refuse new work, cancel the running job, close every connection, stop the worker."""
        if self._stopping:
            return
        self._stopping = True
        log.info("shutting down")
        for running in self.queue.running:
            running.cancel.set()
        for conn in list(self._connections):
            for job in self.queue.remove_client(conn):
                conn.jobs.pop(job.id, None)
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._runs:
            await asyncio.gather(*self._runs, return_exceptions=True)
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        log.info("stopped")

    async def serve_until(self, stop: asyncio.Event) -> None:
        """start(), wait for ``stop`` to be set, then stop()."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # -- handshake ---------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse foreign browser origins (403) and missing or wrong tokens (401) before upgrading."""
        try:
            origin = request.headers.get("Origin")
        except MultipleValuesError:
            return connection.respond(HTTPStatus.FORBIDDEN, "more than one Origin header\n")
        if origin is not None and origin not in self.allowed_origins:
            log.warning(
                "refused a connection from browser origin %s (start with --allow-origin to permit it)",
                printable(origin),
            )
            return connection.respond(
                HTTPStatus.FORBIDDEN, f"origin {printable(origin)} is not allowed to use this server\n"
            )
        if self.token is not None:
            try:
                auth = request.headers.get("Authorization", "")
            except MultipleValuesError:
                auth = ""
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
                log.warning("refused a connection with a missing or wrong token")
                return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
        if len(self._connections) >= self.max_connections:
            log.warning("refused a connection: %d are open (the limit, --max-connections)", len(self._connections))
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"too many connections: this server has {len(self._connections)} open, its limit "
                "(--max-connections); close another client or try again later\n",
            )
        return None

    # -- connections -------------------------------------------------------------------------
    async def _handler(self, ws: ServerConnection) -> None:
        conn = _Connection(ws)
        self._connections.add(conn)
        sender = asyncio.create_task(self._send_loop(conn))
        log.debug("%r connected", conn)
        try:
            while not self._stopping:
                await self._receive(conn)
        except ConnectionClosed:
            pass
        except _Stalled:
            reason = f"no fragment of the message for {self.stall_timeout:g} s; the server dropped it"
            self._mistakes.note(conn, "stalled", reason)
            await ws.close(1008, reason)
        finally:
            self._drop(conn)
            conn.outbox.put_nowait(None)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            self._connections.discard(conn)
            log.debug("%r disconnected", conn)

    async def _send_loop(self, conn: _Connection) -> None:
        while True:
            data = await conn.outbox.get()
            if data is None:
                return
            try:
                await conn.ws.send(data)
            except ConnectionClosed:
                return

    def _drop(self, conn: _Connection) -> None:
        """The client left: forget its waiting jobs and stop its running one."""
        conn.closed = True
        removed = self.queue.remove_client(conn)
        running = [job for job in self.queue.running if job.client is conn]
        for job in running:
            job.cancel.set()
        if removed or running:
            log.info(
                "%r left; cancelled %d queued job(s)%s", conn, len(removed), " and its running job" if running else ""
            )
        conn.jobs.clear()
        if removed:
            self._report_positions()

    def _error(self, conn: _Connection, code: str, message: str, request_id: str | None = None) -> None:
        conn.send(protocol.encode(protocol.Error(code=str(code), message=message[:4000], id=request_id)))

    def _refuse(self, conn: _Connection, code: str, message: str, request_id: str | None = None) -> None:
        """Answer a client's mistake with an error and note it for the log."""
        self._mistakes.note(conn, code, f"request {printable(request_id, 64)}: {message}" if request_id else message)
        self._error(conn, code, message, request_id)

    # -- receiving: whole messages, and long ones fragment by fragment ------------------------
    async def _receive(self, conn: _Connection) -> None:
        """Read the next message and act on it.

        A message in one frame (at most ``max_fragment_bytes``) is handled whole. A longer one
        comes in fragments: its header (type, id, size, format, a PNG's header) is read from the
        first ones and checked against the limits and the queue budget before anything more is
        stored. Accepted, its room in the budget is reserved and the fragments are gathered;
        refused, the answer goes out at once and the rest of the message is read and dropped.

        Raises:
            ConnectionClosed: the client left. _Stalled: no fragment for ``stall_timeout`` s.
        """
        parts = conn.ws.recv_streaming()
        first = await anext(parts)  # waits as long as the client likes: an idle connection
        if isinstance(first, str):  # a text message: refused, whatever its length
            await self._drain(parts)
            await self._on_message(conn, "")
            return
        head = protocol.peek(first, partial=True)
        if not isinstance(head.get("data"), protocol.Cut):  # the first frame may be the whole message
            part = await self._next_part(parts)
            if part is None:
                await self._on_message(conn, first)
                return
            buf = bytearray(first)
            del first
            while True:
                buf += part
                head = protocol.peek(buf, partial=True)
                if "data" in head or len(buf) >= protocol.HEADER_BYTES:
                    break
                part = await self._next_part(parts)
                if part is None:  # a short message sent in small fragments
                    await self._on_message(conn, bytes(buf))
                    return
            del part
        else:  # the pixels go on in the next fragments: the header is here
            buf = bytearray(first)
            del first
        job: Job | None = None
        try:
            job = self._fragmented_job(conn, head)
            self.queue.reserve(job)
        except QueueFullError as e:
            assert job is not None
            self._refuse(conn, protocol.ErrorCode.QUEUE_FULL, str(e), job.id)
            job = None
        except protocol.ProtocolError as e:
            self._refuse(conn, e.code, e.message, e.request_id)
            job = None
        if job is None:
            del buf
            await self._drain(parts)
            return
        try:
            await self._gather(conn, parts, buf, job, f"{head['width']}x{head['height']} {head['format']}")
        finally:
            buf.clear()
            self.queue.release(job)  # a no-op once the job was queued

    async def _gather(self, conn: _Connection, parts: Any, buf: bytearray, job: Job, what: str) -> None:
        """Receive the rest of an accepted request into ``buf`` (its room in the queue budget is
        reserved: ``job``), then decode and queue it."""
        room = _room(job.nbytes)
        while len(buf) <= room:
            part = await self._next_part(parts)
            if part is None:
                break
            buf += part
        else:
            buf.clear()
            self.queue.release(job)
            self._refuse(
                conn,
                protocol.ErrorCode.BAD_MESSAGE,
                f"the message is longer than {room} bytes, more than a {what} image and its "
                "options need; the rest of it was dropped",
                job.id,
            )
            await self._drain(parts)
            return
        try:
            msg = await asyncio.to_thread(protocol.decode, buf) if len(buf) > _DECODE_OFF_LOOP else protocol.decode(buf)
        except protocol.ProtocolError as e:
            self._refuse(conn, e.code, e.message, e.request_id)
            return
        finally:
            buf.clear()  # the message's bytes: decode() copied the pixels out
        self._dispatch(conn, msg, job)

    async def _next_part(self, parts: Any) -> Any:
        """The next fragment of the message being received, or None at its end.

        Raises:
            _Stalled: none came for ``stall_timeout`` seconds (the message's iterator is then
                unusable: the caller closes the connection).
        """

        async def step() -> Any:
            try:
                return await anext(parts)
            except StopAsyncIteration:
                return None

        try:
            return await asyncio.wait_for(step(), self.stall_timeout)
        except asyncio.TimeoutError:
            raise _Stalled from None

    async def _drain(self, parts: Any) -> None:
        """Read the rest of a refused message and drop it (websockets wants it read to its end)."""
        while await self._next_part(parts) is not None:
            pass

    def _header_job(self, conn: _Connection, head: Mapping[str, Any]) -> Job | None:
        """The job a restore request's header (``protocol.peek``) describes, its pixels and
        decoded bytes, checked against the pixel limit (not against the queue: the caller does).
        None when the header does not describe a restore request that could be valid.

        Raises:
            protocol.ProtocolError: ``duplicate_id``, ``too_large``, ``invalid_image`` (a PNG
                header).
        """
        width, height, fmt, rid = head.get("width"), head.get("height"), head.get("format"), head.get("id")
        if not (
            conn.greeted
            and head.get("type") == "restore"
            and type(width) is int
            and type(height) is int
            and width > 0
            and height > 0
            and fmt in protocol.PixelFormat._value2member_map_
        ):
            return None
        rid = rid if isinstance(rid, str) and 0 < len(rid) <= protocol.MAX_ID_LENGTH else None
        if rid is not None and rid in conn.jobs:
            raise protocol.ProtocolError(
                protocol.ErrorCode.DUPLICATE_ID, "this request id is already queued or running", rid
            )
        if width * height > self.limits.max_pixels:
            raise protocol.ProtocolError(protocol.ErrorCode.TOO_LARGE, self._too_many_pixels(width, height), rid)
        fmt = protocol.PixelFormat(fmt)
        try:
            nbytes = (
                images.decoded_size(fmt, width, height, head.get("data") or b"")
                if fmt is protocol.PixelFormat.PNG
                else protocol.expected_size(fmt, width, height)
            )
        except RestoreError as e:
            raise protocol.ProtocolError(e.code, str(e), rid) from None
        return Job(client=conn, id=rid or "", request=None, pixels=width * height, nbytes=nbytes or 0)

    def _fragmented_job(self, conn: _Connection, head: Mapping[str, Any]) -> Job:
        """:meth:`_header_job` for a message that came in fragments, whose header must be
        readable from its first ones (it cannot be decoded whole before it is checked)."""
        rid = head.get("id")
        rid = rid if isinstance(rid, str) and 0 < len(rid) <= protocol.MAX_ID_LENGTH else None
        if not conn.greeted:
            raise protocol.ProtocolError(protocol.ErrorCode.NOT_READY, "send a hello message first", rid)
        job = self._header_job(conn, head)
        version, width, height = head.get("v"), head.get("width"), head.get("height")
        v_ok = type(version) is int and version == 1
        if job is not None and rid is not None and v_ok:
            return job
        formats = protocol.PixelFormat._value2member_map_
        wrong = [
            name
            for name, ok in (
                ("type", head.get("type") == "restore"),
                ("v", v_ok),
                ("id", rid is not None),
                ("width", type(width) is int and width > 0),
                ("height", type(height) is int and height > 0),
                ("format", head.get("format") in formats),
            )
            if not ok
        ]
        raise protocol.ProtocolError(
            protocol.ErrorCode.BAD_MESSAGE,
            f"a message longer than one frame ({self.max_fragment_bytes} bytes) must be a restore request whose "
            f"type, v (1), id (1..{protocol.MAX_ID_LENGTH} characters), width, height (above 0) and format "
            f"({', '.join(formats)}) come before its data, within its first {protocol.HEADER_BYTES} bytes; "
            f"in this one these are missing or wrong: {', '.join(wrong)}",
            rid,
        )

    def _too_many_pixels(self, width: int, height: int) -> str:
        return (
            f"the image is {width}x{height} = {width * height} pixels; this server takes at most "
            f"{self.limits.max_pixels}"
        )

    def _precheck(self, conn: _Connection, raw: bytes) -> bool:
        """For a big restore message in one frame, check the queue budget from its header
        (``protocol.peek``) before the pixels are copied out of it; False when it was refused.
        Other problems are left to ``decode`` and the checks after it."""
        try:
            job = self._header_job(conn, protocol.peek(raw))
            if job is not None:
                self.queue.check(job)
        except QueueFullError as e:
            assert job is not None
            self._refuse(conn, protocol.ErrorCode.QUEUE_FULL, str(e), job.id or None)
            return False
        except protocol.ProtocolError:
            pass
        return True

    async def _on_message(self, conn: _Connection, raw: bytes | str) -> None:
        try:
            if isinstance(raw, bytes) and len(raw) > _DECODE_OFF_LOOP:
                if not self._precheck(conn, raw):
                    return
                msg = await asyncio.to_thread(protocol.decode, raw)
            else:
                msg = protocol.decode(raw)
        except protocol.ProtocolError as e:
            self._refuse(conn, e.code, e.message, e.request_id)
            return
        del raw
        self._dispatch(conn, msg)

    def _dispatch(self, conn: _Connection, msg: protocol.Message, reserved: Job | None = None) -> None:
        """Act on a decoded message (``reserved``: see :meth:`_on_restore`)."""
        if isinstance(msg, protocol.Hello):
            conn.greeted = True
            conn.name = printable(msg.client, 64)
            log.debug("%r said hello", conn)
            conn.send(self._welcome_bytes)
        elif not conn.greeted:
            self._refuse(conn, protocol.ErrorCode.NOT_READY, "send a hello message first", getattr(msg, "id", None))
        elif isinstance(msg, protocol.Restore):
            self._on_restore(conn, msg, reserved)
        elif isinstance(msg, protocol.Cancel):
            self._on_cancel(conn, msg.id)
        else:
            self._refuse(
                conn,
                protocol.ErrorCode.BAD_MESSAGE,
                f"clients do not send {msg.TYPE} messages (they send hello, restore and cancel)",
            )

    def _core_options(self, opts: protocol.Options) -> RestoreOptions:
        if str(opts.mask) not in self._mask_methods:
            raise InvalidOptionError(
                f"mask method {opts.mask} is not available on this server (it has: {', '.join(self._mask_methods)})"
            )
        name = opts.model if opts.model is not None else DEFAULT_MODEL
        if name not in self.models:
            raise InvalidOptionError(
                f'unknown model "{printable(name, 64)}"; this server has: {", ".join(self.models)}'
            )
        return RestoreOptions(
            mask=str(opts.mask),
            threshold=opts.threshold,
            theta=opts.theta,
            qf=opts.qf,
            background=str(opts.background),
            return_mask=opts.return_mask,
            model=self.models[name] or None,
            tile=self.tile if self.tile is not None else (CPU_TILE if self._welcome_device_is_cpu() else None),
            jpeg_consistency=opts.jpeg_consistency,
            jpeg_table=tuple(opts.jpeg_table) if opts.jpeg_table is not None else None,
            normalize_ink=opts.normalize_ink,
            ensemble=opts.ensemble,
        )

    def _welcome_device_is_cpu(self) -> bool:
        return getattr(getattr(self.restorer, "device", None), "type", "cpu") == "cpu"

    def _on_restore(self, conn: _Connection, msg: protocol.Restore, reserved: Job | None = None) -> None:
        """Check and queue a restore request; ``reserved``: the room its header reserved in the
        queue budget while it arrived in fragments (released when the request is refused)."""
        if msg.id in conn.jobs:
            self._refuse(conn, protocol.ErrorCode.DUPLICATE_ID, "this request id is already queued or running", msg.id)
            return
        pixels = msg.width * msg.height
        if pixels > self.limits.max_pixels:
            self._refuse(conn, protocol.ErrorCode.TOO_LARGE, self._too_many_pixels(msg.width, msg.height), msg.id)
            return
        try:
            options = self._core_options(msg.options)
            nbytes = images.decoded_size(msg.format, msg.width, msg.height, msg.data)
        except RestoreError as e:
            self._refuse(conn, e.code, str(e), msg.id)
            return
        job = Job(
            client=conn,
            id=msg.id,
            request=msg,
            options=options,
            enqueued_at=time.perf_counter(),
            pixels=pixels,
            nbytes=nbytes,
        )
        try:
            if reserved is not None and (reserved.id, reserved.pixels, reserved.nbytes) == (msg.id, pixels, nbytes):
                self.queue.admit(job, reserved)
            else:  # no reservation, or the whole message says otherwise than its header did
                if reserved is not None:
                    self.queue.release(reserved)
                self.queue.push(job)
        except QueueFullError as e:
            self._refuse(conn, protocol.ErrorCode.QUEUE_FULL, str(e), msg.id)
            return
        conn.jobs[msg.id] = job
        self._report_positions()
        assert self._wake is not None
        self._wake.set()

    def _on_cancel(self, conn: _Connection, request_id: str) -> None:
        job = conn.jobs.get(request_id)
        if job is None:
            return  # finished already, or never existed: nothing to do
        if self.queue.remove(job):
            conn.jobs.pop(request_id, None)
            self._error(conn, protocol.ErrorCode.CANCELLED, "cancelled before it started", request_id)
            self._report_positions()
        else:
            job.cancel.set()  # running: stops at the next tile or ensemble pass and the worker reports

    def _report_positions(self) -> None:
        depth = self.queue.depth
        for job, position in self.queue.positions().items():
            if job.last_position != position:
                job.last_position = position
                job.client.send(protocol.encode(protocol.Queued(id=job.id, position=position, depth=depth)))

    # -- the worker ---------------------------------------------------------------------------
    async def _work(self) -> None:
        """Start every job that may start (FairQueue.pop), each in a worker thread."""
        assert self._wake is not None
        while True:
            job = self.queue.pop()
            if job is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._report_positions()
            task = asyncio.create_task(self._run_job(job))
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)

    async def _run_job(self, job: Job) -> None:
        assert self._loop is not None and self._wake is not None
        conn: _Connection = job.client
        try:
            reply = await self._loop.run_in_executor(self._executor, self._run, job)
        except RuntimeError as e:  # the executor was shut down under us (server stopping)
            reply = protocol.encode(
                protocol.Error(code=protocol.ErrorCode.SHUTTING_DOWN, message=str(e)[:4000], id=job.id)
            )
        finally:
            self.queue.done(job)
            conn.jobs.pop(job.id, None)
            self._wake.set()
        conn.send(reply)
        del reply, job
        if self.queue.depth == 0:
            with contextlib.suppress(RuntimeError):  # executor shut down: the server is stopping
                await self._loop.run_in_executor(self._executor, release_memory)

    def _progress(self, job: Job) -> Any:
        """The job's progress reporter: ``report(fraction)`` from the pipeline (per tile), and
        ``report.step(kind, done, total)`` from the step hook, which moves the fraction on within
        a tile as its self-ensemble passes finish, and within the first :data:`PREP_SHARE` at the
        row-chunk steps of the whole-image preparation before the first tile."""
        loop = self._loop
        assert loop is not None
        conn: _Connection = job.client
        last = [0.0, -1.0, 0.0]  # time sent, fraction sent, the pipeline's last fraction
        passes = 2 if job.options is not None and job.options.mask == "learnt" else 1
        tiles = [0]  # tiles of the pipeline's current pass; 0 before the first tile
        prep = [0]  # row-chunk steps before the first tile

        def scaled(fraction: float) -> float:
            """The pipeline's fraction of its tiles as the job's (after its preparation)."""
            return fraction if fraction >= 1.0 else PREP_SHARE + (1.0 - PREP_SHARE) * fraction

        def send(fraction: float) -> None:
            now = time.perf_counter()
            fraction = min(max(float(fraction), 0.0), 1.0)
            if fraction <= last[1] or (fraction < 1.0 and now - last[0] < _PROGRESS_INTERVAL):
                return
            last[0], last[1] = now, fraction
            data = protocol.encode(protocol.Progress(id=job.id, fraction=fraction))
            loop.call_soon_threadsafe(conn.send, data)

        def report(fraction: float) -> None:
            last[2] = float(fraction)
            send(scaled(fraction) if fraction > 0.0 or tiles[0] else fraction)

        def step(kind: str, done: int, total: int) -> None:
            if kind == "tile":
                tiles[0] = max(total, 1)
            elif kind == "pass" and total > 0:
                send(min(scaled(last[2] + done / total / (passes * max(tiles[0], 1))), 0.999))
            elif kind == "rows" and not tiles[0]:
                prep[0] += 1  # the preparation's length is not known ahead: approach PREP_SHARE
                send(PREP_SHARE * prep[0] / (prep[0] + 16))

        report.step = step  # type: ignore[attr-defined]
        return report

    def _step_hook(self, job: Job, progress: Any) -> Any:
        """Called by the pipeline between tiles and ensemble passes: report, take turns, stop
        when cancelled."""

        def hook(kind: str, done: int, total: int) -> None:
            progress.step(kind, done, total)
            if not job.cancel.is_set():
                self._turns.step(job, job.cancel)
            if job.cancel.is_set():
                raise CancelledError("cancelled")

        return hook

    def _run(self, job: Job) -> bytes:
        """Run one job in the worker thread; returns the encoded result or error (never raises)."""
        req: protocol.Restore = job.request
        t_start = time.perf_counter()
        timings = {"queue": t_start - job.enqueued_at}
        try:
            if job.cancel.is_set():
                raise CancelledError("cancelled before it started")
            progress = self._progress(job)
            progress(0.0)
            arr = images.to_array(req.format, req.width, req.height, req.data, self.limits.max_pixels)
            t = time.perf_counter()
            timings["decode"] = t - t_start
            # Only the pipeline takes turns; decoding and encoding this job's pixels run beside
            # the other jobs' turns, so that they do not hold a small job up.
            self._turns.enter(job, job.cancel)
            try:
                with step_hook(self._step_hook(job, progress)):
                    res = self.restorer.restore(arr, job.options, progress=progress, cancel=job.cancel)
            finally:
                self._turns.leave(job)
            del arr
            timings["restore"] = time.perf_counter() - t
            t = time.perf_counter()
            if res.image.shape[:2] != (req.height, req.width):
                raise InvalidImageError(
                    f"the pipeline returned {res.image.shape[:2]} for a {req.height}x{req.width} request"
                )
            fmt, data = images.from_array(res.image, req.format)
            mask = images.mask_bytes(res.mask) if req.options.return_mask else None
            timings["encode"] = time.perf_counter() - t
            timings.update({f"pipeline.{k}": float(v) for k, v in res.timings.items()})
            timings["server_total"] = time.perf_counter() - t_start
            result = protocol.Result(
                id=job.id,
                width=req.width,
                height=req.height,
                format=fmt,
                data=data,
                mask=mask,
                qf_estimate=None if res.qf_estimate is None else float(res.qf_estimate),
                timings=timings,
                notes=[str(n)[:4000] for n in res.notes],
            )
            del res, data, mask
            log.info(
                "%r request %s: %dx%d %s done in %.2f s",
                job.client,
                printable(job.id, 64),
                req.width,
                req.height,
                req.format,
                timings["server_total"],
            )
            return protocol.encode(result)
        except images.PixelLimitError as e:
            code, message = protocol.ErrorCode.TOO_LARGE, str(e)
        except RestoreError as e:
            code, message = e.code, str(e)
            if job.cancel.is_set() and self._stopping:
                code, message = protocol.ErrorCode.SHUTTING_DOWN, "the server is shutting down"
            elif job.cancel.is_set():
                code, message = protocol.ErrorCode.CANCELLED, "cancelled"
        except MemoryError as e:
            code, message = protocol.ErrorCode.OUT_OF_MEMORY, f"the server ran out of memory ({e})"
        except protocol.ProtocolError as e:
            log.exception("request %s produced an invalid reply", printable(job.id, 64))
            code, message = protocol.ErrorCode.INTERNAL_ERROR, f"the server produced an invalid reply: {e}"
        except Exception as e:  # a bug: report it, keep serving
            log.exception("request %s failed", printable(job.id, 64))
            code, message = (
                protocol.ErrorCode.INTERNAL_ERROR,
                f"internal server error ({type(e).__name__}: {e}); please report it with the server log",
            )
        rid = printable(job.id, 64)
        if code in (protocol.ErrorCode.CANCELLED, protocol.ErrorCode.SHUTTING_DOWN):
            log.info("%r request %s cancelled after %.2f s", job.client, rid, time.perf_counter() - t_start)
        else:
            log.info("%r request %s failed: %s [%s]", job.client, rid, printable(message, 500), code)
        return protocol.encode(protocol.Error(code=str(code), message=message[:4000], id=job.id))


@contextlib.contextmanager
def serve_in_thread(restorer: Restorer, **kwargs: Any) -> Iterator[RestoreServer]:
    """Run a :class:`RestoreServer` on its own event loop in a background thread.

    Keyword arguments go to :class:`RestoreServer` (``port`` defaults to 0: a free port). Yields the
    started server (read ``server.url``); stops it and joins the thread on exit.
    """
    kwargs.setdefault("port", 0)
    server = RestoreServer(restorer, **kwargs)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []
    stop_event: list[asyncio.Event] = []

    async def main() -> None:
        stop = asyncio.Event()
        stop_event.append(stop)
        try:
            await server.start()
        except BaseException as e:
            failure.append(e)
            started.set()
            return
        started.set()
        try:
            await stop.wait()
        finally:
            await server.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), name="restore-server", daemon=True)
    thread.start()
    started.wait()
    if failure:
        thread.join()
        loop.close()
        raise failure[0]
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(stop_event[0].set)
        thread.join()
        loop.close()
