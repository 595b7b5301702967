"""Quality metrics: PSNR and SSIM for images, mIoU and boundary F-score for masks.

Images follow :mod:`core.checks` (white = 255 for uint8, 65535 for uint16, 1.0 for floats) and are
compared on that scale. Masks are 0/1 arrays. All functions take numpy arrays and return floats.
"""

from __future__ import annotations

import cv2
import numpy as np

from .checks import check_image, check_mask, check_same_shape, is_torch, white_level
from .errors import InvalidImageError, InvalidOptionError

__all__ = ["psnr", "ssim", "miou", "boundary_fscore", "BOUNDARY_TOLERANCE"]

#: Boundary F-score tolerance in pixels: a boundary pixel counts as matched when the other
#: mask has a boundary pixel within this Chebyshev distance.
BOUNDARY_TOLERANCE = 2


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    if is_torch(a) or is_torch(b):
        raise InvalidImageError("metrics take numpy arrays; call .cpu().numpy() first")
    check_image(a, "image a")
    check_image(b, "image b")
    if a.shape != b.shape:
        raise InvalidImageError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.dtype != b.dtype:
        raise InvalidImageError(f"images differ in dtype: {a.dtype} vs {b.dtype}")
    return a.astype(np.float64), b.astype(np.float64), float(white_level(a))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, with the dtype's white level as the peak.

    Identical images give ``inf``.
    """
    x, y, peak = _pair(a, b)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0:
        return float("inf")
    return 10.0 * np.log10(peak * peak / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    k = cv2.getGaussianKernel(size, sigma)
    return k @ k.T


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004): 11x11 Gaussian window with sigma 1.5,
    K1 = 0.01, K2 = 0.03, averaged over the 'valid' region (5 px border dropped).

    2-D gray images; images smaller than 11 px on a side use the whole (reflect-padded) map.
    """
    x, y, peak = _pair(a, b)
    if x.ndim != 2:
        raise InvalidImageError(f"ssim takes 2-D gray images, got shape {x.shape}")
    c1 = (0.01 * peak) ** 2
    c2 = (0.03 * peak) ** 2
    win = _gaussian_window()

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.filter2D(z, -1, win, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    m = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    if m.shape[0] > 10 and m.shape[1] > 10:
        m = m[5:-5, 5:-5]
    return float(m.mean())


def _masks(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if is_torch(pred) or is_torch(gt):
        raise InvalidImageError("metrics take numpy arrays; call .cpu().numpy() first")
    check_mask(pred, name="predicted mask")
    check_mask(gt, name="ground-truth mask")
    check_same_shape(pred, gt, ("predicted mask", "ground-truth mask"))
    return pred.astype(bool), gt.astype(bool)


def miou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean intersection-over-union over the two classes (line, background).

    A class absent from both masks counts as IoU 1 (nothing to get wrong).
    """
    p, g = _masks(pred, gt)
    ious = []
    for cls_p, cls_g in ((p, g), (~p, ~g)):
        union = np.logical_or(cls_p, cls_g).sum()
        inter = np.logical_and(cls_p, cls_g).sum()
        ious.append(1.0 if union == 0 else inter / union)
    return float(np.mean(ious))


def _boundary(m: np.ndarray) -> np.ndarray:
    """Pixels of the line class that touch the background (4-neighbourhood)."""
    u = m.astype(np.uint8)
    eroded = cv2.erode(u, np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8), borderType=cv2.BORDER_REPLICATE)
    return (u - eroded).astype(bool)


def boundary_fscore(pred: np.ndarray, gt: np.ndarray, tolerance: int = BOUNDARY_TOLERANCE) -> float:
    """Boundary F-score (as in DAVIS): precision and recall of the line-class boundaries, a
    boundary pixel matching when the other boundary lies within ``tolerance`` pixels
    (Chebyshev distance). Both boundaries empty gives 1.0; exactly one empty gives 0.0."""
    if not isinstance(tolerance, (int, np.integer)) or isinstance(tolerance, bool) or tolerance < 0:
        raise InvalidOptionError(f"boundary tolerance must be an integer >= 0, got {tolerance!r}")
    p, g = _masks(pred, gt)
    bp, bg = _boundary(p), _boundary(g)
    n_p, n_g = int(bp.sum()), int(bg.sum())
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    k = np.ones((2 * tolerance + 1, 2 * tolerance + 1), np.uint8)
    g_near = cv2.dilate(bg.astype(np.uint8), k).astype(bool)
    p_near = cv2.dilate(bp.astype(np.uint8), k).astype(bool)
    precision = float((bp & g_near).sum()) / n_p
    recall = float((bg & p_near).sum()) / n_g
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)
