"""Checks shared by the synthetic-drawing tests (tests/test_synth.py, tests/test_training.py)."""

from __future__ import annotations

import cv2
import numpy as np


def ramp_share(img: np.ndarray) -> float:
    """Share of pixels on a smooth grey ramp: a tone (20-249, 0..255 scale) changing by 0.2-3
    levels per pixel."""
    g = np.asarray(img, np.float32)
    slope = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)) / 8
    return float(((g > 20) & (g < 250) & (slope > 0.2) & (slope < 3)).mean())
