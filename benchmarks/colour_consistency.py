"""JPEG consistency on coloured layers: the restoration with and without the step, RGB PSNR.

For the first ``--val`` drawings of ``lineart/val`` and the first ``--kanji`` of ``kanji`` (sorted
file names), each cut to the ``--crop`` window with the most line detail
(``benchmarks.compare_waifu2x.choose_crop``) and coloured by :func:`training.colour.coloured_crop`
(drawing ``i`` of a set: one ink per stroke when ``i`` is odd), saved as a Pillow RGB JPEG at each
QF and chroma subsampling (:func:`training.colour.jpeg_rgb`), ``Restorer.default()`` restores the
decoded layer with ``jpeg_consistency`` off ("before": what colour layers got until the step
existed) and on ("after", the default). Prints, per set, subsampling and QF: the mean RGB PSNR of
the JPEG, before and after, the smallest per-drawing margin of "after" over the JPEG and over
"before", and how many layers the step was applied to (its note); and the seconds of the step.

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.colour_consistency --val 8 --kanji 4 --crop 256
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--val", type=int, default=8, help="drawings of lineart/val (the first, sorted)")
    p.add_argument("--kanji", type=int, default=4, help="drawings of kanji (the first, sorted)")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--qf", type=int, nargs="+", default=[10, 20, 30, 40])
    p.add_argument("--subsampling", nargs="+", default=["4:2:0", "4:4:4"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write every record here")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from benchmarks.compare_waifu2x import _read_gray, choose_crop, crop
    from core.metrics import psnr
    from core.pipeline import RestoreOptions, Restorer
    from training.colour import coloured_crop, jpeg_rgb

    restorer = Restorer.default(device="cpu")
    on, off = RestoreOptions(), RestoreOptions(jpeg_consistency=False)
    records = []
    for set_name, folder, n in (("val", "lineart/val", args.val), ("kanji", "kanji", args.kanji)):
        files = sorted(f for f in (Path(args.data) / folder).iterdir() if f.suffix.lower() == ".png")[:n]
        for i, f in enumerate(files):
            full = _read_gray(f)
            clean = coloured_crop(crop(full, choose_crop(full, args.crop)), i)
            for ss in args.subsampling:
                for q in args.qf:
                    j = jpeg_rgb(clean, q, ss)
                    before = restorer.restore(j, off)
                    after = restorer.restore(j, on)
                    applied = any("made consistent" in n for n in after.notes)
                    records.append(
                        {
                            "set": set_name,
                            "drawing": f.stem,
                            "subsampling": ss,
                            "qf": q,
                            "jpeg": psnr(clean, j),
                            "before": psnr(clean, before.image),
                            "after": psnr(clean, after.image),
                            "applied": applied,
                            "step_s": after.timings.get("consistency", 0.0),
                            "notes": [n for n in after.notes if "JPEG" in n],
                        }
                    )
                    r = records[-1]
                    print(
                        f"{set_name} {f.stem[:28]:28s} {ss} QF {q:2d}: JPEG {r['jpeg']:.2f} before {r['before']:.2f} "
                        f"after {r['after']:.2f} ({r['after'] - r['before']:+.2f}){'' if applied else ' not applied'}",
                        file=sys.stderr,
                        flush=True,
                    )
    print("| set | subsampling | QF | JPEG | before | after | gain | min gain | min after − JPEG | applied | step s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for set_name in ("val", "kanji"):
        for ss in args.subsampling:
            for q in args.qf:
                rs = [r for r in records if (r["set"], r["subsampling"], r["qf"]) == (set_name, ss, q)]
                if not rs:
                    continue
                m = {k: float(np.mean([r[k] for r in rs])) for k in ("jpeg", "before", "after", "step_s")}
                gains = [r["after"] - r["before"] for r in rs]
                print(
                    f"| {set_name} | {ss} | {q} | {m['jpeg']:.2f} | {m['before']:.2f} | {m['after']:.2f} | "
                    f"{m['after'] - m['before']:+.2f} | {min(gains):+.2f} | "
                    f"{min(r['after'] - r['jpeg'] for r in rs):+.2f} | {sum(r['applied'] for r in rs)}/{len(rs)} | "
                    f"{m['step_s']:.3f} |"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
