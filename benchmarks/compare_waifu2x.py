"""Compare waifu2x's JPEG denoisers with our default restore pipeline on the same JPEG inputs.

Runs in our own virtual environment. waifu2x itself (the Chainer port, PyPI waifu2x==2024.0.1)
lives in a separate venv made by ``benchmarks/waifu2x_env.sh`` and is run as a subprocess through
``benchmarks/waifu2x_runner.py``; nothing of waifu2x is imported here.

What it does, for every image set (a folder of clean gray drawings, background exactly 255):

1. Takes ``--images`` drawings (spread evenly over the sorted file list) and cuts from each the
   ``--crop`` x ``--crop`` window holding the most line detail (:func:`choose_crop`). A *light* set applies
   :func:`training.synth.light_variant` (seeded per image) to the clean crop first; a *smooth light*
   set applies it without the pencil grain (the same lightening from the same seed).
2. JPEG-compresses every crop at each quality factor with :func:`training.data.jpeg_degrade`.
   The decoded JPEG pixels are written as PNG, so both methods read bit-identical inputs.
3. Runs waifu2x on all inputs: Y-channel denoisers ``resnet10`` and ``vgg7`` at noise levels 0-3,
   through the package's own ``reconstruct.image`` (one CPU thread unless ``--threads``).
4. Runs our default pipeline (``core.pipeline.Restorer.default()``, default options; with
   ``--fast`` the shipped fast pair) on the same inputs, with ``torch.set_num_threads(--threads)``.
5. Optionally (``--torch-waifu2x``) times waifu2x's graph re-written in torch
   (``benchmarks/waifu2x_torch.py``, same .npz weights, highest requested noise level) and checks
   it against the Chainer output. Ours and the torch graph are timed input by input, each the
   fastest of ``--repeat`` runs; waifu2x in Chainer is timed once per input (it is slow).
6. Scores every output against the clean crop with :func:`core.metrics.psnr` and
   :func:`core.metrics.ssim` (uint8, peak 255), and writes

   * ``OUT/results.json``: settings, versions, every per-image score and time, the summary;
   * ``OUT/table.md``: mean PSNR / SSIM per set and QF for the JPEG, waifu2x's best model (chosen
     per set and QF by mean PSNR), ours, and the speed in seconds per megapixel;
   * ``OUT/side_by_side.png``: clean | JPEG | waifu2x best | ours | our mask, one row per set, on a
     ``--figure-size`` window of one input at ``--figure-qf``, enlarged ``--figure-scale`` times;
   * ``OUT/work/``: the JPEG inputs (as PNG) and waifu2x's outputs. waifu2x is the slow part and
     does not depend on our models, so a later run on identical inputs and settings reuses its
     finished models and resumes an interrupted run (checked with :func:`run_key`;
     ``--rerun-waifu2x`` starts afresh).

Usage (from the repository root)::

    benchmarks/waifu2x_env.sh                       # once: creates .venv-waifu2x
    .venv/bin/python -m benchmarks.compare_waifu2x --waifu2x-python .venv-waifu2x/bin/python \\
        --out out/waifu2x --torch-waifu2x

``--wild`` scores JPEGs as they reach artists instead (re-saved, resized, cropped, exported:
:mod:`training.degrade`) and writes ``OUT/wild.md``; ``--wild --colour`` does the same on the
crops coloured and against waifu2x's RGB models (``OUT/wild_colour.md``); see :func:`wild_main`
and docs/wild.md.

Without ``--set``/``--light-set``/``--smooth-light-set`` it uses ``DATA/lineart/val`` (as ``val``),
``DATA/kanji`` (as ``kanji``), the light variant of ``DATA/lineart/val`` (as ``val_light``) and the
same without its grain (as ``val_light_smooth``), DATA being ``--data`` (default
``/work/shared/data``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

__all__ = [
    "ImageSet",
    "Record",
    "line_detail",
    "choose_crop",
    "crop",
    "pick_files",
    "input_name",
    "parse_input_name",
    "summarize",
    "best_waifu2x",
    "markdown_table",
    "mask_panel",
    "compose_grid",
    "run_key",
    "check_targets",
    "targets_markdown",
    "replace_between_markers",
    "doc_markers",
    "run_waifu2x_cached",
    "wild_table",
    "wild_main",
    "main",
]

REPO = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "waifu2x_runner.py"
DEFAULT_QFS = (10, 20, 30, 40)
WAIFU2X_ARCHS = ("resnet10", "vgg7")
WAIFU2X_LEVELS = (0, 1, 2, 3)
JPEG = "jpeg"
OURS = "ours"
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


# ---------------------------------------------------------------------------------------------
# data selection
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSet:
    """A named folder of clean gray drawings; ``light`` applies the light-line variant, with its
    pencil grain unless ``grain`` is False."""

    name: str
    folder: Path
    light: bool = False
    grain: bool = True

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name) or "__" in self.name:
            raise ValueError(f"set name {self.name!r} must be letters, digits, '-' or single '_'")


def pick_files(folder: Path, n: int) -> list[Path]:
    """``n`` PNG files of ``folder`` spread evenly over its sorted listing (all of them if fewer).

    Raises ValueError when the folder holds no PNG or ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"need at least one image per set, got {n}")
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise ValueError(f"no .png drawings in {folder}")
    if n >= len(files):
        return files
    idx = np.unique(np.round(np.linspace(0, len(files) - 1, n)).astype(int))
    return [files[i] for i in idx]


def line_detail(clean: np.ndarray, reach: int = 2) -> np.ndarray:
    """Ink pixels (< 255) lying within ``reach`` pixels (Chebyshev) of a paper pixel (== 255).

    Stroke edges and thin lines count in full; the inside of large filled areas does not, so a
    crop chosen by this count shows lines rather than solid black. Returns a bool (H, W) array.
    """
    ink = clean < 255
    k = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    near_paper = cv2.dilate((~ink).astype(np.uint8), k, borderType=cv2.BORDER_REPLICATE).astype(bool)
    return ink & near_paper


def choose_crop(clean: np.ndarray, size: int, stride: int = 8) -> tuple[int, int, int, int]:
    """The ``size`` x ``size`` window of ``clean`` holding the most line detail
    (:func:`line_detail`: ink pixels within 2 px of paper).

    Args:
        clean: uint8 gray (H, W), white = 255.
        size: window side in pixels; clamped to the image (a smaller image gives its own size).
        stride: candidate windows start every ``stride`` pixels (plus the last possible start).

    Returns:
        ``(top, left, height, width)``. Ties go to the top-most, then left-most window, so the
        choice is deterministic.
    """
    if not isinstance(clean, np.ndarray) or clean.dtype != np.uint8 or clean.ndim != 2:
        raise ValueError(
            f"choose_crop takes a 2-D uint8 image, got {getattr(clean, 'dtype', type(clean))} "
            f"{getattr(clean, 'shape', '')}"
        )
    if size < 1 or stride < 1:
        raise ValueError(f"size and stride must be >= 1, got size={size}, stride={stride}")
    h, w = clean.shape
    ch, cw = min(size, h), min(size, w)
    detail = line_detail(clean).astype(np.int64)
    integral = np.zeros((h + 1, w + 1), np.int64)
    integral[1:, 1:] = detail.cumsum(0).cumsum(1)
    tops = np.unique(np.append(np.arange(0, h - ch + 1, stride), h - ch))
    lefts = np.unique(np.append(np.arange(0, w - cw + 1, stride), w - cw))
    t, l = tops[:, None], lefts[None, :]
    counts = integral[t + ch, l + cw] - integral[t, l + cw] - integral[t + ch, l] + integral[t, l]
    i, j = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return int(tops[i]), int(lefts[j]), ch, cw


