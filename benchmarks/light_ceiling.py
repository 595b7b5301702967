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
* ``kept-coefficient ceiling`` (grainy variant only, :func:`kept_coefficient_ceiling`): an
  optimistic ceiling for any restorer that cannot see the grain the JPEG quantized away. It is
  given what no restorer has: every DCT coefficient the JPEG kept at its exact unquantized value,
  the lines' exact grain-free shape for the coefficients the JPEG zeroed, and the exact paper;
  ``… at the JPEG's values``: the same with the kept coefficients as the JPEG stores them;

and the same for the light variant *without* its grain (darkness scaled only), to separate
"light" from "grainy". The pencil grain is mostly pixel-scale random texture that JPEG at low
quality throws away; a restorer can only guess it back, so the line-pixel error bounds what any
method can reach.

    python -m benchmarks.light_ceiling /path/to/lineart/val --qf 10 20 30 40
    # the crops of the waifu2x comparison's light sets (3 drawings, 256² windows, its seeds)
    python -m benchmarks.light_ceiling /path/to/lineart/val --like-comparison
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from core.imageio import ijg_table
from core.jpeg_consistency import _blocks, _unblocks, dct8, idct8
from core.metrics import psnr
from core.pipeline import RestoreOptions, Restorer
from training.data import DataError, jpeg_degrade, list_images, load_drawing
from training.evaluate import LIGHT_SEED, centre_crop
from training.synth import light_variant


def kept_coefficient_ceiling(
    clean: np.ndarray, expected: np.ndarray, jpeg: np.ndarray, qf: int, exact: bool = True
) -> np.ndarray:
    """An optimistic oracle restoration of a grainy drawing from its JPEG, ``(H, W)`` uint8.

    Block by block on the JPEG's grid (IJG luminance table for ``qf``, blocks at the origin, as
    ``training.data.jpeg_degrade`` writes them): each DCT coefficient the JPEG kept (quantized to
    a non-zero step) takes its true value from ``clean``; each one it zeroed takes the
    grain-free drawing's (``expected``: the same lines without grain, the grain's mean)
    clipped into the zero bin, the best guess of a texture whose sign the JPEG lost; pixels
    white in ``clean`` are set to 255. Rows and columns past the last full block keep
    ``expected``. No restorer knows the kept coefficients better than their quantization bins,
    nor the lines' exact shape, so a real one scores below this. ``exact=False`` gives the kept
    coefficients as the JPEG stores them (the middle of their bins) instead: the lines' exact
    shape is then all the oracle knows beyond the JPEG.
    """
    if not clean.shape == expected.shape == jpeg.shape or clean.ndim != 2:
        raise ValueError(
            f"clean, expected and jpeg must be one (H, W) shape, got {clean.shape}, {expected.shape}, {jpeg.shape}"
        )
    import torch

    h, w = clean.shape
    fh, fw = h - h % 8, w - w % 8
    out = expected.astype(np.float64)
    if fh and fw:
        q = torch.as_tensor(ijg_table(qf), dtype=torch.float32)
        true_c, expected_c, jpeg_c = (dct8(_blocks(a, 0, 0) - 128.0) for a in (clean, expected, jpeg))
        steps = torch.round(jpeg_c / q)  # the quantized coefficients the JPEG stored
        kept = true_c if exact else steps * q
        est = torch.where(steps != 0, kept, torch.minimum(torch.maximum(expected_c, -q / 2), q / 2))
        out[:fh, :fw] = _unblocks(idct8(est)).double().numpy() + 128.0
    out[clean == 255] = 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _variants(args: argparse.Namespace, files: list[Path]) -> dict[str, list[tuple[np.ndarray, np.ndarray | None]]]:
    """Each light variant's drawings: ``(clean, grain-free clean)`` pairs for the grainy one,
    ``(clean, None)`` for the one without grain."""
    if args.like_comparison:
        from benchmarks.compare_waifu2x import ImageSet, clean_crops

        def crops(grain: bool) -> list[np.ndarray]:
            s = ImageSet("light", Path(args.folder), light=True, grain=grain)
            return [c for *_, c in clean_crops([s], args.images, args.crop or 256, args.seed)]

        grainy, smooth = crops(True), crops(False)
        return {
            "light + grain (the waifu2x comparison's val_light)": list(zip(grainy, smooth)),
            "light, no grain (its val_light_smooth)": [(c, None) for c in smooth],
        }
    crops = [centre_crop(load_drawing(f), args.crop or 512) for f in files]
    lit = [
        (
            light_variant(c, np.random.default_rng(LIGHT_SEED + i)),
            light_variant(c, np.random.default_rng(LIGHT_SEED + i), grain=False),
        )
        for i, c in enumerate(crops)
    ]
    return {
        "light + grain (evaluate --light)": lit,
        "light, no grain": [(smooth, None) for _, smooth in lit],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="folder of clean drawings (e.g. lineart/val)")
    p.add_argument("--qf", type=int, nargs="+", default=[10, 20, 30, 40])
    p.add_argument("--crop", type=int, default=None, help="crop side (default 512; 256 with --like-comparison)")
    p.add_argument(
        "--like-comparison",
        action="store_true",
        help="the crops of benchmarks.compare_waifu2x's light sets (--images drawings, the window with "
        "the most line detail, its light-variant seeds) instead of every drawing's centre crop",
    )
    p.add_argument("--images", type=int, default=3, help="with --like-comparison: drawings (default 3, as there)")
    p.add_argument("--seed", type=int, default=0, help="with --like-comparison: its light-variant seed (default 0)")
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
    variants = _variants(args, files)
    restorer = Restorer.default()
    n = len(next(iter(variants.values())))
    how = "crops as in the waifu2x comparison" if args.like_comparison else f"{args.crop or 512}² centre crops"
    print(
        f"# {n} drawings of {args.folder}, {how}; PSNR dB (mean over images); "
        "MSE split = mean squared error contributed by line / background pixels"
    )
    for name, pairs in variants.items():
        print(f"\n## {name}")
        print(
            "| QF | JPEG | JPEG MSE line / bg | perfect background | ours | ours MSE line / bg "
            "| baseline | baseline, perfect background | kept-coefficient ceiling | … at the JPEG's values |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        grainy = pairs[0][1] is not None
        for qf in args.qf:
            # per image, for JPEG / perfect background / ours / baseline / baseline with perfect
            # background: PSNR, line MSE share, bg MSE share; then the ceiling's PSNR
            rows = []
            for clean, expected in pairs:
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
                if grainy:
                    row += [psnr(kept_coefficient_ceiling(clean, expected, jpeg, qf, e), clean) for e in (True, False)]
                else:
                    row += [np.nan, np.nan]
                rows.append(row)
            m = np.asarray(rows).mean(axis=0)
            # without grain the oracle is the clean drawing itself
            ceiling = f"{m[15]:.2f} | {m[16]:.2f}" if grainy else "— | —"
            print(
                f"| {qf} | {m[0]:.2f} | {m[1]:.1f} / {m[2]:.1f} | {m[3]:.2f} | {m[6]:.2f} | "
                f"{m[7]:.1f} / {m[8]:.1f} | {m[9]:.2f} | {m[12]:.2f} | {ceiling} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
