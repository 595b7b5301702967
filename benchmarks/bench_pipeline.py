"""Benchmark of the restore pipeline on this machine's CPU.

Prints, for the default models (the shipped weights when present, else random weights of the same
architecture; speed and memory do not depend on the weight values):

* megapixels per second of the whole pipeline (mask net + backbone + compose + threshold) at
  1024^2, 2048^2 and 4096^2, each size in a fresh process, with its peak RSS;
* peak RSS at 8192^2 (through tiling);
* fp32 eager vs fp32 channels_last vs fp32 through ONNX Runtime vs bf16 autocast (where the CPU
  has native bf16; emulated bf16 is skipped) at 1024^2, and each one's output difference from
  torch fp32 (the parity that picks the CPU precision and engine);
* the max difference between tiled and whole-image output;
* the same pipeline with the official-size FBCNN (random weights) as the reference a user would
  otherwise run, and the speed-up;
* a colour layer against a gray layer of the same size (``--parts colour``): the same drawing,
  JPEG'd as a gray layer and, drawn in brown ink, as an RGB JPEG (4:2:0, same quality; the colour
  path of :mod:`core.colour`, with the colour layers' own networks where they are shipped), and
  the cost ratio (target: at most 1.3x).

Usage:
    python -m benchmarks.bench_pipeline                  # everything (several minutes on 2 cores)
    python -m benchmarks.bench_pipeline --quick          # 1024^2 only, no 8192^2
    python -m benchmarks.bench_pipeline --reference-sizes 1024 2048   # reference at 2048^2 too
    python -m benchmarks.bench_pipeline --parts colour --threads 1   # colour vs gray layer cost

The load average is printed before and after: other processes on the machine slow every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT, drawing

#: Timed runs per measurement (``--repeat``).
REPEAT = 3


def build_restorer(
    which: str, precision: str, channels_last: bool = True, mask_precision: str | None = None, engine: str = "auto"
):
    """``default``: shipped weights or random slim models; ``fbcnn_full``: the official-size FBCNN."""
    import torch

    from core.backbones import build_backbone
    from core.masknet import build_masknet
    from core.pipeline import DEFAULT_FILES, MODELS_DIR, Restorer, colour_files
    from core.weights import load_model

    torch.manual_seed(0)
    if which == "fbcnn_full":
        return Restorer(
            baseline_model=build_backbone("fbcnn", "full", mode="baseline"),
            device="cpu",
            precision=precision,
            channels_last=channels_last,
            engine=engine,
        ), "random weights"
    paths = {r: MODELS_DIR / f for r, f in DEFAULT_FILES.items()}
    colour = {}  # the colour layers' own networks, as Restorer.default() loads them
    if all(p.is_file() for p in paths.values()):
        models = [load_model(paths[r]) for r in ("mask", "restore", "baseline")]
        source = "shipped weights"
        for role, path in colour_files().items():
            if path is not None:
                colour[f"{role}_model"] = load_model(path)
    else:
        models = [
            build_masknet("blind", "slim"),
            build_backbone("drunet", "slim", mode="framework"),
            build_backbone("drunet", "slim", mode="baseline"),
        ]
        source = "random weights (shipped files not present yet)"
    return Restorer(
        *models,
        device="cpu",
        precision=precision,
        mask_precision=mask_precision,
        channels_last=channels_last,
        engine=engine,
        **colour,
    ), source


def worker(args) -> None:
    """Run one measurement in this (fresh) process and print one JSON line."""
    import numpy as np
    import torch

    from core.pipeline import RestoreOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    r, source = build_restorer(args.which, args.precision, not args.no_channels_last, args.mask_precision, args.engine)
    mask = "none" if args.which == "fbcnn_full" else "learnt"
    img = drawing(args.size)
    if args.colour:  # the same drawing in brown ink, saved as an RGB JPEG (4:2:0) at the same quality
        from training.colour import INKS, in_ink, jpeg_rgb

        img = jpeg_rgb(in_ink(drawing(args.size, qf=None), INKS["brown"]), 20)
    opts = RestoreOptions(mask=mask, tile=args.tile)
    r.restore(drawing(256, seed=1), RestoreOptions(mask=mask))  # warm-up (oneDNN primitives)
    # Best of several runs: a shared machine's noise only ever adds time.
    runs = args.repeat if args.size * args.size <= 4 * 2**20 else 1
    dt = cpu = float("inf")
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        res = r.restore(img, opts)
        if time.perf_counter() - t < dt:
            dt, cpu, best = time.perf_counter() - t, time.process_time() - c, res
    res = best
    out = {
        "which": args.which,
        "source": source,
        "size": args.size,
        "precision": r.precision,
        "mask_precision": r.mask_precision,
        "channels_last": r.channels_last,
        "seconds": dt,
        "mps": args.size * args.size / 1e6 / dt,
        "cpu_seconds": cpu,
        "mp_per_cpu_s": args.size * args.size / 1e6 / cpu,
        "tile": res.tile,
        "tiles": res.tiles,
        "timings": res.timings,
        "runs": runs,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
        "engines": {role: m["engine"] for role, m in r.info()["models"].items()},
        "tile_bytes_per_pixel": r.activation_bytes_per_pixel(),
    }
    if args.save:
        np.save(args.save, res.image)
        if res.mask is not None:
            np.save(args.save.replace(".npy", "_mask.npy"), res.mask)
    print("RESULT " + json.dumps(out))


def measure(
    size: int,
    which="default",
    precision="auto",
    tile=None,
    threads=None,
    channels_last=True,
    save=None,
    mask_precision=None,
    engine="auto",
    colour=False,
):
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_pipeline",
        "--worker",
        "--size",
        str(size),
        "--which",
        which,
        "--precision",
        precision,
        "--engine",
        engine,
        "--repeat",
        str(REPEAT),
    ]
    if colour:
        cmd += ["--colour"]
    if mask_precision:
        cmd += ["--mask-precision", mask_precision]
    if tile:
        cmd += ["--tile", str(tile)]
    if threads:
        cmd += ["--threads", str(threads)]
    if not channels_last:
        cmd += ["--no-channels-last"]
    if save:
        cmd += ["--save", save]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=1024, help=argparse.SUPPRESS)
    ap.add_argument("--which", default="default", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    ap.add_argument("--mask-precision", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--engine", default="auto", help=argparse.SUPPRESS)
    ap.add_argument("--tile", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--no-channels-last", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    ap.add_argument("--colour", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument(
        "--repeat", type=int, default=3, help="timed runs per measurement, best reported (default 3; 1 above 4 MP)"
    )
    ap.add_argument("--quick", action="store_true", help="1024^2 only; skip 8192^2")
    ap.add_argument(
        "--parts",
        nargs="+",
        default=["precision", "sizes", "8192", "tiled", "reference", "colour"],
        choices=["precision", "sizes", "8192", "tiled", "reference", "colour"],
        help="which measurements to run (default: all)",
    )
    ap.add_argument(
        "--reference-sizes",
        type=int,
        nargs="+",
        default=[1024],
        metavar="N",
        help="sizes for the official-size FBCNN reference (default: 1024; it is ~20x slower)",
    )
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    global REPEAT
    REPEAT = max(1, args.repeat)

    import torch

    from core.device import cpu_has_native_bf16

    sizes = [1024] if args.quick else [1024, 2048, 4096]
    print(
        f"# bench_pipeline  {time.strftime('%Y-%m-%d %H:%M')}  python {platform.python_version()}  "
        f"torch {torch.__version__}"
    )
    print(
        f"# CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
        f"{args.threads or torch.get_num_threads()}, native bf16: {cpu_has_native_bf16()}"
    )
    print(f"# load average before: {load()}; best of {REPEAT} runs up to 4 MP, one run above")

    parts = set(args.parts) - ({"8192"} if args.quick else set())
    if "precision" in parts:
        precision_part(args)
    results = sizes_part(args, sizes) if "sizes" in parts else {}
    if "8192" in parts:
        res = measure(8192, threads=args.threads)
        print(
            f"8192²: {res['mps']:.2f} MP/s ({res['mp_per_cpu_s']:.2f} MP/cpu-s), {res['seconds']:.1f} s, "
            f"tile {res['tile']}, {res['tiles']} tiles, peak RSS {res['peak_rss_mb']:.0f} MB"
        )
    if "tiled" in parts:
        tiled_part(args)
    if "reference" in parts:
        reference_part(args, results)
    if "colour" in parts:
        colour_part(args, sizes)
    print(f"\n# load average after: {load()}")


def precision_part(args) -> None:
    import numpy as np

    from core.device import cpu_has_native_bf16

    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    print("\n## Precision and engine at 1024^2 (default models, whole pipeline)")
    print("(MP/s: wall clock; MP/cpu-s: megapixels per CPU-second of this process, less sensitive to other load)")
    print(f"{'variant':46} {'MP/s':>6} {'MP/cpu-s':>8} {'s':>6}  mask s / backbone s")
    torch32 = dict(precision="fp32", mask_precision="fp32", engine="torch")
    variants = [
        ("fp32 torch eager (contiguous)", dict(torch32, channels_last=False)),
        ("fp32 torch channels_last", torch32),
        ("fp32 onnxruntime", dict(precision="fp32", mask_precision="fp32", engine="onnxruntime", save="ort")),
    ]
    if cpu_has_native_bf16():
        variants += [
            (
                "bf16 torch autocast channels_last (mask fp32)",
                dict(precision="bf16", mask_precision="fp32", engine="torch", save="bf16"),
            ),
            (
                "bf16 torch autocast channels_last (mask bf16)",
                dict(precision="bf16", mask_precision="bf16", engine="torch", save="bf16all"),
            ),
        ]
    ref32 = measure(1024, save=str(tmp / "bench_fp32.npy"), threads=args.threads, **torch32)
    for name, kw in variants:
        if kw is torch32:
            res = ref32
        else:
            if "save" in kw:
                kw = dict(kw, save=str(tmp / f"bench_{kw['save']}.npy"))
            res = measure(1024, threads=args.threads, **kw)
        print(
            f"{name:46} {res['mps']:6.2f} {res['mp_per_cpu_s']:8.2f} {res['seconds']:6.2f}  "
            f"{res['timings']['mask']:.2f} / {res['timings']['restore']:.2f}"
        )
    if not cpu_has_native_bf16():
        print("bf16: skipped, this CPU has no native bf16 (emulated bf16 is many times slower than fp32)")
    a = np.load(tmp / "bench_fp32.npy").astype(int)
    ma = np.load(tmp / "bench_fp32_mask.npy")
    for tag, label in (("ort", "onnxruntime fp32"), ("bf16", "bf16 (mask fp32)"), ("bf16all", "bf16 (mask bf16)")):
        if not (tmp / f"bench_{tag}.npy").is_file():
            continue
        b = np.load(tmp / f"bench_{tag}.npy").astype(int)
        mb = np.load(tmp / f"bench_{tag}_mask.npy")
        d = np.abs(a - b)
        print(
            f"{label} vs torch fp32 output: max {d.max()} gray levels, mean {d.mean():.4f}, "
            f"pixels > 1 level {int((d > 1).sum())}, mask pixels differing {int((ma != mb).sum())} of {ma.size}"
        )

    for f in tmp.glob("bench_*.npy"):
        f.unlink()


def sizes_part(args, sizes) -> dict:
    print("\n## Whole pipeline, default models, auto precision and auto tile (fresh process per size)")
    print(
        f"{'size':>6} {'MP/s':>6} {'MP/cpu-s':>8} {'s':>7} {'tile':>5} {'tiles':>5} {'peak RSS MB':>11}  "
        "precision, engine"
    )
    results = {}
    for s in sizes:
        res = measure(s, threads=args.threads)
        results[s] = res
        print(
            f"{s:>5}² {res['mps']:6.2f} {res['mp_per_cpu_s']:8.2f} {res['seconds']:7.2f} {res['tile']:5d} {res['tiles']:5d} "
            f"{res['peak_rss_mb']:11.0f}  {res['precision']} (mask {res['mask_precision']}), "
            f"{res['engines'].get('restore', '?')}"
        )
    first = results[sizes[0]]
    cost = ", ".join(f"{role} {b:.0f}" for role, b in first["tile_bytes_per_pixel"].items())
    print(f"models: {first['source']}; tile cost (activation bytes alive at once per pixel): {cost}")
    return results


def tiled_part(args) -> None:
    import numpy as np

    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    print("\n## Tiled vs whole image (default models, auto precision, 1024^2)")
    measure(1024, tile=2048, save=str(tmp / "bench_whole.npy"), threads=args.threads)
    tiled = measure(1024, tile=384, save=str(tmp / "bench_tiled.npy"), threads=args.threads)
    a = np.load(tmp / "bench_whole.npy").astype(int)
    b = np.load(tmp / "bench_tiled.npy").astype(int)
    flips = int((np.load(tmp / "bench_whole_mask.npy") != np.load(tmp / "bench_tiled_mask.npy")).sum())
    print(
        f"whole (1 tile) vs {tiled['tiles']} tiles of 384 (overlap 128): max |diff| {np.abs(a - b).max()} gray "
        f"levels, mask pixels differing {flips}"
    )

    for f in tmp.glob("bench_*.npy"):
        f.unlink()


def colour_part(args, sizes) -> None:
    print("\n## Colour layer vs gray layer of the same size (default models, same drawing, brown ink)")
    for s in sizes[:2]:
        gray = measure(s, threads=args.threads)
        col = measure(s, threads=args.threads, colour=True)
        print(
            f"{s:>5}² gray {gray['seconds']:.2f} s ({gray['cpu_seconds']:.2f} cpu-s), colour {col['seconds']:.2f} s "
            f"({col['cpu_seconds']:.2f} cpu-s) -> colour costs {col['seconds'] / gray['seconds']:.2f}x by wall "
            f"clock, {col['cpu_seconds'] / gray['cpu_seconds']:.2f}x per CPU-second (target <= 1.3x); "
            f"colour steps: prepare {col['timings']['prepare']:.2f} s (of which the ink network "
            f"{col['timings'].get('inks', 0.0):.2f} s), finish {col['timings']['finish']:.2f} s; "
            f"JPEG consistency: gray {gray['timings'].get('consistency', 0.0):.2f} s, "
            f"colour {col['timings'].get('consistency', 0.0):.2f} s"
        )


def reference_part(args, results) -> None:
    from core.device import cpu_has_native_bf16

    print("\n## Reference: official-size FBCNN (nc 64-512, nb 4, random weights), same pipeline, mask none")
    for s in args.reference_sizes:
        ours = results.get(s) or measure(s, threads=args.threads)
        print(f"{s:>5}² default pipeline: {ours['mps']:.3f} MP/s ({ours['mp_per_cpu_s']:.3f} MP/cpu-s)")
        for prec in ("fp32", "bf16") if cpu_has_native_bf16() else ("fp32",):
            res = measure(s, which="fbcnn_full", precision=prec, threads=args.threads)
            print(
                f"{s:>5}² FBCNN {prec}: {res['mps']:.3f} MP/s ({res['mp_per_cpu_s']:.3f} MP/cpu-s), "
                f"{res['seconds']:.1f} s, peak RSS {res['peak_rss_mb']:.0f} MB -> default pipeline is "
                f"{ours['mps'] / res['mps']:.1f}x faster by wall clock, "
                f"{ours['mp_per_cpu_s'] / res['mp_per_cpu_s']:.1f}x per CPU-second"
            )


if __name__ == "__main__":
    main()