def crop(img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``img[top:top+height, left:left+width]`` as a contiguous copy."""
    t, l, h, w = box
    return np.ascontiguousarray(img[t : t + h, l : l + w])


def clean_crops(sets, images: int, size: int, seed: int):
    """The clean crops compared, set by set: ``(set, path, box, crop)`` for ``images`` drawings of
    each set (:func:`pick_files`), cut to the ``size`` window with the most line detail
    (:func:`choose_crop`); a light set's crop gets :func:`training.synth.light_variant`, seeded by
    ``(seed, index of the drawing in its set)``."""
    from training.synth import light_variant

    for s in sets:
        for k, path in enumerate(pick_files(s.folder, images)):
            full = _read_gray(path)
            box = choose_crop(full, size)
            c = crop(full, box)
            if s.light:
                c = light_variant(c, np.random.default_rng([seed, k]), grain=s.grain)
            yield s, path, box, c


def input_name(set_name: str, stem: str, qf: int) -> str:
    """File name of one JPEG input: ``<set>__<stem>__q<qf>.png``."""
    return f"{set_name}__{stem}__q{qf:03d}.png"


def parse_input_name(name: str) -> tuple[str, str, int]:
    """Inverse of :func:`input_name`: ``(set, stem, qf)``."""
    base = name[:-4] if name.endswith(".png") else name
    parts = base.split("__")
    if len(parts) != 3 or not parts[2].startswith("q"):
        raise ValueError(f"{name!r} is not a comparison input name (<set>__<stem>__q<qf>.png)")
    return parts[0], parts[1], int(parts[2][1:])


# ---------------------------------------------------------------------------------------------
# scores and tables
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One scored output. ``method`` is ``"jpeg"``, ``"ours"``, ``"waifu2x/<arch>/noise<n>"`` or
    ``"waifu2x-torch/<arch>"`` (timing only); ``seconds`` is None when not timed."""

    set: str
    file: str
    qf: int
    method: str
    psnr: float
    ssim: float
    pixels: int
    seconds: float | None = None


def waifu2x_method(arch: str, noise: int) -> str:
    return f"waifu2x/{arch}/noise{noise}"


def summarize(records: list[Record]) -> dict:
    """Aggregate records per (set, qf, method) and per method.

    Returns ``{"cells": {set: {qf: {method: {"psnr", "ssim", "n"}}}},
    "speed": {method: {"seconds_per_mp", "megapixels", "seconds", "n"}},
    "drawings": {set: {file: {qf: {method: psnr}}}}}``: PSNR and SSIM are means over images
    (records with a NaN score are skipped); speed is total seconds over total megapixels of every
    timed record of that method; ``drawings`` keeps each drawing's own PSNR. Keys of ``qf`` are ints.
    """
    cells: dict = {}
    sums: dict = {}
    speed_acc: dict = {}
    drawings: dict = {}
    for r in records:
        if not (np.isnan(r.psnr) or np.isnan(r.ssim)):
            drawings.setdefault(r.set, {}).setdefault(r.file, {}).setdefault(r.qf, {})[r.method] = r.psnr
            acc = sums.setdefault((r.set, r.qf, r.method), [0.0, 0.0, 0])
            acc[0] += r.psnr
            acc[1] += r.ssim
            acc[2] += 1
        if r.seconds is not None:
            sp = speed_acc.setdefault(r.method, [0.0, 0, 0])
            sp[0] += r.seconds
            sp[1] += r.pixels
            sp[2] += 1
    for (s, q, m), (p, ss, n) in sums.items():
        cells.setdefault(s, {}).setdefault(q, {})[m] = {"psnr": p / n, "ssim": ss / n, "n": n}
    speed = {
        m: {"seconds_per_mp": sec / (px / 1e6), "megapixels": px / 1e6, "seconds": sec, "n": n}
        for m, (sec, px, n) in speed_acc.items()
        if px > 0
    }
    return {"cells": cells, "speed": speed, "drawings": drawings}


def best_waifu2x(methods: dict) -> str | None:
    """The waifu2x method (``waifu2x/...``) with the highest mean PSNR in one cell of
    :func:`summarize` (ties: the first in sorted order), or None when the cell has none."""
    cands = sorted(m for m in methods if m.startswith("waifu2x/"))
    if not cands:
        return None
    return max(cands, key=lambda m: methods[m]["psnr"])


def _fmt_method(m: str) -> str:
    if m.startswith("waifu2x/"):
        _, arch, level = m.split("/")
        return f"{arch} {level.replace('noise', 'n')}"
    return m


def markdown_table(summary: dict, speed_ref: str | None = None) -> str:
    """Markdown tables from :func:`summarize`'s output.

    1. Quality: one row per (set, QF): JPEG, waifu2x best (model named), ours, and ours minus
       waifu2x best (PSNR dB / SSIM).
    2. Every waifu2x model's mean PSNR per (set, QF), so the level choice can be checked.
    3. Per drawing: ours minus that (set, QF)'s waifu2x best on the drawing alone (PSNR dB), so
       that one drawing that decides a mean is seen.
    4. Speed: seconds per megapixel of every timed method, and how many times slower than ours it
       is (``speed_ref`` defaults to ``"ours"``).
    """
    cells = summary["cells"]
    lines = [
        "| set | QF | JPEG PSNR / SSIM | waifu2x best | waifu2x PSNR / SSIM | ours PSNR / SSIM "
        "| ours − waifu2x (dB / SSIM) |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    w2x_methods: list[str] = sorted(
        {m for s in cells.values() for q in s.values() for m in q if m.startswith("waifu2x/")}
    )
    for s in cells:
        for q in sorted(cells[s]):
            c = cells[s][q]
            jp = c.get(JPEG)
            ours = c.get(OURS)
            best = best_waifu2x(c)
            b = c.get(best) if best else None

            def ps(x: dict | None) -> str:
                return "–" if x is None else f"{x['psnr']:.2f} / {x['ssim']:.4f}"

            delta = "–"
            if ours is not None and b is not None:
                delta = f"{ours['psnr'] - b['psnr']:+.2f} / {ours['ssim'] - b['ssim']:+.4f}"
            lines.append(
                f"| {s} | {q} | {ps(jp)} | {_fmt_method(best) if best else '–'} | {ps(b)} | {ps(ours)} | {delta} |"
            )
    out = "\n".join(lines)
    if w2x_methods:
        head = "| set | QF | " + " | ".join(_fmt_method(m) for m in w2x_methods) + " |"
        rule = "|---|---:|" + "---:|" * len(w2x_methods)
        rows = [head, rule]
        for s in cells:
            for q in sorted(cells[s]):
                c = cells[s][q]
                best = best_waifu2x(c)
                vals = []
                for m in w2x_methods:
                    if m not in c:
                        vals.append("–")
                    else:
                        v = f"{c[m]['psnr']:.2f}"
                        vals.append(f"**{v}**" if m == best else v)
                rows.append(f"| {s} | {q} | " + " | ".join(vals) + " |")
        out += "\n\nwaifu2x, every model (mean PSNR dB; bold = best):\n\n" + "\n".join(rows)
    per = per_drawing_margins(summary)
    if per:
        qfs = sorted({q for d in per.values() for q in d})
        rows = ["| set | drawing | " + " | ".join(f"QF {q}" for q in qfs) + " |", "|---|---|" + "---:|" * len(qfs)]
        for (s, f), d in per.items():
            rows.append(f"| {s} | {f} | " + " | ".join("–" if q not in d else f"{d[q]:+.2f}" for q in qfs) + " |")
        out += "\n\nPer drawing: ours − waifu2x best (the model of that set and QF), PSNR dB:\n\n" + "\n".join(rows)
    speed = summary.get("speed", {})
    if speed:
        ref = speed_ref or OURS
        ref_v = speed.get(ref, {}).get("seconds_per_mp")
        rows = ["| method | s/MP | time ÷ ours |", "|---|---:|---:|"]
        order = sorted(speed, key=lambda m: (m != OURS, m))
        for m in order:
            v = speed[m]["seconds_per_mp"]
            ratio = "–" if not ref_v else f"{v / ref_v:.1f}"
            rows.append(f"| {m} | {v:.2f} | {ratio} |")
        out += "\n\nSpeed (seconds per megapixel, all inputs):\n\n" + "\n".join(rows)
    return out + "\n"


def per_drawing_margins(summary: dict) -> dict:
    """``{(set, file): {qf: ours − best}}``: each drawing's PSNR margin over the waifu2x model that
    is best for its set and QF (:func:`best_waifu2x` on the set's means, the model the quality
    table names), for the drawings and QFs scored by both."""
    out: dict = {}
    for s, files in summary.get("drawings", {}).items():
        for f, qfs in files.items():
            for q, scores in qfs.items():
                best = best_waifu2x(summary["cells"].get(s, {}).get(q, {}))
                if best and OURS in scores and best in scores:
                    out.setdefault((s, f), {})[q] = scores[OURS] - scores[best]
    return out


def check_targets(summary: dict, light_sets, margin_db: float = 1.0, speedup: float = 10.0) -> list[dict]:
    """The issue's targets, checked on :func:`summarize`'s output.

    Returns one dict per check, each with ``"target"``, ``"value"`` (a string) and ``"ok"`` (bool):

    * per (set, QF): ours − waifu2x best >= ``margin_db`` dB PSNR;
    * per light set and QF: its margin is larger than every non-light set's margin at that QF;
    * per timed ``waifu2x-torch/<arch>``: its seconds per MP over ours >= ``speedup``.
    """
    cells = summary["cells"]
    light = set(light_sets)
    checks = []
    margins: dict = {}
    for s in cells:
        for q in sorted(cells[s]):
            c = cells[s][q]
            best = best_waifu2x(c)
            if best is None or OURS not in c:
                continue
            m = c[OURS]["psnr"] - c[best]["psnr"]
            margins[(s, q)] = m
            checks.append(
                {
                    "target": f"{s} QF {q}: ours − waifu2x best ({_fmt_method(best)}) ≥ {margin_db:g} dB",
                    "value": f"{m:+.2f} dB",
                    "ok": bool(m >= margin_db),
                }
            )
    for (s, q), m in margins.items():
        if s not in light:
            continue
        others = {o: mo for (o, qo), mo in margins.items() if qo == q and o not in light}
        if others:
            worst = max(others.values())
            checks.append(
                {
                    "target": f"{s} QF {q}: margin larger than on {', '.join(sorted(others))}",
                    "value": f"{m:+.2f} dB vs {worst:+.2f} dB (largest other)",
                    "ok": bool(m > worst),
                }
            )
    speed = summary.get("speed", {})
    ours = speed.get(OURS, {}).get("seconds_per_mp")
    for meth in sorted(speed):
        if ours and meth.startswith("waifu2x-torch/"):
            r = speed[meth]["seconds_per_mp"] / ours
            checks.append(
                {
                    "target": f"ours ≥ {speedup:g}× faster than {meth}",
                    "value": f"{r:.1f}× ({speed[meth]['seconds_per_mp']:.2f} vs {ours:.2f} s/MP)",
                    "ok": bool(r >= speedup),
                }
            )
    return checks


def targets_markdown(checks: list[dict]) -> str:
    """A Markdown table of :func:`check_targets`' checks (met / NOT met)."""
    rows = ["| target | measured | met? |", "|---|---:|---|"]
    rows += [f"| {c['target']} | {c['value']} | {'yes' if c['ok'] else '**no**'} |" for c in checks]
    return "\n".join(rows) + "\n"


DOC_START = "<!-- compare_waifu2x:results:start -->"
DOC_END = "<!-- compare_waifu2x:results:end -->"


def doc_markers(name: str = "results") -> tuple[str, str]:
    """The start and end markers of the results block called ``name`` in a Markdown file."""
    if not _NAME_RE.match(name):
        raise ValueError(f"a results block name is letters, digits, '-' and '_', not {name!r}")
    return f"<!-- compare_waifu2x:{name}:start -->", f"<!-- compare_waifu2x:{name}:end -->"


def replace_between_markers(text: str, block: str, name: str = "results") -> str:
    """``text`` with everything between the markers of block ``name`` (:func:`doc_markers`)
    replaced by ``block`` (markers kept). Raises ValueError when the markers are missing or out
    of order."""
    start, end = doc_markers(name)
    a, b = text.find(start), text.find(end)
    if a < 0 or b < 0 or b < a:
        raise ValueError(f"the document needs the markers {start} and {end}, in that order")
    return text[: a + len(start)] + "\n" + block.strip("\n") + "\n" + text[b:]


# ---------------------------------------------------------------------------------------------
# the side-by-side picture
# ---------------------------------------------------------------------------------------------


def mask_panel(mask: np.ndarray) -> np.ndarray:
    """A 0/1 line mask (H, W) as a uint8 picture: lines black (0), background white (255)."""
    m = np.asarray(mask)
    if m.ndim != 2 or not np.isin(m, (0, 1)).all():
        raise ValueError(f"mask_panel takes a 2-D 0/1 mask, got shape {m.shape}")
    return np.where(m.astype(bool), 0, 255).astype(np.uint8)


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.5) -> None:
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 0, 1, cv2.LINE_AA)


