"""Fuzz the real server: thousands of random and mutated messages on one connection, then check that
it still answers that connection and still restores a valid request for a new client correctly.

Bounded for a small CI machine: the images in valid-looking requests are tiny and the limits low.
"""

from __future__ import annotations

import threading
import time

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_server import direct, drawing, make_models, raw_connection

from core.pipeline import Restorer
from server import client, protocol
from server.app import serve_in_thread

LIMITS = protocol.Limits(max_message_bytes=64 * 1024, max_pixels=64 * 64, max_jobs_per_client=2, max_queue=4)
TILE = 64


class Receiver:
    """Reads every message the server sends on a connection, checking each one decodes."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.counts: dict[str, int] = {}
        self.bad: list[bytes] = []
        self.closed: BaseException | None = None
        self.welcomes = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for raw in self.ws:
                try:
                    msg = protocol.decode(raw)
                except protocol.ProtocolError:
                    self.bad.append(raw)
                    continue
                key = msg.code if isinstance(msg, protocol.Error) else msg.TYPE
                self.counts[key] = self.counts.get(key, 0) + 1
                self.welcomes += isinstance(msg, protocol.Welcome)
        except BaseException as e:
            self.closed = e
        else:
            self.closed = EOFError("connection closed")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    paths = make_models(tmp_path_factory.mktemp("fuzz-models"))
    restorer = Restorer.from_files(*paths, device="cpu", precision="fp32")
    with serve_in_thread(restorer, tile=TILE, limits=LIMITS) as srv:
        yield srv, restorer


@pytest.fixture(scope="module")
def fuzz_conn(fuzz_server):
    srv, _ = fuzz_server
    ws = raw_connection(srv.url)
    receiver = Receiver(ws)
    yield ws, receiver
    ws.close()


# ---- strategies --------------------------------------------------------------------------------------

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "type",
        "v",
        "id",
        "width",
        "height",
        "format",
        "data",
        "options",
        "client",
        "code",
        "message",
        "mask",
        "fraction",
        "position",
        "depth",
    ]
)
option_names = st.sampled_from(["mask", "threshold", "theta", "qf", "background", "return_mask", "model", "tile"])


@st.composite
def valid_dicts(draw):
    """A valid client message as a plain dict, with small images."""
    kind = draw(st.sampled_from(["hello", "restore", "restore", "cancel", "png"]))
    rid = draw(st.sampled_from(["a", "b", "c", "d"]))
    if kind == "hello":
        return {"type": "hello", "v": 1, "client": draw(st.text(max_size=10))}
    if kind == "cancel":
        return {"type": "cancel", "v": 1, "id": rid}
    fmt = draw(st.sampled_from(sorted(str(f) for f in protocol.RAW_FORMATS)))
    w, h = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    if kind == "png":
        fmt, data = "png", b"\x89PNG\r\n\x1a\n" + draw(st.binary(max_size=60))
    else:
        n = protocol.expected_size(fmt, w, h)
        data = draw(st.binary(min_size=n, max_size=n))
    options = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "mask": st.sampled_from(["otsu", "agt", "none", "learnt"]),
                "background": st.sampled_from(["white", "transparent"]),
                "threshold": st.booleans(),
                "return_mask": st.booleans(),
            },
        )
    )
    return {
        "type": "restore",
        "v": 1,
        "id": rid,
        "width": w,
        "height": h,
        "format": fmt,
        "data": data,
        "options": options,
    }


@st.composite
def mutated_dicts(draw):
    d = draw(valid_dicts())
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["drop", "replace", "add", "option"]))
        keys = sorted(d)
        if action == "drop" and keys:
            d.pop(draw(st.sampled_from(keys)))
        elif action == "replace" and keys:
            d[draw(st.sampled_from(keys))] = draw(plain)
        elif action == "add":
            d[draw(field_names | st.text(max_size=6))] = draw(plain)
        elif action == "option":
            opts = d.get("options") if isinstance(d.get("options"), dict) else {}
            opts[draw(option_names | st.text(max_size=6))] = draw(plain)
            d["options"] = opts
    return msgpack.packb(d, use_bin_type=True)


@st.composite
def mutated_bytes(draw):
    data = bytearray(msgpack.packb(draw(valid_dicts()), use_bin_type=True))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[i] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[i:]
        else:
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


messages = st.one_of(
    st.binary(max_size=200),
    plain.map(lambda v: msgpack.packb(v, use_bin_type=True)),
    valid_dicts().map(lambda d: msgpack.packb(d, use_bin_type=True)),
    mutated_dicts(),
    mutated_bytes(),
    st.text(max_size=50),  # text frames
)


@settings(
    max_examples=1500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(messages, min_size=1, max_size=4))
def test_fuzz_messages(fuzz_conn, batch):
    ws, receiver = fuzz_conn
    for data in batch:
        ws.send(data)
    assert receiver.closed is None, f"the server closed the connection: {receiver.closed!r}"


def test_server_survives_the_fuzz(fuzz_server, fuzz_conn):
    srv, restorer = fuzz_server
    ws, receiver = fuzz_conn
    before = receiver.welcomes
    ws.send(protocol.encode(protocol.Hello(client="after fuzz")))
    deadline = time.monotonic() + 30
    while receiver.welcomes == before and time.monotonic() < deadline and receiver.closed is None:
        time.sleep(0.01)
    assert receiver.welcomes > before, "the fuzzed connection no longer answers"
    print("replies seen during the fuzz:", receiver.counts)
    assert not receiver.bad, f"the server sent {len(receiver.bad)} unreadable message(s)"
    assert receiver.counts.get("bad_message", 0) > 1000  # the fuzz really reached the server
    assert receiver.counts.get("invalid_image", 0) > 0 and receiver.counts.get("invalid_option", 0) > 0
    assert "internal_error" not in receiver.counts, receiver.counts
    # a new client is served correctly
    img = drawing(40, 48, seed=99)
    res = client.restore(srv.url, img.tobytes(), 48, 40, "gray8", {"mask": "learnt"}, timeout=60)
    np.testing.assert_array_equal(np.frombuffer(res.data, np.uint8).reshape(40, 48), direct(restorer, img).image)
