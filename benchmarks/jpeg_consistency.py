"""What the pipeline's JPEG-consistency step gains: PSNR with it on and off, per set and QF.

    python -m benchmarks.jpeg_consistency --qf 10 20 30 40

The inkiest 256-pixel crop of each drawing of ``lineart/val`` and ``kanji`` (and val with flat
light lines, ``training.synth.light_variant(grain=False)``), saved with Pillow at each QF, restored
by the default pipeline twice (``jpeg_consistency`` off and on). Prints the mean PSNR of both,
the mean and worst per-crop gain, how often the grid search found the right QF, and the step's
share of the pipeline's time.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import DATA_ROOT, gain_row
from core.metrics import psnr
from core.pipeline import RestoreOptions, Restorer
from training.data import jpeg_degrade, load_folder, validation_crops
from training.synth import light_variant


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DATA_ROOT, help="folder holding lineart/val and kanji")
    p.add_argument("--qf", type=int, nargs="+", default=[10, 20, 30, 40])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    restorer = Restorer.default()
    val = validation_crops(load_folder([Path(args.data) / "lineart" / "val"]), 256)
    sets = {
        "val": val,
        "kanji": validation_crops(load_folder([Path(args.data) / "kanji"]), 256),
        "val light smooth": [light_variant(c, np.random.default_rng(i), grain=False) for i, c in enumerate(val)],
    }
    print("| set | QF | off | on | gain (mean / worst crop) | QF found | time share |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, crops in sets.items():
        for qf in args.qf:
            off, on, share, found = [], [], [], 0
            for clean in crops:
                jpeg = jpeg_degrade(clean, qf)
                a = restorer.restore(jpeg, RestoreOptions(jpeg_consistency=False))
                b = restorer.restore(jpeg, RestoreOptions())
                off.append(psnr(a.image, clean))
                on.append(psnr(b.image, clean))
                share.append(b.timings.get("consistency", 0.0) / b.timings["total"])
                found += b.jpeg_quality == qf
            print(gain_row(name, qf, off, on, f"{found}/{len(crops)}", f"{100 * np.mean(share):.0f} %"), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