def compose_grid(
    rows: list[list[np.ndarray]],
    col_titles: list[str],
    row_titles: list[str],
    scale: int = 2,
    gap: int = 6,
    header: int = 24,
    label_width: int = 0,
) -> np.ndarray:
    """Lay uint8 gray (or RGB) panels out in a grid with column titles on top and a label above each row.

    Args:
        rows: ``R`` lists of ``C`` uint8 (h, w) or (h, w, 3) panels; every panel has the same shape.
        col_titles: ``C`` strings drawn above the first row.
        row_titles: ``R`` strings drawn in a strip above each row (left-aligned).
        scale: integer nearest-neighbour enlargement of every panel (JPEG blocks stay visible).
        gap: pixels of mid-gray (160) between panels.
        header: height of each title strip in pixels.
        label_width: unused margin on the left, in pixels (0 for none).

    Returns:
        uint8 (H, W) (or (H, W, 3) for RGB panels) with ``H = header + R * (header + h * scale) + (R + 1) * gap`` and
        ``W = label_width + C * (w * scale) + (C + 1) * gap``; panel ``(r, c)`` sits at
        ``top = header + gap + r * (header + h * scale + gap) + header`` and
        ``left = label_width + gap + c * (w * scale + gap)``.
    """
    if not rows or not rows[0]:
        raise ValueError("compose_grid needs at least one row with one panel")
    n_cols = len(rows[0])
    shape = rows[0][0].shape
    for r in rows:
        if len(r) != n_cols:
            raise ValueError("every row needs the same number of panels")
        for p in r:
            if p.dtype != np.uint8 or p.shape != shape:
                raise ValueError(f"panels must all be uint8 {shape}, got {p.dtype} {p.shape}")
    if len(col_titles) != n_cols or len(row_titles) != len(rows):
        raise ValueError(f"need {n_cols} column titles and {len(rows)} row titles")
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    ph, pw = shape[0] * scale, shape[1] * scale
    height = header + len(rows) * (header + ph) + (len(rows) + 1) * gap
    width = label_width + n_cols * pw + (n_cols + 1) * gap
    canvas = np.full((height, width) + shape[2:], 255, np.uint8)
    for c, title in enumerate(col_titles):
        _text(canvas, title, label_width + gap + c * (pw + gap) + 2, header - 7)
    for r, row in enumerate(rows):
        strip_top = header + gap + r * (header + ph + gap)
        _text(canvas, row_titles[r], label_width + gap + 2, strip_top + header - 7)
        top = strip_top + header
        # gap frame around the row's panels
        canvas[top - gap : top + ph + gap, label_width:width] = 160
        for c, panel in enumerate(row):
            left = label_width + gap + c * (pw + gap)
            big = np.repeat(np.repeat(panel, scale, axis=0), scale, axis=1)
            canvas[top : top + ph, left : left + pw] = big
    return canvas


