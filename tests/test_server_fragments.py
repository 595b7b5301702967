"""Long messages in fragments (RFC 6455 continuation frames), on the real server on loopback.

A frame over the server's ``max_fragment_bytes`` closes the connection, so a long request comes in
fragments; the server reads its header from the first ones and checks the limits and the queue
budget before it stores the rest (issue 31's queue flood). Small limits keep these tests quick:
4 KiB fragments, a 200 kB queue budget, a 4 s stall timeout.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
from test_server import (
    TILE,
    cpu_server_command,
    direct,
    drawing,
    make_models,
    raw_connection,
    recv_until,
    restore_msg,
    served_url,
    wait_idle,
    worker_held,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from core.pipeline import Restorer
from server import client, protocol
from server.app import serve_in_thread

FRAG = 4096
STALL = 4.0
LIMITS = protocol.Limits(max_message_bytes=4 * 2**20, max_pixels=600 * 600, max_jobs_per_client=3, max_queue=8)


@pytest.fixture(scope="module")
def restorer(tmp_path_factory):
    paths = make_models(tmp_path_factory.mktemp("fragment-models"))
    return Restorer.from_files(*paths, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def server(restorer):
    with serve_in_thread(
        restorer,
        tile=TILE,
        limits=LIMITS,
        max_fragment_bytes=FRAG,
        max_queued_bytes=200_000,
        client_share=1.0,
        stall_timeout=STALL,
    ) as srv:
        yield srv


def assert_room_given_back(srv, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while srv.queue.arriving or srv.queue.depth:
        assert time.monotonic() < deadline, "the server kept room for a message that is gone"
        time.sleep(0.01)


def test_a_long_request_comes_in_fragments_and_is_restored_as_sent(server, restorer):
    img = drawing(96, 128, channels=4)  # 48 KiB: 12 fragments
    with client.Client(server.url, token="") as c:
        assert c.welcome.info["limits"]["max_fragment_bytes"] == FRAG
        assert c.welcome.info["limits"]["stall_timeout"] == STALL
        res = c.restore(img.tobytes(), 128, 96, "rgba8", timeout=120)
    assert res.format == "rgba8"
    np.testing.assert_array_equal(np.frombuffer(res.data, np.uint8).reshape(96, 128, 4), direct(restorer, img).image)


def test_a_client_of_plain_websockets_and_msgpack_sends_fragments(server, restorer):
    """The recipe of docs/protocol.md (*Long messages*), without the project's modules."""
    img = drawing(80, 100)  # gray8, 8,000 bytes: two fragments and a bit
    with connect(server.url, compression=None, proxy=None, max_size=None) as ws:
        ws.send(msgpack.packb({"type": "hello", "v": 1, "client": "plain websockets"}))
        welcome = msgpack.unpackb(ws.recv(timeout=30))
        frame_limit = welcome["info"]["limits"]["max_fragment_bytes"]
        request = {"type": "restore", "v": 1, "id": "a1", "width": 100, "height": 80, "format": "gray8"}
        request["data"] = img.tobytes()  # the pixels last: the header is in the first fragment
        message = msgpack.packb(request, use_bin_type=True)
        ws.send([message[i : i + frame_limit] for i in range(0, len(message), frame_limit)])
        while (reply := msgpack.unpackb(ws.recv(timeout=60)))["type"] != "result":
            assert reply["type"] in ("queued", "progress"), reply
    np.testing.assert_array_equal(np.frombuffer(reply["data"], np.uint8).reshape(80, 100), direct(restorer, img).image)


def test_a_request_over_the_budget_is_refused_from_its_first_fragment(server, monkeypatch):
    """The refusal comes while the rest of the message is still unsent (the sender waits for it
    after the first fragment), nothing of it is decoded, and the connection goes on working."""
    decoded = []
    real = protocol.decode
    monkeypatch.setattr(protocol, "decode", lambda raw: decoded.append(len(raw)) or real(raw))
    big = drawing(200, 200, channels=4)  # 160,000 bytes of a 200,000-byte budget
    refused = threading.Event()
    replies: list = []

    def read(ws):
        try:
            while True:
                msg = protocol.decode(ws.recv(timeout=60))
                replies.append(msg)
                if isinstance(msg, protocol.Error) and msg.id == "second":
                    refused.set()
        except (ConnectionClosed, TimeoutError):
            pass

    def waiting_for_the_refusal(frame):
        parts = protocol.fragments(frame, FRAG)
        yield parts[0]
        assert refused.wait(30), "no refusal before the rest of the message"
        yield from parts[1:]

    with raw_connection(server.url) as ws, worker_held(server):  # "first" cannot finish meanwhile
        ws.send(protocol.fragments(restore_msg("first", big, "rgba8"), FRAG))
        recv_until(ws, lambda m: isinstance(m, protocol.Queued) and m.id == "first")
        reader = threading.Thread(target=read, args=(ws,), daemon=True)
        reader.start()
        ws.send(waiting_for_the_refusal(restore_msg("second", big, "rgba8")))
        err = next(m for m in replies if isinstance(m, protocol.Error) and m.id == "second")
        assert err.code == "queue_full" and "the budget is" in err.message, err
        assert sum(n > FRAG for n in decoded) == 1  # the first request only
        assert server.queue.load() == (160_000, 40_000)
    assert_room_given_back(server)  # closing the connection cancelled "first"
    with raw_connection(server.url) as ws:  # and the server serves on
        ws.send(protocol.fragments(restore_msg("third", big, "rgba8"), FRAG))
        res, _ = recv_until(ws, lambda m: isinstance(m, (protocol.Result, protocol.Error)), timeout=120)
        assert isinstance(res, protocol.Result), res


