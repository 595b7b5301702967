"""The server's fair job queue (server/jobs.py): round-robin order, positions, limits, removal."""

from __future__ import annotations

import pytest

from server.jobs import FairQueue, Job, QueueFullError


def _jobs(client, n):
    return [Job(client=client, id=f"{client}{i}", request=None) for i in range(n)]


def test_clients_take_turns_and_keep_their_own_order():
    q = FairQueue(max_per_client=10, max_total=100)
    for job in _jobs("a", 3) + _jobs("b", 1) + _jobs("c", 2):
        q.push(job)
    assert [j.id for j in q.order()] == ["a0", "b0", "c0", "a1", "c1", "a2"]
    ran = []
    while (job := q.pop()) is not None:
        ran.append(job.id)
        q.done(job)
    assert ran == ["a0", "b0", "c0", "a1", "c1", "a2"]
    assert q.depth == 0 and len(q) == 0


def test_a_newcomer_does_not_wait_behind_a_long_queue():
    q = FairQueue(10, 100)
    for job in _jobs("a", 5):
        q.push(job)
    first = q.pop()
    (late,) = _jobs("b", 1)
    q.push(late)
    positions = q.positions()
    assert positions[late] == 2  # the running a0, then a1, then b0
    q.done(first)
    assert q.pop().id == "a1" and q.positions()[late] == 1


def test_positions_count_the_running_job_and_depth():
    q = FairQueue(10, 100)
    a = _jobs("a", 2)
    for job in a:
        q.push(job)
    assert q.positions() == {a[0]: 0, a[1]: 1}
    q.pop()
    assert q.positions() == {a[1]: 1}
    assert q.depth == 2 and len(q) == 1 and q.count("a") == 2


def test_limits_per_client_and_overall():
    q = FairQueue(max_per_client=2, max_total=3)
    a = _jobs("a", 3)
    q.push(a[0])
    q.push(a[1])
    with pytest.raises(QueueFullError, match="this client"):
        q.push(a[2])
    running = q.pop()  # the running job still counts for its client
    with pytest.raises(QueueFullError, match="this client"):
        q.push(a[2])
    q.done(running)
    q.push(a[2])
    q.push(_jobs("b", 1)[0])
    with pytest.raises(QueueFullError, match="the server"):
        q.push(_jobs("c", 1)[0])


def test_remove_find_and_remove_client():
    q = FairQueue(10, 100)
    a, b = _jobs("a", 3), _jobs("b", 2)
    for job in a + b:
        q.push(job)
    assert q.find("a", "a1") is a[1] and q.find("b", "a1") is None
    assert q.remove(a[1]) and not q.remove(a[1])
    assert [j.id for j in q.order()] == ["a0", "b0", "a2", "b1"]
    assert q.remove_client("b") == b
    assert [j.id for j in q.order()] == ["a0", "a2"]
    running = q.pop()
    assert q.find("a", "a0") is running and not q.remove(running)
    assert q.pop() is None  # one job at a time (max_active=1)


def test_bad_limits_are_refused():
    with pytest.raises(ValueError):
        FairQueue(0, 10)