# ---------------------------------------------------------------------------------------------
# running the methods
# ---------------------------------------------------------------------------------------------


def _read_gray(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        if im.mode not in ("L", "I;16", "LA", "RGB", "RGBA", "P"):
            raise ValueError(f"{path}: unsupported image mode {im.mode}")
        return np.asarray(im.convert("L"))


def _write_gray(path: Path, img: np.ndarray) -> None:
    Image.fromarray(img, "L").save(path)


def _read_image(path: Path, rgb: bool) -> np.ndarray:
    """An image file as uint8 RGB ``(H, W, 3)`` when ``rgb``, else as gray (:func:`_read_gray`)."""
    if not rgb:
        return _read_gray(path)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _write_image(path: Path, img: np.ndarray) -> None:
    """A gray ``(H, W)`` or RGB ``(H, W, 3)`` uint8 image as PNG."""
    Image.fromarray(img, "L" if img.ndim == 2 else "RGB").save(path)


def _jpeg(img: np.ndarray, qf: int) -> np.ndarray:
    from training.data import jpeg_degrade

    out = jpeg_degrade(img, qf)
    out = np.asarray(out)
    if out.dtype != np.uint8 or out.shape != img.shape:
        raise RuntimeError(f"jpeg_degrade returned {out.dtype} {out.shape} for {img.dtype} {img.shape}")
    return out


def run_key(inputs: dict[str, np.ndarray], archs, levels, threads: int, color: str = "y") -> str:
    """A SHA-256 over the input names and pixels plus the waifu2x settings (``color``: the runner's
    ``--color``) and the runner's source: equal keys mean a stored waifu2x run can stand in for a
    new one. (``color="y"`` leaves the key as it was before ``color`` existed.)"""
    h = hashlib.sha256()
    h.update(RUNNER.read_bytes())
    h.update(json.dumps([sorted(archs), sorted(levels), threads]).encode())
    if color != "y":
        h.update(f"color={color}".encode())
    for name in sorted(inputs):
        a = inputs[name]
        h.update(name.encode())
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def run_waifu2x(python: str, in_dir: Path, out_dir: Path, archs, levels, threads: int, color: str = "y") -> dict:
    """Run ``waifu2x_runner.py --resume`` with ``python`` (the waifu2x venv's interpreter) and
    return its JSON report. Its progress goes to our stderr. ``color``: ``y`` (gray inputs,
    Y-channel models) or ``rgb`` (RGB inputs, RGB models).

    Raises RuntimeError when the runner fails.
    """
    cmd = [
        python,
        str(RUNNER),
        "--input",
        str(in_dir),
        "--output",
        str(out_dir),
        "--threads",
        str(threads),
        "--resume",
        "--color",
        color,
        "--arch",
        *archs,
        "--noise",
        *[str(n) for n in levels],
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        raise RuntimeError(
            f"waifu2x runner failed with status {proc.returncode} (its messages are above): {' '.join(cmd)}"
        )
    with open(out_dir / "waifu2x_run.json") as f:
        return json.load(f)


def run_waifu2x_cached(
    args: argparse.Namespace, inputs: dict[str, np.ndarray], in_dir: Path, w2x_dir: Path, color: str = "y"
) -> dict:
    """:func:`run_waifu2x` on ``in_dir`` (``color``: ``y`` or ``rgb`` models), keeping ``w2x_dir``
    while its :func:`run_key` matches the inputs and settings (the runner then resumes it model by
    model); a different key, or ``--rerun-waifu2x``, wipes it first."""
    key = run_key(inputs, args.arch, args.noise, args.threads, color)
    stamp = w2x_dir / "run_key.txt"
    if getattr(args, "rerun_waifu2x", False) or not (stamp.is_file() and stamp.read_text() == key):
        if w2x_dir.exists():
            shutil.rmtree(w2x_dir)
        w2x_dir.mkdir(parents=True)
        stamp.write_text(key)
    return run_waifu2x(args.waifu2x_python, in_dir, w2x_dir, args.arch, args.noise, args.threads, color)


def torch_waifu2x_outputs(
    args: argparse.Namespace, inputs: dict[str, np.ndarray], work: Path, color: str = "y"
) -> tuple[dict, list[tuple[str, str, np.ndarray, float]]]:
    """waifu2x's models (``args.arch`` x ``args.noise``, ``color`` ``y`` or ``rgb``) on every input,
    run as its graph in torch with its own .npz weights (:mod:`benchmarks.waifu2x_torch`): Chainer
    takes about 30 s per 256² input and model on a loaded 2-core machine, the torch graph under a
    second. Chainer runs on the first input only, every model, to show that both give the same
    pixels (kept under ``work/chainer_check`` and reused while that input and the settings stay
    the same); the torch outputs are written under ``work/waifu2x_torch``.

    Returns ``(info, outputs)``: the runner's info with ``agreement_max_abs_with_chainer`` (per
    model, the largest difference from Chainer's output on the first input), and ``(input name,
    method, image, seconds)`` for every input and model.
    """
    from benchmarks import waifu2x_torch as wt

    rgb = color == "rgb"
    models_dir = waifu2x_models_dir(args.waifu2x_python)
    first = min(inputs)
    one = work / "chainer_check"
    shutil.rmtree(one / "in", ignore_errors=True)
    (one / "in").mkdir(parents=True)
    _write_image(one / "in" / first, inputs[first])
    info = run_waifu2x_cached(args, {first: inputs[first]}, one / "in", one / "out", color)
    chainer = {(r["arch"], r["noise"]): _read_image(Path(r["output"]), rgb) for r in info["results"]}
    agreement, outputs = {}, []
    for arch in args.arch:
        for level in args.noise:
            model = wt.load_npz_model(wt.model_path(models_dir, arch, level, color), arch)
            keep = work / "waifu2x_torch" / f"{arch}_noise{level}"
            keep.mkdir(parents=True, exist_ok=True)
            for name, img in inputs.items():
                t0 = time.perf_counter()
                y = wt.denoise(model, img)
                outputs.append((name, waifu2x_method(arch, level), y, time.perf_counter() - t0))
                _write_image(keep / name, y)
                if name == first:
                    agreement[f"{arch}/noise{level}"] = int(np.abs(chainer[(arch, level)].astype(int) - y).max())
    info["agreement_max_abs_with_chainer"] = agreement
    print(f"torch waifu2x against Chainer on {first}: max |diff| {agreement}", file=sys.stderr)
    return info, outputs


def waifu2x_models_dir(python: str) -> str:
    """The ``models`` folder inside the waifu2x package of the venv whose interpreter is ``python``."""
    code = "import os, waifu2x; print(os.path.join(os.path.dirname(waifu2x.__file__), 'models'))"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{python} cannot import waifu2x: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="waifu2x vs. our default pipeline on JPEG line drawings")
    p.add_argument(
        "--waifu2x-python", required=True, help="python of the waifu2x venv (benchmarks/waifu2x_env.sh prints it)"
    )
    p.add_argument("--out", required=True, help="output folder (results.json, table.md, side_by_side.png)")
    p.add_argument("--data", default="/work/shared/data", help="data root for the default sets")
    p.add_argument("--set", action="append", default=[], metavar="NAME=FOLDER", help="a set of clean drawings")
    p.add_argument(
        "--light-set",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="a set given the light-line variant (training.synth.light_variant)",
    )
    p.add_argument(
        "--smooth-light-set",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="a set given the light-line variant without its pencil grain",
    )
    p.add_argument("--qf", nargs="+", type=int, default=list(DEFAULT_QFS))
    p.add_argument("--images", type=int, default=3, help="drawings per set (default 3)")
    p.add_argument("--crop", type=int, default=256, help="side of the evaluated crop (default 256)")
    p.add_argument("--arch", nargs="+", default=list(WAIFU2X_ARCHS), choices=WAIFU2X_ARCHS)
    p.add_argument("--noise", nargs="+", type=int, default=list(WAIFU2X_LEVELS), choices=WAIFU2X_LEVELS)
    p.add_argument("--threads", type=int, default=1, help="CPU threads for both methods (default 1)")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed runs per input for ours and the torch graph; the fastest counts (default 3)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the light-line variant")
    p.add_argument(
        "--torch-waifu2x", action="store_true", help="also time waifu2x's graph in torch (benchmarks/waifu2x_torch.py)"
    )
    # choices: core.ensemble.SIZES, not imported here (it brings torch in at start-up)
    p.add_argument(
        "--ensemble",
        type=int,
        default=1,
        choices=(1, 2, 4, 8),
        help="ours with the self-ensemble over this many flips and turns (default: 1, off)",
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help="ours with the shipped fast pair (restore_fast with the default mask network)",
    )
    p.add_argument(
        "--mask",
        help="our mask model file (default: shipped weights; each of these three files replaces only its own role)",
    )
    p.add_argument("--restore", help="our framework backbone file (default: shipped weights)")
    p.add_argument(
        "--colour-model",
        help="our backbone for coloured layers (with --wild --colour; default: the shipped restore_colour.safetensors)",
    )
    p.add_argument(
        "--inks-model",
        metavar="FILE|none",
        help="our ink network for coloured layers (with --wild --colour; default: the shipped "
        "colour_inks.safetensors where it is there; none: the colour stage's own ink colours)",
    )
    p.add_argument(
        "--wild-model",
        help="our backbone for layers that are not one JPEG at their own size (the wild_network option; "
        "default: the shipped restore_wild.safetensors when it is there)",
    )
    p.add_argument(
        "--wild-mask",
        help="our mask network for the layers --wild-model restores (default: the shipped mask_wild.safetensors "
        "when it is there)",
    )
    p.add_argument("--baseline", help="our baseline backbone file (default: shipped weights)")
    p.add_argument("--figure-qf", type=int, default=None, help="QF shown in the picture (default: lowest)")
    p.add_argument("--figure-size", type=int, default=128, help="side of the pictured window (default 128)")
    p.add_argument("--figure-scale", type=int, default=2, help="enlargement of the picture (default 2)")
    p.add_argument("--doc", help="also write the results between the compare_waifu2x markers of this Markdown file")
    p.add_argument(
        "--doc-block",
        default="results",
        metavar="NAME",
        help="which results block of --doc to write: the one between <!-- compare_waifu2x:NAME:start --> "
        "and its end marker (default %(default)s)",
    )
    p.add_argument("--doc-image", help="also copy side_by_side.png here (e.g. docs/img/waifu2x_side_by_side.png)")
    p.add_argument(
        "--wild",
        action="store_true",
        help="JPEGs as they reach artists instead of one save per --qf: every drawing in every "
        "family of training.degrade (re-saved, resized, cropped, exported; first save at "
        "--wild-qf, fixed seeds); writes OUT/wild.md (docs/wild.md)",
    )
    p.add_argument(
        "--wild-qf",
        nargs=2,
        type=int,
        default=[10, 40],
        metavar=("LO", "HI"),
        help="qualities of the first save in --wild (default 10 40)",
    )
    p.add_argument(
        "--wild-families",
        nargs="+",
        metavar="FAMILY",
        help="with --wild: only these families of training.degrade (same seeds as in the full run)",
    )
    p.add_argument(
        "--colour",
        action="store_true",
        help="with --wild: the same crops coloured (training.colour.coloured_crop), degraded and scored in "
        "RGB, against waifu2x's RGB models; writes OUT/wild_colour.md",
    )
    p.add_argument(
        "--rerun-waifu2x",
        action="store_true",
        help="redo waifu2x even when OUT/work holds its (partial) outputs for identical inputs and settings",
    )
    args = p.parse_args(argv)
    if any(not 1 <= q <= 100 for q in args.qf):
        p.error("--qf values must be in 1..100")
    if args.figure_qf is None:
        args.figure_qf = min(args.qf)
    if args.figure_qf not in args.qf:
        p.error("--figure-qf must be one of --qf")
    if args.colour and not args.wild:
        p.error("--colour goes with --wild (the single-save colour comparison is benchmarks/compare_waifu2x_colour.py)")
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    return args


def _sets(args: argparse.Namespace) -> list[ImageSet]:
    def split(spec: str) -> tuple[str, Path]:
        name, sep, folder = spec.partition("=")
        if not sep or not folder:
            raise SystemExit(f"bad set {spec!r}: expected NAME=FOLDER")
        return name, Path(folder)

    sets = (
        [ImageSet(*split(s)) for s in args.set]
        + [ImageSet(*split(s), light=True) for s in args.light_set]
        + [ImageSet(*split(s), light=True, grain=False) for s in args.smooth_light_set]
    )
    if not sets:
        root = Path(args.data)
        sets = [
            ImageSet("val", root / "lineart" / "val"),
            ImageSet("kanji", root / "kanji"),
            ImageSet("val_light", root / "lineart" / "val", light=True),
            ImageSet("val_light_smooth", root / "lineart" / "val", light=True, grain=False),
        ]
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise SystemExit(f"set names must be unique, got {names}")
    for s in sets:
        if not s.folder.is_dir():
            raise SystemExit(f"set {s.name}: {s.folder} is not a folder")
    return sets


def _chainer_load(report: dict) -> str:
    """A note on the load averages the runner saw while timing Chainer ("" when it recorded none).

    The Chainer outputs and timings may come from an earlier (resumed) run, so this load can
    differ from the load of the current run."""
    loads = [v for m in report.get("models", []) for v in m.get("loadavg", [])]
    if not loads:
        return ""
    return f" (its Chainer timings were taken at load average {min(loads):.1f}–{max(loads):.1f})"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    import platform

    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)"


