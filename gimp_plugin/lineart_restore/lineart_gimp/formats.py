"""Pixel formats: what GIMP calls them, what Babl calls them, what the wire protocol calls them.

The plug-in asks GEGL to convert the drawable into a Babl format whose bytes are exactly one of
the protocol's raw formats, so no pixel is touched in Python:

    ========  =========  =================  ================================
    base      alpha      8-bit images       16-bit, 32-bit, half, float, double
    ========  =========  =================  ================================
    GRAY      no         "Y' u8"   gray8     "Y' u16"       gray16
    GRAY      yes        "Y'A u8"  graya8    "Y'A u16"      graya16
    RGB       no         "R'G'B' u8"  rgb8   "R'G'B' u16"   rgb16
    RGB       yes        "R'G'B'A u8" rgba8  "R'G'B'A u16"  rgba16
    ========  =========  =================  ================================

The primed (non-linear, sRGB-curve) formats are used whatever the image's own trc is: the
network works on display-referred gray levels, the values a JPEG stores. Precisions above 16 bits
are sent as 16-bit (65536 levels are far beyond what an 8-bit JPEG held); GEGL converts back to
the image's precision when the result is written. Float values outside 0..1 are clipped by that
conversion. 16-bit samples travel little-endian (the protocol's rule); Babl's ``u16`` is the
host's byte order, so :func:`to_wire_order` swaps bytes on big-endian hosts.
"""

from __future__ import annotations

import sys
from array import array
from dataclasses import dataclass

from .common import protocol

__all__ = [
    "PixelLayout",
    "LAYOUTS",
    "component_of_precision",
    "read_layout",
    "layout_of_wire",
    "layer_type_name",
    "to_wire_order",
    "from_wire_order",
    "MASK_BABL",
]

#: Babl format of the line-mask layer's pixels (the protocol sends masks as gray8).
MASK_BABL = "Y' u8"

_COMPONENTS = ("u8", "u16", "u32", "half", "float", "double")


@dataclass(frozen=True)
class PixelLayout:
    """One raw pixel layout known to both Babl and the protocol.

    Attributes:
        babl: Babl format string for ``GeglBuffer.get/set`` (GIMP's Python wants a str).
        wire: the protocol's ``PixelFormat`` value ("gray8", "rgba16", ...).
        base: "gray" or "rgb".
        alpha: whether the pixels carry an alpha channel.
        channels: samples per pixel (1..4).
        sample_bytes: bytes per sample (1 or 2).
    """

    babl: str
    wire: str
    base: str
    alpha: bool
    channels: int
    sample_bytes: int

    @property
    def pixel_bytes(self) -> int:
        return self.channels * self.sample_bytes

    def size(self, width: int, height: int) -> int:
        """Bytes of a ``width x height`` image in this layout."""
        return width * height * self.pixel_bytes


def _layout(base: str, alpha: bool, bits: int) -> PixelLayout:
    """Babl's name for the layout, and its channels and sample size from the protocol's table."""
    names = {
        ("gray", False): ("Y'", "gray"),
        ("gray", True): ("Y'A", "graya"),
        ("rgb", False): ("R'G'B'", "rgb"),
        ("rgb", True): ("R'G'B'A", "rgba"),
    }
    babl_model, wire_model = names[(base, alpha)]
    wire = f"{wire_model}{bits}"
    info = protocol.FORMAT_INFO[protocol.PixelFormat(wire)]
    return PixelLayout(
        babl=f"{babl_model} u{bits}",
        wire=wire,
        base=base,
        alpha=info.alpha,
        channels=info.channels,
        sample_bytes=info.sample_bytes,
    )


#: Every layout the plug-in uses, by protocol name.
LAYOUTS: dict[str, PixelLayout] = {
    lay.wire: lay for lay in (_layout(b, a, bits) for b in ("gray", "rgb") for a in (False, True) for bits in (8, 16))
}


def component_of_precision(precision: str) -> str:
    """The sample type of a GIMP precision.

    Args:
        precision: a ``Gimp.Precision`` value name or nick, e.g. "GIMP_PRECISION_U16_LINEAR",
            "u8-non-linear", "FLOAT_PERCEPTUAL" (case does not matter).

    Returns:
        One of "u8", "u16", "u32", "half", "float", "double".

    Raises:
        ValueError: the text names no known GIMP precision.
    """
    text = precision.lower().replace("gimp_precision_", "").replace("_", "-")
    head = text.split("-", 1)[0]
    if head not in _COMPONENTS:
        raise ValueError(f"unknown GIMP precision {precision!r}")
    return head


def read_layout(base: str, has_alpha: bool, precision: str) -> PixelLayout:
    """The layout to read a drawable in and send to the server.

    Args:
        base: the drawable's base type, "rgb", "gray" or "indexed" (any case).
        has_alpha: whether the drawable has an alpha channel.
        precision: the image's ``Gimp.Precision`` name (see :func:`component_of_precision`).

    Raises:
        ValueError: indexed or unknown base type, or unknown precision; the message says what to do.
    """
    b = base.lower()
    if b == "indexed":
        raise ValueError(
            "indexed (palette) images are not supported: convert with Image > Mode > Grayscale or RGB first"
        )
    if b not in ("rgb", "gray"):
        raise ValueError(f"unsupported base type {base!r}: the plug-in works on RGB and grayscale images")
    bits = 8 if component_of_precision(precision) == "u8" else 16
    return _layout(b, bool(has_alpha), bits)


def layout_of_wire(wire: str) -> PixelLayout:
    """The layout of a protocol raw format name (for writing a result back).

    Raises:
        ValueError: a format the plug-in never asks for (bgra*, png, unknown).
    """
    try:
        return LAYOUTS[str(wire)]
    except KeyError:
        raise ValueError(f"the server answered in pixel format {wire!r}, which this plug-in cannot write") from None


def layer_type_name(layout: PixelLayout) -> str:
    """Name of the ``Gimp.ImageType`` member for a new layer holding ``layout`` pixels
    ("GRAY_IMAGE", "GRAYA_IMAGE", "RGB_IMAGE" or "RGBA_IMAGE")."""
    return f"{layout.base.upper()}{'A' if layout.alpha else ''}_IMAGE"


def _swap16(data: bytes) -> bytes:
    a = array("H")
    a.frombytes(data)
    a.byteswap()
    return a.tobytes()


def to_wire_order(data: bytes, layout: PixelLayout, byteorder: str = sys.byteorder) -> bytes:
    """Host-order Babl bytes -> protocol bytes (16-bit samples little-endian)."""
    if layout.sample_bytes == 2 and byteorder == "big":
        return _swap16(data)
    return bytes(data)


def from_wire_order(data: bytes, layout: PixelLayout, byteorder: str = sys.byteorder) -> bytes:
    """Protocol bytes -> host-order bytes for Babl (the inverse of :func:`to_wire_order`)."""
    return to_wire_order(data, layout, byteorder)
