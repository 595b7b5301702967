"""Overlapping tiles with seam-free blending, for images of any size in bounded memory.

A fully convolutional network applied tile by tile gives, near the tile borders, values that
differ from the whole-image run (the border pixels see padding instead of their neighbours). This
module hides that:

* Tiles start on multiples of ``align`` (the network's down-sampling factor and the JPEG 8x8
  grid), so every tile sees the same pixel phase as the whole image; the last tile on each axis
  runs to the image edge and is padded by the network exactly as the whole image would be.
* Neighbouring tiles overlap by ``overlap`` pixels. In each overlap the outer quarter on either
  side is ignored and the middle half is cross-faded with a raised-cosine ramp. The 1-D weights of
  all tiles sum to exactly 1 at every pixel (a partition of unity), and 2-D weights are products of
  1-D ones, so no normalisation pass or weight buffer is needed.
* The result is a weighted sum accumulated into one float32 buffer; the only per-tile memory is
  the tile's own activations.

How close tiled output is to the whole-image output depends on the network's effective receptive
field versus ``overlap // 4`` (the nearest a used pixel gets to a tile border); the pipeline
states its measured tolerance.

Everything here is a pure function of tensors: it works with any ``(N, C, h, w) -> (N, C', h, w)``
callable, which is how the tests exercise it with small convolution stacks.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from . import steps
from .device import available_ram
from .errors import CancelledError, InvalidOptionError

__all__ = [
    "Tile",
    "TilePlan",
    "plan_tiles",
    "axis_spans",
    "axis_weights",
    "run_tiled",
    "check_cancel",
    "auto_tile_size",
    "choose_tile",
    "default_overlap",
    "MIN_TILE",
    "MAX_TILE_CPU",
    "MAX_TILE_CUDA",
    "CPU_TILE_BUDGET",
    "DEFAULT_OVERLAP",
]

CancelFlag = Callable[[], bool] | threading.Event | None

#: Tile sizes the automatic choice stays within, and the smallest tile tried after running out
#: of memory.
MIN_TILE, MAX_TILE_CPU, MAX_TILE_CUDA = 256, 2048, 4096
#: Most activation memory one CPU tile may take (also never more than a quarter of the free RAM).
#: With 512 MiB the shipped models peaked at about 1.4 GB RSS at 2048² (fp32, 1088 px tiles; see
#: docs/pipeline.md). A larger budget would only remove a few overlaps (4096²: 3 tiles per axis
#: instead of 4) for more memory.
CPU_TILE_BUDGET = 512 * 2**20
#: Default overlap between tiles, in pixels. A pixel that is used is at least ``overlap // 4``
#: from any tile border; the measured effect is stated in docs/pipeline.md.
DEFAULT_OVERLAP = 128


@dataclass(frozen=True)
class Tile:
    """One tile: rows ``y0:y1`` and columns ``x0:x1`` of the image, with its blend weights.

    ``wy`` (y1-y0,) and ``wx`` (x1-x0,) are float32 1-D weights; the tile's 2-D weight is their
    outer product.
    """

    y0: int
    y1: int
    x0: int
    x1: int
    wy: torch.Tensor = field(repr=False)
    wx: torch.Tensor = field(repr=False)

    @property
    def area(self) -> int:
        return (self.y1 - self.y0) * (self.x1 - self.x0)


@dataclass(frozen=True)
class TilePlan:
    """The tiles covering an ``height`` x ``width`` image, in row-major order."""

    height: int
    width: int
    tile: int
    overlap: int
    align: int
    tiles: tuple[Tile, ...]

    def __len__(self) -> int:
        return len(self.tiles)


def axis_spans(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """Start/end pairs covering ``0..length`` with as few tiles of at most ``tile`` pixels as
    possible, all about the same size.

    Neighbours share exactly ``overlap`` pixels and starts are multiples of ``align`` (``overlap``
    should be one too); the last span ends at ``length``. The fewest spans fix how many pixels are
    computed (``length + (n - 1) * overlap``); making them equal instead of ``tile, tile, ...,
    remainder`` keeps the largest one, hence the peak memory, as small as that allows: 2048 px in
    tiles of at most 1168 with overlap 128 become two spans of 1088 rather than 1168 and 1008.
    A single span ``(0, length)`` when the axis fits in one tile.
    """
    if length <= tile:
        return [(0, length)]
    top = (tile // align) * align
    if top <= overlap:
        raise InvalidOptionError(f"tile {tile} (as a multiple of {align}) must be larger than the overlap {overlap}")
    # The fewest spans: n of at most `top` px cover n * top - (n - 1) * overlap >= length. The
    # equal side that covers the axis, rounded up to `align`, is then never above `top`.
    n = -(-(length - overlap) // (top - overlap))
    side = -(-(length + (n - 1) * overlap) // n)
    side = -(-side // align) * align
    step = side - overlap
    spans = [(i * step, i * step + side) for i in range(n - 1)]
    spans.append(((n - 1) * step, length))
    return spans


def axis_weights(spans: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
    """1-D blend weights (float32) for consecutive overlapping spans; they sum to 1 everywhere.

    In the overlap ``[s, e)`` between a span ending at ``e`` and the next one starting at ``s``,
    the outer quarter on each side belongs wholly to the tile that is farther from its border,
    and the middle half is a raised-cosine cross-fade.
    """
    weights = [torch.ones(e - s, dtype=torch.float32) for s, e in spans]
    for i in range(1, len(spans)):
        s = spans[i][0]
        e = spans[i - 1][1]
        ov = e - s
        if ov <= 0:
            continue
        margin = ov // 4
        ramp_len = ov - 2 * margin
        t = (torch.arange(ramp_len, dtype=torch.float64) + 0.5) / ramp_len
        up = (0.5 - 0.5 * torch.cos(math.pi * t)).to(torch.float32)
        rise = torch.cat([torch.zeros(margin), up, torch.ones(margin)])  # for tile i over [s, e)
        weights[i][:ov] *= rise
        prev = weights[i - 1]
        prev[prev.numel() - ov :] *= 1.0 - rise
    return weights


def plan_tiles(height: int, width: int, tile: int, overlap: int, align: int = 8) -> TilePlan:
    """Plan the tiles for an image.

    Args:
        height, width: image size in pixels.
        tile: largest tile side; rounded down to a multiple of ``align``.
        overlap: pixels shared by neighbouring tiles; rounded up to a multiple of ``align``.
        align: tile starts are multiples of this (use the network's ``multiple_of``, at least 8
            for JPEG input so that the 8x8 block grid keeps its phase).

    Raises:
        InvalidOptionError: sizes that cannot make a valid plan (tile < 2 * overlap + align...).
    """
    if height < 1 or width < 1:
        raise InvalidOptionError(f"cannot tile an empty {width}x{height} image")
    if align < 1:
        raise InvalidOptionError(f"align must be >= 1, got {align}")
    if overlap < 0:
        raise InvalidOptionError(f"overlap must be >= 0, got {overlap}")
    tile = (int(tile) // align) * align
    overlap = -(-int(overlap) // align) * align
    if tile < 2 * overlap + align:
        raise InvalidOptionError(
            f"tile size {tile} is too small for an overlap of {overlap} (needs at least "
            f"{2 * overlap + align}); use a larger tile or a smaller overlap"
        )
    ys = axis_spans(height, tile, overlap, align)
    xs = axis_spans(width, tile, overlap, align)
    wys = axis_weights(ys)
    wxs = axis_weights(xs)
    tiles = tuple(Tile(y0, y1, x0, x1, wy, wx) for (y0, y1), wy in zip(ys, wys) for (x0, x1), wx in zip(xs, wxs))
    return TilePlan(height, width, tile, overlap, align, tiles)


def check_cancel(cancel: CancelFlag) -> None:
    """Raise :class:`CancelledError` when ``cancel`` (a callable or ``threading.Event``) is set."""
    if cancel is None:
        return
    flag = cancel.is_set() if isinstance(cancel, threading.Event) else cancel()
    if flag:
        raise CancelledError("restoration cancelled by the caller")


def run_tiled(
    fn: Callable[..., torch.Tensor],
    inputs: Sequence[torch.Tensor],
    plan: TilePlan,
    out_channels: int,
    *,
    progress: Callable[[int], None] | None = None,
    cancel: CancelFlag = None,
) -> torch.Tensor:
    """Apply ``fn`` tile by tile and blend the tiles into one image.

    Args:
        fn: called as ``fn(tile, *crops)`` where each crop is the tile's window of the matching
            input, a (N, C_i, h, w) view; returns (N, out_channels, h, w) (any float dtype, any
            device; it is moved to CPU float32).
        inputs: tensors of shape (N, C_i, plan.height, plan.width) on the CPU.
        plan: from :func:`plan_tiles`.
        out_channels: channels of ``fn``'s output.
        progress: called with the number of tiles done after each tile.
        cancel: checked before every tile; raises :class:`CancelledError` when set.

    Before every tile this thread's step hook, if any, is called (:func:`core.steps.step_hook`).

    Returns:
        (N, out_channels, H, W) float32 CPU tensor, the blended result.
    """
    if not inputs:
        raise InvalidOptionError("run_tiled needs at least one input tensor")
    n = inputs[0].shape[0]
    for t in inputs:
        if t.dim() != 4 or tuple(t.shape[-2:]) != (plan.height, plan.width) or t.shape[0] != n:
            raise InvalidOptionError(
                f"tiled input of shape {tuple(t.shape)} does not match the plan "
                f"(N={n}, H={plan.height}, W={plan.width})"
            )
    out = torch.zeros((n, out_channels, plan.height, plan.width), dtype=torch.float32)
    for i, tile in enumerate(plan.tiles):
        steps.step("tile", i, len(plan.tiles))
        check_cancel(cancel)
        crops = [t[:, :, tile.y0 : tile.y1, tile.x0 : tile.x1] for t in inputs]
        res = fn(tile, *crops)
        expect = (n, out_channels, tile.y1 - tile.y0, tile.x1 - tile.x0)
        if tuple(res.shape) != expect:
            raise InvalidOptionError(f"tile function returned shape {tuple(res.shape)}, expected {expect}")
        res = res.detach().to(device="cpu", dtype=torch.float32)
        if len(plan.tiles) == 1:
            out.copy_(res)
        else:
            w = tile.wy[:, None] * tile.wx[None, :]
            out[:, :, tile.y0 : tile.y1, tile.x0 : tile.x1].addcmul_(res, w)
        del res
        if progress is not None:
            progress(i + 1)
    return out


def auto_tile_size(
    bytes_per_pixel: float,
    budget_bytes: float,
    *,
    align: int = 8,
    minimum: int = 256,
    maximum: int = 2048,
) -> int:
    """Largest square tile side whose activations fit in ``budget_bytes``.

    Args:
        bytes_per_pixel: activation memory one input pixel costs the network (measured).
        budget_bytes: memory the tile may use.
        align: result is a multiple of this.
        minimum, maximum: clamp (larger tiles waste less overlap; beyond ~2048 there is no gain).
    """
    if bytes_per_pixel <= 0:
        raise InvalidOptionError(f"bytes_per_pixel must be positive, got {bytes_per_pixel}")
    side = int(math.sqrt(max(budget_bytes, 0) / bytes_per_pixel))
    side = max(minimum, min(maximum, side))
    return max(align, (side // align) * align)


def choose_tile(bytes_per_pixel: float, device: torch.device, align: int) -> int:
    """The tile side for a network costing ``bytes_per_pixel`` on ``device``: within half the free
    CUDA memory (at most :data:`MAX_TILE_CUDA`), or on the CPU within :data:`CPU_TILE_BUDGET` and a
    quarter of the available RAM (at most :data:`MAX_TILE_CPU`); never below :data:`MIN_TILE`."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        budget, top = 0.5 * free, MAX_TILE_CUDA
    else:
        budget, top = min(0.25 * available_ram(), CPU_TILE_BUDGET), MAX_TILE_CPU
    return auto_tile_size(bytes_per_pixel, budget, align=align, minimum=MIN_TILE, maximum=top)


