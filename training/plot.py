"""``python -m training plot``: validation PSNR / SSIM (or mask mIoU) against training hours.

Reads the ``val.csv`` that :func:`training.train.train` writes in each run folder (columns
``step, hours`` and then ``psnr, ssim, psnr_thr, ssim_thr, psnr_jpeg`` for a backbone, or
``miou`` for a mask network, ``psnr_inks`` for the ink network, and the coloured and degraded
crops' columns of runs trained on those)
and draws one line per run, like the paper's Figs. 6-8:

    python -m training plot runs/baseline runs/framework --label Baseline --label Framework \\
        --threshold --smooth 5 --shift 0 1.5 --out docs/img/training_curves.png

* ``--threshold`` adds each backbone run's "+ thresholding" curve (eq. 1 applied to the same
  validation outputs) as a dashed line of the same colour.
* ``--smooth K`` draws a trailing moving average over K validations (the paper's curves are
  moving averages); ``1`` draws the raw points.
* ``--shift`` moves runs right by some hours, e.g. the time spent training the mask network that
  a framework run relies on (the paper shifts its framework curves this way).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["PlotError", "RunLog", "read_val_log", "moving_average", "plot_runs", "add_plot_parser", "run_plot"]

#: Panels in drawing order: (column, axis label); the last four are drawn for runs trained on
#: coloured (``--colour``) or re-saved, resized and cropped (``--wild``) patches.
PANELS = (
    ("psnr", "PSNR (dB)"),
    ("ssim", "SSIM"),
    ("miou", "mask mIoU"),
    ("psnr_colour_plane", "PSNR, coloured crops' line plane (dB)"),
    ("miou_colour", "mask mIoU, coloured crops"),
    ("psnr_wild", "PSNR, degraded crops (dB)"),
    ("psnr_inks", "PSNR, coloured crops at the clean strength (dB)"),
    ("psnr_inks_any", "PSNR, crops in any inks at the clean strength (dB)"),
    ("miou_wild", "mask mIoU, degraded crops"),
)


class PlotError(ValueError):
    """A run log that is missing, empty or has no metric to draw."""


@dataclass
class RunLog:
    """One run's validation log: ``hours`` (n,) and ``columns`` name -> (n,) float arrays."""

    label: str
    path: Path
    hours: np.ndarray
    columns: dict[str, np.ndarray]


def read_val_log(path: str | Path, label: str | None = None) -> RunLog:
    """Read a run's validation CSV. ``path`` is the CSV or a run folder holding ``val.csv``.

    Rows are sorted by hours. Cells that are empty or not numbers become NaN (not drawn).

    Raises:
        PlotError: no such file, no data row, or no ``hours`` column.
    """
    p = Path(path)
    csv_path = p / "val.csv" if p.is_dir() else p
    if not csv_path.is_file():
        where = f"{p} has no val.csv" if p.is_dir() else f"{p} does not exist"
        raise PlotError(f"{where} (give a run folder written by `python -m training mask|restore`, or its val.csv)")
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise PlotError(f"{csv_path} has no validation rows yet")
    if "hours" not in rows[0]:
        raise PlotError(f"{csv_path} has no 'hours' column (columns: {', '.join(rows[0])})")

    def num(v: str | None) -> float:
        try:
            return float(v) if v not in (None, "") else math.nan
        except ValueError:
            return math.nan

    names = [k for k in rows[0] if k is not None]
    data = {k: np.array([num(r.get(k)) for r in rows]) for k in names}
    order = np.argsort(data["hours"], kind="stable")
    data = {k: v[order] for k, v in data.items()}
    hours = data.pop("hours")
    if label is None:
        label = (csv_path.parent.name if csv_path.name == "val.csv" else csv_path.stem) or str(csv_path)
    return RunLog(label=label, path=csv_path, hours=hours, columns=data)


