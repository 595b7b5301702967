"""The method's equations (paper eqs. 1-4) on numpy arrays and torch tensors.

Value conventions are those of :mod:`core.checks`: white is 255 for uint8, 65535 for uint16 and
1.0 for floats; masks are 1 on lines and 0 on background. ``theta`` is always given on the 8-bit
scale (0-255) and converted to the image's own scale.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .checks import check_broadcast, check_image, check_mask, check_same_shape, is_torch, white_level
from .errors import InvalidImageError, InvalidOptionError
from .options import DEFAULT_THETA

__all__ = ["DEFAULT_THETA", "threshold", "gt_mask", "compose", "masked_mse"]


def _theta_on_scale(x: Any, theta: float) -> float:
    if not isinstance(theta, numbers.Real) or isinstance(theta, bool):
        raise InvalidOptionError(f"threshold theta must be a number within 0..255, got {theta!r}")
    if not 0 <= theta <= 255:
        raise InvalidOptionError(f"threshold theta must be within 0..255, got {theta}")
    white = white_level(x)
    return theta * (white / 255.0)


def threshold(img: Any, theta: float = DEFAULT_THETA) -> Any:
    """Eq. 1: every pixel brighter than ``theta`` becomes white; the rest are kept.

    Args:
        img: gray image, numpy or torch, any supported dtype.
        theta: threshold on the 8-bit scale (pixels ``> theta`` become white).

    Returns:
        A new array/tensor of the same type, dtype and shape.
    """
    check_image(img)
    t = _theta_on_scale(img, theta)
    white = white_level(img)
    if is_torch(img):
        return img.masked_fill(img > t, white)
    out = img.copy()
    out[out > t] = white
    return out


def gt_mask(clean: Any) -> Any:
    """Eq. 3: the ground-truth line mask of a clean drawing, 1 where it is not pure white.

    Returns uint8 for numpy input and a tensor of the input's dtype for torch input.
    """
    check_image(clean, "clean drawing")
    white = white_level(clean)
    if is_torch(clean):
        return (clean < white).to(clean.dtype)
    return (clean < white).astype(np.uint8)


def compose(restored: Any, mask: Any) -> Any:
    """Eq. 2: keep ``restored`` on lines (mask 1) and force the background (mask 0) to white.

    Written as ``max(restored, white - white * mask)`` as in the paper, which equals a select for
    0/1 masks.
    """
    check_image(restored, "restored image")
    check_broadcast(restored, mask, ("restored image", "mask"))
    check_mask(mask, restored)
    white = white_level(restored)
    if is_torch(restored):
        m = mask.to(device=restored.device)
        return restored.where(m.bool(), restored.new_full((), white))
    return np.where(mask.astype(bool), restored, np.asarray(white, dtype=restored.dtype)).astype(restored.dtype)


def masked_mse(pred: Any, target: Any, mask: Any) -> Any:
    """Eq. 4: mean squared error over line pixels only, ``sum(((pred - target) * M)^2) / sum(M)``.

    Works on torch tensors (differentiable) and on float numpy arrays. When the mask has no line
    pixel the loss is defined as 0 (for torch, a zero that still depends on ``pred`` so that
    ``backward`` works and yields zero gradients).
    """
    for name, v in (("pred", pred), ("target", target), ("mask", mask)):
        if not (isinstance(v, np.ndarray) or is_torch(v)):
            raise InvalidImageError(f"{name} must be a numpy array or torch tensor, got {type(v).__name__}")
    if is_torch(pred) != is_torch(target) or is_torch(pred) != is_torch(mask):
        raise InvalidImageError("pred, target and mask must all be torch tensors or all numpy arrays")
    check_same_shape(pred, target, ("pred", "target"))
    check_broadcast(pred, mask, ("pred", "mask"))
    if tuple(pred.shape) != tuple(target.shape):
        raise InvalidImageError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if is_torch(pred):
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise InvalidImageError("mask must hold only 0 (background) and 1 (line)")
        m = mask.to(pred.dtype)
        if m.shape != pred.shape:
            m = m.expand_as(pred)
        count = m.sum()
        sq = ((pred - target) * m).pow(2).sum()
        return sq / count.clamp_min(1.0)
    check_mask(mask)
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    m = np.broadcast_to(mask.astype(np.float64), p.shape)
    count = m.sum()
    if count == 0:
        return 0.0
    return float((((p - t) * m) ** 2).sum() / count)
