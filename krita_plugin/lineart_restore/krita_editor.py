"""Krita adapters for the editor wrapper (``editor``): document, layer, selection, settings.

The only module besides ``extension``/``ui`` that touches the ``krita`` API. Every call here must
run on Krita's main thread.
"""

from __future__ import annotations

from krita import Krita  # type: ignore[import-not-found]
from PyQt5.QtCore import QByteArray

from .editor import Document, Layer, LayerKind, NewLayer, SelectionInfo
from .geometry import Rect
from .settings import GROUP

__all__ = ["KritaLayer", "KritaDocument", "KritaSettingsBackend", "active_document"]


def _rect(qrect) -> Rect:
    return Rect(qrect.x(), qrect.y(), max(0, qrect.width()), max(0, qrect.height()))


class KritaLayer(Layer):
    """A ``krita.Node``."""

    def __init__(self, node) -> None:
        self.node = node

    @property
    def name(self) -> str:
        return self.node.name()

    @property
    def kind(self) -> LayerKind:
        return LayerKind.from_krita(self.node.type())

    @property
    def color_model(self) -> str:
        return self.node.colorModel()

    @property
    def color_depth(self) -> str:
        return self.node.colorDepth()

    @property
    def color_profile(self) -> str:
        return self.node.colorProfile()

    @property
    def bounds(self) -> Rect:
        return _rect(self.node.bounds())

    @property
    def visible(self) -> bool:
        return self.node.visible()

    def read_pixels(self, rect: Rect) -> bytes:
        return bytes(self.node.pixelData(rect.x, rect.y, rect.w, rect.h))

    def read_pixels_as(self, rect: Rect, model: str, depth: str, profile: str) -> bytes:
        # Convert a detached duplicate: the source layer (and the undo history) stay untouched.
        dup = self.node.duplicate()
        if dup is None or not dup.setColorSpace(model, depth, profile):
            raise RuntimeError(f"Krita could not convert {self.color_model}/{self.color_depth} to {model}/{depth}")
        if (dup.colorModel(), dup.colorDepth()) != (model, depth):
            raise RuntimeError(f"conversion gave {dup.colorModel()}/{dup.colorDepth()}, not {model}/{depth}")
        return bytes(dup.pixelData(rect.x, rect.y, rect.w, rect.h))


class KritaDocument(Document):
    """A ``krita.Document``. ``active`` overrides the active node (kritarunner has no view, so
    ``Document.activeNode()`` is None there)."""

    def __init__(self, doc, active=None) -> None:
        self.doc = doc
        self._active = active

    @property
    def is_open(self) -> bool:
        return self.doc is not None

    @property
    def name(self) -> str:
        return self.doc.name()

    @property
    def canvas(self) -> Rect:
        return Rect(0, 0, self.doc.width(), self.doc.height())

    @property
    def file_path(self) -> str:
        return self.doc.fileName() or ""

    @property
    def active_layer(self) -> Layer | None:
        node = self._active if self._active is not None else self.doc.activeNode()
        return KritaLayer(node) if node is not None else None

    @property
    def selection(self) -> SelectionInfo | None:
        sel = self.doc.selection()
        if sel is None or sel.width() <= 0 or sel.height() <= 0:
            return None
        bounds = Rect(sel.x(), sel.y(), sel.width(), sel.height())
        coverage = bytes(sel.pixelData(bounds.x, bounds.y, bounds.w, bounds.h))
        if coverage.count(0) == len(coverage):
            return None
        return SelectionInfo(bounds=bounds, coverage=coverage)

    def sibling_names(self, layer: Layer) -> list[str]:
        node = layer.node  # type: ignore[attr-defined]
        parent = node.parentNode() or self.doc.rootNode()
        return [child.name() for child in parent.childNodes()]

    def add_layers_above(self, source: Layer, layers: list[NewLayer]) -> list[Layer]:
        src = source.node  # type: ignore[attr-defined]
        parent = src.parentNode() or self.doc.rootNode()
        added = []
        below = src
        for spec in layers:
            node = self.doc.createNode(spec.name, "paintlayer")
            if (node.colorModel(), node.colorDepth(), node.colorProfile()) != (spec.model, spec.depth, spec.profile):
                profile = spec.profile or _default_profile(spec.model, spec.depth)
                if not node.setColorSpace(spec.model, spec.depth, profile):
                    raise RuntimeError(f"Krita refused the colour space {spec.model}/{spec.depth}/{profile}")
            node.setPixelData(QByteArray(spec.data), spec.rect.x, spec.rect.y, spec.rect.w, spec.rect.h)
            node.setOpacity(spec.opacity)
            node.setVisible(spec.visible)
            parent.addChildNode(node, below)
            added.append(KritaLayer(node))
            below = node
        self.doc.refreshProjection()
        return added

    def set_active_layer(self, layer: Layer) -> None:
        node = layer.node  # type: ignore[attr-defined]
        self.doc.setActiveNode(node)
        if self._active is not None:  # no view (kritarunner): keep the override in step
            self._active = node


def _default_profile(model: str, depth: str) -> str:
    """A profile Krita always has for ``model``/``depth`` (the first one it lists)."""
    profiles = Krita.instance().profiles(model, depth)
    for p in profiles:
        if "srgbtrc" in p.lower():
            return p
    return profiles[0] if profiles else ""


class KritaSettingsBackend:
    """``Krita.instance().readSetting/writeSetting`` under :data:`settings.GROUP` in kritarc."""

    def read(self, key: str, default: str) -> str:
        return Krita.instance().readSetting(GROUP, key, default)

    def write(self, key: str, value: str) -> None:
        Krita.instance().writeSetting(GROUP, key, value)


def active_document() -> KritaDocument | Document:
    """The active document of the running Krita, or the null :class:`Document`."""
    doc = Krita.instance().activeDocument()
    return KritaDocument(doc) if doc is not None else Document()
