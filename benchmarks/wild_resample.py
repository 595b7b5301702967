"""Restoring a resized JPEG back on its 8x8 grid: measured with the true factor (docs/wild.md).

For val and kanji crops saved at QF 20, resized by s with Lanczos and saved at QF 90, compares
(against the clean crop resized the same way) the default pipeline at native size with
"resample by 1/s, restore, resample back". Also prints two candidate estimators of s for
upscaled layers: the share of spectral energy above 0.42 cycles/pixel, and the factor whose
downscaling makes the steps between pixels most periodic at 8 (blockiness contrast).

    python -m benchmarks.wild_resample --images 5 --kanji 2

``--detect`` instead calibrates :func:`core.resample.find_enlargement`: for every crop and JPEG
quality 10-40, a single JPEG, a re-save, an offset crop, the clean PNG, and the JPEG resized by
0.5-2.0 (kernel drawn from :data:`training.degrade.KERNELS`) then saved at 60-95 or kept as PNG;
prints, per family and scale, how many were found enlarged and at which factor.

    python -m benchmarks.wild_resample --detect --images 6 --kanji 2 --crop 640
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

SCALES = (0.5, 0.75, 1.25, 1.5, 2.0)


def high_share(g: np.ndarray) -> float:
    """Share of the row/column power spectrum above 0.42 cycles/pixel (of that above 0.05)."""
    g = g.astype(np.float32) - g.mean()
    p = 0.0
    for x in (g, g.T):
        p = p + (np.abs(np.fft.rfft(x * np.hanning(x.shape[1])[None], axis=1)) ** 2).mean(0)
    f = np.fft.rfftfreq(g.shape[1])
    return float(p[f > 0.42].sum() / p[f > 0.05].sum())


def blockiness_factor(g: np.ndarray) -> float:
    """The factor 1.0-2.0 whose downscaling makes the mean pixel steps most periodic at 8."""

    def contrast(x: np.ndarray) -> float:
        x = x.astype(np.float32)
        out = []
        for a in (0, 1):
            d = np.abs(np.diff(x, axis=a)).mean(1 - a)
            per = d[: d.size // 8 * 8].reshape(-1, 8).mean(0)
            out.append(per.max() / (np.median(per) + 1e-6))
        return float(np.mean(out))

    h, w = g.shape
    best = max(
        (
            contrast(g if s == 1 else cv2.resize(g, (round(w / s), round(h / s)), interpolation=cv2.INTER_AREA)),
            round(float(s), 2),
        )
        for s in np.arange(1.0, 2.05, 0.05)
    )
    return best[1]


DETECT_SCALES = (0.5, 0.6, 0.75, 0.9, 1.1, 1.25, 1.4, 1.5, 1.75, 2.0)


def detect(crops, seed: int = 0) -> int:
    """Print the calibration table of :func:`core.resample.find_enlargement` on ``crops``."""
    from collections import defaultdict

    from core.resample import find_enlargement
    from training.degrade import KERNELS, encode, resize

    rng = np.random.default_rng(seed)
    kernels = sorted(KERNELS)
    found = defaultdict(list)
    for _stem, c in crops:
        for qf in (10, 20, 30, 40):
            j = encode(c, qf)
            cases = [
                ("single JPEG", 1.0, j),
                ("re-saved at 30-95", 1.0, encode(j, int(rng.integers(30, 96)))),
                ("JPEG cropped at (3, 5)", 1.0, j[3:, 5:]),
                ("clean PNG", 1.0, c),
            ]
            for s in DETECT_SCALES:
                k = kernels[int(rng.integers(len(kernels)))]
                cases.append(("resized, saved at 60-95", s, encode(resize(j, s, k), int(rng.integers(60, 96)))))
                cases.append(("resized, PNG", s, resize(j, s, k)))
            for family, s, img in cases:
                e = find_enlargement(img)
                found[(family, s)].append(None if e is None else e.factor)
    print("| family | s | layers | found enlarged | factors found (min-max) |")
    print("|---|---:|---:|---:|---|")
    for (family, s), got in found.items():
        hits = [f for f in got if f is not None]
        span = f"{min(hits):.2f}-{max(hits):.2f}" if hits else "–"
        print(f"| {family} | {s} | {len(got)} | {len(hits)} | {span} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--images", type=int, default=5, help="val drawings")
    p.add_argument("--kanji", type=int, default=2, help="kanji drawings")
    p.add_argument("--crop", type=int, default=320)
    p.add_argument("--detect", action="store_true", help="calibrate the enlargement detector instead")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from benchmarks.compare_waifu2x import choose_crop, crop, pick_files
    from core.metrics import psnr
    from core.pipeline import RestoreOptions, Restorer
    from training.data import load_drawing
    from training.degrade import encode, resize

    crops = []
    for folder, n in ((Path(args.data) / "lineart" / "val", args.images), (Path(args.data) / "kanji", args.kanji)):
        for path in pick_files(folder, n):
            full = load_drawing(path)
            crops.append((path.stem, crop(full, choose_crop(full, args.crop))))
    if args.detect:
        return detect(crops, args.seed)
    restorer = Restorer.default(device="cpu")
    opts = RestoreOptions()
    print("| drawing | s | input | native | resampled to the grid | high share (‰) | blockiness factor |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for stem, c in crops:
        print(
            f"| {stem} | 1 (JPEG QF 20) | – | – | – | {1e3 * high_share(encode(c, 20)):.1f} | "
            f"{blockiness_factor(encode(c, 20))} |"
        )
        for s in SCALES:
            img = encode(resize(encode(c, 20), s, "lanczos"), 90)
            ref = resize(c, s, "lanczos")
            native = restorer.restore(img, opts).image
            h, w = img.shape
            small = cv2.resize(img, (round(w / s), round(h / s)), interpolation=cv2.INTER_LANCZOS4)
            back = cv2.resize(
                restorer.restore(small, opts).image,
                (w, h),
                interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LANCZOS4,
            )
            print(
                f"| {stem} | {s} | {psnr(ref, img):.2f} | {psnr(ref, native):.2f} | {psnr(ref, back):.2f} | "
                f"{1e3 * high_share(img):.1f} | {blockiness_factor(img) if s > 1 else '–'} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
