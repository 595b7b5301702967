"""Checks shared by the colour tests (tests/test_colour*.py and the editors' end-to-end tests)."""

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


#: Layouts of a gray drawing that must never reach the colour path (:func:`gray_layer`).
GRAY_LAYOUTS = ("L", "RGB", "LA", "transparent")


def gray_layer(gray: np.ndarray, layout: str):
    """A gray drawing JPEG'd at QF 20 as a layer of ``layout`` (``RGB``: saved as an RGB JPEG,
    R = G = B), and the options to restore it with: ``(image, RestoreOptions)``."""
    from core.pipeline import RestoreOptions
    from training.colour import jpeg_rgb
    from training.data import jpeg_degrade

    jpeg = jpeg_degrade(gray, 20)
    if layout == "RGB":
        img = jpeg_rgb(np.repeat(gray[..., None], 3, axis=2), 20)
    elif layout == "LA":
        img = np.dstack([jpeg, np.full_like(jpeg, 255)])
    else:
        img = jpeg
    background = "transparent" if layout == "transparent" else "white"
    return img, RestoreOptions(return_mask=True, background=background)