def test_one_frame_over_the_fragment_limit_closes_with_1009(server):
    ws = raw_connection(server.url)
    ws.send(restore_msg("whole", drawing(96, 128, channels=4), "rgba8"))  # one 48 KiB frame
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=30)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    assert str(FRAG) in info.value.rcvd.reason, info.value.rcvd.reason
    ws.close()
    assert_room_given_back(server)
    res = client.restore(server.url, drawing(24, 32).tobytes(), 32, 24, "gray8", token="", timeout=60)
    assert res.width == 32


@pytest.mark.parametrize(
    "fields, wrong",
    [
        ({"junk": b"x" * 100_000, "type": "restore"}, "type, v, id, width, height, format"),  # header too late
        ({"type": "restore", "v": 1, "id": "h", "width": 100, "height": 100, "format": "cmyk"}, "format"),
        ({"type": "hello", "v": 1, "client": "x" * 100_000}, "type, id, width, height, format"),
    ],
)
def test_a_fragmented_message_without_a_readable_header_is_refused(server, fields, wrong):
    message = msgpack.packb({**fields, "data": b"\xff" * 100_000}, use_bin_type=True)
    with raw_connection(server.url) as ws:
        ws.send(protocol.fragments(message, FRAG))
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
        assert err.code == "bad_message", err
        assert f"within its first {protocol.HEADER_BYTES} bytes" in err.message
        assert err.message.endswith(f"missing or wrong: {wrong}"), err.message
        ws.send(restore_msg("after", drawing(24, 32), "gray8"))  # the connection lives on
        res, _ = recv_until(ws, lambda m: isinstance(m, (protocol.Result, protocol.Error)), timeout=60)
        assert isinstance(res, protocol.Result), res
    assert_room_given_back(server)


def test_a_message_longer_than_its_image_needs_is_cut_off(server):
    request = {"type": "restore", "v": 1, "id": "pad", "width": 2, "height": 2, "format": "gray8", "data": b"\0" * 4}
    message = msgpack.packb({**request, "junk": b"\0" * (2 * 2**20)}, use_bin_type=True)
    with raw_connection(server.url) as ws:
        ws.send(protocol.fragments(message, FRAG))
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
        assert err.code == "bad_message" and err.id == "pad" and "2x2 gray8" in err.message, err
    assert_room_given_back(server)


def test_fragments_before_hello_are_not_ready(server):
    with raw_connection(server.url, hello=False) as ws:
        ws.send(protocol.fragments(restore_msg("early", drawing(96, 128, channels=4), "rgba8"), FRAG))
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
        assert err.code == "not_ready" and err.id == "early"


def test_a_stalled_sender_is_dropped_and_its_room_freed(server):
    frame = restore_msg("slow", drawing(200, 200, channels=4), "rgba8")
    resume = threading.Event()

    def stalling():
        parts = protocol.fragments(frame, FRAG)
        yield from parts[:3]
        resume.wait(60)
        yield from parts[3:]

    def send():
        try:
            ws.send(stalling())
        except ConnectionClosed:
            pass

    ws = raw_connection(server.url)
    sender = threading.Thread(target=send, daemon=True)
    t0 = time.monotonic()
    sender.start()
    deadline = t0 + STALL
    while not server.queue.arriving:  # the header reserved its room in the budget...
        assert time.monotonic() < deadline, "no room reserved from the header"
        time.sleep(0.005)
    assert server.queue.load() == (160_000, 40_000)
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=STALL + 30)
    waited = time.monotonic() - t0
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008, info.value
    assert f"no fragment of the message for {STALL:g} s" in info.value.rcvd.reason
    assert waited >= STALL - 0.5
    assert server.queue.load() == (0, 0) and not server.queue.arriving  # ...and gave it back
    resume.set()
    sender.join(10)
    ws.close()
    wait_idle(server)


def test_the_command_line_sets_the_fragment_limit_and_stall_timeout(tmp_path):
    import os
    import subprocess

    paths = make_models(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    cmd = cpu_server_command(paths, "--no-token", "--max-fragment-kb", "2", "--stall-timeout", "7.5")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).parent.parent)
    try:
        url, _ = served_url(proc)
        with client.Client(url, token="") as c:
            assert c.welcome.info["limits"]["max_fragment_bytes"] == 2048
            assert c.welcome.info["limits"]["stall_timeout"] == 7.5
            assert len(c._wire(b"\0" * 5000)) == 3
            res = c.restore(drawing(48, 64, channels=4).tobytes(), 64, 48, "rgba8", timeout=120)
            assert res.width == 64
    finally:
        proc.kill()
        proc.wait()


def test_peek_reads_a_header_from_the_first_fragment():
    msg = protocol.encode(
        protocol.Restore(id="x", width=3, height=2, format="png", data=b"\x89PNG\r\n\x1a\n" + b"z" * 100)
    )
    head = protocol.peek(msg[:64], head=4, partial=True)
    assert head == {"type": "restore", "v": 1, "id": "x", "width": 3, "height": 2, "format": "png", "data": b"\x89PNG"}
    assert isinstance(head["data"], protocol.Cut)  # the message goes on
    assert not isinstance(protocol.peek(msg, partial=True)["data"], protocol.Cut)
    assert protocol.peek(msg[:64], partial=False) == {}  # a whole message's reading refuses a cut one
    assert protocol.peek(msg[:17], partial=True) == {"type": "restore", "v": 1}
    assert [len(p) for p in protocol.fragments(msg, 50)] == [50, 50, 50, len(msg) - 150]
    assert b"".join(protocol.fragments(msg, 50)) == msg