def _restorer(args: argparse.Namespace):
    """Ours: the shipped models (the fast pair with ``--fast``), any given file replacing its role
    (``mask``, ``restore``, ``baseline``, ``wild_model``, ``wild_mask``, ``colour_model``,
    ``inks_model`` (a file or ``none``): those of ``args`` that are set; a namespace without some of them stands for the shipped files)."""
    from core import pipeline

    opt = lambda name: getattr(args, name, None)  # noqa: E731
    fast = bool(opt("fast"))
    given = {"mask": opt("mask"), "restore": opt("restore"), "baseline": opt("baseline")}
    extra = ("wild_model", "wild_mask", "colour_model", "inks_model")
    if not any(given.values()) and not any(opt(name) for name in extra):
        return pipeline.Restorer.default(device="cpu", fast=fast)
    shipped = pipeline.FAST_FILES if fast else pipeline.DEFAULT_FILES
    paths = {r: p or pipeline.MODELS_DIR / shipped[r] for r, p in given.items()}
    optional = pipeline.wild_files(fast)
    if opt("wild_model"):
        optional["wild"] = opt("wild_model")
    if opt("wild_mask"):
        optional["wild_mask"] = opt("wild_mask")
    # the colour layers' own files go with the shipped mask and backbone, as in Restorer.default
    colour = pipeline.colour_files(
        None,
        opt("colour_model"),
        opt("inks_model"),
        mask_given=given["mask"] is not None,
        restore_given=fast or given["restore"] is not None,
    )
    return pipeline.Restorer.from_files(**paths, **optional, **colour, device="cpu")


