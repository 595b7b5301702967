"""The real server on loopback under hostile and heavy use (issue 31): what reaches the log, the
queue budget, the connection cap, the protocol version and error wording, progress and cancel per
self-ensemble pass, the per-user token, and the client's reconnection and argument errors.

Speed and memory targets are not asserted here; ``python -m benchmarks.bench_server --parts hostile`` prints them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import msgpack
import pytest
from test_server import (
    LIMITS,
    TILE,
    cancel_at_progress,
    cpu_server_command,
    drawing,
    make_models,
    raw_connection,
    recv_until,
    restore_msg,
    served_url,
    wait_idle,
    worker_held,
)

from core.pipeline import Restorer
from server import __main__ as server_main
from server import client, protocol
from server.app import PREP_SHARE, RestoreServer, printable, serve_in_thread


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory):
    return make_models(tmp_path_factory.mktemp("hostile-models"))


@pytest.fixture(scope="module")
def server(model_paths):
    restorer = Restorer.from_files(*model_paths, device="cpu", precision="fp32")
    with serve_in_thread(restorer, tile=TILE, limits=LIMITS) as srv:
        yield srv


@pytest.fixture(scope="module")
def restorer(server):
    return server.restorer


# ---- the log ------------------------------------------------------------------------------------------


def test_printable_escapes_and_cuts():
    assert printable("a\nb\x1b[31m") == "a\\nb\\x1b[31m"
    assert printable("x" * 1000, 10) == "xxxxxxxxxx...(+990 chars)"


def test_client_strings_cannot_forge_or_flood_the_log(server, caplog):
    caplog.set_level(logging.DEBUG, logger="server")
    forged = "r1\n2026-01-01 00:00:00 WARNING server: FORGED by a client"
    with raw_connection(server.url) as ws:
        ws.send(protocol.encode(protocol.Hello(client="evil\nWARNING server: FORGED")))
        assert isinstance(protocol.decode(ws.recv(timeout=10)), protocol.Welcome)
        # a raw map: the id is 57 characters, under the limit, with a newline in it
        ws.send(
            msgpack.packb(
                {
                    "type": "restore",
                    "v": 1,
                    "id": forged,
                    "width": 2,
                    "height": 2,
                    "format": "gray8",
                    "data": b"\x00" * 3,
                },
                use_bin_type=True,
            )
        )
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
        assert err.id == forged and err.code == "invalid_image"
        huge = {f"opt{i:05d}" + "x" * 200: 1 for i in range(3000)}  # ~620 KiB of unknown option names
        ws.send(
            msgpack.packb(
                {
                    "type": "restore",
                    "v": 1,
                    "id": "r2",
                    "width": 1,
                    "height": 1,
                    "format": "gray8",
                    "data": b"\x00",
                    "options": huge,
                },
                use_bin_type=True,
            )
        )
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error) and m.id == "r2")
        assert err.code == "invalid_option" and "and 2992 more" in err.message
    wait_idle(server)
    records = [r for r in caplog.records if r.name == "server"]
    assert records
    for r in records:
        text = r.getMessage()
        assert "\n" not in text and len(text) <= 2048, text[:200]
    assert not any("FORGED" in r.getMessage() and r.levelno > logging.DEBUG for r in records)
    # each mistake at DEBUG, a summary at INFO (at most one a minute)
    assert sum("r2" in r.getMessage() for r in records if r.levelno == logging.DEBUG) == 1
    assert all(r.levelno <= logging.INFO for r in records)


def test_mistakes_are_summed_up_at_info_once_a_minute(server, caplog):
    caplog.set_level(logging.INFO, logger="server")
    server._mistakes = type(server._mistakes)()
    server._mistakes._last = time.monotonic()  # a summary went out just now
    with raw_connection(server.url) as ws:
        for _ in range(50):
            ws.send(b"\xc1 not msgpack")
        for _ in range(50):
            assert protocol.decode(ws.recv(timeout=10)).code == "bad_message"
    assert not [r for r in caplog.records if r.name == "server" and "refused message" in r.getMessage()]
    server._mistakes._last -= 61
    with raw_connection(server.url) as ws:
        ws.send(b"\xc1")
        ws.recv(timeout=10)
    (summary,) = [r.getMessage() for r in caplog.records if "refused message" in r.getMessage()]
    assert re.search(r"^51 refused message\(s\) from 2 client\(s\) \(bad_message x51\) in the last \d+ s", summary)


def test_the_command_line_log_caps_and_escapes_every_line():
    fmt = server_main._CappedFormatter("%(levelname)s %(message)s")
    rec = logging.LogRecord("server", logging.INFO, __file__, 1, "got %s", ("a\nb" + "y" * 10000,), None)
    line = fmt.format(rec)
    assert "\n" not in line and len(line) <= server_main.MAX_LOG_LINE and line.startswith("INFO got a\\nb")


# ---- protocol wording ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version, said", [(True, "a boolean (true)"), (1.0, "a float (1.0)"), ("1", 'a string ("1")'), (None, "nothing")]
)
def test_the_version_must_be_the_integer_1(server, version, said):
    with raw_connection(server.url, hello=False) as ws:
        body = {"type": "hello", "client": "x"}
        if version is not None:
            body["v"] = version
        ws.send(msgpack.packb(body))
        err = protocol.decode(ws.recv(timeout=10))
        assert err.code == "unsupported_version"
        assert err.message == f'the protocol version "v" must be the integer 1, got {said}'


def test_errors_list_valid_values_and_show_no_repr(server):
    with raw_connection(server.url) as ws:
        ws.send(
            msgpack.packb(
                {"type": "restore", "v": 1, "id": "f", "width": 1, "height": 1, "format": "cmyk8", "data": b"\x00"},
                use_bin_type=True,
            )
        )
        err = protocol.decode(ws.recv(timeout=10))
        assert err.code == "bad_message" and '"gray8"' in err.message and '"png"' in err.message
        assert 'got "cmyk8"' in err.message
        # a PNG with a valid header and garbage after it
        png = (
            b"\x89PNG\r\n\x1a\n"
            + b"\x00\x00\x00\x0dIHDR"
            + (4).to_bytes(4, "big") * 2
            + b"\x08\x00\x00\x00\x00"
            + b"junk"
        )
        ws.send(protocol.encode(protocol.Restore(id="p", width=4, height=4, format="png", data=png)))
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error) and m.id == "p")
        assert err.code == "invalid_image" and "0x" not in err.message and "<" not in err.message
        ws.send(msgpack.packb({"type": b"restore", "v": 1}, use_bin_type=True))
        err = protocol.decode(ws.recv(timeout=10))
        assert "b'" not in err.message and "known: hello" in err.message


def test_welcome_limits_are_complete_on_the_wire(restorer):
    with serve_in_thread(restorer, tile=TILE) as srv:  # every limit at its default
        with raw_connection(srv.url, hello=False) as ws:
            ws.send(protocol.encode(protocol.Hello(client="t")))
            raw = msgpack.unpackb(ws.recv(timeout=10))
    assert raw["limits"] == {
        "max_message_bytes": 256 * 2**20 + 2**16,
        "max_pixels": 8192 * 8192,
        "max_jobs_per_client": 4,
        "max_queue": 64,
    }
    more = raw["info"]["limits"]
    assert set(more) >= set(raw["limits"]) | {
        "max_connections",
        "max_queued_bytes",
        "max_queued_pixels",
        "client_share",
        "max_active_jobs",
    }
    assert more["max_queued_bytes"] >= 256 * 2**20 and more["max_connections"] == 64


# ---- budget, cap --------------------------------------------------------------------------------------


def test_queue_budget_of_decoded_bytes_with_a_share_per_client(restorer):
    img = drawing(100, 100, seed=3)  # 10,000 bytes gray8
    with serve_in_thread(restorer, tile=TILE, limits=LIMITS, max_queued_bytes=35_000, client_share=0.5) as srv:
        a, b = raw_connection(srv.url), raw_connection(srv.url)
        with worker_held(srv):
            for i in range(2):
                a.send(restore_msg(f"a{i}", img, "gray8"))  # 20,000 bytes: within a's share of 17,500? no:
            err, _ = recv_until(a, lambda m: isinstance(m, protocol.Error))
            assert err.id == "a1" and err.code == "queue_full"
            assert "this client's" in err.message and "share is 0 MiB" in err.message
            b.send(restore_msg("b0", img, "gray8"))
            recv_until(b, lambda m: isinstance(m, protocol.Queued) and m.id == "b0")
            c = raw_connection(srv.url)
            c.send(restore_msg("c0", drawing(150, 150), "gray8"))  # 22,500 more than the 35,000 left
            err, _ = recv_until(c, lambda m: isinstance(m, protocol.Error))
            assert err.code == "queue_full" and "the budget is" in err.message
            assert "this image needs 0 MiB" in err.message
        for ws, rid in ((a, "a0"), (b, "b0")):
            res, _ = recv_until(ws, lambda m, rid=rid: isinstance(m, protocol.Result) and m.id == rid)
        for ws in (a, b, c):
            ws.close()


def test_a_png_is_budgeted_by_its_header(restorer):
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".png", np.full((300, 300, 4), 255, np.uint8))  # tiny file, 360,000 bytes decoded
    data = buf.tobytes()
    assert len(data) < 10_000
    with serve_in_thread(restorer, tile=TILE, limits=LIMITS, max_queued_bytes=200_000) as srv:
        with raw_connection(srv.url) as a, raw_connection(srv.url) as b, worker_held(srv):
            a.send(restore_msg("small", drawing(100, 100), "gray8"))
            recv_until(a, lambda m: isinstance(m, protocol.Queued))
            b.send(protocol.encode(protocol.Restore(id="png", width=300, height=300, format="png", data=data)))
            err, _ = recv_until(b, lambda m: isinstance(m, protocol.Error))
            assert err.code == "queue_full"


def test_connection_cap(restorer):
    with serve_in_thread(restorer, tile=TILE, max_connections=2) as srv:
        with client.Client(srv.url) as c1, client.Client(srv.url):
            with pytest.raises(client.HandshakeRefusedError) as info:
                client.Client(srv.url).connect()
            assert info.value.code == "too_many_connections" and "--max-connections" in str(info.value)
            assert c1.restore(drawing(24, 32).tobytes(), 32, 24, "gray8").width == 32
        deadline = time.monotonic() + 10
        while len(srv._connections) and time.monotonic() < deadline:
            time.sleep(0.01)
        with client.Client(srv.url) as c3:  # room again
            assert c3.welcome is not None


# ---- progress and cancel per ensemble pass ---------------------------------------------------------


@pytest.fixture
def every_progress(monkeypatch):
    """Progress messages without the server's 50 ms spacing (these jobs take milliseconds)."""
    monkeypatch.setattr("server.app._PROGRESS_INTERVAL", 0.0)


