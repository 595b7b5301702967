"""Self-ensemble: run a network on flipped and rotated copies of its input and average.

A convolutional restorer is not exactly equivariant to flips and rotations, so its errors on
the copies differ and partly cancel in the mean (the "x8" self-ensemble of the super-resolution
literature). Line art has no preferred orientation, which makes it a fair trade: ``n`` times the
network time for a measured gain (docs/benchmarks.md, *The self-ensemble*). ``n`` is 1 (off), 2 (the
image and its mirror), 4 (adds the vertical mirror and the half turn: the 8x8 JPEG blocks keep
their orientation) or 8 (adds the quarter turns and transposes).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .options import ENSEMBLE_SIZES
from .steps import step

#: The dihedral transforms as (quarter turns, mirror afterwards), in the order they are used.
TRANSFORMS = ((0, False), (0, True), (2, True), (2, False), (1, False), (1, True), (3, False), (3, True))
#: Allowed ensemble sizes (:data:`core.options.ENSEMBLE_SIZES`).
SIZES = ENSEMBLE_SIZES


def forward(t: torch.Tensor, transform: tuple[int, bool]) -> torch.Tensor:
    """``t`` (..., H, W) turned ``k`` quarter turns counter-clockwise, then mirrored left-right."""
    k, mirror = transform
    t = torch.rot90(t, k, dims=(-2, -1)) if k else t
    return t.flip(-1) if mirror else t


def inverse(t: torch.Tensor, transform: tuple[int, bool]) -> torch.Tensor:
    """Undo :func:`forward`."""
    k, mirror = transform
    t = t.flip(-1) if mirror else t
    return torch.rot90(t, -k, dims=(-2, -1)) if k else t


def mean_over(
    run: Callable[..., tuple[torch.Tensor, torch.Tensor | None]], inputs: list[torch.Tensor | None], n: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The mean of ``run(*transformed inputs)`` over the first ``n`` transforms, each output turned
    back. ``run`` returns ``(image, extra)``: the image (..., H, W) is averaged pixel by pixel,
    ``extra`` (a per-image value such as a QF estimate, or None) plainly."""
    if n not in SIZES:
        raise ValueError(f"ensemble size must be one of {SIZES}, got {n}")
    total, extra_total = None, None
    for i, transform in enumerate(TRANSFORMS[:n]):
        if i:
            step("pass", i, n)  # between passes: a step boundary for a caller's hook (core.steps)
        out, extra = run(*(None if t is None else forward(t, transform) for t in inputs))
        out = inverse(out, transform)
        total = out if total is None else total.add_(out)
        if extra is not None:
            extra_total = extra.float() if extra_total is None else extra_total + extra.float()
    total = total.div_(n) if n > 1 else total
    return total, (None if extra_total is None else extra_total / n)
