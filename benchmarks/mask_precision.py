"""Does running the mask network in bf16 cost quality? Measured against the ground truth.

bf16 flips the line/background decision of pixels whose two logits are nearly equal, so a bf16
mask is not bit-identical to the fp32 one. What matters is whether it is *worse*: this script runs
the default pipeline with the mask network in fp32 and in bf16 on the same JPEG crops (the 512²
centre crops of ``python -m training evaluate``) and prints, per folder and QF, the mean mask mIoU
against eq. 3's mask of the clean drawing and the mean PSNR of the restored image.

    python -m benchmarks.mask_precision /path/to/lineart/val /path/to/kanji --qf 10 20 30 40
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from core.equations import gt_mask
from core.metrics import miou, psnr
from core.pipeline import RestoreOptions, Restorer
from training.data import DataError, jpeg_degrade, list_images, load_drawing
from training.evaluate import centre_crop


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", help="folders of clean drawings")
    p.add_argument("--qf", type=int, nargs="+", default=[10, 20, 30, 40])
    p.add_argument("--crop", type=int, default=512)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    restorers = {prec: Restorer.default(mask_precision=prec) for prec in ("fp32", "bf16")}
    print("| folder | QF | mIoU fp32 | mIoU bf16 | PSNR fp32 | PSNR bf16 | mask pixels differing |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for folder in args.folders:
        try:
            files = list_images(folder)  # raises on a missing or empty folder
        except DataError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        clean = [centre_crop(load_drawing(f), args.crop) for f in files]
        for qf in args.qf:
            scores = {prec: [] for prec in restorers}
            masks: dict[str, list[np.ndarray]] = {prec: [] for prec in restorers}
            for c in clean:
                jpeg = jpeg_degrade(c, qf)
                truth = gt_mask(c)
                for prec, r in restorers.items():
                    res = r.restore(jpeg, RestoreOptions())
                    scores[prec].append((miou(res.mask, truth), psnr(res.image, c)))
                    masks[prec].append(res.mask)
            differ = sum(int((a != b).sum()) for a, b in zip(masks["fp32"], masks["bf16"]))
            total = sum(m.size for m in masks["fp32"])
            m = {prec: np.mean(v, axis=0) for prec, v in scores.items()}
            print(
                f"| {Path(folder).name} | {qf} | {m['fp32'][0]:.4f} | {m['bf16'][0]:.4f} | {m['fp32'][1]:.3f} | "
                f"{m['bf16'][1]:.3f} | {differ / total * 1e6:.0f} per million |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
