"""Direct (non-learnt) line masks computed from a JPEG drawing with OpenCV.

Each function takes a gray uint8 image ``(H, W)`` (dark lines on white) and returns a uint8 mask
of the same shape, 1 on lines and 0 on background, so it can be fed to :func:`core.compose` or to
a framework backbone. 16-bit and float images are first reduced to 8 bits.
"""

from __future__ import annotations

import cv2
import numpy as np

from .checks import check_image, is_torch, white_level
from .errors import InvalidImageError

__all__ = ["to_uint8", "otsu", "otsu_dilated", "adaptive_gaussian", "DIRECT_MASKS"]

#: Adaptive Gaussian thresholding parameters used by the paper (window, constant).
AGT_WINDOW = 35
AGT_C = 2


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Return a 2-D uint8 copy (or view) of a gray numpy image of any supported dtype."""
    if is_torch(img):
        raise InvalidImageError("direct masks take numpy arrays; call .cpu().numpy() first")
    check_image(img)
    if img.ndim != 2:
        raise InvalidImageError(f"direct masks need a single-channel (H, W) image, got shape {img.shape}")
    white = white_level(img)
    if img.dtype == np.uint8:
        return img
    return np.clip(np.rint(img.astype(np.float64) * (255.0 / white)), 0, 255).astype(np.uint8)


def otsu(img: np.ndarray) -> np.ndarray:
    """Otsu's global threshold; pixels at or below it are lines."""
    g = to_uint8(img)
    if g.min() == g.max():
        # A flat image has no two classes; Otsu would split nothing sensibly.
        return np.zeros_like(g) if g[0, 0] >= 128 else np.ones_like(g)
    _, inv = cv2.threshold(g, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    return inv.astype(np.uint8)


def otsu_dilated(img: np.ndarray) -> np.ndarray:
    """Otsu's mask dilated once with a 3x3 square, to recover the thin line edges Otsu misses."""
    return cv2.dilate(otsu(img), np.ones((3, 3), np.uint8), iterations=1)


def adaptive_gaussian(img: np.ndarray, window: int = AGT_WINDOW, c: float = AGT_C) -> np.ndarray:
    """Adaptive Gaussian thresholding: a pixel is a line when it is darker than its Gaussian-
    weighted ``window`` x ``window`` neighbourhood mean minus ``c``."""
    g = to_uint8(img)
    if window % 2 == 0 or window < 3:
        raise InvalidImageError(f"adaptive threshold window must be odd and >= 3, got {window}")
    inv = cv2.adaptiveThreshold(g, 1, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY_INV, window, c)
    return inv.astype(np.uint8)


#: Name -> function, the names used by the pipeline's ``mask`` option and the evaluation tables.
DIRECT_MASKS = {"otsu": otsu, "otsu_d": otsu_dilated, "agt": adaptive_gaussian}
