"""Pixel buffers: Krita's layouts <-> the server's wire formats, cropping, alpha and masks.

Pure Python (``array`` and ``bytes`` slicing, no numpy: Krita's Python has none), so it runs in
Krita and under pytest alike.

Krita's ``Node.pixelData`` returns rows top to bottom, pixels left to right, channels in the
layer's own colour space, integers in the machine's byte order:

=========  ==========  ====================  ==========================
model      depth       channel order         bytes per pixel
=========  ==========  ====================  ==========================
RGBA       U8 / U16    B, G, R, A            4 / 8
GRAYA      U8 / U16    Y, A                  2 / 4
=========  ==========  ====================  ==========================

The server's raw formats (``server.protocol.PixelFormat``) name the channel order and depth, with
little-endian 16-bit samples: ``bgra8``/``bgra16`` are Krita's RGBA layouts as they are,
``rgba8``/``rgba16`` have red first, ``graya8``/``graya16`` are Krita's GRAYA layouts. A layer is
sent in its own layout when the server accepts it (``Welcome.formats``), else converted to the
``rgba``/``graya`` equivalent; results come back in the format sent.

Other Krita spaces (F16/F32 floats, CMYKA, LABA, XYZA, YCbCrA) are converted by Krita itself to
:data:`CONVERT_TARGET` before they reach this module (see ``krita_editor``).
"""

from __future__ import annotations

import sys
from array import array

from .common import protocol
from .geometry import Rect

__all__ = [
    "WIRE_FORMATS",
    "KRITA_NATIVE",
    "CONVERT_TARGET",
    "krita_space_for",
    "bytes_per_pixel",
    "krita_to_wire",
    "wire_to_krita",
    "crop",
    "is_transparent",
    "apply_coverage",
    "mask_to_graya8",
]

#: wire format -> (channels, bytes per sample): the raw formats with alpha (the ones the plug-in
#: reads and writes), from the protocol's own table.
WIRE_FORMATS: dict[str, tuple[int, int]] = {
    fmt.value: (info.channels, info.sample_bytes) for fmt, info in protocol.FORMAT_INFO.items() if info.alpha
}

#: (Krita colour model, colour depth) -> the wire format of that layout, for the spaces read
#: directly.
KRITA_NATIVE: dict[tuple[str, str], str] = {
    ("RGBA", "U8"): "bgra8",
    ("RGBA", "U16"): "bgra16",
    ("GRAYA", "U8"): "graya8",
    ("GRAYA", "U16"): "graya16",
}

#: Fallback for servers that do not take the Krita layout: same depth, red first.
_PORTABLE = {"bgra8": "rgba8", "bgra16": "rgba16", "graya8": "graya8", "graya16": "graya16"}

#: Krita space every other space is converted to before reading (model, depth, profile).
CONVERT_TARGET = ("RGBA", "U16", "sRGB-elle-V2-srgbtrc.icc")

_LITTLE = sys.byteorder == "little"


def krita_space_for(wire_format: str) -> tuple[str, str]:
    """The Krita (model, depth) that holds ``wire_format`` pixels (rgba and bgra both map to
    RGBA)."""
    if wire_format not in WIRE_FORMATS:
        raise ValueError(f"unknown wire format {wire_format!r}; expected one of {sorted(WIRE_FORMATS)}")
    channels, size = WIRE_FORMATS[wire_format]
    return ("RGBA" if channels == 4 else "GRAYA", "U8" if size == 1 else "U16")


def bytes_per_pixel(wire_format: str) -> int:
    """Bytes per pixel of ``wire_format`` (identical for the matching Krita layout)."""
    try:
        channels, size = WIRE_FORMATS[wire_format]
    except KeyError:
        raise ValueError(f"unknown wire format {wire_format!r}; expected one of {sorted(WIRE_FORMATS)}") from None
    return channels * size


def _check_length(data: bytes, wire_format: str, width: int, height: int) -> None:
    need = bytes_per_pixel(wire_format) * width * height
    if len(data) != need:
        raise ValueError(f"{wire_format} buffer of {width}x{height} pixels needs {need} bytes, got {len(data)}")


def _swap_red_blue(data: bytes, sample_size: int) -> bytes:
    """Exchange channels 0 and 2 of 4-channel pixels (BGRA <-> RGBA) for 1- or 2-byte samples."""
    if sample_size == 1:
        out = bytearray(data)
        out[0::4] = data[2::4]
        out[2::4] = data[0::4]
        return bytes(out)
    a = array("H")
    a.frombytes(data)
    b = array("H", a)
    b[0::4] = a[2::4]
    b[2::4] = a[0::4]
    return b.tobytes()


def _to_little_endian_16(data: bytes) -> bytes:
    """Native-order 16-bit samples -> little-endian (a no-op on little-endian machines).
    The same swap converts back."""
    if _LITTLE:
        return bytes(data)
    a = array("H")
    a.frombytes(data)
    a.byteswap()
    return a.tobytes()


