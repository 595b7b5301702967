"""Input checks shared by the equations, masks, metrics and the pipeline.

Conventions used across ``core``:

* An *image* is a 2-D gray array ``(H, W)`` (numpy) or a tensor whose last two dimensions are
  ``(H, W)`` (torch, usually ``(N, 1, H, W)``).
* Its *white level* depends on its dtype: ``uint8`` -> 255, ``uint16`` -> 65535, floating point
  -> 1.0 (values in ``[0, 1]``).
* A *mask* has the same spatial shape and holds only 0 (background) and 1 (line).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InvalidImageError

__all__ = ["is_torch", "white_level", "check_image", "check_mask", "check_same_shape", "check_broadcast"]


def is_torch(x: Any) -> bool:
    """True when ``x`` is a torch tensor (without importing torch when it is not loaded)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "dtype") and hasattr(x, "device")


def _dtype_name(x: Any) -> str:
    return str(x.dtype).replace("torch.", "")


def white_level(x: Any) -> float:
    """The value of a white pixel for the dtype of ``x`` (255, 65535 or 1.0)."""
    name = _dtype_name(x)
    if name == "uint8":
        return 255
    if name == "uint16":
        return 65535
    if name.startswith("float") or name.startswith("bfloat"):
        return 1.0
    raise InvalidImageError(f"unsupported pixel type {name}: use uint8 (0-255), uint16 (0-65535) or float (0-1)")


def check_image(x: Any, name: str = "image", *, min_size: int = 1) -> Any:
    """Validate an image and return it unchanged.

    Raises:
        InvalidImageError: not an array/tensor, wrong dtype, fewer than two dimensions, a side
            smaller than ``min_size``, or NaN/inf values in a float image.
    """
    if not (isinstance(x, np.ndarray) or is_torch(x)):
        raise InvalidImageError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    white_level(x)  # raises on bad dtypes
    if x.ndim < 2:
        raise InvalidImageError(f"{name} must have at least 2 dimensions (H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2], x.shape[-1]
    if h < min_size or w < min_size:
        raise InvalidImageError(f"{name} is {w}x{h} pixels; at least {min_size}x{min_size} is needed")
    name_dt = _dtype_name(x)
    if name_dt.startswith("float") or name_dt.startswith("bfloat"):
        finite = bool(x.isfinite().all()) if is_torch(x) else bool(np.isfinite(x).all())
        if not finite:
            raise InvalidImageError(f"{name} contains NaN or infinite values")
    return x


def check_same_shape(a: Any, b: Any, names: tuple[str, str] = ("a", "b")) -> None:
    """Raise InvalidImageError when the spatial shapes (last two dims) of ``a`` and ``b`` differ."""
    if tuple(a.shape[-2:]) != tuple(b.shape[-2:]):
        raise InvalidImageError(
            f"{names[0]} is {tuple(a.shape[-2:])} but {names[1]} is {tuple(b.shape[-2:])} (H, W); "
            "they must be the same size"
        )


def check_mask(mask: Any, like: Any | None = None, name: str = "mask") -> Any:
    """Validate a 0/1 mask (any numeric dtype) and, if given, its shape against ``like``."""
    if not (isinstance(mask, np.ndarray) or is_torch(mask)):
        raise InvalidImageError(f"{name} must be a numpy array or torch tensor, got {type(mask).__name__}")
    if mask.ndim < 2:
        raise InvalidImageError(f"{name} must have at least 2 dimensions, got shape {tuple(mask.shape)}")
    if mask.shape[-2] < 1 or mask.shape[-1] < 1:
        raise InvalidImageError(f"{name} is {mask.shape[-1]}x{mask.shape[-2]} pixels; at least 1x1 is needed")
    if like is not None:
        check_same_shape(like, mask, ("image", name))
    if is_torch(mask):
        ok = bool(((mask == 0) | (mask == 1)).all())
    else:
        ok = bool(np.isin(mask, (0, 1)).all())
    if not ok:
        raise InvalidImageError(f"{name} must hold only 0 (background) and 1 (line)")
    return mask


def check_broadcast(target: Any, other: Any, names: tuple[str, str] = ("image", "mask")) -> None:
    """Raise InvalidImageError unless ``other`` broadcasts to ``target``'s shape without enlarging it,
    and both are of the same kind (numpy or torch)."""
    if is_torch(target) != is_torch(other):
        raise InvalidImageError(f"{names[0]} and {names[1]} must both be numpy arrays or both torch tensors")
    try:
        shape = np.broadcast_shapes(tuple(other.shape), tuple(target.shape))
    except ValueError:
        shape = None
    if shape != tuple(target.shape):
        raise InvalidImageError(
            f"{names[1]} of shape {tuple(other.shape)} does not fit {names[0]} of shape {tuple(target.shape)}"
        )
