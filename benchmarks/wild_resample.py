"""Restoring a resized JPEG back on its 8x8 grid: measured with the true factor (docs/wild.md).

For val and kanji crops saved at QF 20, resized by s with Lanczos and saved at QF 90, compares
(against the clean crop resized the same way) the pipeline at native size (its enlargement step
off) with "resample by 1/s (true s), restore, resample back", and the default pipeline, whose
:func:`core.resample.find_enlargement` looks for s itself (the factor it found, if any).

    python -m benchmarks.wild_resample --images 5 --kanji 2

``--detect`` instead calibrates :func:`core.resample.find_enlargement`: for every crop and JPEG
quality 10-40, a single JPEG, a re-save, an offset crop, the clean PNG, and the JPEG resized by
0.5-2.0 (kernel drawn from :data:`training.degrade.KERNELS`) then saved at 60-95 or kept as PNG;
prints, per family and scale, how many were found enlarged and at which factor.

    python -m benchmarks.wild_resample --detect --images 6 --kanji 2 --crop 640

``--wild N`` runs the degradation model's two resize families (``training.degrade``: x0.5-x2,
any kernel, first save at QF 10-40, then saved at 60-95 or kept as PNG), N seeds per crop, with
the enlargement step off and on.

    python -m benchmarks.wild_resample --wild 3 --images 3 --kanji 3 --crop 512

``--screentone`` counts the detector's false finds on screentones and hatching; ``--sizes`` how
often the enlarged layers it finds give the JPEG's own size back (``--harmonics N`` refines on
fewer harmonics); ``--gains`` the step's gain per enlarging kernel; ``--cost`` the detector's
time (``--train N`` adds ``lineart/train`` drawings to the crops).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

SCALES = (0.5, 0.75, 1.25, 1.5, 2.0)


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


def sizes(crops, seed: int = 0) -> int:
    """How often :func:`core.resample.find_enlargement` gives the JPEG's own size back exactly, on
    every enlarged layer it finds among ``crops`` saved at QF 10-40, enlarged by x1.1-x2 (kernel
    drawn from :data:`training.degrade.KERNELS`) and saved again at 60-95 or kept as PNG."""
    from core.resample import REFINE_HARMONICS, find_enlargement
    from training.degrade import KERNELS, encode, resize

    rng = np.random.default_rng(seed)
    kernels = sorted(KERNELS)
    found = right = 0
    for _stem, c in crops:
        for qf in (10, 20, 30, 40):
            j = encode(c, qf)
            for s in (1.1, 1.25, 1.27, 1.4, 1.5, 1.75, 2.0):
                k = kernels[int(rng.integers(len(kernels)))]
                for img in (encode(resize(j, s, k), int(rng.integers(60, 96))), resize(j, s, k)):
                    e = find_enlargement(img)
                    if e is not None:
                        h, w = img.shape
                        found += 1
                        right += (round(w / e.factor), round(h / e.factor)) == (c.shape[1], c.shape[0])
    print(
        f"refined on harmonics {REFINE_HARMONICS[0]}-{REFINE_HARMONICS[-1]}: the JPEG's own size right on "
        f"{right} of {found} enlarged layers found"
    )
    return 0


def gains(crops, restorer, seed: int = 0) -> int:
    """On every enlarged layer the detector finds among ``crops`` (saved at QF 15 and 30, enlarged
    by x1.15-x1.8 with a kernel drawn from :data:`training.degrade.KERNELS`, saved again at 60-95
    or kept as PNG), the gain of the enlargement step (the pipeline as shipped against the same with
    ``enlarged`` off), per kernel; how often :func:`core.resample.undo_enlargement` told that
    kernel; and what the step would gain with the kernel in hand (the answer known)."""
    from collections import defaultdict

    from core.metrics import psnr
    from core.pipeline import RestoreOptions
    from core.resample import find_enlargement, undo_enlargement
    from training.degrade import KERNELS, encode, resize

    rng = np.random.default_rng(seed)
    kernels = sorted(KERNELS)
    rows = defaultdict(list)
    for _stem, c in crops:
        for qf in (15, 30):
            j = encode(c, qf)
            for s in (1.15, 1.3, 1.5, 1.8):
                k = kernels[int(rng.integers(len(kernels)))]
                ref = resize(c, s, k)
                for img in (encode(resize(j, s, k), int(rng.integers(60, 96))), resize(j, s, k)):
                    found = find_enlargement(img)
                    if found is None:
                        continue
                    h, w = img.shape
                    native = psnr(ref, restorer.restore(img, RestoreOptions(enlarged=False)).image)
                    shipped = psnr(ref, restorer.restore(img, RestoreOptions()).image)
                    # shrunk with the kernel in hand; the residuals still tell which one the
                    # detector would have picked
                    shrunk = undo_enlargement(img, found.factor, search=found.weak, kernel=k)
                    told = min(shrunk.residual, key=shrunk.residual.get)
                    opts = RestoreOptions(enlarged=False, wild_network=False)
                    restored = restorer.restore(shrunk.image, opts).image
                    back = cv2.resize(restored, (w, h), interpolation=KERNELS[k])
                    back[back > 251] = 255
                    rows[k].append((shipped - native, psnr(ref, back) - native, told == k))
    print(
        "| enlarged with | layers found | kernel told | gain of the step (mean, min - max) | with that kernel in hand |"
    )
    print("|---|---:|---:|---:|---:|")
    for k, got in [*sorted(rows.items()), ("all", [x for layers in rows.values() for x in layers])]:
        g = np.array(got, dtype=float)
        print(
            f"| {k} | {len(g)} | {int(g[:, 2].sum())} | {g[:, 0].mean():+.2f} ({g[:, 0].min():+.1f} - "
            f"{g[:, 0].max():+.1f}) | {g[:, 1].mean():+.2f} |"
        )
    return 0


def cost(crops, repeat: int = 5) -> int:
    """Time :func:`core.resample.find_enlargement` (one thread, best of ``repeat``) on each crop
    saved at QF 20, and on the same JPEG enlarged x1.5 with Lanczos, where it also refines the
    factor and checks the round trip; and, on the layers found, what bringing them back to the
    JPEG's size costs (:func:`core.resample.undo_enlargement`: the kernel told and the
    least-squares shrink)."""
    import time

    from core.resample import find_enlargement, undo_enlargement
    from training.degrade import encode, resize

    def best_of(fn):
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t)
        return out, best

    print("| drawing | layer | size | found | seconds | back to the JPEG's size (s) |\n|---|---|---|---|---:|---:|")
    for stem, c in crops:
        j = encode(c, 20)
        for label, img in (("QF 20", j), ("QF 20, x1.5", resize(j, 1.5, "lanczos"))):
            found, seconds = best_of(lambda img=img: find_enlargement(img))
            got = "–" if found is None else f"x{found.factor:.3f}"
            undo = (
                "–"
                if found is None
                else f"{best_of(lambda img=img: undo_enlargement(img, found.factor, search=found.weak))[1]:.3f}"
            )
            print(f"| {stem} | {label} | {img.shape[1]}x{img.shape[0]} | {got} | {seconds:.3f} | {undo} |")
    return 0


def wild(crops, restorer, seeds: int) -> int:
    """The degradation model's resize families on ``crops`` (seeds ``[seed, crop, family]`` with
    the wild benchmark's first-save range QF 10-40): the pipeline with its enlargement step off
    ("native") and on ("default"), against the reference, and the factor found."""
    from core.metrics import psnr
    from core.pipeline import RestoreOptions
    from core.resample import find_enlargement
    from training.degrade import FAMILIES, degrade

    opts = RestoreOptions(enlarged=True)
    print("| drawing | family | seed | scale | kernel | input | native | default | factor found |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|")
    for ci, (stem, c) in enumerate(crops):
        for family in ("resize_then_jpeg", "resize_png"):
            for seed in range(seeds):
                rng = np.random.default_rng([seed, ci, FAMILIES.index(family)])
                d = degrade(c, rng, family, qf_range=(10, 40))
                native = restorer.restore(d.image, RestoreOptions(enlarged=False)).image
                found = find_enlargement(d.image)
                default = native if found is None else restorer.restore(d.image, opts).image
                print(
                    f"| {stem} | {family} | {seed} | {d.info['scale']:.3f} | {d.info['kernel']} | "
                    f"{psnr(d.reference, d.image):.2f} | {psnr(d.reference, native):.2f} | "
                    f"{psnr(d.reference, default):.2f} | {'–' if found is None else f'{found.factor:.3f}'} |",
                    flush=True,
                )
    return 0


def screentone(seed: int = 0) -> int:
    """How often the detector takes a drawing with a periodic pattern for an enlarged JPEG: dots
    of period 4-20 px, radius 1-3, levels 60/160/220 (a screentone), or parallel hatching lines of
    the same periods, widths and levels, over most of a 640² layer with 40 lines, saved at QF 30,
    75, 95 or kept as PNG."""
    import io

    import cv2
    from PIL import Image

    from core.resample import find_enlargement

    rng = np.random.default_rng(seed)
    found = {"screentone": 0, "hatching": 0}
    total = dict(found)
    for period in (4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 18, 20):
        for dot in (1, 2, 3):
            for level in (60, 160, 220):
                for qf in (30, 75, 95, None):
                    g = np.full((640, 640), 255, np.uint8)
                    for pattern in ("screentone", "hatching"):
                        g = np.full((640, 640), 255, np.uint8)
                        tone = np.full_like(g, 255)
                        if pattern == "screentone":
                            for y in range(0, 640, period):
                                for x in range(0, 640, period):
                                    cv2.circle(tone, (x, y), dot, level, -1, cv2.LINE_AA)
                        else:
                            for x in range(0, 640, period):
                                cv2.line(tone, (x, 0), (x + 320, 639), level, dot, cv2.LINE_AA)
                        g[100:500, 80:560] = tone[100:500, 80:560]
                        for _ in range(40):
                            p = rng.integers(0, 640, (2, 2))
                            cv2.line(g, tuple(map(int, p[0])), tuple(map(int, p[1])), 20, 2, cv2.LINE_AA)
                        if qf:
                            buf = io.BytesIO()
                            Image.fromarray(g).save(buf, "JPEG", quality=qf)
                            g = np.asarray(Image.open(buf))
                        total[pattern] += 1
                        found[pattern] += find_enlargement(g) is not None
    for pattern in total:
        print(f"{pattern} layers taken for enlarged JPEGs: {found[pattern]} of {total[pattern]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--images", type=int, default=5, help="val drawings")
    p.add_argument("--kanji", type=int, default=2, help="kanji drawings")
    p.add_argument("--crop", type=int, default=320)
    p.add_argument("--detect", action="store_true", help="calibrate the enlargement detector instead")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", type=int, default=0, help="lineart/train drawings added to the crops")
    p.add_argument(
        "--sizes", action="store_true", help="how often the enlarged layers found give the JPEG's own size back"
    )
    p.add_argument("--harmonics", type=int, help="with --sizes: refine on the first N harmonics (default: shipped)")
    p.add_argument("--gains", action="store_true", help="the enlargement step's gain on the layers found, per kernel")
    p.add_argument("--cost", action="store_true", help="time the detector on single and enlarged JPEGs")
    p.add_argument(
        "--screentone", action="store_true", help="count the detector's false finds on screentones and hatching"
    )
    p.add_argument(
        "--wild", type=int, default=0, metavar="SEEDS", help="the resize families of training.degrade, SEEDS per crop"
    )
    args = p.parse_args(argv)
    if args.screentone:
        return screentone(args.seed)
    import torch

    torch.set_num_threads(1)
    from benchmarks.compare_waifu2x import choose_crop, crop, pick_files
    from core.metrics import psnr
    from core.pipeline import RestoreOptions, Restorer
    from core.resample import find_enlargement
    from training.data import load_drawing
    from training.degrade import encode, resize

    crops = []
    folders = (("lineart/val", args.images), ("kanji", args.kanji), ("lineart/train", args.train))
    for folder, n in ((Path(args.data) / name, count) for name, count in folders if count > 0):
        for path in pick_files(folder, n):
            full = load_drawing(path)
            crops.append((path.stem, crop(full, choose_crop(full, args.crop))))
    if args.detect:
        return detect(crops, args.seed)
    if args.cost:
        return cost(crops)
    if args.sizes:
        if args.harmonics:
            import core.resample

            core.resample.REFINE_HARMONICS = tuple(range(1, args.harmonics + 1))
        return sizes(crops, args.seed)
    restorer = Restorer.default(device="cpu")
    if args.gains:
        return gains(crops, restorer, args.seed)
    if args.wild:
        return wild(crops, restorer, args.wild)
    opts = RestoreOptions(enlarged=True)
    print("| drawing | s | input | native | resampled to the grid (true s) | default pipeline | factor found |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for stem, c in crops:
        for s in SCALES:
            img = encode(resize(encode(c, 20), s, "lanczos"), 90)
            ref = resize(c, s, "lanczos")
            # the pipeline's path without the enlargement step (a private switch, for this table)
            native = restorer.restore(img, RestoreOptions(enlarged=False)).image
            h, w = img.shape
            small = cv2.resize(img, (round(w / s), round(h / s)), interpolation=cv2.INTER_LANCZOS4)
            back = cv2.resize(
                restorer.restore(small, opts).image,
                (w, h),
                interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LANCZOS4,
            )
            found = find_enlargement(img)
            default = restorer.restore(img, opts).image
            print(
                f"| {stem} | {s} | {psnr(ref, img):.2f} | {psnr(ref, native):.2f} | {psnr(ref, back):.2f} | "
                f"{psnr(ref, default):.2f} | {'–' if found is None else f'{found.factor:.2f}'} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
