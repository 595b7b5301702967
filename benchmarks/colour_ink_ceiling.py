"""How much of the colour pipeline's error is the ink's colour? A diagnostic.

On the crops of the colour comparison (``benchmarks/compare_waifu2x_colour.py``: ``--images``
drawings a set, the window with the most line detail, coloured by
:func:`training.colour.coloured_crop`, RGB JPEG 4:2:0), it scores at each QF:

* ``JPEG``: the decoded RGB JPEG;
* ``ours``: the shipped pipeline, default options;
* ``ours, true ink colours`` (:func:`with_true_inks`): ours with every inked pixel's colour
  taken from the clean drawing and only its strength (the darkest channel's darkness) from ours:
  what a perfect estimate of each stroke's ink would add to the restored line plane;
* ``ours, true line plane``: the other way round, ours's ink colours with the clean drawing's
  strength.

    python -m benchmarks.colour_ink_ceiling --images 8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _split(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An RGB uint8 image as (strength, colour): the darkest channel's darkness ``(H, W, 1)`` and the
    darkness per unit of it ``(H, W, 3)`` (its largest channel 1 on inked pixels, 0 on white)."""
    d = 255.0 - img.astype(np.float64)
    strength = d.max(axis=2, keepdims=True)
    return strength, np.divide(d, strength, out=np.zeros_like(d), where=strength > 0)


def _join(strength: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(255.0 - strength * colour), 0, 255).astype(np.uint8)


def with_true_inks(ours: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """``ours`` (RGB uint8) with the colour of every pixel inked in ``clean`` taken from ``clean``
    and its strength kept; pixels white in ``clean`` stay as ours made them."""
    strength, _ = _split(ours)
    clean_strength, colour = _split(clean)
    return np.where(clean_strength > 0, _join(strength, colour), ours)


def with_true_plane(ours: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """``ours`` with the clean drawing's strength on every pixel inked in either and ours's colour
    (the clean one where ours left the pixel white)."""
    _, colour = _split(ours)
    clean_strength, clean_colour = _split(clean)
    colour = np.where(colour.max(axis=2, keepdims=True) > 0, colour, clean_colour)
    return _join(clean_strength, colour)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="/work/shared/data", help="data root (lineart/val and kanji)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=FOLDER", help="a set (default: val, kanji)")
    p.add_argument("--images", type=int, default=8, help="drawings per set (default 8)")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--qf", type=int, nargs="+", default=[10, 20, 30, 40])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from benchmarks import compare_waifu2x as cw
    from benchmarks.compare_waifu2x_colour import coloured_crops
    from core.metrics import psnr
    from core.pipeline import RestoreOptions, Restorer
    from training.colour import jpeg_rgb

    sets = [cw.ImageSet(n, Path(f)) for n, _, f in (s.partition("=") for s in args.set)] or [
        cw.ImageSet("val", Path(args.data) / "lineart" / "val"),
        cw.ImageSet("kanji", Path(args.data) / "kanji"),
    ]
    try:
        crops = [(s.name, rgb) for s, _path, rgb in coloured_crops(sets, args.images, args.crop)]
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    restorer = Restorer.default()
    print(f"# RGB PSNR dB, mean over the drawings ({args.images} a set, the colour comparison's crops)")
    print("| set | QF | JPEG | ours | ours, true ink colours | ours, true line plane |")
    print("|---|---:|---:|---:|---:|---:|")
    for s in sets:
        for qf in args.qf:
            rows = []
            for name, clean in crops:
                if name != s.name:
                    continue
                jpeg = jpeg_rgb(clean, qf)
                ours = restorer.restore(jpeg, RestoreOptions()).image
                rows.append(
                    [psnr(clean, x) for x in (jpeg, ours, with_true_inks(ours, clean), with_true_plane(ours, clean))]
                )
            m = np.mean(rows, axis=0)
            print(f"| {s.name} | {qf} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | {m[3]:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