def default_overlap(tile: int, align: int) -> int:
    """The overlap used when none is asked for: :data:`DEFAULT_OVERLAP`, at most a quarter tile, and
    small enough for :func:`plan_tiles` (``tile >= 2 * overlap + align``), on multiples of ``align``."""
    cap = ((tile - align) // 2 // align) * align
    return max(0, min(DEFAULT_OVERLAP, cap, max(align, (tile // 4 // align) * align)))


def densest_window(mask: np.ndarray, side: int, step: int) -> tuple[slice, slice]:
    """The ``side`` x ``side`` window of a layer (clipped to it) that holds the most true pixels of
    ``mask`` ``(H, W)``, its corner on multiples of ``step`` (the first such, row by row)."""
    h, w = mask.shape
    sh, sw = min(side, h), min(side, w)
    total = cv2.integral(mask.astype(np.uint8))  # (h + 1, w + 1) running sums
    ys, xs = np.arange(0, h - sh + 1, step), np.arange(0, w - sw + 1, step)
    count = (
        total[np.ix_(ys + sh, xs + sw)]
        - total[np.ix_(ys, xs + sw)]
        - total[np.ix_(ys + sh, xs)]
        + total[np.ix_(ys, xs)]
    )
    iy, ix = np.unravel_index(int(np.argmax(count)), count.shape)
    return slice(int(ys[iy]), int(ys[iy]) + sh), slice(int(xs[ix]), int(xs[ix]) + sw)