def moving_average(y: np.ndarray, k: int) -> np.ndarray:
    """Trailing mean over the last ``k`` finite values (fewer at the start); NaNs are skipped.
    Returns an array of ``y``'s length; ``k <= 1`` returns ``y`` unchanged."""
    y = np.asarray(y, dtype=np.float64)
    if k <= 1:
        return y
    out = np.full_like(y, np.nan)
    for i in range(len(y)):
        win = y[max(0, i - k + 1) : i + 1]
        win = win[np.isfinite(win)]
        if win.size and np.isfinite(y[i]):
            out[i] = win.mean()
    return out


def plot_runs(
    runs: list[RunLog],
    out: str | Path,
    *,
    smooth: int = 1,
    shifts: list[float] | None = None,
    with_threshold: bool = False,
    title: str | None = None,
) -> list[str]:
    """Draw the runs and save a PNG at ``out``; returns the panel columns drawn.

    One panel per metric of :data:`PANELS` present in at least one run (PSNR, SSIM, mIoU, then the
    coloured and degraded crops'); one line per run.

    Raises:
        PlotError: no run has any of psnr/ssim/miou, or ``shifts`` has the wrong length.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if not runs:
        raise PlotError("give at least one run")
    shifts = list(shifts) if shifts else [0.0] * len(runs)
    if len(shifts) != len(runs):
        raise PlotError(f"--shift needs one value per run ({len(runs)}), got {len(shifts)}")
    panels = [(c, lab) for c, lab in PANELS if any(c in r.columns for r in runs)]
    if not panels:
        raise PlotError(
            "none of the runs has a psnr, ssim or miou column: "
            + "; ".join(f"{r.path}: {', '.join(r.columns)}" for r in runs)
        )
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (col, ylabel) in zip(axes[0], panels):
        for i, (run, shift) in enumerate(zip(runs, shifts)):
            colour = colours[i % len(colours)]
            x = run.hours + shift
            if col in run.columns:
                ax.plot(
                    x,
                    moving_average(run.columns[col], smooth),
                    color=colour,
                    marker="." if len(x) < 30 else None,
                    label=run.label,
                )
            thr = f"{col}_thr"
            if with_threshold and thr in run.columns:
                ax.plot(
                    x,
                    moving_average(run.columns[thr], smooth),
                    color=colour,
                    linestyle="--",
                    marker="x" if len(x) < 30 else None,
                    label=f"{run.label} + thresholding",
                )
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_xlabel("training hours")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return [c for c, _ in panels]


def add_plot_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``plot``."""
    p = subparsers.add_parser(
        "plot",
        help="draw validation PSNR/SSIM (or mIoU) against training hours for several runs (PNG)",
        description="One line per run, read from each run folder's val.csv.",
    )
    p.add_argument("runs", nargs="+", type=Path, help="run folders (or their val.csv files)")
    p.add_argument("--label", action="append", default=None, help="legend label, once per run (default: folder name)")
    p.add_argument("--out", type=Path, default=Path("training_curves.png"), help="PNG to write")
    p.add_argument("--smooth", type=int, default=1, help="moving average over K validations (default 1: raw)")
    p.add_argument("--shift", type=float, nargs="+", default=None, help="hours to add to each run's x values")
    p.add_argument("--threshold", action="store_true", help="also draw each run's + thresholding curve (dashed)")
    p.add_argument("--title", default=None)
    p.set_defaults(func=run_plot)
    return p


def run_plot(args: argparse.Namespace) -> int:
    """Entry point of ``python -m training plot``; returns the exit code (2 on a clear error)."""
    try:
        if args.label is not None and len(args.label) != len(args.runs):
            raise PlotError(f"give --label once per run ({len(args.runs)}), got {len(args.label)}")
        if args.smooth < 1:
            raise PlotError(f"--smooth must be at least 1, got {args.smooth}")
        labels = args.label or [None] * len(args.runs)
        runs = [read_val_log(r, lab) for r, lab in zip(args.runs, labels)]
        panels = plot_runs(
            runs, args.out, smooth=args.smooth, shifts=args.shift, with_threshold=args.threshold, title=args.title
        )
    except PlotError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({', '.join(panels)} for {len(runs)} run(s))")
    return 0
