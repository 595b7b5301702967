"""Helpers the benchmark scripts share: where the data and the shipped weights are, a synthetic
damaged drawing, and the row the on/off benchmarks print."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["ROOT", "DATA_ROOT", "shipped_path", "drawing", "gain_row"]

#: The repository (the scripts run from here: ``python -m benchmarks.NAME``).
ROOT = Path(__file__).resolve().parents[1]
#: Default ``--data`` folder: the shared training data (``lineart/val``, ``kanji``).
DATA_ROOT = "/work/shared/data"


def shipped_path(role: str, fast: bool = False) -> Path:
    """The shipped weights file of ``role`` (``mask``, ``restore``, ``baseline``), of the fast pair
    with ``fast``."""
    from core.pipeline import DEFAULT_FILES, FAST_FILES, MODELS_DIR

    return MODELS_DIR / (FAST_FILES if fast else DEFAULT_FILES)[role]


def drawing(side: int, seed: int = 0, qf: int | None = 20) -> np.ndarray:
    """A synthetic JPEG-damaged line drawing (anti-aliased strokes on white), ``side`` x ``side``
    (``qf=None``: the clean drawing)."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.full((side, side), 255, np.uint8)
    for _ in range(side * side // 6000):
        p = rng.integers(0, side, size=(2, 2))
        cv2.line(
            img,
            tuple(map(int, p[0])),
            tuple(map(int, p[1])),
            int(rng.integers(0, 120)),
            int(rng.integers(1, 4)),
            cv2.LINE_AA,
        )
    if qf is None:
        return img
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, qf])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def gain_row(name: str, qf: int, off: list[float], on: list[float], *extra: str) -> str:
    """``| set | QF | mean off | mean on | mean gain / worst crop's gain | extra... |`` (PSNR dB), the row
    the on/off benchmarks of one pipeline step print (jpeg_consistency, ink_normalization)."""
    gain = np.subtract(on, off)
    cells = [
        name,
        str(qf),
        f"{np.mean(off):.2f}",
        f"{np.mean(on):.2f}",
        f"{gain.mean():+.2f} / {gain.min():+.2f}",
        *extra,
    ]
    return "| " + " | ".join(cells) + " |"
