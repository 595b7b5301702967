"""Checks of the tensors given to the networks (torch counterpart of :mod:`core.checks`)."""

from __future__ import annotations

import torch

from .errors import InvalidImageError, InvalidOptionError

__all__ = ["as_qf_tensor", "check_network_input"]


def as_qf_tensor(qf: torch.Tensor | float, n: int, device: torch.device) -> torch.Tensor:
    """JPEG quality as an ``(n,)`` float tensor (a single value is repeated), checked to be 1-100."""
    try:
        q = torch.as_tensor(qf, dtype=torch.float32, device=device).reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        raise InvalidOptionError(f"QF must be a number or a tensor of numbers, got {qf!r}") from None
    if q.numel() == 1 and n > 1:
        q = q.expand(n)
    if q.numel() != n:
        raise InvalidOptionError(f"got {q.numel()} QF values for a batch of {n}")
    if not bool(torch.isfinite(q).all()) or bool(((q < 1) | (q > 100)).any()):
        raise InvalidOptionError("QF must be within 1..100")
    return q


def check_network_input(x: torch.Tensor, name: str) -> None:
    """Raise InvalidImageError unless ``x`` is a non-empty float ``(N, 1, H, W)`` tensor."""
    if not torch.is_tensor(x) or x.ndim != 4 or x.shape[1] != 1:
        raise InvalidImageError(f"{name} must be a (N, 1, H, W) tensor, got {tuple(getattr(x, 'shape', ()))}")
    if not x.is_floating_point():
        raise InvalidImageError(f"{name} must be float in [0, 1] (white = 1), got {x.dtype}")
    if x.numel() == 0:
        raise InvalidImageError(f"{name} is empty: shape {tuple(x.shape)}")
