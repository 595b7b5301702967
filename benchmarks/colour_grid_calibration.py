"""Calibration of JPEG consistency on colour layers (docs/colour.md, *JPEG consistency*).

Three parts, on coloured crops (``coloured_crop``, 256² windows with the most line detail) of
drawings the evaluation (``benchmarks/colour_consistency.py``: val 0-7, kanji 0-3) does not use:

* ``recovery``: on 4 val crops (drawings 0-3, the evaluation's own) at QF 20, 4:2:0, the share of
  textured luminance blocks whose stored coefficients are recovered, starting from the pixels,
  from the restoration (``jpeg_consistency`` off), either, and from the clean drawing.
* ``grid``: ``find_jpeg_grid`` with bounds and the restoration as start on val 8-13 and kanji
  4-7, 4:2:0 and 4:4:4, QF 5-95, and the PNGs: wrong grids (beyond +-2 QF), near ones, misses.
* ``chroma``: the IJG chroma table's share of reproduced textured Cb / Cr blocks on val 8-13 and
  kanji 4-7 at QF 10/30/50/80, for 4:4:4 and 4:2:0 (the 4:4:4 test's threshold).

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.colour_grid_calibration [--parts recovery grid chroma]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _crops(data: Path, val: slice, kanji: slice):
    from benchmarks.compare_waifu2x import _read_gray, choose_crop, crop
    from training.colour import coloured_crop

    for folder, part in ((data / "lineart" / "val", val), (data / "kanji", kanji)):
        for i, f in enumerate(sorted(folder.glob("*.png"))[part]):  # drawing i of the set's part
            full = _read_gray(f)
            yield f.stem, coloured_crop(crop(full, choose_crop(full, 256)), i)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--parts", nargs="+", default=["recovery", "grid", "chroma"])
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from core import colour
    from core import jpeg_consistency as jc
    from core.pipeline import RestoreOptions, Restorer
    from training.colour import jpeg_rgb

    data = Path(args.data)
    restorer = Restorer.default(device="cpu") if {"recovery", "grid"} & set(args.parts) else None
    off = RestoreOptions(jpeg_consistency=False)

    def start_of(j):
        return restorer.restore(j, off).image.astype(np.float32) @ LUMA

    if "recovery" in args.parts:
        print("## recovery: share of textured luminance blocks reproduced (QF 20, 4:2:0)")
        for stem, clean in _crops(data, slice(0, 4), slice(0, 0)):
            j = jpeg_rgb(clean, 20)
            y8, bounds = colour.jpeg_luma(j)
            b = jc._blocks(y8, 0, 0).reshape(-1, 64)
            bb = jc._block_bounds(bounds, 0, 0)
            tex = (b.amax(1) - b.amin(1)) > 2
            q = jc.ijg_table(20).reshape(8, 8)
            _, ok_px = jc.recover_coefficients(b, q, bounds=bb)
            _, ok_rest = jc.recover_coefficients(b, q, bounds=bb, start=jc._blocks(start_of(j), 0, 0).reshape(-1, 64))
            _, ok_clean = jc.recover_coefficients(
                b, q, bounds=bb, start=jc._blocks(clean.astype(np.float32) @ LUMA, 0, 0).reshape(-1, 64)
            )
            shares = [float(o[tex].float().mean()) for o in (ok_px, ok_rest, ok_px | ok_rest, ok_clean)]
            print(
                f"{stem[:24]:24s} pixels {shares[0]:.2f}, restoration {shares[1]:.2f}, either {shares[2]:.2f}, clean {shares[3]:.2f}"
            )

    if "grid" in args.parts:
        print("\n## grid: find_jpeg_grid on the luminance with bounds, the restoration as start")
        near = wrong = missed = cases = 0
        for stem, clean in _crops(data, slice(8, 14), slice(4, 8)):
            for ss in ("4:2:0", "4:4:4"):
                for q in (None, 5, 10, 20, 30, 40, 50, 60, 70, 80, 85, 90, 95):
                    if q is None and ss == "4:4:4":
                        continue
                    j = clean if q is None else jpeg_rgb(clean, q, ss)
                    y8, bounds = colour.jpeg_luma(j)
                    g = jc.find_jpeg_grid(y8, bounds=bounds, start=start_of(j))
                    got = None if g is None else g.qf
                    cases += 1
                    if got == q or (q is not None and q > jc.MAX_QF_BOUNDED and got is None):
                        continue
                    if got is None:
                        missed += 1
                    elif q is not None and abs(got - q) <= 2:
                        near += 1
                    else:
                        wrong += 1
                    print(f"{stem[:24]:24s} {ss} QF {q} -> {got}")
        print(f"{cases} cases: {wrong} wrong, {near} at a neighbouring quality (+-2), {missed} missed")

    if "chroma" in args.parts:
        print("\n## chroma: share of textured Cb / Cr blocks the IJG chroma table reproduces")
        for stem, clean in _crops(data, slice(8, 14), slice(4, 8)):
            row = []
            for ss in ("4:4:4", "4:2:0"):
                for q in (10, 30, 50, 80):
                    j = jpeg_rgb(clean, q, ss)
                    table = jc.ijg_chroma_table(q)
                    shares = [jc.reproduced_share(p8, table, 0, 0, b) for p8, b in colour.jpeg_chroma(j)]
                    row.append(f"{ss} QF {q}: " + "/".join("-" if s is None else f"{s:.2f}" for s in shares))
            print(f"{stem[:24]:24s} " + "; ".join(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