def test_progress_moves_on_per_self_ensemble_pass(server, every_progress):
    img = drawing(60, 60, seed=5)  # one tile: only the passes can move the fraction between 0 and 1
    fractions = []
    client.restore(
        server.url,
        img.tobytes(),
        60,
        60,
        "gray8",
        {"ensemble": 8, "mask": "otsu"},
        on_progress=fractions.append,
        timeout=120,
    )
    prep = [f for f in fractions if 0.0 < f < PREP_SHARE]  # row-chunk steps before the tile
    inner = [f for f in fractions if PREP_SHARE <= f < 1.0]
    assert fractions == sorted(fractions), fractions
    assert prep, fractions
    # after each of 8 passes but the last
    assert inner[:7] == pytest.approx([PREP_SHARE + (1 - PREP_SHARE) * i / 8 for i in range(1, 8)]), fractions


def test_cancel_lands_between_ensemble_passes(server, every_progress):
    img = drawing(60, 60, seed=6)
    cancel, seen, on_progress = cancel_at_progress()

    with client.Client(server.url) as c, pytest.raises(client.RequestCancelledError):
        c.restore(
            img.tobytes(),
            60,
            60,
            "gray8",
            {"ensemble": 8, "mask": "otsu"},
            on_progress=on_progress,
            cancel=cancel,
            timeout=120,
        )
    assert 0 < seen[-1] < 1.0  # stopped inside its only tile, between two passes
    wait_idle(server)


