"""Ink normalization: light drawings are stretched to full contrast before the networks.

A drawing in light ink (a light pen, a hard pencil, a faded scan) is, to a good approximation, a
dark drawing with its darkness ``1 - v`` scaled by one factor ``a < 1``. JPEG is linear up to its
quantization, so the JPEG of the light drawing, stretched back by ``1 / a``
(``x' = 1 - (1 - x) / a``), is the JPEG of the dark drawing made with every quantization step
divided by ``a``: an ordinary, stronger JPEG damage on dark lines, which the networks are trained
on far more than on faint ones. The restoration is then scaled back (``y = 1 - a (1 - y')``),
which also divides its remaining error by ``1 / a``.

``a`` is read off the image (:func:`ink_level`): the most common level near the dark end of the
non-paper pixels. Only flat ink is stretched: a drawing with any dark line keeps ``a = 1`` and
goes through bit-identical, and so do grainy pencil (no one level to stretch to: stretching it
lost 1-2 dB), hairline drawings whose JPEG never reaches the ink's level, and light fills beside
darker lines. The stretched plane is clamped at 0, as a JPEG decoder clamps dark lines at black:
the overshoot of JPEG ringing beyond the ink goes (an early version without the clamp gained a
fifth as much at QF 40).

The level must be right to about one 8-bit level: the networks give their ink as black, so the
result's ink is the estimated level, and on the flat light validation crops a stretch 1-3 % too
strong or too weak (1-4 levels) lost up to 3-9 dB on single crops. The histogram peak is exact at
QF 40 and within 2 levels at QF 20-30 there (4 at QF 10, where JPEG's coarse DC step moves solid
ink); centroids, block means of stroke interiors and peaks without the solid blocks were tried
and were no closer overall.

Measured on ``lineart/val`` (dark, light grainy, light flat) and ``kanji`` by
``benchmarks/ink_normalization.py``; the figures are in docs/pipeline.md (*Light ink*).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .steps import step

__all__ = ["InkLevel", "ink_level", "stretch_factor", "stretch", "unstretch_", "stretched_qf"]

#: 8-bit levels at or above this are paper (and JPEG ringing on it) and do not count as ink.
PAPER_LEVEL = 250
#: Percentile of the non-paper pixels, from the dark end, taken as the ink's darkness. Low enough
#: that the solid cores of strokes decide it, high enough that the few pixels of JPEG overshoot
#: darker than the ink do not.
PERCENTILE = 10.0
#: The image is stretched only when its ink is lighter than ``1 - 1 / MIN_STRETCH`` would allow:
#: below this factor the change is too small to matter and dark drawings stay bit-identical.
MIN_STRETCH = 1.15
#: At most this factor: fainter ink than ``255 / MAX_STRETCH`` levels of darkness would turn its
#: JPEG damage into more than the networks were trained on.
MAX_STRETCH = 5.0
#: Fewer non-paper pixels than this share of the image (a blank page, a few specks): no stretch.
MIN_INK_SHARE = 1e-4
#: The ink's level is looked for within this many 8-bit levels of the percentile's.
PEAK_WINDOW = 13
#: Levels either side of the ink's level that count as "at" it.
FLAT_LEVELS = 4
#: Least share of the non-paper pixels at the ink's level for the ink to count as flat.
MIN_FLAT_SHARE = 0.2
#: Pixels more than this many levels darker than the ink's level are not JPEG overshoot of it
#: (on the light validation drawings, stretched ones, at QF 10-40 at most 0.6 % were) ...
DARK_TAIL_LEVELS = 32
#: ... and when more than this share of the non-paper pixels are, the image is not stretched.
MAX_DARKER = 0.02
#: Rows per band when the histogram is taken (small temporaries on huge images).
_ROWS = 1024


class InkLevel(NamedTuple):
    darkness: float  #: ``1 - value`` of the ink, 0..1
    share: float  #: part of the non-paper pixels within FLAT_LEVELS of the ink's level
    darker: float  #: part of them more than DARK_TAIL_LEVELS darker than it


def ink_level(gray: np.ndarray) -> InkLevel | None:
    """The image's ink, or None when it has too little ink to tell.

    ``darkness`` (``1 - value``, 0..1) is the peak of the histogram of non-paper pixels within
    :data:`PEAK_WINDOW` levels of their :data:`PERCENTILE`-th percentile: solid strokes and fills
    pile up at the ink's level, while JPEG overshoot spreads thinly to either side of it.
    ``share`` is the part of the non-paper pixels within :data:`FLAT_LEVELS` of that peak: high
    for flat ink, low for grainy pencil (whose darkness varies along the stroke) and for
    drawings of hairlines only (whose JPEG holds no pixel at the ink's own level). ``darker`` is
    the part of them well beyond that level: more than JPEG overshoot gives means darker lines
    than the "ink" (black lines beside a light grey fill that has most of the pixels).

    Args:
        gray: (H, W) float plane in ``[0, 1]`` (white paper = 1).
    """
    hist = np.zeros(256, dtype=np.int64)
    for y in range(0, gray.shape[0], _ROWS):
        step("rows", y, gray.shape[0])  # a step boundary for a caller's hook (core.steps)
        band = np.clip(gray[y : y + _ROWS] * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8)
        hist += np.bincount(band.ravel(), minlength=256)
    ink = hist[:PAPER_LEVEL]
    n = int(ink.sum())
    if n < max(16, MIN_INK_SHARE * gray.size):
        return None
    start = int(np.searchsorted(np.cumsum(ink), PERCENTILE / 100.0 * n))
    lo, hi = max(0, start - PEAK_WINDOW), min(PAPER_LEVEL - 1, start + PEAK_WINDOW)
    smooth = np.convolve(ink.astype(np.float64), np.ones(5), mode="same")
    level = lo + int(np.argmax(smooth[lo : hi + 1]))
    share = float(ink[max(0, level - FLAT_LEVELS) : level + FLAT_LEVELS + 1].sum()) / n
    darker = float(ink[: max(0, level - DARK_TAIL_LEVELS)].sum()) / n
    return InkLevel(1.0 - level / 255.0, share, darker)


def stretch_factor(gray: np.ndarray) -> float:
    """The factor ``1 / a`` that :func:`stretch` applies to this image (1.0: left as it is).

    Stretched only when the ink is flat (``share >= MIN_FLAT_SHARE``), nothing much is darker
    (``darker <= MAX_DARKER``) and it is light enough that the factor reaches
    :data:`MIN_STRETCH`; at most :data:`MAX_STRETCH`.
    """
    found = ink_level(gray)
    if found is None:
        return 1.0
    darkness, share, darker = found
    if darkness <= 0 or share < MIN_FLAT_SHARE or darker > MAX_DARKER:
        return 1.0
    k = 1.0 / darkness
    if k < MIN_STRETCH:
        return 1.0
    return min(k, MAX_STRETCH)


def stretch(x: torch.Tensor, k: float) -> torch.Tensor:
    """``1 - (1 - x) * k``: the light drawing's darkness scaled by ``k`` (a new tensor)."""
    return torch.sub(1.0, torch.sub(1.0, x).mul_(k)).clamp_(min=0.0)


def unstretch_(y: torch.Tensor, k: float) -> torch.Tensor:
    """In place, the inverse of :func:`stretch`: ``1 - (1 - y) / k``."""
    return y.sub_(1.0).div_(k).add_(1.0)


def stretched_qf(qf: float, k: float) -> float:
    """The JPEG quality whose IJG tables are those of ``qf`` times ``k``: what a model that is given
    the quality sees in an image stretched by ``k`` (its quantization steps grow by ``k``).

    IJG scales its base tables by ``5000 / qf`` percent below quality 50 and by ``200 - 2 qf``
    from 50 up; the stretched scale is mapped back the same way. At least 1.
    """
    scale = 5000.0 / qf if qf < 50 else 200.0 - 2.0 * qf
    scale *= k
    out = 5000.0 / scale if scale >= 100.0 else (200.0 - scale) / 2.0
    return max(1.0, out)
