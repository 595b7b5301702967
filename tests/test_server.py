"""The real server (server/app.py) on a free loopback port, with small random-weight models.

Covers the handshake, round trips equal to the direct pipeline in every pixel format, progress,
queue positions, cancel, disconnect mid-job, concurrent clients, every limit, Origin and token
checks, protocol misuse, clean shutdown and the ``python -m server`` command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from core.backbones import build_backbone
from core.masknet import build_masknet
from core.pipeline import RestoreOptions, Restorer
from core.weights import save_model
from server import client, protocol
from server.app import SERVER_VERSION, RestoreServer, serve_in_thread
from tests.subprocess_server import model_args

TILE = 64
LIMITS = protocol.Limits(max_message_bytes=2**20, max_pixels=600 * 600, max_jobs_per_client=3, max_queue=8)
#: A job long enough (about 2-4 s here, ~240 progress ticks at 64-pixel tiles) to be caught running.
LONG = 512


# ---- fixtures and helpers --------------------------------------------------------------------------


def make_models(folder: Path) -> tuple[Path, Path, Path]:
    """Random-weight slim models (mask, framework backbone, baseline backbone) saved with save_model."""
    torch.manual_seed(0)
    paths = (folder / "mask.safetensors", folder / "framework.safetensors", folder / "baseline.safetensors")
    save_model(build_masknet("blind", "slim"), paths[0])
    save_model(build_backbone("drunet", "slim", "framework"), paths[1])
    save_model(build_backbone("drunet", "slim", "baseline"), paths[2])
    return paths


def drawing(h: int, w: int, seed: int = 0, channels: int = 1, dtype=np.uint8) -> np.ndarray:
    """A noisy line drawing: white paper, dark strokes, JPEG-like noise around them."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w), 250.0)
    for _ in range(max(2, (h + w) // 30)):
        if rng.random() < 0.5:
            y = rng.integers(0, h)
            img[y, rng.integers(0, w // 2) : rng.integers(w // 2, w)] = rng.integers(0, 90)
        else:
            x = rng.integers(0, w)
            img[rng.integers(0, h // 2) : rng.integers(h // 2, h), x] = rng.integers(0, 90)
    img += rng.normal(0, 6, img.shape)
    img = np.clip(img, 0, 255)
    if dtype == np.uint16:
        img = img * 257.0
    img = img.astype(dtype)
    if channels == 1:
        return img
    white = np.iinfo(dtype).max
    if channels == 2:
        return np.stack([img, np.full_like(img, white)], axis=-1)
    rgb = np.stack([img] * 3, axis=-1)
    rgb[..., 0] = np.clip(rgb[..., 0].astype(np.int64) + 3, 0, white)  # a little colour
    if channels == 3:
        return rgb
    alpha = np.full_like(img, white)
    alpha[: h // 4] = white // 2  # partly transparent band
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory):
    return make_models(tmp_path_factory.mktemp("server-models"))


@pytest.fixture(scope="module")
def restorer(model_paths):
    return Restorer.from_files(*model_paths, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def server(restorer):
    with serve_in_thread(restorer, tile=TILE, limits=LIMITS) as srv:
        yield srv


def raw_connection(url: str, hello: bool = True, **kwargs):
    """A bare websockets connection (no client-side checks), greeted unless ``hello`` is False."""
    ws = connect(url, compression=None, proxy=None, max_size=None, open_timeout=10, legacy=True, **kwargs)
    if hello:
        ws.send(protocol.encode(protocol.Hello(client="test")))
        assert isinstance(protocol.decode(ws.recv(timeout=10)), protocol.Welcome)
    return ws


def recv_until(ws, want, timeout: float = 30.0):
    """Receive messages until one matches ``want(message)``; return it (and the ones before)."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        msg = protocol.decode(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        seen.append(msg)
        if want(msg):
            return msg, seen


def restore_msg(request_id: str, img: np.ndarray, fmt: str, **options) -> bytes:
    h, w = img.shape[:2]
    return protocol.encode(
        protocol.Restore(
            id=request_id, width=w, height=h, format=fmt, data=img.tobytes(), options=protocol.Options(**options)
        )
    )


def wait_idle(srv: RestoreServer, timeout: float = 30.0) -> float:
    """Wait until the server has no job queued or running; return how long it took."""
    t0 = time.monotonic()
    while srv.queue.depth:
        assert time.monotonic() - t0 < timeout, "server did not become idle"
        time.sleep(0.01)
    return time.monotonic() - t0


@contextlib.contextmanager
def worker_held(srv: RestoreServer):
    """Hold the turn of the server's job threads (``RestoreServer._turns``) until the block ends,
    so that the jobs it starts meanwhile stay "running" and no job finishes: the queue limits then
    see every job sent, however slowly the requests arrive (on a loaded machine a job could finish
    before the last request was read, which left room in the queue and no queue_full to wait for)."""
    gate, held = threading.Event(), threading.Event()
    key = object()

    def hold():
        srv._turns.enter(key)
        held.set()
        gate.wait(60)
        srv._turns.leave(key)

    threading.Thread(target=hold, daemon=True).start()
    assert held.wait(30)
    try:
        yield
    finally:
        gate.set()


def direct(restorer, img, **options):
    return restorer.restore(img, RestoreOptions(tile=TILE, **options))


# ---- handshake ---------------------------------------------------------------------------------------


def test_handshake(server, restorer):
    with client.Client(server.url, name="pytest") as c:
        w = c.welcome
    assert w.server_version == SERVER_VERSION
    assert w.device == "cpu"
    assert w.models == ["default"]
    assert set(w.formats) == {str(f) for f in protocol.PixelFormat}
    assert w.options["mask"]["choices"] == ["learnt", "otsu", "otsu_d", "agt", "none"]
    assert w.options["model"]["choices"] == ["default"]
    assert w.limits == LIMITS
    assert w.info["device"] == "cpu" and set(w.info["models"]) == {"mask", "restore", "baseline"}


def test_protocol_options_are_pipeline_options():
    wire = {f.name for f in fields(protocol.Options)}
    assert wire <= {f.name for f in fields(RestoreOptions)}
    for name in wire:
        default = getattr(protocol.Options(), name)
        default = getattr(default, "value", default)  # enums travel as their value
        assert default == getattr(RestoreOptions(), name), name


# ---- round trips ---------------------------------------------------------------------------------------

FORMATS = [
    # fmt, channels, dtype, options, expected result format
    ("gray8", 1, np.uint8, {}, "gray8"),
    ("gray8", 1, np.uint8, {"background": "transparent"}, "graya8"),
    ("graya8", 2, np.uint8, {"background": "transparent", "mask": "otsu"}, "graya8"),
    ("rgb8", 3, np.uint8, {"background": "transparent"}, "rgba8"),
    ("rgba8", 4, np.uint8, {"mask": "agt", "threshold": False}, "rgba8"),
    ("gray16", 1, np.uint16, {"mask": "none"}, "gray16"),
    ("graya16", 2, np.uint16, {"background": "transparent", "qf": 30}, "graya16"),
    ("rgb16", 3, np.uint16, {"mask": "otsu_d", "theta": 240}, "rgb16"),
    ("rgba16", 4, np.uint16, {"background": "transparent"}, "rgba16"),
    ("gray8", 1, np.uint8, {"ensemble": 4}, "gray8"),
]


@pytest.mark.parametrize("fmt, channels, dtype, options, out_fmt", FORMATS, ids=lambda v: str(v))
def test_round_trip_equals_the_direct_pipeline(server, restorer, fmt, channels, dtype, options, out_fmt):
    img = drawing(72, 90, seed=channels, channels=channels, dtype=dtype)
    res = client.restore(server.url, img.tobytes(), 90, 72, fmt, options, timeout=60)
    want = direct(restorer, img, **options)
    assert res.format == out_fmt and (res.width, res.height) == (90, 72)
    got = np.frombuffer(res.data, dtype="<u2" if dtype == np.uint16 else np.uint8).reshape(want.image.shape)
    np.testing.assert_array_equal(got, want.image)
    if want.mask is None:
        assert res.mask is None
    else:
        np.testing.assert_array_equal(np.frombuffer(res.mask, np.uint8).reshape(72, 90), want.mask * 255)
    assert res.notes == want.notes
    assert {"queue", "decode", "restore", "encode", "server_total", "pipeline.total"} <= set(res.timings)


def test_a_jpeg_file_table_from_the_client_is_used(server, restorer, tmp_path, monkeypatch):
    """A JPEG written with another encoder's table (not an IJG one, so the pixels alone do not
    reveal it): the client reads the file's table and sends it, the server makes the result
    consistent with it; the same pixels with no file, or edited after decoding, are left alone."""
    from core import jpeg_consistency

    # These untrained test networks restore so badly that the check of docs/wild.md would skip
    # the projection; this test is about the table reaching it, so the check is taken out.
    monkeypatch.setattr(jpeg_consistency, "max_outside", lambda _grid: float("inf"))
    table = [min(255, 2 + (i % 8) + 3 * (i // 8)) for i in range(64)]
    path = tmp_path / "other_encoder.jpg"
    Image.fromarray(np.clip(drawing(96, 128, seed=5), 0, 255)).save(path, "JPEG", qtables=[table])
    img = np.asarray(Image.open(path).convert("L"))
    with client.Client(server.url) as c:
        with_file = c.restore(img.tobytes(), 128, 96, "gray8", source_file=path)
        without = c.restore(img.tobytes(), 128, 96, "gray8")
        edited = img.copy()
        edited[::2] = np.clip(edited[::2].astype(int) + 9, 0, 255)
        refused = c.restore(edited.tobytes(), 128, 96, "gray8", source_file=path)
    assert any("the file's own quantization table" in n for n in with_file.notes), with_file.notes
    assert not any("JPEG" in n for n in without.notes), without.notes
    assert any("does not reproduce" in n for n in refused.notes), refused.notes
    direct_with = direct(restorer, img, jpeg_table=tuple(table)).image
    assert np.array_equal(np.frombuffer(with_file.data, np.uint8).reshape(96, 128), direct_with)
    assert not np.array_equal(direct_with, direct(restorer, img).image)


@pytest.mark.parametrize("background", ["white", "transparent"])
def test_bgra8_is_krita_order_both_ways(server, restorer, background):
    rgba = drawing(40, 48, seed=3, channels=4)
    bgra = np.ascontiguousarray(rgba[..., [2, 1, 0, 3]])
    res = client.restore(server.url, bgra.tobytes(), 48, 40, "bgra8", {"background": background}, timeout=60)
    want = direct(restorer, rgba, background=background).image
    assert res.format == "bgra8"
    np.testing.assert_array_equal(np.frombuffer(res.data, np.uint8).reshape(40, 48, 4), want[..., [2, 1, 0, 3]])


@pytest.mark.parametrize(
    "mode, channels, dtype", [("L", 1, np.uint8), ("LA", 2, np.uint8), ("RGBA", 4, np.uint8), ("I;16", 1, np.uint16)]
)
def test_png_in_png_out(server, restorer, mode, channels, dtype):
    img = drawing(36, 44, seed=5, channels=channels, dtype=dtype)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode == mode
    res = client.restore(server.url, buf.getvalue(), 44, 36, "png", {}, timeout=60)
    assert res.format == "png"
    back = np.asarray(Image.open(io.BytesIO(res.data)))
    want = direct(restorer, img).image
    if channels == 2:  # gray+alpha comes back as RGBA (OpenCV writes no gray+alpha PNG)
        back = back[..., [0, 3]]
    np.testing.assert_array_equal(back, want)


def test_png_with_16_bit_colour_keeps_its_depth(server, restorer):
    import cv2

    img = drawing(30, 34, seed=6, channels=4, dtype=np.uint16)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., [2, 1, 0, 3]]))
    assert ok
    res = client.restore(server.url, buf.tobytes(), 34, 30, "png", timeout=60)
    back = cv2.imdecode(np.frombuffer(res.data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back[..., [2, 1, 0, 3]], direct(restorer, img).image)


def test_return_mask_off(server):
    img = drawing(24, 32)
    res = client.restore(server.url, img.tobytes(), 32, 24, "gray8", {"return_mask": False}, timeout=60)
    assert res.mask is None


# ---- progress, queue, cancel, disconnect --------------------------------------------------------------


def test_progress_is_reported_per_tile(server):
    img = drawing(200, 200, seed=7)
    fractions = []
    client.restore(server.url, img.tobytes(), 200, 200, "gray8", on_progress=fractions.append, timeout=60)
    assert len(fractions) >= 3
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert any(0.0 < f < 1.0 for f in fractions)


def test_queue_positions_are_reported_and_small_jobs_pass_a_long_one(server):
    long_img, small = drawing(LONG, LONG, seed=8), drawing(24, 32, seed=9)
    positions: dict[str, list] = {"a": [], "b": []}
    finished = []

    async def main():
        async with client.AsyncClient(server.url) as c1, client.AsyncClient(server.url) as c2:
            started = asyncio.Event()  # the long job reported progress: it runs, "a" and "b" wait
            first = asyncio.create_task(
                c1.restore(long_img.tobytes(), LONG, LONG, "gray8", timeout=60, on_progress=lambda f: started.set())
            )
            await asyncio.wait_for(started.wait(), 30)
            second = [
                asyncio.create_task(
                    c2.restore(
                        small.tobytes(),
                        32,
                        24,
                        "gray8",
                        request_id=k,
                        timeout=60,
                        on_queued=lambda pos, depth, k=k: positions[k].append((pos, depth)),
                    )
                )
                for k in ("a", "b")
            ]
            for task, name in [(first, "long"), *zip(second, "ab")]:
                task.add_done_callback(lambda _t, name=name: finished.append(name))
            await asyncio.gather(first, *second)

    asyncio.run(main())
    assert positions["a"] == [(1, 2)]  # behind the running long job, then started beside it
    assert positions["b"] == [(2, 3)]  # behind both: a client's jobs run one at a time
    assert finished == ["a", "b", "long"]  # the jobs took turns by tiles: the small ones did not wait
    wait_idle(server)


def cancel_at_progress():
    """``(cancel, seen, on_progress)``: an Event that ``on_progress`` sets at the first fraction
    above 0, and the list of fractions it saw."""
    cancel = threading.Event()
    seen: list[float] = []

    def on_progress(f):
        seen.append(f)
        if f > 0:
            cancel.set()

    return cancel, seen, on_progress


def test_cancel_a_running_job(server, caplog):
    caplog.set_level(logging.INFO, logger="server")
    img = drawing(LONG, LONG, seed=10)
    cancel, seen, on_progress = cancel_at_progress()

    with client.Client(server.url) as c:
        t0 = time.monotonic()
        with pytest.raises(client.RequestCancelledError) as info:
            c.restore(img.tobytes(), LONG, LONG, "gray8", on_progress=on_progress, cancel=cancel, timeout=60)
        assert info.value.code == "cancelled" and info.value.request_id
        assert seen[-1] < 1.0
        # the connection stays usable
        res = c.restore(drawing(24, 32).tobytes(), 32, 24, "gray8", timeout=60)
        assert res.width == 32
    assert time.monotonic() - t0 < 30
    assert any(f"request {info.value.request_id} cancelled" in r.getMessage() for r in caplog.records)


def test_cancel_a_queued_job(server):
    img = drawing(LONG, LONG, seed=11)
    with raw_connection(server.url) as ws:
        ws.send(restore_msg("long", img, "gray8"))
        ws.send(restore_msg("queued", drawing(24, 32), "gray8"))
        recv_until(ws, lambda m: isinstance(m, protocol.Queued) and m.id == "queued")
        ws.send(protocol.encode(protocol.Cancel(id="queued")))
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error) and m.id == "queued")
        assert err.code == "cancelled" and "before it started" in err.message
        ws.send(protocol.encode(protocol.Cancel(id="long")))
        err, seen = recv_until(
            ws, lambda m: getattr(m, "id", None) == "long" and isinstance(m, (protocol.Error, protocol.Result))
        )
        assert isinstance(err, protocol.Error) and err.code == "cancelled"
        assert not any(isinstance(m, protocol.Result) for m in seen)
        ws.send(protocol.encode(protocol.Cancel(id="never-sent")))  # unknown ids are ignored
    wait_idle(server)


def test_disconnect_mid_job_cancels_it(server, caplog):
    caplog.set_level(logging.INFO, logger="server")
    img = drawing(LONG, LONG, seed=12)
    ws = raw_connection(server.url)
    ws.send(restore_msg("gone", img, "gray8"))
    ws.send(restore_msg("gone-too", img, "gray8"))
    recv_until(ws, lambda m: isinstance(m, protocol.Progress) and m.fraction > 0)
    ws.close()
    took = wait_idle(server)
    assert took < 10
    messages = [r.getMessage() for r in caplog.records]
    assert any("request gone cancelled" in m for m in messages)
    assert any("cancelled 1 queued job(s) and its running job" in m for m in messages)
    assert not any("request gone-too" in m for m in messages)  # never started
    res = client.restore(server.url, drawing(24, 32).tobytes(), 32, 24, "gray8", timeout=60)
    assert res.width == 32


def test_concurrent_clients_get_their_own_results(restorer):
    n_clients, n_requests = 4, 3  # 12 jobs: over LIMITS.max_queue, so a server with default limits
    images = {
        (c, r): drawing(24 + 8 * r, 32 + 4 * c, seed=100 + 10 * c + r)
        for c in range(n_clients)
        for r in range(n_requests)
    }
    want = {k: direct(restorer, img, background="transparent").image for k, img in images.items()}

    async def one_client(c):
        async with client.AsyncClient(url, name=f"c{c}") as ac:

            async def one(r):
                img = images[(c, r)]
                res = await ac.restore(
                    img.tobytes(),
                    img.shape[1],
                    img.shape[0],
                    "gray8",
                    {"background": "transparent"},
                    request_id=f"c{c}r{r}",
                    timeout=120,
                )
                return (c, r), res

            return await asyncio.gather(*(one(r) for r in range(n_requests)))

    async def main():
        return await asyncio.gather(*(one_client(c) for c in range(n_clients)))

    with serve_in_thread(restorer, tile=TILE) as srv:
        url = srv.url
        results = [pair for group in asyncio.run(main()) for pair in group]
    assert len(results) == n_clients * n_requests
    for key, res in results:
        assert res.id == f"c{key[0]}r{key[1]}"
        h, w = images[key].shape
        np.testing.assert_array_equal(np.frombuffer(res.data, np.uint8).reshape(h, w, 2), want[key])


# ---- limits ---------------------------------------------------------------------------------------------


def test_max_pixels(server):
    img = np.full((700, 700), 255, np.uint8)  # 490000 pixels > 360000, but under the message limit
    with raw_connection(server.url) as ws:
        ws.send(restore_msg("big", img, "gray8"))
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
    assert err.code == "too_large" and err.id == "big" and "360000" in err.message
    with pytest.raises(client.ServerError) as info:  # the client checks before sending
        client.restore(server.url, img.tobytes(), 700, 700, "gray8")
    assert info.value.code == "too_large" and "before sending" in str(info.value)


def test_max_pixels_for_png_uses_the_header(server):
    big = io.BytesIO()
    Image.new("L", (2000, 2000), 255).save(big, "PNG")  # a few KiB that would decode to 4 MP
    assert len(big.getvalue()) < LIMITS.max_message_bytes
    with raw_connection(server.url) as ws:
        ws.send(
            protocol.encode(protocol.Restore(id="bomb", width=2000, height=2000, format="png", data=big.getvalue()))
        )
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
        assert err.code == "too_large"
        # a PNG whose header disagrees with the request is refused before decoding
        ws.send(protocol.encode(protocol.Restore(id="liar", width=10, height=10, format="png", data=big.getvalue())))
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
    assert err.code in ("too_large", "invalid_image")
    corrupt = io.BytesIO()
    Image.fromarray(drawing(40, 40)).save(corrupt, "PNG")  # noisy, so the pixel data is most of the file
    data = corrupt.getvalue()[: len(corrupt.getvalue()) // 2]
    with raw_connection(server.url) as ws:
        ws.send(protocol.encode(protocol.Restore(id="cut", width=40, height=40, format="png", data=data)))
        err, _ = recv_until(ws, lambda m: isinstance(m, (protocol.Error, protocol.Result)))
    assert isinstance(err, protocol.Error) and err.code == "invalid_image", err


def test_max_message_size_closes_with_1009_and_others_keep_going(server):
    ws = raw_connection(server.url)
    ws.send(b"\x00" * (LIMITS.max_message_bytes + 1))
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    ws.close()
    res = client.restore(server.url, drawing(24, 32).tobytes(), 32, 24, "gray8", timeout=60)
    assert res.width == 32


def test_message_size_checked_by_the_client_too(server):
    img = np.full((590, 590, 4), 255, np.uint8)  # under max_pixels, over 1 MiB
    with pytest.raises(client.ServerError) as info:
        client.restore(server.url, img.tobytes(), 590, 590, "rgba8")
    assert info.value.code == "too_large"


def test_max_jobs_per_client(server):
    img = drawing(LONG, LONG, seed=13)
    with raw_connection(server.url) as ws:
        with worker_held(server):
            for i in range(LIMITS.max_jobs_per_client + 1):
                ws.send(restore_msg(f"j{i}", img, "gray8"))
            err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
        assert err.code == "queue_full" and err.id == f"j{LIMITS.max_jobs_per_client}"
        assert "this client" in err.message
        for i in range(LIMITS.max_jobs_per_client):
            ws.send(protocol.encode(protocol.Cancel(id=f"j{i}")))
        for _ in range(LIMITS.max_jobs_per_client):
            recv_until(ws, lambda m: isinstance(m, protocol.Error) and m.code == "cancelled")
    wait_idle(server)


def test_max_queue_over_all_clients(server):
    img = drawing(LONG, LONG, seed=14)
    conns = [raw_connection(server.url) for _ in range(3)]
    try:
        with worker_held(server):
            # The server reads each connection in its own coroutine, so requests sent on different
            # sockets may be taken in any order: wait for each one to be queued before the next, so
            # that the ninth request the server sees is the last one sent.
            jobs = [(c, f"c{c}j{i}") for c in range(len(conns)) for i in range(LIMITS.max_jobs_per_client)]
            for c, request_id in jobs[:-1]:
                conns[c].send(restore_msg(request_id, img, "gray8"))
                recv_until(conns[c], lambda m, r=request_id: isinstance(m, protocol.Queued) and m.id == r)
            c, request_id = jobs[-1]
            conns[c].send(restore_msg(request_id, img, "gray8"))
            err, _ = recv_until(conns[c], lambda m: isinstance(m, protocol.Error))
        assert err.code == "queue_full" and "the server" in err.message and err.id == "c2j2"
    finally:
        for ws in conns:
            ws.close()
    wait_idle(server)


@pytest.mark.parametrize(
    "build, code",
    [
        (lambda: {"data": b"\xff" * 11}, "invalid_image"),  # 11 bytes for 3x4 gray8
        (lambda: {"format": "cmyk8"}, "bad_message"),
        (lambda: {"options": {"mask": "otsu", "sharpen": True}}, "invalid_option"),
        (lambda: {"options": {"model": "../../etc/passwd"}}, "invalid_option"),
        (lambda: {"width": -4}, "invalid_image"),
    ],
)
def test_bad_requests_get_an_error_and_the_connection_lives(server, build, code):
    import msgpack

    raw = {"type": "restore", "v": 1, "id": "bad", "width": 4, "height": 3, "format": "gray8", "data": b"\xff" * 12}
    raw.update(build())
    with raw_connection(server.url) as ws:
        ws.send(msgpack.packb(raw, use_bin_type=True))
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
        assert err.code == code and err.id == "bad"
        ws.send(restore_msg("good", drawing(24, 32), "gray8"))
        res, _ = recv_until(ws, lambda m: isinstance(m, (protocol.Result, protocol.Error)))
        assert isinstance(res, protocol.Result) and res.id == "good"


def test_protocol_misuse(server):
    with raw_connection(server.url, hello=False) as ws:
        ws.send(restore_msg("early", drawing(24, 32), "gray8"))
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
        assert err.code == "not_ready" and err.id == "early"
        ws.send("a text frame")
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
        assert err.code == "bad_message"
        ws.send(protocol.encode(protocol.Hello()))
        recv_until(ws, lambda m: isinstance(m, protocol.Welcome))
        ws.send(protocol.encode(protocol.Progress(id="x", fraction=0.5)))
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
        assert err.code == "bad_message" and "progress" in err.message
        ws.send(protocol.encode(protocol.Hello(client="again")))  # a second hello is answered again
        recv_until(ws, lambda m: isinstance(m, protocol.Welcome))
        long_img = drawing(LONG, LONG, seed=15)
        ws.send(restore_msg("dup", long_img, "gray8"))
        ws.send(restore_msg("dup", long_img, "gray8"))
        err, _ = recv_until(ws, lambda m: isinstance(m, protocol.Error))
        assert err.code == "duplicate_id" and err.id == "dup"
        ws.send(protocol.encode(protocol.Cancel(id="dup")))
        recv_until(ws, lambda m: isinstance(m, protocol.Error) and m.code == "cancelled")
    wait_idle(server)


def test_mask_methods_without_their_model_are_refused(model_paths):
    only_framework = Restorer.from_files(restore=model_paths[1], device="cpu", precision="fp32")
    with serve_in_thread(only_framework) as srv:
        with client.Client(srv.url) as c:
            assert c.welcome.options["mask"]["choices"] == ["otsu", "otsu_d", "agt"]
            img = drawing(24, 32)
            for mask in ("learnt", "none"):
                with pytest.raises(client.ServerError) as info:
                    c.restore(img.tobytes(), 32, 24, "gray8", {"mask": mask})
                assert info.value.code == "invalid_option" and mask in str(info.value)
            assert c.restore(img.tobytes(), 32, 24, "gray8", {"mask": "otsu"}).mask is not None


def test_named_models_are_chosen_by_name_not_path(restorer, model_paths):
    with serve_in_thread(restorer, models={"plain": model_paths[1]}) as srv:
        with client.Client(srv.url) as c:
            assert c.welcome.models == ["default", "plain"]
            img = drawing(24, 32)
            res = c.restore(img.tobytes(), 32, 24, "gray8", {"model": "plain", "mask": "otsu"})
            assert res.width == 32
            with pytest.raises(client.ServerError) as info:
                c.restore(img.tobytes(), 32, 24, "gray8", {"model": str(model_paths[1])})
            assert info.value.code == "invalid_option" and "unknown model" in str(info.value)
    with pytest.raises(FileNotFoundError):
        RestoreServer(restorer, models={"x": "/no/such/file.safetensors"})


# ---- security ---------------------------------------------------------------------------------------------


def test_browser_origins_are_refused(server):
    for origin in ("https://evil.example", "null", "http://127.0.0.1:8000"):
        with pytest.raises(InvalidStatus) as info:
            connect(server.url, origin=origin, proxy=None, open_timeout=10)
        assert info.value.response.status_code == 403
    with connect(server.url, proxy=None, open_timeout=10):  # native clients send no Origin
        pass


def test_allowed_origin_gets_through(restorer):
    with serve_in_thread(restorer, allowed_origins=["https://ok.example"]) as srv:
        with raw_connection(srv.url, origin="https://ok.example"):
            pass
        with pytest.raises(InvalidStatus):
            connect(srv.url, origin="https://other.example", proxy=None, open_timeout=10)


def test_token(restorer):
    with serve_in_thread(restorer, token="s3cret") as srv:
        for token in (None, "wrong", "s3cret-but-longer"):
            with pytest.raises(client.HandshakeRefusedError) as info:
                client.Client(srv.url, token=token).connect()
            assert info.value.code == "unauthorized"
        with pytest.raises(InvalidStatus) as raw_info:
            connect(srv.url, proxy=None, additional_headers={"Authorization": "Basic czNjcmV0"})
        assert raw_info.value.response.status_code == 401
        with client.Client(srv.url, token="s3cret") as c:
            assert c.restore(drawing(24, 32).tobytes(), 32, 24, "gray8").width == 32


# ---- life cycle -------------------------------------------------------------------------------------------


def test_shutdown_with_clients_connected(restorer):
    with serve_in_thread(restorer, tile=TILE) as srv:
        c = client.Client(srv.url)
        c.connect()
        ws = raw_connection(srv.url)
        ws.send(restore_msg("long", drawing(LONG, LONG, seed=16), "gray8"))
        recv_until(ws, lambda m: isinstance(m, protocol.Progress))
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 15  # the running job was stopped, not waited for
    with pytest.raises(client.ServerUnavailableError) as info:  # it tried once to connect again
        c.restore(drawing(24, 32).tobytes(), 32, 24, "gray8")
    assert "python -m server" in str(info.value)
    with pytest.raises(ConnectionClosed):
        while True:
            ws.recv(timeout=10)


def test_port_in_use_is_an_oserror(restorer, server):
    with pytest.raises(OSError):
        with serve_in_thread(restorer, port=server.port):
            pass


def cpu_server_command(model_paths, *extra: str) -> list[str]:
    """``python -m server`` on a free port, on the CPU in fp32, with the test models, and ``extra``."""
    return [
        sys.executable, "-m", "server", "--port", "0", "--device", "cpu", "--precision", "fp32",
        *model_args(model_paths), *extra,
    ]  # fmt: skip


def served_url(proc: subprocess.Popen) -> tuple[str, list[str]]:
    """The ws:// URL a ``python -m server`` process logs on its stderr pipe, and the lines until it."""
    url = None
    lines = []
    deadline = time.monotonic() + 600
    while url is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"listening on (ws://127\.0\.0\.1:\d+) \(device cpu", line)
        url = m.group(1) if m else None
    assert url, "".join(lines)
    return url, lines


def test_command_line_serves_and_stops_on_ctrl_c(model_paths, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    cmd = cpu_server_command(model_paths, "--token", "tok", "--max-pixels", "5000")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).parent.parent)
    try:
        url, lines = served_url(proc)
        with client.Client(url, token="tok") as c:
            assert c.welcome.limits.max_pixels == 5000
            res = c.restore(drawing(24, 32).tobytes(), 32, 24, "gray8")
            assert res.width == 32
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=300)
        # Read the rest through the same file object: readline() above may already hold lines
        # in its buffer, which communicate() (it reads the pipe itself) would never see.
        rest = proc.stderr.read()
        log = "".join(lines) + rest
        assert proc.returncode == 0, log
        assert "shutting down" in rest and "stopped" in rest
        # The log names the weights files it serves (for --fast, or a file given by hand).
        assert "weights: mask mask.safetensors, restore framework.safetensors, baseline baseline.safetensors" in log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_command_line_reports_missing_weights(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "server", "--port", "0", "--restore-model", str(tmp_path / "missing.safetensors")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).parent.parent,
    )
    assert out.returncode == 2 and "cannot start" in out.stderr and "missing.safetensors" in out.stderr


# --- a newer client against a real older server (tests/conftest.py: older_server_url) ----------


def test_a_newer_client_restores_with_an_older_server(older_server_url, drawing):
    """Options at their default stay off the wire, so a server from before ``ensemble`` takes this
    client's requests (until they were left out, every request failed there with "unknown
    option(s) ensemble", even one with no options at all)."""
    img, _ = drawing
    h, w = img.shape
    with client.Client(older_server_url) as c:
        assert "ensemble" not in c.welcome.options  # it really is the older server
        for options in ({}, {"mask": "otsu", "theta": 250, "return_mask": False}):
            r = c.restore(img.tobytes(), w, h, "gray8", options, timeout=120)
            assert (r.width, r.height, len(r.data)) == (w, h, w * h)


def test_an_option_the_older_server_lacks_is_refused_before_sending(older_server_url, drawing):
    img, _ = drawing
    h, w = img.shape
    with client.Client(older_server_url) as c:
        with pytest.raises(client.ServerError) as e:
            c.restore(img.tobytes(), w, h, "gray8", {"ensemble": 2}, timeout=120)
        assert e.value.code == protocol.ErrorCode.INVALID_OPTION
        # the client's own words (the server would have said "unknown option(s) ensemble")
        assert "does not offer the option 'ensemble'" in e.value.message
        assert "older than this client" in e.value.message
        assert c.restore(img.tobytes(), w, h, "gray8", timeout=120).width == w  # still connected
