"""The server's scheduling: a fair, bounded job queue, and turns between the jobs that run.

Pure Python (no asyncio, no torch) so that its rules are tested on their own.

:class:`FairQueue` - which job starts next. Clients take turns: each turn, the client at the front
of the rotation gives its oldest job, then moves to the back of the rotation if it still has jobs
waiting. A client with one job is not stuck behind another client's ten. A few jobs run at once
(``max_active``, each of another client, at most one of them big), so that a small job need not
wait for a huge one to finish. The queue is bounded by count (per client and overall) and by a
budget of decoded image bytes and pixels, with a share per client; a job over a limit is refused
with :class:`QueueFullError`, whose message gives the numbers. A request still arriving holds a
reservation (:meth:`FairQueue.reserve`), counted like a queued job, from its header on.

:class:`Turns` - which running job computes now. The running jobs' threads take turns at step
boundaries (between tiles and self-ensemble passes, ``core.tiling.step_hook``): only the thread
holding the turn runs, and at each step the turn goes to the waiting job that has computed least
(a newcomer starts with up to ``credit`` seconds of head start). A small job sent while a huge
one runs is therefore done in about its own time, and two huge jobs alternate tile by tile.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Job", "QueueFullError", "FairQueue", "Turns", "mib"]


def mib(n: float) -> str:
    """``n`` bytes in MiB for messages ("256 MiB")."""
    return f"{n / 2**20:.0f} MiB"


@dataclass(eq=False)
class Job:
    """One restore request on its way through the server.

    Attributes:
        client: key of the connection that sent it (hashable, compared by identity).
        id: the client's request id.
        request: the decoded ``protocol.Restore``.
        options: what the worker passes to the pipeline (``core.pipeline.RestoreOptions``).
        cancel: set to stop the job (checked between tiles and ensemble passes).
        enqueued_at: ``time.perf_counter()`` when it was queued.
        last_position: the last position reported to the client (to report changes only).
        pixels: ``width * height``.
        nbytes: the image's size decoded (raw pixel bytes; for PNG, from its header).
    """

    client: Hashable
    id: str
    request: Any
    options: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)
    enqueued_at: float = 0.0
    last_position: int | None = None
    pixels: int = 0
    nbytes: int = 0


class QueueFullError(Exception):
    """The client, or the whole server, has as many jobs (or as much image data) as allowed."""


class FairQueue:
    """Jobs waiting to run, plus the running ones.

    Args:
        max_per_client: queued plus running jobs one client may have.
        max_total: queued plus running jobs over all clients.
        max_bytes, max_pixels: budget of decoded image bytes and of pixels over every queued and
            running job (None: no budget). A job is let in over it only when the server has none.
        client_share: the part (0..1] of each budget one client may use.
        max_active: jobs running at once (each of another client).
        big_pixels: jobs of more pixels than this are big; one big job runs at a time.

    Not thread-safe: use it from one thread (the server's event loop).
    """

    def __init__(
        self,
        max_per_client: int,
        max_total: int,
        *,
        max_bytes: int | None = None,
        max_pixels: int | None = None,
        client_share: float = 1.0,
        max_active: int = 1,
        big_pixels: int | None = None,
    ) -> None:
        if max_per_client < 1 or max_total < 1 or max_active < 1:
            raise ValueError("queue limits must be at least 1")
        if not 0.0 < client_share <= 1.0:
            raise ValueError(f"client_share must be in (0, 1], got {client_share}")
        self.max_per_client = max_per_client
        self.max_total = max_total
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.client_share = client_share
        self.max_active = max_active
        self.big_pixels = big_pixels
        self._waiting: OrderedDict[Hashable, deque[Job]] = OrderedDict()
        self.running: list[Job] = []
        self.arriving: list[Job] = []

    def __len__(self) -> int:
        """Jobs waiting (not counting the running ones)."""
        return sum(len(q) for q in self._waiting.values())

    @property
    def depth(self) -> int:
        """Jobs waiting plus the running ones and the reservations of requests still arriving."""
        return len(self) + len(self.running) + len(self.arriving)

    def _jobs(self, client: Hashable | None = None) -> list[Job]:
        waiting = (j for q in self._waiting.values() for j in q) if client is None else self._waiting.get(client, ())
        others = (*self.running, *self.arriving)
        return [*waiting, *(j for j in others if client is None or j.client == client)]

    def count(self, client: Hashable) -> int:
        """Jobs of ``client``, waiting or running."""
        return len(self._jobs(client))

    def load(self, client: Hashable | None = None) -> tuple[int, int]:
        """Decoded bytes and pixels of the queued and running jobs (of ``client``, or of all)."""
        jobs = self._jobs(client)
        return sum(j.nbytes for j in jobs), sum(j.pixels for j in jobs)

    def find(self, client: Hashable, request_id: str) -> Job | None:
        """The live (waiting or running) job of ``client`` with ``request_id``."""
        for job in self._jobs(client):
            if job.id == request_id:
                return job
        return None

    def push(self, job: Job) -> None:
        """Queue ``job`` behind the client's other jobs.

        Raises:
            QueueFullError: with a message naming the limit that was hit and the numbers.
        """
        self.check(job)
        self._waiting.setdefault(job.client, deque()).append(job)

    def reserve(self, job: Job) -> None:
        """Hold room for ``job`` while its message arrives (it counts like a queued job but does
        not start); :meth:`admit` queues it, :meth:`release` gives the room back.

        Raises:
            QueueFullError: as :meth:`push`.
        """
        self.check(job)
        self.arriving.append(job)

    def admit(self, job: Job, reserved: Job | None = None) -> None:
        """Queue ``job`` in the room reserved for it (by ``reserved``, default: ``job`` itself)
        without checking the limits again: its message arrived whole."""
        self.release(reserved if reserved is not None else job)
        self._waiting.setdefault(job.client, deque()).append(job)

    def release(self, job: Job) -> None:
        """Give back the room reserved for ``job`` (refused, or its client left)."""
        if job in self.arriving:
            self.arriving.remove(job)

    def check(self, job: Job) -> None:
        """Raise :class:`QueueFullError` when :meth:`push` would refuse ``job`` now."""
        if self.count(job.client) >= self.max_per_client:
            raise QueueFullError(
                f"this client already has {self.max_per_client} request(s) queued or running (the limit); "
                "wait for a result before sending more"
            )
        if self.depth >= self.max_total:
            raise QueueFullError(
                f"the server already has {self.max_total} requests queued (the limit); try again later"
            )
        if self.depth:
            self._check_budget(job)

    def _check_budget(self, job: Job) -> None:
        total_bytes, total_pixels = self.load()
        mine_bytes, mine_pixels = self.load(job.client)
        for what, budget, total, mine, need, unit in (
            ("image data", self.max_bytes, total_bytes, mine_bytes, job.nbytes, mib),
            ("pixels", self.max_pixels, total_pixels, mine_pixels, job.pixels, lambda n: f"{n / 1e6:.1f} MP"),
        ):
            if budget is None:
                continue
            if total + need > budget:
                raise QueueFullError(
                    f"the server's queued and running jobs hold {unit(total)} of {what} and this image needs "
                    f"{unit(need)}; the budget is {unit(budget)}. Try again when a job has finished"
                )
            share = int(budget * self.client_share)
            if mine and mine + need > share:
                raise QueueFullError(
                    f"this client's queued and running jobs hold {unit(mine)} of {what} and this image needs "
                    f"{unit(need)}; one client's share is {unit(share)}. Wait for a result before sending more"
                )

    def _startable(self, job: Job) -> bool:
        if any(r.client == job.client for r in self.running):
            return False
        big = self.big_pixels is not None and job.pixels > self.big_pixels
        return not (big and any(r.pixels > self.big_pixels for r in self.running))

    def pop(self) -> Job | None:
        """Take the next job that may start now (round-robin between clients) and mark it running.

        None when nothing waits, ``max_active`` jobs run, or every waiting client already has a
        running job (or only big jobs wait while a big one runs).
        """
        if len(self.running) >= self.max_active:
            return None
        for client, q in self._waiting.items():
            if not self._startable(q[0]):
                continue
            job = q.popleft()
            if q:
                self._waiting.move_to_end(client)
            else:
                del self._waiting[client]
            self.running.append(job)
            return job
        return None

    def done(self, job: Job) -> None:
        """Mark the running ``job`` as finished."""
        if job in self.running:
            self.running.remove(job)

    def remove(self, job: Job) -> bool:
        """Take a waiting ``job`` out of the queue. False when it is not waiting (running or gone)."""
        q = self._waiting.get(job.client)
        if not q:
            return False
        try:
            q.remove(job)
        except ValueError:
            return False
        if not q:
            del self._waiting[job.client]
        return True

    def remove_client(self, client: Hashable) -> list[Job]:
        """Take every waiting job of ``client`` out of the queue and return them."""
        return list(self._waiting.pop(client, ()))

    def order(self) -> list[Job]:
        """Waiting jobs in the order they will start if nothing else arrives."""
        queues = [list(q) for q in self._waiting.values()]
        out: list[Job] = []
        i = 0
        while queues:
            q = queues[i]
            out.append(q.pop(0))
            if q:
                i += 1
            else:
                queues.pop(i)
            if queues:
                i %= len(queues)
        return out

    def positions(self) -> dict[Job, int]:
        """For each waiting job, how many jobs run before it (the running ones included)."""
        ahead = len(self.running)
        return {job: ahead + i for i, job in enumerate(self.order())}


class Turns:
    """Lets one of several threads compute at a time, handing the turn over at step boundaries.

    Each running job's thread calls :meth:`enter` before its work, :meth:`step` at every step
    boundary and :meth:`leave` at the end. At a step the turn goes to the waiting job that has
    held it for the least time, if that is less than the caller's; a job joins with the least
    time of the others minus ``credit`` seconds (at least 0), so a newcomer runs first for up to
    ``credit`` seconds and then the jobs share. A waiting job whose ``cancel`` is set gets the turn
    next, so that it can stop.

    Thread-safe. Keys are any hashable values (the server uses its jobs).
    """

    def __init__(self, credit: float = 2.0) -> None:
        self.credit = credit
        self._cond = threading.Condition()
        self._holder: Hashable | None = None
        self._since = 0.0
        self._used: dict[Hashable, float] = {}
        self._waiting: list[Hashable] = []
        self._urgent: list[Hashable] = []

    @property
    def holder(self) -> Hashable | None:
        return self._holder

    def _grant(self, key: Hashable) -> None:
        self._holder = key
        self._since = time.perf_counter()
        self._cond.notify_all()

    def _charge(self) -> None:
        now = time.perf_counter()
        if self._holder is not None:
            self._used[self._holder] += now - self._since
        self._since = now

    def _next(self) -> Hashable:
        if self._urgent:
            key = self._urgent.pop(0)
        else:
            key = min(self._waiting, key=lambda k: self._used[k])
        self._waiting.remove(key)
        return key

    def _wait(self, key: Hashable, cancel: threading.Event | None) -> None:
        while self._holder is not key:
            self._cond.wait(0.05)
            if cancel is not None and cancel.is_set() and key not in self._urgent and key in self._waiting:
                self._urgent.append(key)

    def enter(self, key: Hashable, cancel: threading.Event | None = None) -> None:
        """Join and wait for the first turn."""
        with self._cond:
            others = list(self._used.values())
            self._used[key] = max(0.0, min(others, default=0.0) - self.credit)
            if self._holder is None and not self._waiting:
                self._grant(key)
                return
            self._waiting.append(key)
            if self._holder is None:
                self._grant(self._next())
            self._wait(key, cancel)

    def step(self, key: Hashable, cancel: threading.Event | None = None) -> None:
        """A step boundary of the holder ``key``: hand the turn over if another job is due, and
        wait for it to come back."""
        with self._cond:
            if self._holder is not key:
                raise RuntimeError("Turns.step() from a thread that does not hold the turn")
            self._charge()
            if not self._waiting:
                return
            due = self._urgent[0] if self._urgent else min(self._waiting, key=lambda k: self._used[k])
            if not self._urgent and self._used[due] >= self._used[key]:
                return
            nxt = self._next()
            self._waiting.append(key)
            self._grant(nxt)
            self._wait(key, cancel)

    def leave(self, key: Hashable) -> None:
        """Leave (after the work, or on an error), handing the turn on when holding it."""
        with self._cond:
            if self._holder is key:
                self._charge()
                self._holder = None
                if self._waiting:
                    self._grant(self._next())
            if key in self._waiting:
                self._waiting.remove(key)
            if key in self._urgent:
                self._urgent.remove(key)
            self._used.pop(key, None)
            self._cond.notify_all()