# ---- the client -----------------------------------------------------------------------------------------


def test_wrong_argument_types_raise_the_clients_own_error(server):
    with client.Client(server.url) as c:
        for args in (("abc", 3, 1, "gray8"), (b"abc", "3", 1, "gray8"), (b"abc", 3, True, "gray8")):
            with pytest.raises(client.InvalidArgumentError) as info:
                c.restore(*args)
            assert isinstance(info.value, TypeError) and info.value.code == "invalid_argument"
        with pytest.raises(client.InvalidArgumentError):
            c.restore(b"abc", 3, 1, "gray8", options=[("mask", "otsu")])
        with pytest.raises(client.ServerError) as info:
            c.restore(b"abc", 3, 1, "gray9")
        assert "gray8, gray16" in str(info.value)


def test_clients_reconnect_once_after_a_server_restart(restorer):
    img = drawing(24, 32)
    with serve_in_thread(restorer, tile=TILE) as srv:
        port = srv.port
        sync = client.Client(srv.url)
        sync.connect()
        loop = asyncio.new_event_loop()
        aclient = client.AsyncClient(srv.url)
        loop.run_until_complete(aclient.connect())
    with serve_in_thread(restorer, tile=TILE, port=port):  # the server restarted on the same port
        assert sync.restore(img.tobytes(), 32, 24, "gray8", timeout=60).width == 32
        assert loop.run_until_complete(aclient.restore(img.tobytes(), 32, 24, "gray8", timeout=60)).width == 32
        sync.close()
        loop.run_until_complete(aclient.close())
        loop.close()


