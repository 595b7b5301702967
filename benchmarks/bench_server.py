"""Benchmark the restoration server against the issue's targets and print them.

    python -m benchmarks.bench_server [--size 2048] [--repeats 2] [--clients 8] [--requests 10] [--device cpu]
                                      [--parts concurrency,hostile,flood,fair,overhead]

1. Overhead: one ``size x size`` RGBA8 layer restored by calling ``Restorer.restore`` directly in
   this process (in one worker thread, as the server calls it), and through ``python -m server`` (a separate process, same models, same device)
   with the reference client; runs alternate, the median of each is compared. Target: the server
   path within 10 % of the direct one. Also reported: transport time (client wall time minus the
   server's own time) in ms per megapixel, and whether the pixels are identical.
2. Concurrency: ``clients`` threads, each with its own connection, send ``requests`` small
   drawings one after another; every reply is checked against the direct pipeline's output for
   its own image. Target: all replies present and matching. The server's resident memory
   (``/proc/PID/status``) is read idle before, at its peak, and idle after both parts.

3. Hostile use (issue 31): 2,000+ hostile messages in 20 classes (garbage, wrong versions and types,
   forged-log ids, three ~32 MiB maps of unknown option names, PNG bombs...) on raw connections.
   Targets: the server alive, the same output for a reference job before and after, log growth
   <= 1 MiB.
4. Queue flood: 4 clients send 8 messages each at the size limit (8192^2 rgba8, 256 MiB) back to
   back, each in fragments of the server's frame limit (docs/protocol.md), then close. Targets:
   peak RSS <= idle + 1.5 GiB, every refused message answered queue_full.
5. Fair turns: a 256^2 request sent by another client while an 8192^2 one runs, three times during
   one run (the first as the big one starts, during its whole-image preparation). Target: done within 3 s. Also printed: the longest gap between the big job's progress
   messages, and how long its cancel took.

Models: the shipped weights in core/models/ when present, else random-weight slim models written
to a temporary folder (the timings then measure the slim architectures; the output says which).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, shipped_path
from server import client, protocol


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident set size and its peak (VmHWM) of process ``pid``, in MiB."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def drawing(h: int, w: int, seed: int) -> np.ndarray:
    """An RGBA8 layer: white paper, dark strokes with JPEG-like noise, fully opaque."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w), 250.0, np.float32)
    for _ in range(max(4, (h + w) // 40)):
        t = max(1, int(rng.integers(1, 4)))
        if rng.random() < 0.5:
            y = int(rng.integers(0, h - t))
            img[y : y + t, int(rng.integers(0, w // 2)) : int(rng.integers(w // 2, w))] = rng.integers(0, 90)
        else:
            x = int(rng.integers(0, w - t))
            img[int(rng.integers(0, h // 2)) : int(rng.integers(h // 2, h)), x : x + t] = rng.integers(0, 90)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    gray = np.clip(img, 0, 255).astype(np.uint8)
    out = np.empty((h, w, 4), np.uint8)
    out[..., :3] = gray[..., None]
    out[..., 3] = 255
    return out


def model_paths(tmp: Path) -> tuple[list[str], str]:
    shipped = [shipped_path(r) for r in ("mask", "restore", "baseline")]
    if all(p.is_file() for p in shipped):
        return [str(p) for p in shipped], "shipped weights (core/models/)"
    import torch

    from core.backbones import build_backbone
    from core.masknet import build_masknet
    from core.weights import save_model

    torch.manual_seed(0)
    paths = [tmp / "mask.safetensors", tmp / "framework.safetensors", tmp / "baseline.safetensors"]
    save_model(build_masknet("blind", "slim"), paths[0])
    save_model(build_backbone("drunet", "slim", "framework"), paths[1])
    save_model(build_backbone("drunet", "slim", "baseline"), paths[2])
    return [str(p) for p in paths], "random-weight slim models (no shipped weights yet)"


def start_server(paths: list[str], device: str, log_path: Path, extra: list[str] = ()) -> tuple[subprocess.Popen, str]:
    """``python -m server`` with these models (and ``extra`` arguments), its log written to ``log_path``."""
    cmd = [
        sys.executable,
        "-m",
        "server",
        "--no-token",
        "--port",
        "0",
        "--device",
        device,
        "--mask-model",
        paths[0],
        "--restore-model",
        paths[1],
        "--baseline-model",
        paths[2],
        "--max-jobs-per-client",
        "10",
        *extra,
    ]
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=log, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        m = re.search(r"listening on (ws://\S+)", log_path.read_text())
        if m:
            return proc, m.group(1)
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start:\n" + log_path.read_text())


def bench_overhead(url: str, restorer, worker, size: int, repeats: int) -> dict:
    """Direct calls run in ``worker`` (one thread), as the server runs its jobs: on a machine with
    more busy threads than cores, torch's CPU threading makes main-thread and worker-thread calls
    differ by far more than the server's overhead (measured here: up to 3x under load)."""
    from core.pipeline import RestoreOptions
    from server.app import CPU_TILE

    img = drawing(size, size, seed=1)
    data = img.tobytes()
    direct_s, server_s, transport_s = [], [], []
    same = True
    opts = RestoreOptions(tile=CPU_TILE if restorer.device.type == "cpu" else None)  # as the server runs it
    for _ in range(repeats):
        t = time.perf_counter()
        want = worker.submit(restorer.restore, img, opts).result()
        direct_s.append(time.perf_counter() - t)
        with client.Client(url, name="bench") as c:
            t = time.perf_counter()
            res = c.restore(data, size, size, "rgba8")
            wall = time.perf_counter() - t
        server_s.append(wall)
        transport_s.append(wall - res.timings["server_total"] - res.timings["queue"])
        same &= res.data == want.image.tobytes()
        del want, res
    return {
        "direct": statistics.median(direct_s),
        "server": statistics.median(server_s),
        "transport": statistics.median(transport_s),
        "direct_all": direct_s,
        "server_all": server_s,
        "identical": same,
    }


def run_threads(target, n: int) -> float:
    """Run ``target(i)`` for i in 0..n-1 in n threads; the seconds until all ended."""
    t = time.perf_counter()
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t


def bench_concurrency(url: str, restorer, worker, clients: int, requests: int, side: int) -> dict:
    from core.pipeline import RestoreOptions

    images = {
        (c, r): drawing(side, side + 8 * c, seed=1000 + 100 * c + r) for c in range(clients) for r in range(requests)
    }
    opts = RestoreOptions(background="transparent")
    want = {k: worker.submit(restorer.restore, img, opts).result().image.tobytes() for k, img in images.items()}
    got: dict = {}
    errors: list = []

    def worker(c: int) -> None:
        try:
            with client.Client(url, name=f"bench-{c}") as cl:
                for r in range(requests):
                    img = images[(c, r)]
                    res = cl.restore(
                        img.tobytes(),
                        img.shape[1],
                        img.shape[0],
                        "rgba8",
                        {"background": "transparent"},
                        request_id=f"c{c}-r{r}",
                        timeout=600,
                    )
                    got[(c, r)] = (res.id, res.data)
        except Exception as e:  # counted and printed
            errors.append(f"client {c}: {e!r}")

    elapsed = run_threads(worker, clients)
    matching = sum(1 for k, (rid, data) in got.items() if rid == f"c{k[0]}-r{k[1]}" and data == want[k])
    return {"expected": len(images), "received": len(got), "matching": matching, "errors": errors, "seconds": elapsed}


class RssSampler:
    """Samples a process's resident size every 20 ms in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid)[0])
            time.sleep(0.02)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def _raw(url: str, hello: bool = True):
    from websockets.sync.client import connect

    # no keepalive pings: on a loaded machine a client busy sending 256 MiB frames answers late
    ws = connect(url, compression=None, proxy=None, max_size=None, open_timeout=30, legacy=True, ping_interval=None)
    if hello:
        ws.send(protocol.encode(protocol.Hello(client="bench-hostile")))
        ws.recv(timeout=60)
    return ws


def _reader(ws, replies: list) -> threading.Thread:
    def run() -> None:
        try:
            for raw in ws:
                msg = protocol.decode(raw)
                replies.append(msg.code if isinstance(msg, protocol.Error) else msg.TYPE)
        except Exception:
            pass

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def hostile_messages() -> list[tuple[str, object]]:
    """(class, frame) pairs: every frame breaks a rule of docs/protocol.md, in 20 classes."""
    import msgpack

    pk = lambda d: msgpack.packb(d, use_bin_type=True)
    restore = {"type": "restore", "v": 1, "id": "h", "width": 2, "height": 2, "format": "gray8", "data": b"\0" * 4}
    png_head = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"
    classes = {
        "garbage": lambda i: bytes([0xC1, i % 256]) * 8,
        "text frame": lambda i: f"hello {i}",
        "not a map": lambda i: pk([i, "restore"]),
        "unknown type": lambda i: pk({"type": f"evil\n{i}", "v": 1}),
        "version true/1.0/'1'/2": lambda i: pk({"type": "hello", "v": [True, 1.0, "1", 2][i % 4]}),
        "missing version": lambda i: pk({"type": "hello"}),
        "forged-log id": lambda i: pk({**restore, "id": f"x{i}\n2026 WARNING server: FORGED", "data": b"\0"}),
        "unknown fields": lambda i: pk({**restore, f"f\x1b[31m{i}": 1}),
        "wrong types": lambda i: pk({**restore, "width": "2", "data": "abcd"}),
        "unknown format": lambda i: pk({**restore, "format": f"cmyk{i}"}),
        "byte count": lambda i: pk({**restore, "data": b"\0" * 3}),
        "png garbage": lambda i: pk({**restore, "format": "png", "data": png_head + b"\0" * 20}),
        "png bomb header": lambda i: pk(
            {
                **restore,
                "format": "png",
                "width": 100000,
                "height": 100000,
                "data": png_head + (100000).to_bytes(4, "big") * 2 + b"\x08\0\0\0\0junk",
            }
        ),
        "too many pixels": lambda i: pk({**restore, "width": 10**6, "height": 10**6}),
        "negative size": lambda i: pk({**restore, "width": -2}),
        "server-only message": lambda i: pk({"type": "progress", "v": 1, "id": "x", "fraction": 0.5}),
        "deep nesting": lambda i: pk({**restore, "options": {"mask": [[[[[[[[[[[1]]]]]]]]]]]}}),
        "bad options": lambda i: pk(
            {
                **restore,
                "options": [{"ensemble": 3}, {"jpeg_table": [1, 2]}, {"theta": 999}, {"model": "../../etc/passwd"}][
                    i % 4
                ],
            }
        ),
        "long client name": lambda i: pk({"type": "hello", "v": 1, "client": "\n" * 5000}),
        "cancel unknown id": lambda i: pk({"type": "cancel", "v": 1, "id": f"nope\r{i}"}),
    }
    out = []
    for i in range(106):
        for name, make in classes.items():
            out.append((name, make(i)))
    return out


def probe_hostile(url: str, log_path: Path, proc: subprocess.Popen) -> dict:
    """2,000+ hostile messages; the reference job's output before and after; the log's growth."""
    import msgpack

    ref = drawing(96, 96, seed=77)

    def reference() -> bytes:
        with client.Client(url, name="bench-reference") as c:
            return c.restore(ref.tobytes(), 96, 96, "rgba8", timeout=600).data

    before = reference()
    time.sleep(0.5)
    log_before = log_path.stat().st_size
    messages = hostile_messages()
    huge = {f"opt{i:05d}" + "x" * 8192: 1 for i in range(4000)}  # ~32 MiB of unknown option names
    big = msgpack.packb(
        {
            "type": "restore",
            "v": 1,
            "id": "big\nFORGED",
            "width": 1,
            "height": 1,
            "format": "gray8",
            "data": b"\0",
            "options": huge,
        },
        use_bin_type=True,
    )
    t = time.perf_counter()
    replies: list = []
    conns = [_raw(url) for _ in range(4)]
    readers = [_reader(ws, replies) for ws in conns]
    fresh = _raw(url, hello=False)  # requests before hello
    readers.append(_reader(fresh, replies))
    for i in range(20):
        fresh.send(
            msgpack.packb(
                {
                    "type": "restore",
                    "v": 1,
                    "id": f"early{i}",
                    "width": 1,
                    "height": 1,
                    "format": "gray8",
                    "data": b"\0",
                },
                use_bin_type=True,
            )
        )
    for i, (_, frame) in enumerate(messages):
        conns[i % 4].send(frame)
    for i in range(3):
        conns[i].send(protocol.fragments(big))  # over the frame limit: in fragments, as docs/protocol.md says
    sent = len(messages) + 3 + 20
    expected = sent - sum(1 for name, _ in messages if name == "cancel unknown id")  # a cancel gets no answer
    deadline = time.monotonic() + 120
    while len(replies) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    for ws in [*conns, fresh]:
        ws.close()
    elapsed = time.perf_counter() - t
    time.sleep(1.0)
    growth = log_path.stat().st_size - log_before
    after = reference()
    counts: dict = {}
    for r in replies:
        counts[r] = counts.get(r, 0) + 1
    forged = sum(1 for line in log_path.read_text(errors="replace").splitlines() if line.startswith("2026 WARNING"))
    return {
        "sent": sent,
        "classes": len({n for n, _ in messages}) + 2,
        "answered": len(replies),
        "expected": expected,
        "counts": counts,
        "alive": proc.poll() is None,
        "same": before == after,
        "log_growth": growth,
        "forged_lines": forged,
        "seconds": elapsed,
    }


def probe_flood(url: str, proc: subprocess.Popen, clients: int = 4, per_client: int = 8, side: int = 8192) -> dict:
    """``clients`` connections each send ``per_client`` rgba8 ``side``^2 requests back to back."""
    img = np.full((side, side, 4), 255, np.uint8)
    img[::64, :, :3] = 0
    data = img.tobytes()
    del img
    time.sleep(1.0)
    idle, _ = rss_mb(proc.pid)
    sampler = RssSampler(proc.pid)
    answers: dict = {}
    lock = threading.Lock()

    def flood(c: int) -> None:
        ws = _raw(url)
        try:
            for r in range(per_client):
                frame = protocol.encode(
                    protocol.Restore(id=f"c{c}r{r}", width=side, height=side, format="rgba8", data=data)
                )
                ws.send(protocol.fragments(frame))  # the server reads the header from the first fragment
                del frame
            seen: set = set()
            deadline = time.monotonic() + 300
            while len(seen) < per_client and time.monotonic() < deadline:
                msg = protocol.decode(ws.recv(timeout=300))
                rid = getattr(msg, "id", None)
                if rid in seen or rid is None:
                    continue
                if isinstance(msg, protocol.Error) or isinstance(msg, protocol.Queued):
                    seen.add(rid)
                    with lock:
                        answers[rid] = msg.code if isinstance(msg, protocol.Error) else "queued"
        finally:
            ws.close()

    elapsed = run_threads(flood, clients)
    time.sleep(3.0)  # the accepted jobs are cancelled as their clients left
    peak = sampler.stop()
    counts: dict = {}
    for a in answers.values():
        counts[a] = counts.get(a, 0) + 1
    return {
        "sent": clients * per_client,
        "answers": counts,
        "idle": idle,
        "peak": peak,
        "seconds": elapsed,
        "after": rss_mb(proc.pid)[0],
    }


def probe_fair(url: str, big: int = 8192, small: int = 256, times: int = 3) -> dict:
    """Small requests from another client while a ``big``^2 one runs; then the big one is cancelled."""
    big_img = drawing(big, big, seed=5)
    small_img = drawing(small, small, seed=6)
    ticks: list = []
    cancel = threading.Event()
    outcome: dict = {}

    def run_big() -> None:
        with client.Client(url, name="bench-big") as c:
            try:
                c.restore(
                    big_img.tobytes(),
                    big,
                    big,
                    "rgba8",
                    on_progress=lambda f: ticks.append((time.perf_counter(), f)),
                    cancel=cancel,
                    timeout=3600,
                )
                outcome["big"] = "finished"
            except client.RequestCancelledError:
                outcome["big"] = "cancelled"
            outcome["cancel_done"] = time.perf_counter()

    th = threading.Thread(target=run_big)
    th.start()
    small_s = []
    with client.Client(url, name="bench-small") as c:
        while not ticks:  # the big job started (progress 0): the first small one goes during its preparation
            time.sleep(0.01)
            if not th.is_alive():
                raise SystemExit(f"the {big}^2 job ended early: {outcome}")
        for i in range(times):
            if i:
                time.sleep(3.0)
            t = time.perf_counter()
            c.restore(small_img.tobytes(), small, small, "rgba8", timeout=600)
            small_s.append(time.perf_counter() - t)
    time.sleep(2.0)
    gaps = [b[0] - a[0] for a, b in zip(ticks, ticks[1:]) if b[1] > a[1]]
    fraction = ticks[-1][1]
    t_cancel = time.perf_counter()
    cancel.set()
    th.join()
    return {
        "small_s": small_s,
        "max_gap": max(gaps) if gaps else float("nan"),
        "progress_messages": len(ticks),
        "fraction_when_cancelled": fraction,
        "cancel_s": outcome["cancel_done"] - t_cancel,
        "big": outcome["big"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=2048, help="side of the overhead test's layer (default 2048)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each path in the overhead test")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=10, help="requests per client")
    ap.add_argument("--side", type=int, default=96, help="side of the concurrency test's drawings")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--server-args", default="", help="more arguments for python -m server, e.g. '--max-queued-mb 256'")
    ap.add_argument(
        "--parts",
        default="concurrency,hostile,flood,fair,overhead",
        help="which parts to run, comma-separated (default: all)",
    )
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    extra = args.server_args.split()

    import torch

    from core.pipeline import Restorer

    worker = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    with tempfile.TemporaryDirectory() as tmp:
        paths, which = model_paths(Path(tmp))
        restorer = Restorer.from_files(*paths, device=args.device)
        log_path = Path(tmp) / "server.log"
        proc, url = start_server(paths, args.device, log_path, extra)
        hostile = flood = fair = conc = ov = None
        try:
            print(
                f"models: {which}; device: {args.device}; torch threads: {torch.get_num_threads()}; "
                f"cpus: {os.cpu_count()}"
            )
            with client.Client(url) as c:  # warm-up (first-call allocations) on both sides
                warm = drawing(256, 256, seed=0)
                c.restore(warm.tobytes(), 256, 256, "rgba8")
            from core.pipeline import RestoreOptions

            worker.submit(restorer.restore, drawing(256, 256, seed=0), RestoreOptions()).result()
            time.sleep(1.0)
            base, _ = rss_mb(proc.pid)

            after_conc = peak_conc = after_all = peak_all = base
            if "concurrency" in parts:
                conc = bench_concurrency(url, restorer, worker, args.clients, args.requests, args.side)
                time.sleep(2.0)
                after_conc, peak_conc = rss_mb(proc.pid)
            if "hostile" in parts:
                hostile = probe_hostile(url, log_path, proc)
                report_hostile(hostile)
            if "fair" in parts:
                fair = probe_fair(url)
                report_fair(fair)
            if "flood" in parts:
                flood = probe_flood(url, proc)
                report_flood(flood)
            if "overhead" in parts:
                ov = bench_overhead(url, restorer, worker, args.size, args.repeats)
                time.sleep(2.0)
                after_all, peak_all = rss_mb(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:  # stuck in a long tile on a starved machine
                proc.kill()
                proc.wait()
            worker.shutdown()

    ok = True  # the hostile, fair and flood parts were reported as they finished
    for result, check in ((hostile, report_hostile), (fair, report_fair), (flood, report_flood)):
        if result is not None:
            ok = check(result, quiet=True) and ok
    if conc is not None:
        print()
        ok = report_concurrency(args, conc) and ok
    print(
        f"server memory (RSS, MiB): idle baseline {base:.0f}; after the clients {after_conc:.0f} "
        f"({after_conc - base:+.0f}, peak {peak_conc:.0f}); at the end {after_all:.0f} ({after_all - base:+.0f}, "
        f"peak {peak_all:.0f})"
    )
    if ov is not None:
        ok = report_overhead(args, ov) and ok
    return 0 if ok else 1


def report_hostile(r: dict, quiet: bool = False) -> bool:
    ok = r["alive"] and r["same"] and r["log_growth"] <= 2**20 and not r["forged_lines"]
    if quiet:
        return ok
    print(
        f"hostile: {r['sent']} messages in {r['classes']} classes in {r['seconds']:.1f} s; answered "
        f"{r['answered']} (at least {r['expected']} expected: {', '.join(f'{k} {v}' for k, v in sorted(r['counts'].items()))})"
    )
    print(
        f"  server alive {r['alive']}; reference job identical before and after {r['same']}; log growth "
        f"{r['log_growth'] / 1024:.1f} KiB (target <= 1024); forged lines {r['forged_lines']}  {'PASS' if ok else 'FAIL'}",
        flush=True,
    )
    return ok


def report_flood(r: dict, quiet: bool = False) -> bool:
    refused = r["answers"].get("queue_full", 0)
    accepted = r["answers"].get("queued", 0)
    ok = r["peak"] - r["idle"] <= 1536 and refused + accepted == r["sent"]
    if quiet:
        return ok
    print(
        f"queue flood: {r['sent']} messages of 256 MiB in {r['seconds']:.1f} s: queued {accepted}, "
        f"queue_full {refused}, other {sum(r['answers'].values()) - refused - accepted}, "
        f"unanswered {r['sent'] - sum(r['answers'].values())}"
    )
    print(
        f"  RSS idle {r['idle']:.0f} MiB, peak {r['peak']:.0f} MiB ({r['peak'] - r['idle']:+.0f}, target <= +1536), "
        f"after {r['after']:.0f} MiB  {'PASS' if ok else 'FAIL'}",
        flush=True,
    )
    return ok


def report_fair(r: dict, quiet: bool = False) -> bool:
    ok = max(r["small_s"]) <= 3.0
    if quiet:
        return ok
    print(
        f"fair turns: 256^2 requests sent while an 8192^2 one ran: {', '.join(f'{s:.2f} s' for s in r['small_s'])} "
        f"(target <= 3 s)  {'PASS' if ok else 'FAIL'}"
    )
    print(
        f"  the 8192^2 job: {r['progress_messages']} progress messages, longest gap {r['max_gap']:.2f} s; "
        f"cancelled at {r['fraction_when_cancelled']:.0%}, answered in {r['cancel_s']:.2f} s ({r['big']})",
        flush=True,
    )
    return ok


def report_concurrency(args, conc: dict) -> bool:
    ok = conc["received"] == conc["expected"] == conc["matching"] and not conc["errors"]
    print(f"{args.clients} clients x {args.requests} requests ({args.side}px drawings), in {conc['seconds']:.1f} s:")
    print(
        f"  replies {conc['received']}/{conc['expected']}, matching their request {conc['matching']}, "
        f"lost {conc['expected'] - conc['received']}, errors {len(conc['errors'])}  {'PASS' if ok else 'FAIL'}"
    )
    for e in conc["errors"][:5]:
        print("   ", e)
    return ok


def report_overhead(args, ov: dict) -> bool:
    mp = args.size * args.size / 1e6
    overhead = (ov["server"] - ov["direct"]) / ov["direct"] * 100
    print()
    print(f"server overhead, {args.size}x{args.size} rgba8 ({mp:.1f} MP), median of {args.repeats}:")
    print(f"  direct pipeline {ov['direct']:.2f} s  {[f'{v:.2f}' for v in ov['direct_all']]}")
    print(f"  through server  {ov['server']:.2f} s  {[f'{v:.2f}' for v in ov['server_all']]}")
    print(f"  overhead {overhead:+.1f} %   (target: <= +10 %)  {'PASS' if overhead <= 10 else 'FAIL'}")
    print(
        f"  transport (client wall - server time): {ov['transport'] * 1000:.0f} ms = "
        f"{ov['transport'] * 1000 / mp:.1f} ms/MP; pixels identical to direct: {ov['identical']}"
    )
    return overhead <= 10


if __name__ == "__main__":
    sys.exit(main())