def wild_table(records: list[Record], before: dict | None = None) -> tuple[str, list[dict]]:
    """The --wild table: per (set, family) the mean PSNR of the input, of waifu2x's best model
    (chosen per set and family), of ours, ours − waifu2x, and the smallest ours − input over the
    drawings; ``before`` (``{(set, family): mean PSNR}``) adds ours without the wild backbone and
    the enlargement step (``wild_network`` and ``enlarged`` off: the default backbone on every layer
    at its own size). Returns the Markdown and the target checks."""
    summary = summarize(records)
    cells, drawings = summary["cells"], summary["drawings"]
    head = (
        "| set | family | input | waifu2x best | waifu2x | ours | ours − waifu2x | min over drawings of "
        "ours − input |" + (" ours, default backbone at the layer's size |" if before else "")
    )
    lines = [head, "|---|---|---:|---|---:|---:|---:|---:|" + ("---:|" if before else "")]
    checks = []
    for s in cells:
        for fam in cells[s]:
            c = cells[s][fam]
            best = best_waifu2x(c)
            ours, inp = c[OURS]["psnr"], c[JPEG]["psnr"]
            w = c[best]["psnr"] if best else float("nan")
            worst = min(d[fam][OURS] - d[fam][JPEG] for d in drawings[s].values() if fam in d)
            name = FAMILY_NAMES[fam]
            row = (
                f"| {s} | {name} | {inp:.2f} | {_fmt_method(best) if best else '–'} | {w:.2f} | {ours:.2f} | "
                f"{ours - w:+.2f} | {worst:+.2f} |"
            )
            if before:
                row += f" {before[(s, fam)]:.2f} |"
            lines.append(row)
            checks.append(
                {
                    "target": f"{s} {name}: ours − waifu2x best ≥ 1 dB",
                    "value": f"{ours - w:+.2f} dB",
                    "ok": bool(ours - w >= 1.0),
                }
            )
            checks.append(
                {
                    "target": f"{s} {name}: ours ≥ input on every drawing",
                    "value": f"{worst:+.2f} dB",
                    "ok": bool(worst >= 0.0),
                }
            )
    return "\n".join(lines) + "\n", checks


#: The --wild families as they are written in the table (the pseudo-QF of a record is the index).
FAMILY_NAMES: dict[int, str] = {}