def krita_to_wire(
    data: bytes,
    model: str,
    depth: str,
    width: int,
    height: int,
    accepted: frozenset[str] | set[str] | None = None,
) -> tuple[bytes, str]:
    """Krita ``pixelData`` bytes of a ``width`` x ``height`` region -> (wire bytes, wire format).

    Args:
        accepted: formats the server takes (``Welcome.formats``); ``None`` means any. The layer's
            own layout is used when accepted, else its ``rgba``/``graya`` equivalent.

    Raises:
        KeyError: ``model``/``depth`` is not one of :data:`KRITA_NATIVE` (convert it first).
        ValueError: the buffer length does not match the size, or the server takes neither
            layout.
    """
    native = KRITA_NATIVE[(model, depth)]
    _check_length(data, native, width, height)
    fmt = native
    if accepted is not None and native not in accepted:
        fmt = _PORTABLE[native]
        if fmt not in accepted:
            raise ValueError(f"the server accepts neither {native} nor {fmt} pixels")
    channels, size = WIRE_FORMATS[fmt]
    out = _swap_red_blue(data, size) if fmt != native else bytes(data)
    if size == 2:
        out = _to_little_endian_16(out)
    return out, fmt


def wire_to_krita(data: bytes, wire_format: str, width: int, height: int) -> tuple[bytes, str, str]:
    """Wire bytes -> (Krita ``setPixelData`` bytes, model, depth); the inverse of
    :func:`krita_to_wire`.

    Raises:
        ValueError: unknown format or wrong buffer length.
    """
    model, depth = krita_space_for(wire_format)
    _check_length(data, wire_format, width, height)
    channels, size = WIRE_FORMATS[wire_format]
    out = bytes(data)
    if size == 2:
        out = _to_little_endian_16(out)
    if wire_format.startswith("rgba"):
        out = _swap_red_blue(out, size)
    return out, model, depth


def crop(data: bytes, bpp: int, outer: Rect, inner: Rect) -> bytes:
    """The ``inner`` part of a row-major buffer that covers ``outer`` (both in canvas pixels).

    Raises:
        ValueError: ``inner`` is not inside ``outer`` or the buffer has the wrong length.
    """
    if len(data) != outer.area * bpp:
        raise ValueError(f"buffer for {outer.w}x{outer.h} px at {bpp} B/px has {len(data)} bytes")
    if not outer.contains(inner):
        raise ValueError(f"crop {inner} is not inside {outer}")
    if inner == outer:
        return bytes(data)
    rel = inner.relative_to(outer)
    stride, row = outer.w * bpp, inner.w * bpp
    mv = memoryview(data)
    start = rel.y * stride + rel.x * bpp
    return b"".join(mv[start + i * stride : start + i * stride + row] for i in range(inner.h))


def _alpha_bytes(data: bytes, wire_format: str) -> bytes:
    """All bytes belonging to the alpha channel (both bytes of a 16-bit sample)."""
    channels, size = WIRE_FORMATS[wire_format]
    bpp = channels * size
    if size == 1:
        return data[channels - 1 :: bpp]
    lo = data[bpp - 2 :: bpp]
    hi = data[bpp - 1 :: bpp]
    return lo + hi


def is_transparent(data: bytes, wire_format: str) -> bool:
    """True when every pixel of a wire (or Krita, same alpha position) buffer has alpha 0."""
    alpha = _alpha_bytes(data, wire_format)
    return alpha.count(0) == len(alpha)


def apply_coverage(data: bytes, wire_format: str, coverage: bytes) -> bytes:
    """Scale each pixel's alpha by a selection coverage (one byte per pixel, 0..255).

    Pixels with coverage 0 become fully transparent, 255 keep their alpha, values in between are
    scaled with rounding. Works on wire buffers and on the matching Krita buffers alike (alpha is
    last in both; 16-bit samples are read in native order, so call it on Krita-layout data or on
    little-endian machines).
    """
    channels, size = WIRE_FORMATS[wire_format]
    n = len(coverage)
    if len(data) != n * channels * size:
        raise ValueError(f"coverage has {n} pixels but the image has {len(data) // (channels * size)}")
    if coverage.count(255) == n:
        return bytes(data)
    if size == 1:
        out = bytearray(data)
        alpha = data[channels - 1 :: channels]
        out[channels - 1 :: channels] = bytes(a if c == 255 else (a * c + 127) // 255 for a, c in zip(alpha, coverage))
        return bytes(out)
    a16 = array("H")
    a16.frombytes(data)
    alpha16 = a16[channels - 1 :: channels]
    a16[channels - 1 :: channels] = array(
        "H", (a if c == 255 else (a * c + 127) // 255 for a, c in zip(alpha16, coverage))
    )
    return a16.tobytes()


def mask_to_graya8(mask: bytes) -> bytes:
    """A line mask (one byte per pixel, nonzero on lines) -> GRAYA U8 pixels for a Krita layer:
    black opaque on lines, transparent elsewhere."""
    out = bytearray(2 * len(mask))
    out[1::2] = mask.translate(bytes([0] + [255] * 255))
    return bytes(out)
