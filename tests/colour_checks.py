"""Hue checks shared by the colour tests (tests/test_colour.py and the editors' end-to-end tests)."""

from __future__ import annotations

import cv2
import numpy as np


def hue(rgb) -> float:
    """The hue (0-255, OpenCV's full-range HSV) of one RGB colour."""
    return float(cv2.cvtColor(np.asarray(rgb, np.uint8).reshape(1, 1, 3), cv2.COLOR_RGB2HSV_FULL)[0, 0, 0])


def hue_distance(a: float, b: float) -> float:
    """Distance between two hues on the 0-255 circle."""
    d = abs(a - b) % 256
    return min(d, 256 - d)
