"""``python -m training figure``: a side-by-side picture of one drawing at one JPEG quality.

Panels: clean | JPEG | baseline (+ threshold) | ours (learnt mask) | our mask, on a crop chosen
where strokes meet paper (or given with ``--box Y X``). Uses the same pipeline users run.

    python -m training figure DRAWING.png --qf 10 --size 256 --out docs/img/side_by_side_qf10.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from core.metrics import psnr

from .data import jpeg_degrade, load_drawing

__all__ = ["pick_window", "side_by_side", "add_figure_parser"]


def pick_window(clean: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left of the ``size`` square with the most stroke edges (ink next to paper)."""
    ink = (clean < 255).astype(np.uint8)
    edge = (ink - cv2.erode(ink, np.ones((5, 5), np.uint8))).astype(np.float32)
    h, w = clean.shape
    if h <= size or w <= size:
        return 0, 0
    integral = cv2.integral(edge)
    step = max(8, size // 8)
    best, where = -1.0, (0, 0)
    for y in range(0, h - size + 1, step):
        for x in range(0, w - size + 1, step):
            s = integral[y + size, x + size] - integral[y, x + size] - integral[y + size, x] + integral[y, x]
            if s > best:
                best, where = s, (y, x)
    return where


def side_by_side(clean: np.ndarray, qf: int, restorer, out: Path, title: str = "") -> dict[str, float]:
    """Render the five panels to ``out`` (PNG) and return each panel's PSNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.pipeline import RestoreOptions

    jpeg = jpeg_degrade(clean, qf)
    base = restorer.restore(jpeg, RestoreOptions(mask="none", threshold=True)).image
    res = restorer.restore(jpeg, RestoreOptions(mask="learnt"))
    panels = [
        ("clean", clean),
        (f"JPEG QF {qf}", jpeg),
        ("baseline + threshold", base),
        ("ours", res.image),
        ("our line mask", (255 - 255 * res.mask).astype(np.uint8)),
    ]
    scores = {name: psnr(img, clean) for name, img in panels[1:4]}
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 4.0), dpi=100)
    for ax, (name, img) in zip(axes, panels):
        ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        label = f"{name}\n{scores[name]:.2f} dB" if name in scores else f"{name}\n"
        ax.set_title(label, fontsize=10)
        ax.axis("off")
    if title:
        fig.text(0.5, 0.01, title, ha="center", fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return scores


def add_figure_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "figure",
        help="side-by-side picture: clean | JPEG | baseline | ours | mask",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("drawing", type=Path, help="a clean drawing (background exactly 255)")
    p.add_argument("--qf", type=int, default=10, help="JPEG quality (default %(default)s)")
    p.add_argument("--size", type=int, default=256, help="crop side (default %(default)s)")
    p.add_argument("--box", type=int, nargs=2, metavar=("Y", "X"), help="crop top-left (default: automatic)")
    p.add_argument("--out", type=Path, required=True, help="output PNG")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run_figure)
    return p


def run_figure(args: argparse.Namespace) -> int:
    from core.pipeline import Restorer

    clean = load_drawing(args.drawing)
    y, x = args.box if args.box else pick_window(clean, args.size)
    crop = np.ascontiguousarray(clean[y : y + args.size, x : x + args.size])
    scores = side_by_side(
        crop, args.qf, Restorer.default(device=args.device), args.out, title=f"{args.drawing.name}, crop at ({y}, {x})"
    )
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v:.2f} dB" for k, v in scores.items()))
    return 0
