"""How much of the coloured mask's gap is the inks' lightness? A diagnostic.

``python -m training evaluate --colour`` scores the coloured layers' learnt mask against the gray
drawing's mask, with the gray JPEG's own mask beside it. A light ink (yellow, light blue, pink)
darkens the luminance, the one plane a 4:2:0 JPEG keeps at full resolution, by a sixth of what
black does, so the coloured mask has much less to go on. This script puts a number on it: for
every drawing of a folder (centre crop, coloured as the evaluation colours it:
:func:`training.colour.coloured_crop` with the drawing's index) it masks, at each QF,

* ``gray JPEG``: the gray drawing saved as a gray JPEG, by the gray pipeline (the evaluation's
  reference row);
* ``its luminance``: a gray drawing with the coloured drawing's luminance (each ink replaced by
  the gray of the same luminance), saved as a gray JPEG (the luminance plane a colour JPEG stores,
  with the same table) and masked by the gray pipeline: what the luminance alone gives;
* ``colour``: the coloured drawing saved as an RGB JPEG (4:2:0), by the colour pipeline.

mIoU against the gray drawing's mask (eq. 3), the paper's options (QF given, no JPEG consistency,
no ink normalization), as in the evaluation; per drawing and the mean per QF.

    python -m benchmarks.colour_mask_luma /work/shared/data/lineart/val --qf 10
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def luminance_drawing(rgb: np.ndarray) -> np.ndarray:
    """An RGB uint8 drawing -> the gray uint8 drawing of its BT.601 luminance (white stays 255)."""
    y = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.clip(np.floor(y + 0.5), 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="clean gray drawings (e.g. lineart/val)")
    p.add_argument("--crop", type=int, default=384, help="centre crop side (default 384, as the evaluation)")
    p.add_argument("--qf", type=int, nargs="+", default=[10])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from core.equations import gt_mask
    from core.metrics import miou
    from core.pipeline import RestoreOptions, Restorer
    from training.colour import coloured_crop, jpeg_rgb
    from training.data import DataError, jpeg_degrade, list_images, load_drawing
    from training.evaluate import centre_crop

    try:
        paths = list_images(Path(args.folder))
    except (OSError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    restorer = Restorer.default(device="cpu")
    print("| drawing | QF | gray JPEG | its luminance | colour |")
    print("|---|---:|---:|---:|---:|")
    scores: dict[int, list[tuple[float, float, float]]] = {q: [] for q in args.qf}
    for i, path in enumerate(paths):
        gray = centre_crop(load_drawing(path), args.crop)
        gt = gt_mask(gray)
        coloured = coloured_crop(gray, i)
        luma = luminance_drawing(coloured)
        for qf in args.qf:
            opts = RestoreOptions(
                mask="learnt", threshold=False, return_mask=True, qf=qf, jpeg_consistency=False, normalize_ink=False
            )
            row = tuple(
                miou(restorer.restore(layer, opts).mask, gt)
                for layer in (jpeg_degrade(gray, qf), jpeg_degrade(luma, qf), jpeg_rgb(coloured, qf))
            )
            scores[qf].append(row)
            print(f"| {path.stem} | {qf} | {row[0]:.3f} | {row[1]:.3f} | {row[2]:.3f} |", flush=True)
    for qf, rows in scores.items():
        m = np.mean(rows, axis=0)
        print(f"| **mean** | {qf} | {m[0]:.4f} | {m[1]:.4f} | {m[2]:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
