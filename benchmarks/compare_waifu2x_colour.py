"""Coloured line art: waifu2x's RGB JPEG denoisers against our pipeline, RGB PSNR / SSIM and speed.

The colour counterpart of ``benchmarks/compare_waifu2x.py`` (whose selection, scoring and table
helpers it reuses). For every set of clean gray drawings (default: ``lineart/val`` and ``kanji``):

1. ``--images`` drawings spread over the set, each cut to the ``--crop`` window with the most line
   detail, coloured by :func:`training.colour.coloured_crop` (fixed seed; odd drawings one ink per
   stroke, even ones one ink for the drawing; dark and light inks).
2. Every coloured crop is saved as an RGB JPEG at each QF with Pillow (``--subsampling``, 4:2:0 by
   default) and decoded; the decoded pixels are written as PNG so both methods read the same input.
3. waifu2x (its Chainer package, separate venv, ``benchmarks/waifu2x_runner.py --color rgb``) runs
   its RGB models ``anime_style_noise{0..3}_rgb`` of ``resnet10`` and ``vgg7``; with
   ``--torch-waifu2x`` their graph runs in torch on the same weights instead (Chainer on the first
   input only, to check that both agree; Chainer took 144-506 s per megapixel and model here).
4. Ours: ``Restorer.default()`` (``--colour-model`` replacing the colour layers' backbone,
   ``--inks-model`` their ink network) with default options on the RGB layer (timed, best of
   ``--repeat``).

Prints a Markdown table (RGB PSNR dB / SSIM per set and QF: JPEG, waifu2x best RGB model, ours,
margin), every waifu2x model's PSNR, each drawing's margin over the JPEG and over waifu2x's best,
and seconds per megapixel; writes ``results.json``, ``table.md`` and ``side_by_side.png`` to
``--out`` (``--doc-image`` copies the picture, e.g. to ``docs/img/colour_side_by_side.png``).

Usage::

    benchmarks/waifu2x_env.sh        # once: builds .venv-waifu2x, prints its python
    python -m benchmarks.compare_waifu2x_colour --waifu2x-python .venv-waifu2x/bin/python \\
        --out /tmp/colour_cmp --images 3 --crop 256
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks import compare_waifu2x as cw

__all__ = ["coloured_crops", "main", "margins_over"]


def margins_over(summary: dict, method: str) -> dict:
    """Per (set, QF): the smallest and the mean of ours minus ``method`` over the drawings (dB)."""
    out: dict = {}
    for s, files in summary["drawings"].items():
        for per_qf in files.values():
            for q, m in per_qf.items():
                if cw.OURS in m and method in m:
                    out.setdefault(s, {}).setdefault(q, []).append(m[cw.OURS] - m[method])
    return {
        s: {q: {"min": min(v), "mean": float(np.mean(v)), "n": len(v)} for q, v in d.items()} for s, d in out.items()
    }


def _best_margins(summary: dict) -> dict:
    """Per (set, QF): ours minus the best waifu2x model of that cell, on means."""
    out: dict = {}
    for s, per_qf in summary["cells"].items():
        for q, cell in per_qf.items():
            best = cw.best_waifu2x(cell)
            if best is not None and cw.OURS in cell:
                out.setdefault(s, {})[q] = {"best": best, "margin": cell[cw.OURS]["psnr"] - cell[best]["psnr"]}
    return out


def coloured_crops(sets, images: int, size: int, any_colour: bool = False):
    """The coloured crops compared, set by set: ``(set, path, rgb)`` for the crops of
    :func:`benchmarks.compare_waifu2x.clean_crops`, drawing ``k`` of a set coloured by
    :func:`training.colour.coloured_crop` (odd ones one ink per stroke, even ones one ink; with
    ``any_colour`` inks from the whole RGB cube instead of the named ones)."""
    from training.colour import coloured_crop

    for s, path, _box, c in cw.clean_crops(sets, images, size, 0):
        yield s, path, coloured_crop(c, cw.pick_files(s.folder, images).index(path), any_colour=any_colour)


def _run_chainer(args, jpegs: dict, in_dir: Path, w2x_dir: Path, stored: dict) -> dict | None:
    """waifu2x's own Chainer code on every input (its outputs kept in ``w2x_dir`` while the run
    key matches, or with ``--reuse-waifu2x`` while the inputs are the stored ones); ``None``
    (after saying why) when ``--reuse-waifu2x`` finds other inputs."""
    key = cw.run_key(jpegs, args.arch, args.noise, args.threads) + "rgb"
    stamp = w2x_dir / "run_key.txt"
    if args.reuse_waifu2x:
        same = set(stored) == set(jpegs) and all(np.array_equal(stored[n], j) for n, j in jpegs.items())
        if not same:
            print("error: --reuse-waifu2x: the inputs differ from the stored ones; run without it", file=sys.stderr)
            return None
        if stamp.is_file():
            stamp.write_text(key)  # the same inputs: the stored waifu2x outputs stand
    if not (stamp.is_file() and stamp.read_text() == key):
        if w2x_dir.exists():
            shutil.rmtree(w2x_dir)
        w2x_dir.mkdir(parents=True)
        stamp.write_text(key)
    t0 = time.perf_counter()
    w2x = cw.run_waifu2x(args.waifu2x_python, in_dir, w2x_dir, args.arch, args.noise, args.threads, color="rgb")
    print(f"waifu2x done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return w2x


def _parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--waifu2x-python", required=True, help="python of the waifu2x venv (benchmarks/waifu2x_env.sh)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="a set of clean gray drawings (default: val and kanji of --data)",
    )
    p.add_argument("--qf", nargs="+", type=int, default=list(cw.DEFAULT_QFS))
    p.add_argument("--images", type=int, default=3, help="drawings per set (default 3)")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--subsampling", choices=("4:2:0", "4:4:4"), default="4:2:0")
    p.add_argument("--arch", nargs="+", default=list(cw.WAIFU2X_ARCHS), choices=cw.WAIFU2X_ARCHS)
    p.add_argument("--noise", nargs="+", type=int, default=list(cw.WAIFU2X_LEVELS), choices=cw.WAIFU2X_LEVELS)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=1, help="timed runs of ours per input, best kept (default 1)")
    p.add_argument("--figure-qf", type=int, default=None)
    p.add_argument("--figure-size", type=int, default=128)
    p.add_argument("--doc-image", help="also copy side_by_side.png here")
    p.add_argument(
        "--colour-model", help="our backbone for coloured layers (default: the shipped restore_colour.safetensors)"
    )
    p.add_argument(
        "--any-colour",
        action="store_true",
        help="colour the drawings with inks drawn from the whole RGB cube (training.colour.random_ink, the same "
        "seeds) instead of the named inks the evaluation sets use: a check on colours no network was tuned on",
    )
    p.add_argument(
        "--inks-model",
        metavar="FILE|none",
        help="our ink network for coloured layers (default: the shipped colour_inks.safetensors where it is "
        "there; none: the colour stage's own ink colours)",
    )
    p.add_argument(
        "--torch-waifu2x",
        action="store_true",
        help="run waifu2x's RGB models as their graph in torch with the package's own weights "
        "(benchmarks/waifu2x_torch.py; Chainer only on the first input, to check that both agree) "
        "instead of its Chainer code on every input (144-506 s per megapixel and model on a 2-core CPU)",
    )
    p.add_argument(
        "--reuse-waifu2x",
        action="store_true",
        help="keep the waifu2x outputs already in OUT/work/waifu2x although the run key differs (the "
        "runner's source changed, e.g. only reformatted), provided every input is pixel for pixel "
        "the one stored in OUT/work/inputs: waifu2x then does not run again, ours does",
    )
    args = p.parse_args(argv)
    if args.figure_qf is None:
        args.figure_qf = min(args.qf)
    return args


def main(argv=None) -> int:
    args = _parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from core.metrics import psnr
    from core.pipeline import RestoreOptions
    from training.colour import jpeg_rgb, rgb_ssim

    sets = [cw.ImageSet(*s.split("=", 1)[0:1], Path(s.split("=", 1)[1])) for s in args.set] or [
        cw.ImageSet("val", Path(args.data) / "lineart" / "val"),
        cw.ImageSet("kanji", Path(args.data) / "kanji"),
    ]
    load_start = os.getloadavg()
    restorer = cw._restorer(args)
    out = Path(args.out)
    in_dir, w2x_dir = out / "work" / "inputs", out / "work" / "waifu2x"
    stored = {}
    if args.reuse_waifu2x and in_dir.exists():
        stored = {p.name: np.asarray(Image.open(p).convert("RGB")) for p in in_dir.iterdir()}
    if in_dir.exists():
        shutil.rmtree(in_dir)
    in_dir.mkdir(parents=True)

    clean, jpegs = {}, {}
    for s, path, rgb in coloured_crops(sets, args.images, args.crop, args.any_colour):
        clean[(s.name, path.stem)] = rgb
        for q in args.qf:
            name = cw.input_name(s.name, path.stem, q)
            jpegs[name] = jpeg_rgb(rgb, q, args.subsampling)
            Image.fromarray(jpegs[name], "RGB").save(in_dir / name)
    print(f"{len(jpegs)} RGB JPEG inputs in {in_dir}", file=sys.stderr)

    records = []
    for name, j in jpegs.items():
        s, stem, q = cw.parse_input_name(name)
        ref = clean[(s, stem)]
        records.append(cw.Record(s, stem, q, cw.JPEG, psnr(ref, j), rgb_ssim(ref, j), ref.shape[0] * ref.shape[1]))

    if args.torch_waifu2x:
        w2x, outputs = cw.torch_waifu2x_outputs(args, jpegs, out / "work", "rgb")
    else:
        w2x = _run_chainer(args, jpegs, in_dir, w2x_dir, stored)
        if w2x is None:
            return 2
        outputs = [
            (r["file"], cw.waifu2x_method(r["arch"], r["noise"]), cw._read_image(Path(r["output"]), True), r["seconds"])
            for r in w2x["results"]
        ]
    w2x_out = {}
    for name, m, img, seconds in outputs:
        s, stem, q = cw.parse_input_name(name)
        ref = clean[(s, stem)]
        w2x_out[(m, name)] = img
        records.append(
            cw.Record(s, stem, q, m, psnr(ref, img), rgb_ssim(ref, img), ref.shape[0] * ref.shape[1], seconds)
        )

    opts = RestoreOptions()
    restorer.restore(next(iter(jpegs.values())), opts)  # warm-up
    ours = {}
    for name, j in jpegs.items():
        s, stem, q = cw.parse_input_name(name)
        ref = clean[(s, stem)]
        best_s = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            res = restorer.restore(j, opts)
            best_s = min(best_s, time.perf_counter() - t0)
        ours[name] = res.image
        records.append(
            cw.Record(
                s, stem, q, cw.OURS, psnr(ref, res.image), rgb_ssim(ref, res.image), ref.shape[0] * ref.shape[1], best_s
            )
        )

    summary = cw.summarize(records)
    table = cw.markdown_table(summary)
    over_jpeg = margins_over(summary, cw.JPEG)
    over_best = _best_margins(summary)
    lines = [
        "",
        "Ours minus the JPEG per drawing (RGB PSNR dB), smallest | mean; ours minus waifu2x's best RGB model:",
        "",
        "| set | QF | min over drawings | mean | vs waifu2x best |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in over_jpeg:
        for q in sorted(over_jpeg[s]):
            v, b = over_jpeg[s][q], over_best.get(s, {}).get(q)
            vs = f"{b['margin']:+.2f} ({cw._fmt_method(b['best'])})" if b else "-"
            lines.append(f"| {s} | {q} | {v['min']:+.2f} | {v['mean']:+.2f} | {vs} |")
    table += "\n".join(lines) + "\n"

    rows, titles = [], []
    for s in sets:
        stem = next(st for (sn, st) in clean if sn == s.name)
        name = cw.input_name(s.name, stem, args.figure_qf)
        ref = clean[(s.name, stem)]
        best = cw.best_waifu2x(summary["cells"][s.name][args.figure_qf])
        box = cw.choose_crop(ref.min(axis=2), args.figure_size)
        rows.append([cw.crop(p, box) for p in (ref, jpegs[name], w2x_out[(best, name)], ours[name])])
        titles.append(
            f"{s.name} / {stem}, QF {args.figure_qf} ({args.subsampling}); waifu2x best = {cw._fmt_method(best)}"
        )
    grid = cw.compose_grid(rows, ["clean", f"JPEG QF {args.figure_qf}", "waifu2x best RGB", "ours"], titles, scale=2)
    Image.fromarray(grid, "RGB").save(out / "side_by_side.png")
    if args.doc_image:
        Path(args.doc_image).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "side_by_side.png", args.doc_image)
    load_end = os.getloadavg()
    agree = w2x.get("agreement_max_abs_with_chainer")
    info = restorer.info()
    models = ", ".join(f"{role} {m.get('name', '?')}" for role, m in info["models"].items())
    env = (
        f"CPU: {cw._cpu_name()}, {args.threads} thread(s); load average {load_start[0]:.1f} at the start, "
        f"{load_end[0]:.1f} at the end. Ours: {models}, precision {info['precision']}. waifu2x {w2x.get('waifu2x')} / chainer {w2x.get('chainer')}, RGB models"
        + (
            f" (their graph run in torch with the same weights; on one input every model's output is within "
            f"{max(agree.values())} level(s) per channel of Chainer's). "
            if agree
            else ". "
        )
        + f"{len(clean)} crops of up to {args.crop} px"
        + (" in inks from the whole RGB cube" if args.any_colour else "")
        + f", RGB JPEG {args.subsampling}, QF {', '.join(map(str, args.qf))}."
    )
    (out / "table.md").write_text(table + "\n" + env + "\n")
    with open(out / "results.json", "w") as f:
        json.dump(
            {
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "settings": vars(args),
                "environment": env,
                "summary": summary,
                "margins_over_jpeg": over_jpeg,
                "margins_over_waifu2x_best": over_best,
                "records": [asdict(r) for r in records],
            },
            f,
            indent=1,
            default=str,
        )
    print(table)
    print(env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
