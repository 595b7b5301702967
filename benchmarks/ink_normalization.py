"""What the pipeline's ink normalization gains: PSNR with it on and off, per set and QF.

    python -m benchmarks.ink_normalization --qf 10 20 30 40

The crops of Table 2 (``python -m training evaluate``: the 512-pixel centre crop of each drawing
of ``lineart/val`` and ``kanji``, and of val's light variants with and without pencil grain,
seeded as there), saved with Pillow at each QF and restored by the default pipeline with
``normalize_ink`` off and on (``core.ink``). The JPEG-consistency step is off in both, as in
Table 2, unless ``--jpeg-consistency``. A crop the normalization leaves alone
(``core.ink.stretch_factor`` is 1) is restored once: both runs are the same code path there.
Prints, per set and QF, the mean PSNR of both, the mean and worst per-crop gain, and how many
crops were stretched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import DATA_ROOT, gain_row
from core import ink
from core.metrics import psnr
from core.pipeline import RestoreOptions, Restorer
from training.data import jpeg_degrade, list_images, load_drawing
from training.evaluate import LIGHT_SEED, centre_crop
from training.synth import light_variant


def crops(folder: Path, size: int, light: bool, grain: bool) -> list[np.ndarray]:
    out = []
    for i, path in enumerate(list_images(folder)):
        clean = centre_crop(load_drawing(path), size)
        if light:
            clean = light_variant(clean, np.random.default_rng(LIGHT_SEED + i), grain=grain)
        out.append(clean)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DATA_ROOT, help="folder holding lineart/val and kanji")
    p.add_argument("--qf", type=int, nargs="+", default=[10, 20, 30, 40])
    p.add_argument("--crop", type=int, default=512)
    p.add_argument(
        "--sets",
        nargs="+",
        default=["val", "kanji", "val light", "val light smooth"],
        choices=["val", "kanji", "val light", "val light smooth"],
    )
    p.add_argument("--jpeg-consistency", action="store_true", help="leave the JPEG-consistency step on in both runs")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    restorer = Restorer.default()
    data = Path(args.data)
    make = {
        "val": lambda: crops(data / "lineart" / "val", args.crop, False, False),
        "kanji": lambda: crops(data / "kanji", args.crop, False, False),
        "val light": lambda: crops(data / "lineart" / "val", args.crop, True, True),
        "val light smooth": lambda: crops(data / "lineart" / "val", args.crop, True, False),
    }
    print("| set | QF | off | on | gain (mean / worst crop) | stretched |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.sets:
        cleans = make[name]()
        for qf in args.qf:
            off, on, stretched = [], [], 0
            for clean in cleans:
                jpeg = jpeg_degrade(clean, qf)
                opts = dict(jpeg_consistency=args.jpeg_consistency)
                a = psnr(restorer.restore(jpeg, RestoreOptions(normalize_ink=False, **opts)).image, clean)
                if ink.stretch_factor(jpeg.astype(np.float32) / 255) != 1.0:
                    stretched += 1
                    b = psnr(restorer.restore(jpeg, RestoreOptions(normalize_ink=True, **opts)).image, clean)
                else:
                    b = a
                if np.isfinite(a) and np.isfinite(b):  # a blank crop restored exactly counts in neither
                    off.append(a)
                    on.append(b)
            print(gain_row(name, qf, off, on, f"{stretched}/{len(cleans)}"), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
