"""Where the default pipeline's remaining error lies, on the waifu2x comparison's inputs. A diagnostic.

For the same crops as ``benchmarks/compare_waifu2x.py`` (per set, ``--images`` drawings spread over
the folder, the ``--crop`` window with the most line detail, the light variant seeded the same way,
``training.data.jpeg_degrade``), it restores each JPEG with the shipped default pipeline and splits
the squared error against the clean crop two ways:

* by the clean pixel's tone: paper (255), solid ink (0) and the tones between (1-254: anti-aliased
  stroke edges, grey strokes, light lines), with each band's share of the pixels and of the squared
  error, and its RMSE in gray levels;
* by what the mask decided: line pixels the mask marked (the backbone's work), line pixels it
  missed (forced to white by eq. 2) and paper it marked as line.

A large share on marked line pixels means the backbone is what limits the score, not the mask or
the forced background.

    python -m benchmarks.error_split --qf 10 40
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.common import DATA_ROOT
from benchmarks.compare_waifu2x import _jpeg, _sets, clean_crops

BANDS = (("paper 255", 255, 255), ("ink 0", 0, 0), ("tones 1-254", 1, 254))


def split(clean: np.ndarray, out: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Sums of squared error (8-bit units) per tone band and per mask decision, plus pixel counts.

    Keys: ``se <band>``, ``px <band>`` for each of :data:`BANDS`, and ``se marked line``,
    ``se missed line``, ``se marked paper`` (the rest of the error is on unmarked paper)."""
    c = clean.astype(np.float64)
    se = (out.astype(np.float64) - c) ** 2
    line, marked = clean < 255, mask.astype(bool)
    res: dict[str, float] = {}
    for name, lo, hi in BANDS:
        sel = (clean >= lo) & (clean <= hi)
        res[f"se {name}"] = float(se[sel].sum())
        res[f"px {name}"] = float(sel.sum())
    res["se marked line"] = float(se[line & marked].sum())
    res["se missed line"] = float(se[line & ~marked].sum())
    res["se marked paper"] = float(se[~line & marked].sum())
    res["se total"] = float(se.sum())
    res["px total"] = float(se.size)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DATA_ROOT, help="folder holding lineart/val and kanji")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="a set (default: val, kanji, val_light, val_light_smooth)",
    )
    p.add_argument(
        "--light-set", action="append", default=[], metavar="NAME=FOLDER", help="a set made light and grainy"
    )
    p.add_argument(
        "--smooth-light-set", action="append", default=[], metavar="NAME=FOLDER", help="a set made light, without grain"
    )
    p.add_argument("--images", type=int, default=3, help="drawings per set (default 3, as the comparison)")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--seed", type=int, default=0, help="light-variant seed (as the comparison's --seed)")
    p.add_argument("--qf", type=int, nargs="+", default=[10, 20, 30, 40])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from core.pipeline import RestoreOptions, Restorer

    try:
        sets = _sets(args)
    except SystemExit as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    restorer = Restorer.default(device="cpu")
    print(
        f"# default pipeline, {args.images} drawings per set, {args.crop}² crops with the most line detail; "
        "share = part of all squared error, RMSE in gray levels"
    )
    print(
        "\n| set | QF | "
        + " | ".join(f"{n}: px / error share / RMSE" for n, _, _ in BANDS)
        + " | marked line / missed line / marked paper (error share) |"
    )
    print("|---|---:|" + "---:|" * (len(BANDS) + 1))
    for s in sets:
        crops = [c for _s, _p, _b, c in clean_crops([s], args.images, args.crop, args.seed)]
        for qf in args.qf:
            tot: dict[str, float] = {}
            for c in crops:
                res = restorer.restore(_jpeg(c, qf), RestoreOptions())
                for k, v in split(c, res.image, res.mask).items():
                    tot[k] = tot.get(k, 0.0) + v
            se = max(tot["se total"], 1e-12)
            cells = []
            for name, _, _ in BANDS:
                px = tot[f"px {name}"]
                rmse = (tot[f"se {name}"] / px) ** 0.5 if px else float("nan")
                cells.append(f"{px / tot['px total']:.3f} / {tot[f'se {name}'] / se:.3f} / {rmse:.2f}")
            mask_cells = " / ".join(
                f"{tot[k] / se:.3f}" for k in ("se marked line", "se missed line", "se marked paper")
            )
            print(f"| {s.name} | {qf} | " + " | ".join(cells) + f" | {mask_cells} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
