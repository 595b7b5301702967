"""A fair job queue: round-robin between clients, FIFO within a client, bounded per client and overall.

Pure Python (no asyncio, no torch) so its ordering rules are tested on their own. The server owns
one :class:`FairQueue`; a single worker takes jobs from it one at a time.

Ordering: clients take turns. Each turn, the client at the front of the rotation gives its oldest
job, then moves to the back of the rotation if it still has jobs waiting. A client with one job is
not stuck behind another client's ten.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Hashable

__all__ = ["Job", "QueueFullError", "FairQueue"]


@dataclass(eq=False)
class Job:
    """One restore request on its way through the server.

    Attributes:
        client: key of the connection that sent it (hashable, compared by identity).
        id: the client's request id.
        request: the decoded ``protocol.Restore``.
        options: what the worker passes to the pipeline (``core.pipeline.RestoreOptions``).
        cancel: set to stop the job (checked between tiles by the pipeline).
        enqueued_at: ``time.perf_counter()`` when it was queued.
        last_position: the last position reported to the client (to report changes only).
    """

    client: Hashable
    id: str
    request: Any
    options: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)
    enqueued_at: float = 0.0
    last_position: int | None = None


class QueueFullError(Exception):
    """The client, or the whole server, has as many jobs as allowed."""


class FairQueue:
    """Jobs waiting to run, plus the one running.

    Args:
        max_per_client: queued plus running jobs one client may have.
        max_total: queued plus running jobs over all clients.

    Not thread-safe: use it from one thread (the server's event loop).
    """

    def __init__(self, max_per_client: int, max_total: int) -> None:
        if max_per_client < 1 or max_total < 1:
            raise ValueError("queue limits must be at least 1")
        self.max_per_client = max_per_client
        self.max_total = max_total
        self._waiting: OrderedDict[Hashable, deque[Job]] = OrderedDict()
        self.running: Job | None = None

    def __len__(self) -> int:
        """Jobs waiting (not counting the running one)."""
        return sum(len(q) for q in self._waiting.values())

    @property
    def depth(self) -> int:
        """Jobs waiting plus the running one."""
        return len(self) + (self.running is not None)

    def count(self, client: Hashable) -> int:
        """Jobs of ``client``, waiting or running."""
        q = self._waiting.get(client)
        return (len(q) if q else 0) + (self.running is not None and self.running.client == client)

    def find(self, client: Hashable, request_id: str) -> Job | None:
        """The live (waiting or running) job of ``client`` with ``request_id``."""
        if self.running is not None and self.running.client == client and self.running.id == request_id:
            return self.running
        for job in self._waiting.get(client, ()):
            if job.id == request_id:
                return job
        return None

    def push(self, job: Job) -> None:
        """Queue ``job`` behind the client's other jobs.

        Raises:
            QueueFullError: with a message naming the limit that was hit.
        """
        if self.count(job.client) >= self.max_per_client:
            raise QueueFullError(
                f"this client already has {self.max_per_client} request(s) queued or running (the limit); "
                "wait for a result before sending more"
            )
        if self.depth >= self.max_total:
            raise QueueFullError(f"the server already has {self.max_total} requests queued (the limit); try again later")
        self._waiting.setdefault(job.client, deque()).append(job)

    def pop(self) -> Job | None:
        """Take the next job (round-robin between clients) and make it the running one.

        The previous running job must have been finished with :meth:`done` first.
        """
        assert self.running is None, "pop() while a job is running"
        if not self._waiting:
            return None
        client, q = next(iter(self._waiting.items()))
        job = q.popleft()
        if q:
            self._waiting.move_to_end(client)
        else:
            del self._waiting[client]
        self.running = job
        return job

    def done(self, job: Job) -> None:
        """Mark the running ``job`` as finished."""
        if self.running is job:
            self.running = None

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
        """Waiting jobs in the order they will run if nothing else arrives."""
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
        """For each waiting job, how many jobs run before it (the running one included)."""
        ahead = int(self.running is not None)
        return {job: ahead + i for i, job in enumerate(self.order())}
