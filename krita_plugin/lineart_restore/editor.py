"""The editor wrapper: the only view of the editor the plug-in logic has.

Plain base classes with harmless defaults (a "null" document with no layers, a layer with no
pixels). ``krita_editor`` adapts Krita's ``Document``/``Node``/``Selection`` to them; the unit
tests use an in-memory implementation. Nothing here imports ``krita`` or Qt.

Coordinates are canvas pixels; pixel buffers are in the layer's own layout (see ``pixels``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .geometry import Rect

__all__ = ["LayerKind", "Layer", "SelectionInfo", "Document", "NewLayer"]


class LayerKind(Enum):
    """What a layer is, as far as restoring goes. Only ``PAINT`` holds pixels we can restore."""

    PAINT = "paintlayer"
    GROUP = "grouplayer"
    VECTOR = "vectorlayer"
    FILE = "filelayer"
    FILTER = "filterlayer"
    FILL = "filllayer"
    CLONE = "clonelayer"
    MASK = "mask"
    OTHER = "other"

    @classmethod
    def from_krita(cls, node_type: str) -> LayerKind:
        """Map Krita's ``Node.type()`` string (``"paintlayer"``, ``"transparencymask"``, ...)."""
        for kind in cls:
            if kind.value == node_type:
                return kind
        if node_type.endswith("mask"):
            return cls.MASK
        return cls.OTHER


class Layer:
    """A layer of a document. The base class is an empty, unnamed, non-paint layer."""

    @property
    def name(self) -> str:
        return ""

    @property
    def kind(self) -> LayerKind:
        return LayerKind.OTHER

    @property
    def color_model(self) -> str:
        """Krita colour model id: ``"RGBA"``, ``"GRAYA"``, ``"CMYKA"``, ``"LABA"``, ..."""
        return ""

    @property
    def color_depth(self) -> str:
        """Krita depth id: ``"U8"``, ``"U16"``, ``"F16"``, ``"F32"``."""
        return ""

    @property
    def color_profile(self) -> str:
        return ""

    @property
    def bounds(self) -> Rect:
        """Extent of the layer's pixels (may exceed the canvas; empty for an empty layer)."""
        return Rect(0, 0, 0, 0)

    @property
    def visible(self) -> bool:
        return True

    def read_pixels(self, rect: Rect) -> bytes:
        """The pixels in ``rect`` in the layer's own layout (``rect.area * bpp`` bytes)."""
        return b""

    def read_pixels_as(self, rect: Rect, model: str, depth: str, profile: str) -> bytes:
        """The pixels in ``rect`` converted to another colour space by the editor; the layer
        itself is not changed."""
        raise NotImplementedError("this editor cannot convert colour spaces")


@dataclass(frozen=True)
class SelectionInfo:
    """The active selection: its bounding box and coverage (one byte per pixel of ``bounds``,
    0 = not selected, 255 = fully selected)."""

    bounds: Rect
    coverage: bytes

    def coverage_in(self, rect: Rect) -> bytes:
        """Coverage for ``rect`` (any rectangle), zero outside the selection box."""
        inside = rect.intersect(self.bounds)
        out = bytearray(rect.area)
        if inside.empty:
            return bytes(out)
        src_stride, dst_stride = self.bounds.w, rect.w
        for row in range(inside.h):
            sy = inside.y + row - self.bounds.y
            dy = inside.y + row - rect.y
            s0 = sy * src_stride + (inside.x - self.bounds.x)
            d0 = dy * dst_stride + (inside.x - rect.x)
            out[d0 : d0 + inside.w] = self.coverage[s0 : s0 + inside.w]
        return bytes(out)


@dataclass(frozen=True)
class NewLayer:
    """A layer the plug-in asks the editor to add.

    ``data`` covers ``rect`` in the layout of ``model``/``depth`` (``profile`` may be "" for the
    editor's default profile of that model). ``opacity`` is 0..255.
    """

    name: str
    rect: Rect
    model: str
    depth: str
    profile: str
    data: bytes
    visible: bool = True
    opacity: int = 255


class Document:
    """An open document. The base class is the "no document open" null object."""

    @property
    def is_open(self) -> bool:
        return False

    @property
    def name(self) -> str:
        return ""

    @property
    def canvas(self) -> Rect:
        """``Rect(0, 0, width, height)`` of the image."""
        return Rect(0, 0, 0, 0)

    @property
    def file_path(self) -> str:
        """Path of the file the document was opened from or saved to ("" when it has none)."""
        return ""

    @property
    def active_layer(self) -> Layer | None:
        return None

    @property
    def selection(self) -> SelectionInfo | None:
        """The active global selection, or ``None`` when nothing is selected."""
        return None

    def sibling_names(self, layer: Layer) -> list[str]:
        """Names of the layers next to ``layer`` (same parent), ``layer`` included."""
        return []

    def add_layers_above(self, source: Layer, layers: list[NewLayer]) -> list[Layer]:
        """Insert ``layers`` above ``source`` (the first right above it, each next one above the
        previous), fill them, refresh the view, and return them. ``source`` is not touched."""
        raise NotImplementedError("no document is open")

    def set_active_layer(self, layer: Layer) -> None:
        """Make ``layer`` the active one (the next stroke or restore goes there)."""