def test_request_tracker_without_io():
    t = client.RequestTracker()
    msg = protocol.Restore(id="r", width=1, height=1, format="gray8", data=b"\x00")
    assert protocol.decode(t.start(msg, timeout=5.0, now=100.0)) == msg
    with pytest.raises(client.ServerError):
        t.start(msg, None, 100.0)
    (ev,) = t.receive(protocol.encode(protocol.Progress(id="r", fraction=0.5)))
    assert ev.request_id == "r" and not ev.final and ev.message.fraction == 0.5
    assert t.receive(protocol.encode(protocol.Progress(id="other", fraction=0.5))) == []
    assert t.expire("r", 104.9) == (None, None)
    frame, ev = t.expire("r", 105.0)
    assert protocol.decode(frame) == protocol.Cancel(id="r") and isinstance(ev.error, client.RequestTimeoutError)
    assert "r" not in t and t.receive(protocol.encode(protocol.Progress(id="r", fraction=0.6))) == []
    t.start(msg, None, 0.0)
    assert protocol.decode(t.cancel("r")) == protocol.Cancel(id="r") and t.cancel("r") is None
    (ev,) = t.receive(protocol.encode(protocol.Error(code="cancelled", message="cancelled", id="r")))
    assert ev.final and isinstance(ev.error, client.RequestCancelledError)
    t.start(msg, None, 0.0)
    (ev,) = t.lost(client.ConnectionLostError("gone"))
    assert isinstance(ev.error, client.ConnectionLostError) and "r" not in t
    with pytest.raises(client.BadReplyError):
        t.receive(b"\xc1")


# ---- the token ------------------------------------------------------------------------------------------


