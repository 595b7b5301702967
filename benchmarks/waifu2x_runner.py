"""Run waifu2x's own Chainer code on a folder of JPEGs (denoise only; Y-channel or RGB models).

This script runs INSIDE the separate waifu2x virtual environment made by
``benchmarks/waifu2x_env.sh`` (Python 3.9-3.11, waifu2x==2024.0.1, chainer 7, numpy < 2,
Pillow < 11). It imports nothing of lineart-restore; ``benchmarks/compare_waifu2x.py`` calls it
as a subprocess.

For every requested model (architecture x noise level) it loads the bundled
``models/<arch>/anime_style_noise<n>_y.npz`` with waifu2x's own ``load_models`` and restores each
input with ``waifu2x.reconstruct.image`` (the package's block-wise inference path, no TTA). Inputs
are opened as 8-bit gray (mode ``L``); for ``L`` images that path works on the Y channel, which
equals the gray value exactly, and returns an ``L`` image of the same size. With ``--color rgb``
the bundled ``anime_style_noise<n>_rgb.npz`` models run on the inputs opened as ``RGB`` (the models
artists use on coloured art) and the outputs are RGB PNGs.

Outputs:
    ``OUT/<arch>_noise<n>/<input stem>.png``   8-bit gray PNGs, same size as the inputs.
    ``OUT/<arch>_noise<n>/model_run.json``    that model's part of the report, written when the
                                               model has done every input (``--resume`` reuses it)
    ``OUT/waifu2x_run.json``                   versions, settings and per-image seconds:
        {"waifu2x": str, "chainer": str, "numpy": str, "pillow": str, "python": str,
         "threads": int, "block_size": int, "batch_size": int,
         "models": [{"arch", "noise", "path", "load_seconds", "loadavg": [start, end]}],
         "results": [{"arch", "noise", "file", "output", "width", "height", "seconds"}]}
    ``seconds`` is the wall time of ``reconstruct.image`` alone (model loading and file I/O
    excluded), after one small warm-up call per model.

Usage:
    .venv-waifu2x/bin/python benchmarks/waifu2x_runner.py --input DIR --output DIR \\
        [--arch resnet10 vgg7] [--noise 0 1 2 3] [--threads 1] [--resume]

With ``--resume``, a model whose ``model_run.json`` lists the same input files and settings, and
whose outputs all exist, is not run again (its stored seconds are kept). The caller must make sure
the inputs themselves did not change (compare_waifu2x.py wipes the folder when they do).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

ARCHS = {"resnet10": "ResNet10", "vgg7": "VGG7"}
INPUT_EXTS = (".jpg", ".jpeg", ".png")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, help="folder of input images (.jpg/.jpeg/.png), read as 8-bit gray")
    p.add_argument("--output", required=True, help="folder for the PNG outputs and waifu2x_run.json")
    p.add_argument("--arch", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    p.add_argument("--noise", nargs="+", type=int, default=[0, 1, 2, 3], choices=[0, 1, 2, 3])
    p.add_argument(
        "--color",
        choices=("y", "rgb"),
        default="y",
        help="y: gray inputs, Y-channel models (default); rgb: RGB inputs, RGB models",
    )
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads for numpy (default 1)")
    p.add_argument("--block-size", type=int, default=128, help="waifu2x block size (its default: 128)")
    p.add_argument("--batch-size", type=int, default=16, help="waifu2x batch size (its default: 16)")
    p.add_argument("--resume", action="store_true", help="skip models already finished in OUTPUT (see above)")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if not os.path.isdir(args.input):
        p.error(f"--input {args.input!r} is not a folder")
    args.output = os.path.abspath(args.output)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The thread count must be fixed before numpy (and its BLAS) is imported.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import chainer
    import numpy as np
    import PIL
    import waifu2x
    from PIL import Image
    from waifu2x import reconstruct

    files = sorted(f for f in os.listdir(args.input) if f.lower().endswith(INPUT_EXTS))
    if not files:
        print(f"waifu2x_runner: no .jpg/.jpeg/.png files in {args.input}", file=sys.stderr)
        return 2
    os.makedirs(args.output, exist_ok=True)

    report = {
        "waifu2x": _version("waifu2x"),
        "chainer": chainer.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
        "threads": args.threads,
        "block_size": args.block_size,
        "batch_size": args.batch_size,
        "models": [],
        "results": [],
    }
    mode = "L" if args.color == "y" else "RGB"
    report["color"] = args.color
    warm = Image.new(mode, (32, 32), "white")
    for arch in args.arch:
        for noise in args.noise:
            ns = argparse.Namespace(
                color=args.color, arch=ARCHS[arch], method="noise", noise_level=noise, model_dir=None, gpu=-1
            )
            t0 = time.perf_counter()
            model = waifu2x.load_models(ns)["noise"]
            load_s = time.perf_counter() - t0
            path = os.path.join(
                os.path.dirname(waifu2x.__file__), "models", arch, f"anime_style_noise{noise}_{args.color}.npz"
            )
            report["models"].append({"arch": arch, "noise": noise, "path": path, "load_seconds": load_s})
            sub = os.path.join(args.output, f"{arch}_noise{noise}")
            part_path = os.path.join(sub, "model_run.json")
            settings = {
                "arch": arch,
                "noise": noise,
                "files": files,
                "threads": args.threads,
                "block_size": args.block_size,
                "batch_size": args.batch_size,
            }
            if args.color != "y":  # (Y runs stored before --color existed stay reusable)
                settings["color"] = args.color
            done = _finished(part_path, settings) if args.resume else None
            if done is not None:
                done, load = done
                report["results"].extend(done)
                report["models"][-1]["loadavg"] = load
                print(f"{arch} noise{noise}: reusing {part_path}", file=sys.stderr, flush=True)
                continue
            reconstruct.image(warm, model, args.block_size, args.batch_size)
            os.makedirs(sub, exist_ok=True)
            results = []
            load_start = os.getloadavg()[0]
            for name in files:
                with Image.open(os.path.join(args.input, name)) as im:
                    src = im.convert(mode)
                t0 = time.perf_counter()
                dst = reconstruct.image(src, model, args.block_size, args.batch_size)
                seconds = time.perf_counter() - t0
                if dst.mode != mode or dst.size != src.size:
                    print(f"waifu2x_runner: unexpected output {dst.mode} {dst.size} for {name}", file=sys.stderr)
                    return 1
                out = os.path.join(sub, os.path.splitext(name)[0] + ".png")
                dst.save(out)
                results.append(
                    {
                        "arch": arch,
                        "noise": noise,
                        "file": name,
                        "output": out,
                        "width": src.size[0],
                        "height": src.size[1],
                        "seconds": seconds,
                    }
                )
                print(f"{arch} noise{noise} {name}: {seconds:.2f} s", file=sys.stderr, flush=True)
            load = [load_start, os.getloadavg()[0]]
            with open(part_path + ".tmp", "w") as f:
                json.dump({**settings, "loadavg": load, "results": results}, f, indent=1)
            os.replace(part_path + ".tmp", part_path)
            report["results"].extend(results)
            report["models"][-1]["loadavg"] = load
    with open(os.path.join(args.output, "waifu2x_run.json"), "w") as f:
        json.dump(report, f, indent=1)
    return 0


def _finished(path: str, settings: dict) -> tuple[list, list] | None:
    """``(results, [load average at start, at end])`` stored for one model, if ``path`` exists,
    matches ``settings`` and every output file is present; otherwise None."""
    try:
        with open(path) as f:
            part = json.load(f)
    except (OSError, ValueError):
        return None
    if any(part.get(k) != v for k, v in settings.items()):
        return None
    results = part.get("results", [])
    if [r.get("file") for r in results] != settings["files"]:
        return None
    if not all(os.path.isfile(r.get("output", "")) for r in results):
        return None
    return results, part.get("loadavg", [])


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    sys.exit(main())