def wild_main(args: argparse.Namespace) -> int:
    """``--wild``: every drawing of every set degraded by each family of :mod:`training.degrade`
    (fixed seeds), waifu2x (every requested model) and ours on the same pixels, scored against the
    clean drawing put through the same geometry.

    With ``--colour`` each clean crop is first coloured by :func:`training.colour.coloured_crop`
    (as ``python -m training evaluate --colour`` and ``compare_waifu2x_colour`` do), degraded as
    RGB (each save draws its chroma subsampling), restored by ours through its colour path and by
    waifu2x's RGB models, and scored in RGB (PSNR over the three channels, SSIM their mean); it
    writes ``wild_colour.md`` / ``wild_colour.json`` and keeps its inputs in ``OUT/work_colour``,
    so that a gray and a colour run can share ``--out``. The last column of the gray table (ours
    without the wild pair and the enlargement step) is left out: colour layers never take the wild
    pair."""
    import torch

    from core.metrics import psnr, ssim
    from core.pipeline import RestoreOptions
    from training.colour import coloured_crop, rgb_ssim
    from training.degrade import FAMILIES, degrade

    FAMILY_NAMES.update(enumerate(FAMILIES, start=1))
    unknown = sorted(set(args.wild_families or ()) - set(FAMILIES))
    if unknown:
        print(f"error: --wild-families: unknown {', '.join(unknown)}; one of {', '.join(FAMILIES)}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    colour = args.colour
    color, tag = ("rgb", "wild_colour") if colour else ("y", "wild")
    score_ssim = rgb_ssim if colour else ssim
    sets = [s for s in _sets(args) if not s.light]
    restorer = _restorer(args)
    out = Path(args.out)
    work = out / ("work_colour" if colour else "work")
    in_dir, w2x_dir = work / "inputs", work / "waifu2x"
    if in_dir.exists():
        shutil.rmtree(in_dir)
    in_dir.mkdir(parents=True)
    inputs: dict[str, np.ndarray] = {}
    refs: dict[str, np.ndarray] = {}
    infos: dict[str, dict] = {}
    for si, s in enumerate(sets):
        for k, path in enumerate(pick_files(s.folder, args.images)):
            full = _read_gray(path)
            c = crop(full, choose_crop(full, args.crop))
            if colour:
                c = coloured_crop(c, k)
            for fi, fam in enumerate(FAMILIES, start=1):
                if args.wild_families and fam not in args.wild_families:
                    continue
                d = degrade(c, np.random.default_rng([args.seed, si, k, fi]), fam, qf_range=tuple(args.wild_qf))
                name = input_name(s.name, path.stem, fi)
                inputs[name], refs[name], infos[name] = d.image, d.reference, d.info
                _write_image(in_dir / name, d.image)
    print(f"{len(inputs)} wild {'colour ' if colour else ''}inputs in {in_dir}", file=sys.stderr)
    records = []

    def score(name: str, method: str, img: np.ndarray, seconds: float | None = None) -> None:
        s, stem, fi = parse_input_name(name)
        ref = refs[name]
        pixels = ref.shape[0] * ref.shape[1]
        records.append(Record(s, stem, fi, method, psnr(ref, img), score_ssim(ref, img), pixels, seconds))

    for name, img in inputs.items():
        score(name, JPEG, img)
    if args.torch_waifu2x:
        w2x, outputs = torch_waifu2x_outputs(args, inputs, work, color)
        for name, method, img, seconds in outputs:
            score(name, method, img, seconds)
    else:
        w2x = run_waifu2x_cached(args, inputs, in_dir, w2x_dir, color)
        for r in w2x["results"]:
            score(
                r["file"], waifu2x_method(r["arch"], r["noise"]), _read_image(Path(r["output"]), colour), r["seconds"]
            )
    before: dict = {}
    notes: dict[str, list[str]] = {}
    opts = RestoreOptions(ensemble=args.ensemble)
    (work / "ours").mkdir(parents=True, exist_ok=True)
    for name, img in inputs.items():
        t0 = time.perf_counter()
        res = restorer.restore(img, opts)
        score(name, OURS, res.image, time.perf_counter() - t0)
        _write_image(work / "ours" / name, res.image)
        notes[name] = [n for n in res.notes if "JPEG" in n or "consisten" in n]
        if not colour:
            s, _, fi = parse_input_name(name)
            old = restorer.restore(img, dataclasses.replace(opts, wild_network=False, enlarged=False)).image
            before.setdefault((s, fi), []).append(psnr(refs[name], old))
    before = {k: float(np.mean(v)) for k, v in before.items()}
    table, checks = wild_table(records, before)
    agree = w2x.get("agreement_max_abs_with_chainer")
    env = (
        f"CPU: {_cpu_name()}, {args.threads} thread(s); load average {os.getloadavg()[0]:.1f} at the end. "
        f"waifu2x {w2x.get('waifu2x')} / chainer {w2x.get('chainer')}"
        + (
            f" (its graph run in torch with the same weights; on one input every model's output is within "
            f"{max(agree.values())} {'level(s) per channel' if colour else 'gray level(s)'} of Chainer's)"
            if agree
            else ""
        )
        + f", {'RGB ' if colour else ''}models {', '.join(args.arch)} at noise "
        f"{', '.join(map(str, args.noise))}. {len(inputs)} inputs: {args.images} drawing(s) per set, "
        f"{args.crop} px crops{', coloured (training.colour.coloured_crop), scored in RGB' if colour else ''}, "
        f"first save at QF {args.wild_qf[0]}-{args.wild_qf[1]}, seed {args.seed}."
    )
    text = table + "\nTargets:\n\n" + targets_markdown(checks) + "\n" + env + "\n"
    (out / f"{tag}.md").write_text(text)
    with open(out / f"{tag}.json", "w") as f:
        json.dump(
            {
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "inputs": infos,
                "notes": notes,
                "targets": checks,
                "environment": env,
                "records": [asdict(r) for r in records],
            },
            f,
            indent=1,
            default=str,
        )
    if args.doc:
        cmd = " ".join(["python", *sys.argv])
        block = (
            f"Measured with `{cmd}` on {time.strftime('%Y-%m-%d')}.\n\n{env}\n\n{table}\nTargets:\n\n"
            + targets_markdown(checks)
        )
        doc = Path(args.doc)
        doc.write_text(replace_between_markers(doc.read_text(), block, args.doc_block))
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.wild:
        return wild_main(args)
    import torch

    torch.set_num_threads(args.threads)
    from core.metrics import psnr, ssim
    from core.pipeline import RestoreOptions

    load_start = os.getloadavg()
    sets = _sets(args)
    if args.doc and not Path(args.doc).is_file():
        raise SystemExit(f"--doc {args.doc}: no such file")
    restorer = _restorer(args)  # fail early (e.g. missing weights), before the slow waifu2x run
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    in_dir, w2x_dir = work / "inputs", work / "waifu2x"
    if in_dir.exists():
        shutil.rmtree(in_dir)
    in_dir.mkdir(parents=True)

    # 1-2: clean crops and their JPEGs
    clean: dict[tuple[str, str], np.ndarray] = {}
    jpegs: dict[str, np.ndarray] = {}
    crops_info = []
    for s, path, box, c in clean_crops(sets, args.images, args.crop, args.seed):
        clean[(s.name, path.stem)] = c
        crops_info.append({"set": s.name, "file": path.name, "box": box, "light": s.light, "grain": s.grain})
        for q in args.qf:
            name = input_name(s.name, path.stem, q)
            jpegs[name] = _jpeg(c, q)
            _write_gray(in_dir / name, jpegs[name])
    print(f"{len(jpegs)} JPEG inputs ({len(clean)} crops x {len(args.qf)} QFs) in {in_dir}", file=sys.stderr)

    records: list[Record] = []
    for name, j in jpegs.items():
        s, stem, q = parse_input_name(name)
        ref = clean[(s, stem)]
        records.append(Record(s, stem, q, JPEG, psnr(ref, j), ssim(ref, j), ref.size))

    # 3: waifu2x (Chainer, its own code). It is the slow part and does not depend on our models:
    # OUT/work/waifu2x is kept, tagged with a key of the inputs and settings, and the runner
    # resumes it model by model while the key matches (a different key wipes it first).
    t0 = time.perf_counter()
    w2x = run_waifu2x_cached(args, jpegs, in_dir, w2x_dir)
    print(f"waifu2x done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    w2x_out: dict[tuple[str, str], np.ndarray] = {}
    for r in w2x["results"]:
        s, stem, q = parse_input_name(r["file"])
        img = _read_gray(Path(r["output"]))
        m = waifu2x_method(r["arch"], r["noise"])
        w2x_out[(m, r["file"])] = img
        ref = clean[(s, stem)]
        records.append(Record(s, stem, q, m, psnr(ref, img), ssim(ref, img), ref.size, r["seconds"]))

    # 4-5: ours, and (optionally) waifu2x's graph in torch. Both are timed on each input in turn,
    # best of --repeat runs, so that load from other processes hurts them alike.
    opts = RestoreOptions(ensemble=args.ensemble)
    first = next(iter(jpegs.values()))
    timed = {OURS: lambda j: restorer.restore(j, opts)}
    agreement: dict[str, int] = {}
    level = max(args.noise)
    if args.torch_waifu2x:
        from benchmarks import waifu2x_torch as wt

        models_dir = waifu2x_models_dir(args.waifu2x_python)
        for arch in args.arch:
            model = wt.load_npz_model(wt.model_path(models_dir, arch, level), arch)
            timed[f"waifu2x-torch/{arch}"] = lambda j, m=model: wt.denoise(m, j)
            agreement[f"{arch}/noise{level}"] = 0
    for fn in timed.values():
        fn(first)  # warm-up (allocations, first-call overheads)
    ours_out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    t_all = time.perf_counter()
    for name, j in jpegs.items():
        s, stem, q = parse_input_name(name)
        ref = clean[(s, stem)]
        for method, fn in timed.items():
            best_s = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                res = fn(j)
                best_s = min(best_s, time.perf_counter() - t0)
            if method == OURS:
                ours_out[name] = (res.image, res.mask)
                records.append(Record(s, stem, q, OURS, psnr(ref, res.image), ssim(ref, res.image), ref.size, best_s))
            else:
                records.append(Record(s, stem, q, method, float("nan"), float("nan"), ref.size, best_s))
                arch = method.split("/")[1]
                chainer_y = w2x_out.get((waifu2x_method(arch, level), name))
                if chainer_y is not None:
                    diff = int(np.abs(chainer_y.astype(int) - res.astype(int)).max())
                    agreement[f"{arch}/noise{level}"] = max(agreement[f"{arch}/noise{level}"], diff)
    print(
        f"ours{' and torch waifu2x' if agreement else ''} done in {time.perf_counter() - t_all:.0f} s", file=sys.stderr
    )
    if agreement:
        print(f"torch waifu2x: max |torch - chainer| = {agreement}", file=sys.stderr)

    # 6: tables and picture
    summary = summarize(records)
    table = markdown_table(summary)
    rows, row_titles = [], []
    for s in sets:
        stem = next(stem for (sn, stem) in clean if sn == s.name)
        name = input_name(s.name, stem, args.figure_qf)
        ref = clean[(s.name, stem)]
        cell = summary["cells"][s.name][args.figure_qf]
        best = best_waifu2x(cell)
        box = choose_crop(ref, args.figure_size)
        img, mask = ours_out[name]
        panels = [
            ref,
            jpegs[name],
            w2x_out[(best, name)],
            img,
            mask_panel(mask) if mask is not None else np.full_like(ref, 255),
        ]
        rows.append([crop(p, box) for p in panels])
        row_titles.append(
            f"{s.name} / {stem} (crop at y={box[0]}, x={box[1]}), QF {args.figure_qf}; "
            f"waifu2x best = {_fmt_method(best)}"
        )
    grid = compose_grid(
        rows,
        ["clean", f"JPEG QF {args.figure_qf}", "waifu2x best", "ours", "our mask"],
        row_titles,
        scale=args.figure_scale,
    )
    _write_gray(out / "side_by_side.png", grid)
    checks = check_targets(summary, [s.name for s in sets if s.light])
    table += "\nTargets:\n\n" + targets_markdown(checks)
    load_end = os.getloadavg()
    info = restorer.info()
    models = ", ".join(f"{role} {m.get('name', '?')}" for role, m in info["models"].items())
    engines = " + ".join(sorted({str(m.get("engine", "torch")) for m in info["models"].values()}))
    per_set = ", ".join(f"{s.name}: {sum(1 for (n, _) in clean if n == s.name)}" for s in sets)
    env_line = (
        f"CPU: {_cpu_name()}, {args.threads} thread(s) for every method; load average "
        f"{load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end. Ours: {models}, precision "
        f"{info['precision']}, engine {engines}{f', self-ensemble of {args.ensemble}' if args.ensemble > 1 else ''}. waifu2x {w2x.get('waifu2x')} / chainer {w2x.get('chainer')}"
        f"{_chainer_load(w2x)}. "
        f"{len(clean)} crops of up to {args.crop} px ({per_set}), QF {', '.join(map(str, args.qf))}."
    )
    (out / "table.md").write_text(table + "\n" + env_line + "\n")
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {k: v for k, v in vars(args).items()},
        "sets": [{"name": s.name, "folder": str(s.folder), "light": s.light, "grain": s.grain} for s in sets],
        "crops": crops_info,
        "waifu2x": {k: v for k, v in w2x.items() if k != "results"},
        "ours": restorer.info(),
        "torch_agreement_max_abs": agreement,
        "targets": checks,
        "environment": env_line,
        "summary": summary,
        "records": [asdict(r) for r in records],
    }
    with open(out / "results.json", "w") as f:
        json.dump(result, f, indent=1, default=str)
    if args.doc_image:
        Path(args.doc_image).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "side_by_side.png", args.doc_image)
    if args.doc:
        cmd = " ".join(["python", *[a if " " not in a else repr(a) for a in sys.argv]])
        block = f"Measured with `{cmd}` on {time.strftime('%Y-%m-%d')}.\n\n{env_line}\n\n{table}"
        if agreement:
            block += (
                "\nwaifu2x's graph in torch against its Chainer code on every input, largest difference: "
                + ", ".join(f"{k}: {v} gray level(s)" for k, v in agreement.items())
                + ".\n"
            )
        doc = Path(args.doc)
        doc.write_text(replace_between_markers(doc.read_text(), block, args.doc_block))
    print(table)
    print(env_line)
    print(f"wrote {out / 'table.md'}, {out / 'results.json'}, {out / 'side_by_side.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from core.errors import RestoreError

    try:
        sys.exit(main())
    except (RestoreError, RuntimeError, ValueError) as e:
        print(f"compare_waifu2x: error: {e}", file=sys.stderr)
        sys.exit(2)