def test_ensure_token_makes_a_private_file_and_reuses_it(tmp_path):
    path = tmp_path / "sub" / "token"
    token, where = server_main.ensure_token(None, path)
    assert where == path and len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert server_main.ensure_token(None, path)[0] == token  # reused
    os.chmod(path, 0o644)  # readable by others: not trusted, a new one is made
    again, _ = server_main.ensure_token(None, path)
    assert again != token and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert server_main.ensure_token("given", path)[0] == "given" and path.read_text().strip() == "given"


def test_the_server_requires_a_token_by_default_and_local_clients_find_it(model_paths, tmp_path, monkeypatch):
    token_path = tmp_path / "token"
    env = {**os.environ, "LINEART_RESTORE_TOKEN_FILE": str(token_path), "OMP_NUM_THREADS": "1"}
    env.pop("LINEART_RESTORE_TOKEN", None)
    cmd = cpu_server_command(model_paths)
    proc = subprocess.Popen(cmd, cwd=Path(__file__).parent.parent, env=env, stderr=subprocess.PIPE, text=True)
    try:
        url, lines = served_url(proc)
        assert f"local clients read it from {token_path}" in "".join(lines)
        assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
        monkeypatch.setenv("LINEART_RESTORE_TOKEN_FILE", str(token_path))
        with client.Client(url) as c:  # read from the file: nobody typed it
            assert c.restore(drawing(24, 32).tobytes(), 32, 24, "gray8").width == 32
        with pytest.raises(client.HandshakeRefusedError) as info:
            client.Client(url, token="").connect()
        assert info.value.code == "unauthorized"
    finally:
        proc.kill()
        proc.wait()


def test_no_token_server_needs_none(restorer):
    with serve_in_thread(restorer, tile=TILE) as srv:  # RestoreServer itself: no token unless given
        with client.Client(srv.url, token="") as c:
            assert c.welcome is not None


def test_a_restore_server_refuses_bad_settings(restorer):
    with pytest.raises(ValueError):
        RestoreServer(restorer, max_connections=0)


def test_a_big_request_over_the_budget_is_refused_from_its_header(restorer, monkeypatch):
    """Messages over 1 MiB are checked with ``protocol.peek`` first: one over the queue budget is
    refused without its pixels ever being copied out of the message (``decode`` is not called)."""
    decoded = []
    real = protocol.decode
    monkeypatch.setattr(protocol, "decode", lambda raw: decoded.append(len(raw)) or real(raw))
    limits = protocol.Limits(max_message_bytes=8 * 2**20, max_pixels=2000 * 2000, max_jobs_per_client=4, max_queue=8)
    img = drawing(1100, 1100)  # 1.21 MB gray8
    with serve_in_thread(restorer, tile=TILE, limits=limits, max_queued_bytes=2_000_000, client_share=1.0) as srv:
        with raw_connection(srv.url) as ws, worker_held(srv):
            ws.send(restore_msg("first", img, "gray8"))
            recv_until(ws, lambda m: isinstance(m, protocol.Queued))
            big = lambda: sum(n > 2**20 for n in decoded)
            assert big() == 1
            ws.send(restore_msg("second", img, "gray8"))
            err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
            assert err.id == "second" and err.code == "queue_full" and "the budget is 2 MiB" in err.message
            assert big() == 1  # refused before decoding
            ws.send(protocol.encode(protocol.Cancel(id="first")))


def test_peek_reads_the_header_fields_only():
    msg = protocol.encode(
        protocol.Restore(
            id="x", width=3, height=2, format="gray8", data=b"abcdef", options=protocol.Options(ensemble=2)
        )
    )
    assert protocol.peek(msg, head=4) == {
        "type": "restore",
        "v": 1,
        "id": "x",
        "width": 3,
        "height": 2,
        "format": "gray8",
        "data": b"abcd",
        "options": None,
    }
    assert protocol.peek(b"\xc1") == {} and protocol.peek(msgpack.packb([1])) == {} and protocol.peek(b"\x81") == {}
