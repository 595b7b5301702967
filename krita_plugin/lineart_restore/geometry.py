"""Rectangles and the choice of the region a restore job reads and writes.

Pure Python, no Krita or Qt: the plug-in logic and its unit tests share it.

Two rectangles matter for one job:

* the *target*: the pixels the new layer receives. It is the source layer's bounds clipped to the
  document canvas and, when there is a selection, to the selection's bounding box;
* the *context*: the pixels sent to the server. It is the target grown by a margin and snapped
  outwards to the 8x8 JPEG block grid of the document (then clipped again), so a restore of a
  selection sees the same compression blocks as a restore of the whole image would.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rect", "JPEG_BLOCK", "CONTEXT_MARGIN", "target_rect", "context_rect", "unique_name"]

#: Side of a JPEG compression block in pixels; context rectangles snap to this grid.
JPEG_BLOCK = 8
#: Extra pixels of context read around a selection (before snapping to the block grid).
CONTEXT_MARGIN = 16


@dataclass(frozen=True)
class Rect:
    """An axis-aligned pixel rectangle: left ``x``, top ``y``, width ``w``, height ``h``.

    Widths and heights are never negative; an empty rectangle has ``w == 0`` or ``h == 0``.
    """

    x: int
    y: int
    w: int
    h: int

    def __post_init__(self) -> None:
        if self.w < 0 or self.h < 0:
            raise ValueError(f"rectangle size must not be negative, got {self.w}x{self.h}")

    @property
    def right(self) -> int:
        """One past the last column."""
        return self.x + self.w

    @property
    def bottom(self) -> int:
        """One past the last row."""
        return self.y + self.h

    @property
    def empty(self) -> bool:
        return self.w == 0 or self.h == 0

    @property
    def area(self) -> int:
        return self.w * self.h

    def intersect(self, other: Rect) -> Rect:
        """The common part of both rectangles (an empty ``Rect`` at ``self``'s corner if none)."""
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1, y1 = min(self.right, other.right), min(self.bottom, other.bottom)
        if x1 <= x0 or y1 <= y0:
            return Rect(self.x, self.y, 0, 0)
        return Rect(x0, y0, x1 - x0, y1 - y0)

    def grow(self, margin: int) -> Rect:
        """The rectangle with ``margin`` pixels added on every side."""
        return Rect(self.x - margin, self.y - margin, self.w + 2 * margin, self.h + 2 * margin)

    def snap_out(self, step: int) -> Rect:
        """The smallest rectangle containing this one whose edges lie on multiples of ``step``."""
        x0 = (self.x // step) * step
        y0 = (self.y // step) * step
        x1 = -((-self.right) // step) * step
        y1 = -((-self.bottom) // step) * step
        return Rect(x0, y0, x1 - x0, y1 - y0)

    def contains(self, other: Rect) -> bool:
        return self.x <= other.x and self.y <= other.y and other.right <= self.right and other.bottom <= self.bottom

    def relative_to(self, outer: Rect) -> Rect:
        """This rectangle in the coordinates of ``outer`` (whose top-left becomes 0, 0)."""
        return Rect(self.x - outer.x, self.y - outer.y, self.w, self.h)


def target_rect(layer_bounds: Rect, canvas: Rect, selection_bounds: Rect | None = None) -> Rect:
    """The pixels a job restores: layer bounds clipped to the canvas and to the selection box.

    Args:
        layer_bounds: the source layer's extent (Krita's ``Node.bounds()``; may exceed the canvas
            or be empty for an empty layer).
        canvas: the document rectangle, ``Rect(0, 0, width, height)``.
        selection_bounds: the bounding box of the active selection, or ``None`` when nothing is
            selected.

    Returns:
        The clipped rectangle; it is empty when the layer has no pixels on the canvas or inside
        the selection.
    """
    r = layer_bounds.intersect(canvas)
    if selection_bounds is not None:
        r = r.intersect(selection_bounds)
    return r


def context_rect(target: Rect, limit: Rect, margin: int = CONTEXT_MARGIN, block: int = JPEG_BLOCK) -> Rect:
    """The pixels sent to the server for ``target``: grown by ``margin``, snapped outwards to the
    ``block`` grid, then clipped to ``limit`` (layer bounds on the canvas). Always contains
    ``target`` when ``limit`` does.
    """
    if target.empty:
        return target
    return target.grow(margin).snap_out(block).intersect(limit)


def unique_name(base: str, taken: list[str] | set[str] | tuple[str, ...]) -> str:
    """``base`` if no layer has that name yet, else ``"base 2"``, ``"base 3"``, ...

    Krita allows duplicate names, but two layers called "Ink restored" after two runs are
    confusing; numbering them keeps each run's result recognisable.
    """
    names = set(taken)
    if base not in names:
        return base
    n = 2
    while f"{base} {n}" in names:
        n += 1
    return f"{base} {n}"


def restored_name(source_name: str) -> str:
    """Name of the restored layer made from a layer called ``source_name``."""
    return f"{source_name.strip() or 'Layer'} restored"


def mask_name(source_name: str) -> str:
    """Name of the line-mask layer made from a layer called ``source_name``."""
    return f"{source_name.strip() or 'Layer'} line mask"


__all__ += ["restored_name", "mask_name"]
