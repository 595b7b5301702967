"""``python -m training evaluate``: the paper's Table 1 (masks) and Table 2 (restoration).

For every clean drawing in a folder and every JPEG quality factor (QF) asked for:

1. The drawing (optionally turned into its light, textured variant with a fixed seed, optionally
   centre-cropped) is the ground truth ``clean``; its eq. 3 mask ``clean < 255`` is the
   ground-truth mask.
2. ``jpeg = jpeg_degrade(clean, qf)``: the training data module's JPEG round trip with the 8x8
   grid aligned to the image (no random offset), so the numbers are reproducible.
3. Table 1 compares line masks computed from ``jpeg`` with the ground-truth mask (mIoU and
   boundary F-score): AGT, Otsu and Otsu_D from :mod:`core.masks`, and the learnt mask that the
   restore pipeline predicts.
4. Table 2 compares restored images with ``clean`` (PSNR | SSIM): the JPEG itself, the plain
   baseline backbone, the baseline followed by eq. 1 thresholding, and the framework (the
   framework backbone fed the learnt mask, background composed to white by eq. 2).

Every restored image comes from :class:`core.pipeline.Restorer`, the code users run:
``mask="none", threshold=False`` (baseline), ``mask="none", threshold=True`` (baseline +
thresholding) and ``mask="learnt", threshold=False`` (framework, as in the paper; the learnt mask
is read from the same run's ``RestoreResult.mask``).

Figures are means over images. A PSNR of infinity (a restored image identical to the clean one)
is counted as :data:`PSNR_CAP` dB so that a mean stays finite; the JSON records how often.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import colour
from core import masks as direct_masks
from core.equations import DEFAULT_THETA, gt_mask
from core.errors import RestoreError
from core.metrics import boundary_fscore, miou, psnr, ssim
from core.options import COLOUR_MODEL_HELP, INKS_MODEL_HELP, MASK_COLOUR_HELP

from .colour import COLOUR_SEED

__all__ = [
    "EvaluationError",
    "EvalConfig",
    "MASK_ROWS",
    "RESTORE_ROWS",
    "PSNR_CAP",
    "centre_crop",
    "evaluate",
    "table1_markdown",
    "table2_markdown",
    "add_evaluate_parser",
    "run_evaluate",
]

#: Table 1 rows, in the paper's order: (label, how the mask is made).
MASK_ROWS = ("AGT", "Otsu", "Otsu_D", "Learnt")
#: Table 2 columns, in the paper's order.
RESTORE_ROWS = ("JPEG", "Baseline", "Baseline + thresholding", "Framework (learnt mask)")
#: Table 1's extra row in a colour evaluation: the learnt mask of the same drawing's gray JPEG.
GRAY_LEARNT = "Learnt (gray JPEG)"
#: PSNR counted for identical images (otherwise infinite).
PSNR_CAP = 100.0
#: Seed of the light variant, so ``--light`` always gives the same images.
LIGHT_SEED = 1234

_DIRECT = {"AGT": direct_masks.adaptive_gaussian, "Otsu": direct_masks.otsu, "Otsu_D": direct_masks.otsu_dilated}


class EvaluationError(RuntimeError):
    """The evaluation cannot run: missing/empty folder, no readable image, bad QF, missing model."""


@dataclass
class EvalConfig:
    """What to evaluate.

    Attributes:
        folder: folder of clean drawings (gray PNGs with an exact-255 background).
        qfs: JPEG quality factors, each 1..100.
        mask_model, restore_model, baseline_model: weights files (``None``: the shipped ones in
            ``core/models/``).
        mask_colour_model: the coloured layers' mask network: a file, ``"none"`` (the mask
            network for every layer), or ``None`` (the shipped ``mask_colour.safetensors`` where
            it is installed, unless ``mask_model`` is given; :func:`core.pipeline.colour_mask_path`).
        colour_model: the coloured layers' backbone, chosen the same way (the shipped
            ``restore_colour.safetensors`` unless ``restore_model`` is given;
            :func:`core.pipeline.colour_restore_path`).
        light: evaluate the light, textured variant of each drawing (fixed seed).
        grain: with ``light``, False leaves out the pencil grain (the same lightening, flat ink).
        crop: centre-crop each drawing to at most ``crop`` x ``crop`` pixels (bounds the time).
        limit: use only the first ``limit`` drawings (sorted by name).
        theta: eq. 1 threshold for the "Baseline + thresholding" row.
        device: "auto", "cpu" or "cuda".
        out: folder for table1/table2 .md and .json (``None``: print only).
        colour: evaluate the coloured variant of each drawing (:func:`training.colour.coloured_crop`,
            fixed seed) saved as an RGB JPEG with ``subsampling``: RGB PSNR, SSIM (mean of the
            channels'), and masks against the gray drawing's mask, with the learnt mask of the
            gray JPEG as an extra Table 1 row for comparison.
        subsampling: ``4:2:0`` or ``4:4:4`` (``colour`` only).
    """

    folder: Path
    qfs: tuple[int, ...] = (10, 20, 30, 40)
    mask_model: Path | None = None
    restore_model: Path | None = None
    baseline_model: Path | None = None
    mask_colour_model: str | Path | None = None
    colour_model: str | Path | None = None
    inks_model: str | Path | None = None
    light: bool = False
    grain: bool = True
    crop: int | None = None
    limit: int | None = None
    theta: int = DEFAULT_THETA
    device: str = "auto"
    out: Path | None = None
    colour: bool = False
    subsampling: str = "4:2:0"


# ---------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------


def centre_crop(img: np.ndarray, size: int | None) -> np.ndarray:
    """The central ``min(size, H) x min(size, W)`` window of ``img`` (the image when ``None``)."""
    if size is None:
        return img
    h, w = img.shape
    ch, cw = min(size, h), min(size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return img[y : y + ch, x : x + cw]


# ---------------------------------------------------------------------------------------------
# the evaluation
# ---------------------------------------------------------------------------------------------


def _check_config(cfg: EvalConfig) -> None:
    if not cfg.qfs:
        raise EvaluationError("give at least one JPEG quality factor")
    for qf in cfg.qfs:
        if not 1 <= int(qf) <= 100:
            raise EvaluationError(f"JPEG quality factors must be within 1..100, got {qf}")
    if cfg.crop is not None and cfg.crop < 16:
        raise EvaluationError(f"--crop must be at least 16 pixels, got {cfg.crop}")
    if not 0 <= cfg.theta <= 255:
        raise EvaluationError(f"--theta must be within 0..255, got {cfg.theta}")
    if cfg.limit is not None and cfg.limit < 1:
        raise EvaluationError(f"--limit must be at least 1, got {cfg.limit}")


def _make_restorer(cfg: EvalConfig):
    """The pipeline, built from the given or the shipped weights files."""
    from core.pipeline import DEFAULT_FILES, MODELS_DIR, Restorer, colour_files

    paths = {"mask": cfg.mask_model, "restore": cfg.restore_model, "baseline": cfg.baseline_model}
    colour_choices = (cfg.mask_colour_model, cfg.colour_model, cfg.inks_model)
    if all(p is None for p in paths.values()) and all(c is None for c in colour_choices):
        return Restorer.default(device=cfg.device)
    chosen = {k: Path(v) if v is not None else MODELS_DIR / DEFAULT_FILES[k] for k, v in paths.items()}
    for role, path in colour_files(
        *colour_choices, mask_given=cfg.mask_model is not None, restore_given=cfg.restore_model is not None
    ).items():
        if path is not None:
            chosen[role] = path
    for k, p in chosen.items():
        if not p.is_file():
            raise EvaluationError(f"{k} model file {p} does not exist")
    return Restorer.from_files(
        mask=chosen["mask"],
        restore=chosen["restore"],
        baseline=chosen["baseline"],
        mask_colour=chosen.get("mask_colour"),
        restore_colour=chosen.get("restore_colour"),
        colour_inks=chosen.get("colour_inks"),
        device=cfg.device,
    )


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    v = psnr(a, b)
    return PSNR_CAP if math.isinf(v) else float(v)


def evaluate(cfg: EvalConfig, restorer: Any = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the evaluation and return ``{"table1": ..., "table2": ...}`` (JSON-ready dicts).

    ``table1``: ``{"qfs", "n_images", "rows": {label: {"miou", "fscore", "per_qf": {qf: {...}}}}}``
    with labels :data:`MASK_ROWS`; the top-level ``miou``/``fscore`` average over all QFs.
    ``table2``: ``{"n_images", "columns", "rows": [{"qf", label: {"psnr", "ssim"}, ...}]}`` with
    one row per QF and labels :data:`RESTORE_ROWS`.

    Args:
        cfg: what to evaluate.
        restorer: a ready :class:`core.pipeline.Restorer` (built from ``cfg`` when ``None``).
        log: receives one progress line per image (default: stderr).

    Raises:
        EvaluationError: bad QFs/crop/limit, no readable image, missing model file.
        training.data.DataError: the folder is missing or holds no image file.

    An unreadable image produces a :class:`UserWarning` and is skipped.
    """
    import torch

    with torch.inference_mode():  # no autograd anywhere in an evaluation
        return _evaluate(cfg, restorer, log)


def _evaluate(cfg: EvalConfig, restorer: Any, log: Callable[[str], None] | None) -> dict[str, Any]:
    from core.pipeline import RestoreOptions

    from .colour import coloured_crop, jpeg_rgb, rgb_ssim
    from .data import DataError, jpeg_degrade, list_images, load_drawing
    from .synth import light_variant

    _check_config(cfg)
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    files = list_images(cfg.folder)[: cfg.limit]
    if restorer is None:
        restorer = _make_restorer(cfg)
    qfs = tuple(int(q) for q in cfg.qfs)

    mask_rows = MASK_ROWS + ((GRAY_LEARNT,) if cfg.colour else ())
    mask_sums = {qf: {row: np.zeros(2) for row in mask_rows} for qf in qfs}  # (miou, fscore)
    img_sums = {qf: {row: np.zeros(2) for row in RESTORE_ROWS} for qf in qfs}  # (psnr, ssim)
    capped = 0
    used: list[str] = []
    t_start = time.perf_counter()
    for i, path in enumerate(files):
        try:
            clean = load_drawing(path)
        except DataError as e:
            warnings.warn(f"skipping {path.name}: {e}", UserWarning, stacklevel=2)
            continue
        clean = centre_crop(clean, cfg.crop)
        if min(clean.shape) < 16:
            warnings.warn(
                f"skipping {path.name}: {clean.shape[1]}x{clean.shape[0]} is smaller than 16x16",
                UserWarning,
                stacklevel=2,
            )
            continue
        if cfg.light:
            clean = light_variant(clean, np.random.default_rng(LIGHT_SEED + i), grain=cfg.grain)
        gt = gt_mask(clean)
        gray_clean = clean
        if cfg.colour:
            clean = coloured_crop(gray_clean, i)
        for qf in qfs:
            if cfg.colour:
                jpeg = jpeg_rgb(clean, qf, cfg.subsampling)
                plane8 = np.clip(colour.prepare(jpeg).gray * 255 + 0.5, 0, 255).astype(np.uint8)
                gray_fw = restorer.restore(
                    jpeg_degrade(gray_clean, qf),
                    RestoreOptions(
                        mask="learnt",
                        threshold=False,
                        return_mask=True,
                        qf=qf,
                        jpeg_consistency=False,
                        normalize_ink=False,
                    ),
                )
                m = np.asarray(gray_fw.mask, dtype=np.uint8)
                mask_sums[qf][GRAY_LEARNT] += (miou(m, gt), boundary_fscore(m, gt))
            else:
                jpeg = plane8 = jpeg_degrade(clean, qf)
            for row, fn in _DIRECT.items():
                m = fn(plane8)
                mask_sums[qf][row] += (miou(m, gt), boundary_fscore(m, gt))
            # The paper's method as published: without the pipeline's JPEG-consistency step and
            # ink normalization (benchmarks/jpeg_consistency.py and benchmarks/ink_normalization.py
            # measure those on their own).
            paper = dict(qf=qf, jpeg_consistency=False, normalize_ink=False)
            base = restorer.restore(jpeg, RestoreOptions(mask="none", threshold=False, **paper)).image
            thr = restorer.restore(jpeg, RestoreOptions(mask="none", threshold=True, theta=cfg.theta, **paper)).image
            fw = restorer.restore(jpeg, RestoreOptions(mask="learnt", threshold=False, return_mask=True, **paper))
            learnt = np.asarray(fw.mask, dtype=np.uint8)
            mask_sums[qf]["Learnt"] += (miou(learnt, gt), boundary_fscore(learnt, gt))
            for row, out in zip(RESTORE_ROWS, (jpeg, base, thr, fw.image)):
                p = psnr(out, clean)
                capped += int(math.isinf(p))
                img_sums[qf][row] += (_psnr(out, clean), (rgb_ssim if cfg.colour else ssim)(out, clean))
        used.append(path.name)
        log(
            f"[{len(used)}/{len(files)}] {path.name} {clean.shape[1]}x{clean.shape[0]} "
            f"({time.perf_counter() - t_start:.1f} s)"
        )
    if not used:
        raise EvaluationError(f"none of the {len(files)} image files in {cfg.folder} could be read")
    cfg.files = used
    n = len(used)

    t1_rows: dict[str, Any] = {}
    for row in mask_rows:
        per = {str(qf): {"miou": mask_sums[qf][row][0] / n, "fscore": mask_sums[qf][row][1] / n} for qf in qfs}
        t1_rows[row] = {
            "miou": float(np.mean([v["miou"] for v in per.values()])),
            "fscore": float(np.mean([v["fscore"] for v in per.values()])),
            "per_qf": per,
        }
    t2_rows = []
    for qf in qfs:
        r: dict[str, Any] = {"qf": qf}
        for row in RESTORE_ROWS:
            r[row] = {"psnr": img_sums[qf][row][0] / n, "ssim": img_sums[qf][row][1] / n}
        t2_rows.append(r)

    setup = {
        "folder": str(cfg.folder),
        "images": used,
        "n_images": n,
        "qfs": list(qfs),
        "light": cfg.light,
        "colour": cfg.colour,
        "colour_seed": COLOUR_SEED if cfg.colour else None,
        "subsampling": cfg.subsampling if cfg.colour else None,
        "light_seed": LIGHT_SEED if cfg.light else None,
        "grain": cfg.grain if cfg.light else None,
        "crop": cfg.crop,
        "theta": cfg.theta,
        "models": _describe(restorer),
        "psnr_capped": capped,
        "seconds": round(time.perf_counter() - t_start, 2),
    }
    return {
        "table1": {"setup": setup, "qfs": list(qfs), "n_images": n, "rows": t1_rows},
        "table2": {"setup": setup, "n_images": n, "columns": list(RESTORE_ROWS), "rows": t2_rows},
    }


def _describe(restorer: Any) -> Any:
    try:
        info = restorer.info()
        json.dumps(info)
        return info
    except Exception:
        return repr(restorer)


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


def table1_markdown(t1: dict[str, Any]) -> str:
    """Table 1 as Markdown: one row per mask method; mean mIoU | F-score over the QFs, then
    one column pair per QF."""
    qfs = t1["qfs"]
    head = ["Method", "mIoU", "F-score"] + [f"QF {q} mIoU \\| F-score" for q in qfs]
    lines = [
        f"Table 1: line masks from JPEG drawings vs the ground-truth mask ({t1['n_images']} images; "
        f"mean over QF {', '.join(map(str, qfs))}).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for row in [r for r in t1["rows"] if r in MASK_ROWS or r == GRAY_LEARNT]:
        r = t1["rows"][row]
        cells = [row, f"{r['miou']:.3f}", f"{r['fscore']:.3f}"]
        cells += [f"{r['per_qf'][str(q)]['miou']:.3f} \\| {r['per_qf'][str(q)]['fscore']:.3f}" for q in qfs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table2_markdown(t2: dict[str, Any]) -> str:
    """Table 2 as Markdown: one row per QF, PSNR (dB) | SSIM for each method."""
    cols = t2["columns"]
    lines = [
        f"Table 2: PSNR (dB) | SSIM against the clean drawing ({t2['n_images']} images).",
        "",
        "| QF | " + " | ".join(cols) + " |",
        "|---:|" + "|".join(["---:"] * len(cols)) + "|",
    ]
    for r in t2["rows"]:
        cells = [str(r["qf"])] + [f"{r[c]['psnr']:.2f} \\| {r[c]['ssim']:.4f}" for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(result: dict[str, Any], out: Path) -> list[Path]:
    """Write table1.md/.json and table2.md/.json into ``out`` (created); returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, md in (("table1", table1_markdown(result["table1"])), ("table2", table2_markdown(result["table2"]))):
        (out / f"{name}.md").write_text(md, encoding="utf-8")
        (out / f"{name}.json").write_text(json.dumps(result[name], indent=2, default=str) + "\n", encoding="utf-8")
        written += [out / f"{name}.md", out / f"{name}.json"]
    return written


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def add_evaluate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``evaluate``."""
    p = subparsers.add_parser(
        "evaluate",
        help="Table 1 (mask mIoU/F-score) and Table 2 (PSNR|SSIM) on a folder of clean drawings",
        description="Compress each clean drawing at each QF, compare direct and learnt masks with the "
        "true line mask (Table 1) and baseline / baseline+thresholding / framework restorations "
        "with the clean drawing (Table 2). Prints Markdown; --out also writes .md and .json.",
    )
    p.add_argument("folder", type=Path, help="folder of clean drawings (background exactly 255)")
    p.add_argument(
        "--qf",
        "--qfs",
        dest="qfs",
        type=int,
        nargs="+",
        default=[10, 20, 30, 40],
        help="JPEG quality factors (default: 10 20 30 40)",
    )
    p.add_argument("--mask-model", type=Path, default=None, help="mask network weights (default: shipped)")
    p.add_argument("--mask-colour-model", default=None, metavar="FILE|none", help=MASK_COLOUR_HELP)
    p.add_argument("--colour-model", default=None, metavar="FILE|none", help=COLOUR_MODEL_HELP)
    p.add_argument("--inks-model", default=None, metavar="FILE|none", help=INKS_MODEL_HELP)
    p.add_argument("--restore-model", type=Path, default=None, help="framework backbone weights (default: shipped)")
    p.add_argument("--baseline-model", type=Path, default=None, help="baseline backbone weights (default: shipped)")
    p.add_argument("--light", action="store_true", help="evaluate the light, textured-line variant (fixed seed)")
    p.add_argument(
        "--no-grain",
        dest="grain",
        action="store_false",
        help="with --light: the same lightening without the pencil grain (flat light lines)",
    )
    p.add_argument(
        "--colour",
        action="store_true",
        help="evaluate the coloured variant (fixed seed) as RGB JPEGs: RGB PSNR/SSIM, masks vs the gray mask",
    )
    p.add_argument(
        "--subsampling",
        choices=("4:2:0", "4:4:4"),
        default="4:2:0",
        help="chroma subsampling of the RGB JPEGs with --colour (default 4:2:0)",
    )
    p.add_argument("--crop", type=int, default=None, help="centre-crop each drawing to at most N x N pixels")
    p.add_argument("--limit", type=int, default=None, help="use only the first K drawings (by name)")
    p.add_argument("--theta", type=int, default=DEFAULT_THETA, help="threshold of eq. 1 (default: 251)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", type=Path, default=None, help="folder for table1/table2 .md and .json")
    p.set_defaults(func=run_evaluate)
    return p


def run_evaluate(args: argparse.Namespace) -> int:
    """Entry point of ``python -m training evaluate``; returns the exit code (2 on a clear error)."""
    from .data import DataError

    if not args.grain and not args.light:
        print("error: --no-grain changes the light variant: give it with --light", file=sys.stderr)
        return 2
    cfg = EvalConfig(
        folder=args.folder,
        qfs=tuple(args.qfs),
        mask_model=args.mask_model,
        restore_model=args.restore_model,
        baseline_model=args.baseline_model,
        mask_colour_model=args.mask_colour_model,
        colour_model=args.colour_model,
        inks_model=args.inks_model,
        light=args.light,
        grain=args.grain,
        crop=args.crop,
        limit=args.limit,
        theta=args.theta,
        device=args.device,
        out=args.out,
        colour=args.colour,
        subsampling=args.subsampling,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
            result = evaluate(cfg)
    except (EvaluationError, DataError, RestoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table1_markdown(result["table1"]))
    print(table2_markdown(result["table2"]))
    if cfg.out is not None:
        for p in write_tables(result, cfg.out):
            print(f"wrote {p}")
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)
