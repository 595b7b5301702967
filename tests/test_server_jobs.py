"""The server's fair job queue (server/jobs.py): round-robin order, positions, limits, removal."""

from __future__ import annotations

import threading
import time

import pytest

from server.jobs import FairQueue, Job, QueueFullError, Turns


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


def _waiting_for_turn(turns: Turns, key) -> None:
    deadline = time.monotonic() + 10
    while key not in turns._waiting:
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_turns_hand_over_at_steps_to_the_job_that_computed_least():
    turns = Turns(credit=0.0)
    log = []
    turns.enter("a")
    turns.step("a")  # nobody waits: "a" keeps the turn
    time.sleep(0.02)  # "a" has computed 20 ms
    b = threading.Thread(target=lambda: (turns.enter("b"), log.append("b ran"), turns.leave("b")))
    b.start()
    _waiting_for_turn(turns, "b")
    assert turns.holder == "a" and log == []  # "b" waits for a step of "a"
    turns.step("a")  # "b" joined with the least time of the others minus 0 s credit... and "a" spent more
    log.append("a back")
    b.join()
    turns.leave("a")
    assert log == ["b ran", "a back"] and turns.holder is None


def test_a_cancelled_waiting_job_gets_the_turn_next():
    turns = Turns(credit=100.0)
    turns.enter("a")
    cancel = threading.Event()
    order = []
    threads = [
        threading.Thread(target=lambda k=k, c=c: (turns.enter(k, c), order.append(k), turns.leave(k)))
        for k, c in (("b", None), ("c", cancel))
    ]
    threads[0].start()
    _waiting_for_turn(turns, "b")
    threads[1].start()
    _waiting_for_turn(turns, "c")
    cancel.set()
    deadline = time.monotonic() + 10
    while "c" not in turns._urgent:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    turns.leave("a")
    for t in threads:
        t.join()
    assert order == ["c", "b"]


def test_budget_and_active_jobs():
    q = FairQueue(10, 100, max_bytes=1000, max_pixels=10**6, client_share=0.5, max_active=2, big_pixels=100)
    a = [Job(client="a", id=f"a{i}", request=None, nbytes=400, pixels=400) for i in range(2)]
    b = Job(client="b", id="b", request=None, nbytes=400, pixels=50)
    q.push(a[0])
    with pytest.raises(QueueFullError, match="one client's share is 0 MiB"):
        q.push(a[1])  # 800 > 500, the client's share
    q.push(b)
    with pytest.raises(QueueFullError, match="the budget is"):
        q.push(Job(client="c", id="c", request=None, nbytes=300, pixels=10))  # 1100 > 1000
    big2 = Job(client="d", id="d", request=None, nbytes=100, pixels=500)
    q.push(big2)
    assert q.pop() is a[0] and q.pop() is b  # a big one and a small one run together
    assert q.pop() is None  # max_active, and "d" is big too
    q.done(b)
    assert q.pop() is None  # room, but a big job runs already
    q.done(a[0])
    assert q.pop() is big2
    assert FairQueue(1, 1, max_bytes=1).push(Job(client="x", id="x", request=None, nbytes=10)) is None  # alone: let in
