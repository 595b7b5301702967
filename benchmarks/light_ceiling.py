"""How much of the JPEG error on light, grainy lines can any restorer remove? A diagnostic.

For every drawing of a folder (the same 512² centre crops and light-variant seeds as
``python -m training evaluate --light``) and every QF, it splits the JPEG's squared error into the
part on line pixels and the part on background pixels, and scores:

* ``JPEG``: the decoded JPEG;
* ``perfect background``: the JPEG with every background pixel set to its true value (255) and the
  line pixels left as decoded: what a perfect mask alone can give;
* ``ours``: the default pipeline (learnt mask, framework backbone, threshold);
* ``baseline``: the shipped baseline backbone (no mask, no threshold), and ``baseline, perfect
  background``: its output with every background pixel set to 255. The gap between the two is
  all that forcing the background can add to the baseline, however good the mask: the part of a
  framework's gain over the baseline that does not come from restoring the lines better;

and the same for the light variant *without* its grain (darkness scaled only), to separate
"light" from "grainy". The pencil grain is mostly pixel-scale random texture that JPEG at low
quality throws away; a restorer can only guess it back, so the line-pixel error bounds what any
method can reach.

    python -m benchmarks.light_ceiling /path/to/lineart/val --qf 10 20 30 40
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from core.metrics import psnr
from core.pipeline import RestoreOptions, Restorer
from training.data import DataError, jpeg_degrade, list_images, load_drawing
from training.evaluate import LIGHT_SEED, centre_crop
from training.synth import light_variant


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="folder of clean drawings (e.g. lineart/val)")
    p.add_argument("--qf", type=int, nargs="+", default=[10, 20, 30, 40])
    p.add_argument("--crop", type=int, default=512)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    try:
        files = list_images(args.folder)  # raises on a missing or empty folder
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    crops = [centre_crop(load_drawing(f), args.crop) for f in files]
    restorer = Restorer.default()
    variants = {
        "light + grain (evaluate --light)": lambda c, i: light_variant(c, np.random.default_rng(LIGHT_SEED + i)),
        "light, no grain": lambda c, i: light_variant(c, np.random.default_rng(LIGHT_SEED + i), grain=False),
    }
    print(
        f"# {len(files)} drawings of {args.folder}, {args.crop}² centre crops; PSNR dB (mean over images); "
        "MSE split = mean squared error contributed by line / background pixels"
    )
    for name, make in variants.items():
        print(f"\n## {name}")
        print(
            "| QF | JPEG | JPEG MSE line / bg | perfect background | ours | ours MSE line / bg "
            "| baseline | baseline, perfect background |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for qf in args.qf:
            # per image, for JPEG / perfect background / ours / baseline / baseline with perfect
            # background: PSNR, line MSE share, bg MSE share
            rows = []
            for i, crop in enumerate(crops):
                clean = make(crop, i)
                line = clean < 255
                jpeg = jpeg_degrade(clean, qf)
                ours = restorer.restore(jpeg, RestoreOptions()).image
                perfect_bg = np.where(line, jpeg, np.uint8(255))
                base = restorer.restore(jpeg, RestoreOptions(mask="none", threshold=False)).image
                base_bg = np.where(line, base, np.uint8(255))
                row = []
                for img in (jpeg, perfect_bg, ours, base, base_bg):
                    se = (img.astype(np.float64) - clean) ** 2
                    row += [psnr(img, clean), se[line].sum() / se.size, se[~line].sum() / se.size]
                rows.append(row)
            m = np.asarray(rows).mean(axis=0)
            print(
                f"| {qf} | {m[0]:.2f} | {m[1]:.1f} / {m[2]:.1f} | {m[3]:.2f} | {m[6]:.2f} | "
                f"{m[7]:.1f} / {m[8]:.1f} | {m[9]:.2f} | {m[12]:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
