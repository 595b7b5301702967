"""An in-memory implementation of the plug-in's editor wrapper (``lineart_restore.editor``).

It stores layers as Krita-layout byte buffers the size of their bounds, like a tiny editor, so the
restore path (prepare -> run_on_server -> apply) can run under pytest without Krita. The Krita
adapter itself is exercised by the end-to-end tests in real Krita.
"""

from __future__ import annotations

from krita_plugin.lineart_restore import pixels
from krita_plugin.lineart_restore.editor import Document, Layer, LayerKind, NewLayer, SelectionInfo
from krita_plugin.lineart_restore.geometry import Rect


class MemoryLayer(Layer):
    def __init__(
        self,
        name: str,
        bounds: Rect,
        model: str = "GRAYA",
        depth: str = "U8",
        data: bytes | None = None,
        kind: LayerKind = LayerKind.PAINT,
        visible: bool = True,
        profile: str = "",
    ) -> None:
        self._name, self._bounds, self._model, self._depth = name, bounds, model, depth
        self._kind, self._visible, self._profile = kind, visible, profile
        self.bpp = _bpp(model, depth)
        self.data = bytearray(data if data is not None else bytes(bounds.area * self.bpp))
        if len(self.data) != bounds.area * self.bpp:
            raise ValueError("layer data does not match its bounds")
        self.reads = 0

    name = property(lambda self: self._name)
    kind = property(lambda self: self._kind)
    color_model = property(lambda self: self._model)
    color_depth = property(lambda self: self._depth)
    color_profile = property(lambda self: self._profile)
    bounds = property(lambda self: self._bounds)
    visible = property(lambda self: self._visible)

    def read_pixels(self, rect: Rect) -> bytes:
        """Like Krita: pixels outside the bounds read as zero (transparent)."""
        self.reads += 1
        out = bytearray(rect.area * self.bpp)
        inside = rect.intersect(self._bounds)
        for row in range(inside.h):
            sy, dy = inside.y + row - self._bounds.y, inside.y + row - rect.y
            s0 = (sy * self._bounds.w + inside.x - self._bounds.x) * self.bpp
            d0 = (dy * rect.w + inside.x - rect.x) * self.bpp
            out[d0 : d0 + inside.w * self.bpp] = self.data[s0 : s0 + inside.w * self.bpp]
        return bytes(out)

    def read_pixels_as(self, rect, model, depth, profile):
        raise NotImplementedError(f"the memory editor cannot convert {self._model}/{self._depth}")


def _bpp(model: str, depth: str) -> int:
    key = (model, depth)
    if key in pixels.KRITA_NATIVE:
        return pixels.bytes_per_pixel(pixels.KRITA_NATIVE[key])
    channels = {"RGBA": 4, "GRAYA": 2, "CMYKA": 5}.get(model, 4)
    return channels * {"U8": 1, "U16": 2, "F16": 2, "F32": 4}[depth]


class MemoryDocument(Document):
    def __init__(
        self,
        width: int,
        height: int,
        layers: list[MemoryLayer],
        selection: SelectionInfo | None = None,
        file_path: str = "",
    ) -> None:
        self.width, self.height = width, height
        self.file_path = file_path
        self.layers = list(layers)  # bottom to top
        self._selection = selection
        self.active: MemoryLayer | None = layers[-1] if layers else None

    is_open = property(lambda self: True)
    name = property(lambda self: "memory")
    canvas = property(lambda self: Rect(0, 0, self.width, self.height))
    file_path = ""  # set per instance in __init__
    active_layer = property(lambda self: self.active)
    selection = property(lambda self: self._selection)

    def sibling_names(self, layer):
        return [l.name for l in self.layers]

    def add_layers_above(self, source, layers: list[NewLayer]):
        index = self.layers.index(source)
        added = []
        for spec in layers:
            layer = MemoryLayer(
                spec.name, spec.rect, spec.model, spec.depth, spec.data, visible=spec.visible, profile=spec.profile
            )
            index += 1
            self.layers.insert(index, layer)
            added.append(layer)
        return added

    def set_active_layer(self, layer):
        self.active = layer
