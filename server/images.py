"""Conversions between wire pixel payloads (see ``protocol.PixelFormat``) and numpy arrays.

The restore pipeline takes ``(H, W)``, ``(H, W, 2)``, ``(H, W, 3)`` or ``(H, W, 4)`` arrays of uint8 or
uint16 in gray / gray+alpha / RGB / RGBA channel order. Raw payloads map onto such arrays without a
copy where possible (``bgra`` needs one, to reorder channels). PNG payloads are decoded after their
header's size has been checked against the server's pixel limit, so a small "PNG bomb" cannot make
the server allocate a huge image.

Errors: :class:`core.errors.InvalidImageError` (code ``invalid_image``) for undecodable or
inconsistent pixels; :class:`PixelLimitError` (code ``too_large``) for images over the limit.
"""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np
from PIL import Image

from core.errors import InvalidImageError

from .protocol import FORMAT_INFO, ErrorCode, PixelFormat

__all__ = ["PixelLimitError", "png_header", "decoded_size", "to_array", "from_array", "mask_bytes"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PixelLimitError(ValueError):
    """The image has more pixels than the server accepts."""

    code = ErrorCode.TOO_LARGE.value


def png_header(data: bytes) -> tuple[int, int, int, int]:
    """Read ``(width, height, bit_depth, colour_type)`` from a PNG file's IHDR chunk.

    Raises:
        InvalidImageError: not a PNG, or the IHDR chunk is missing or truncated.
    """
    if len(data) < 33 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise InvalidImageError("not a PNG file (bad signature or no IHDR chunk)")
    width, height, depth, ctype = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, ctype


#: Channels a PNG of each IHDR colour type decodes to (palette: up to RGBA).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}


def decoded_size(fmt: PixelFormat, width: int, height: int, data: bytes) -> int:
    """Bytes the request's image takes decoded: the raw payload's length, or for PNG the size its
    header announces (read without decoding anything).

    Raises:
        InvalidImageError: a PNG without a valid header.
    """
    if fmt is not PixelFormat.PNG:
        return len(data)
    w, h, depth, ctype = png_header(data)
    if ctype not in _PNG_CHANNELS:
        raise InvalidImageError(
            f"the PNG header gives colour type {ctype}; valid PNG colour types are 0, 2, 3, 4 and 6"
        )
    return w * h * _PNG_CHANNELS[ctype] * (2 if depth == 16 else 1)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise PixelLimitError(
            f"the image is {width}x{height} = {width * height} pixels; this server takes at most {max_pixels}"
        )


def _decode_png(data: bytes, width: int, height: int, max_pixels: int) -> np.ndarray:
    w, h, depth, ctype = png_header(data)
    _check_pixels(w, h, max_pixels)
    if (w, h) != (width, height):
        raise InvalidImageError(f"the request says {width}x{height} but the PNG is {w}x{h}")
    if depth == 16 and ctype in (2, 4, 6):
        # Pillow reduces 16-bit colour PNGs to 8 bits; OpenCV keeps them (as BGR/BGRA).
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None or arr.shape[:2] != (h, w):
            raise InvalidImageError("the PNG file is corrupt or truncated")
        if ctype == 4:  # gray+alpha comes back as BGRA with equal colour channels
            return np.ascontiguousarray(arr[..., [0, 3]]) if arr.ndim == 3 else arr
        return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA if ctype == 6 else cv2.COLOR_BGR2RGB)
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            im.load()
            mode = im.mode
            if mode in ("P", "PA"):
                im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
            elif mode == "1":
                im = im.convert("L")
            elif mode == "I":
                im = im.convert("I;16")
            arr = np.asarray(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        # Pillow's messages may hold object reprs ("<_io.BytesIO object at 0x...>"): not for people.
        reason = str(e) if "object at 0x" not in str(e) and "<" not in str(e) else type(e).__name__
        raise InvalidImageError(f"cannot decode the PNG file (corrupt or truncated?): {reason[:200]}") from None
    if arr.dtype not in (np.uint8, np.uint16) or arr.shape[:2] != (h, w):
        raise InvalidImageError(f"unsupported PNG layout (mode {mode})")
    return arr


def to_array(fmt: PixelFormat, width: int, height: int, data: bytes, max_pixels: int) -> np.ndarray:
    """Turn a request's payload into the array the pipeline takes.

    Args:
        fmt: the payload's format.
        width, height: the image size the request gives.
        data: the payload; for raw formats its length has already been checked by the protocol.
        max_pixels: the server's limit on ``width * height`` (checked before any allocation).

    Returns:
        ``(H, W)`` or ``(H, W, C)`` uint8/uint16 array, channels in gray(+alpha)/RGB(A) order. Raw
        non-BGRA payloads give a read-only view of ``data`` (no copy).

    Raises:
        PixelLimitError, InvalidImageError.
    """
    _check_pixels(width, height, max_pixels)
    if fmt is PixelFormat.PNG:
        return _decode_png(data, width, height, max_pixels)
    info = FORMAT_INFO[fmt]
    if len(data) != width * height * info.pixel_bytes:
        raise InvalidImageError(f"{len(data)} bytes do not make a {width}x{height} {fmt} image")
    dtype = np.dtype(np.uint8) if info.sample_bytes == 1 else np.dtype("<u2")
    arr = np.frombuffer(data, dtype=dtype)
    arr = arr.reshape((height, width) if info.channels == 1 else (height, width, info.channels))
    if not dtype.isnative:  # pragma: no cover - big-endian hosts
        arr = arr.astype(np.uint16)
    if info.order == "bgra":
        arr = arr[..., [2, 1, 0, 3]]
    return arr


def _raw_format(channels: int, dtype: np.dtype, bgra: bool) -> PixelFormat:
    bits = "8" if dtype == np.uint8 else "16"
    order = {1: "gray", 2: "graya", 3: "rgb", 4: "bgra" if bgra else "rgba"}[channels]
    return PixelFormat(order + bits)


def from_array(image: np.ndarray, request_fmt: PixelFormat) -> tuple[PixelFormat, bytes]:
    """Encode a restored image for the reply, in the request's format family.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` (C in 2..4) uint8/uint16 array in gray(+alpha)/RGB(A) order.
        request_fmt: the request's format; ``bgra*`` results are sent as BGRA, ``png`` as a PNG file.

    Returns:
        ``(format, payload)``; the format gains alpha when the image did (transparent background).
    """
    if image.dtype not in (np.uint8, np.uint16) or image.ndim not in (2, 3):
        raise InvalidImageError(f"the pipeline returned {image.dtype} {image.shape}; expected uint8/uint16 (H, W[, C])")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in (1, 2, 3, 4):
        raise InvalidImageError(f"the pipeline returned {channels} channels")
    if request_fmt is PixelFormat.PNG:
        if channels == 1:
            bgr = image
        elif channels == 2:
            gray, alpha = image[..., 0], image[..., 1]
            bgr = np.stack([gray, gray, gray, alpha], axis=-1)
        elif channels == 3:
            bgr = image[..., ::-1]
        else:
            bgr = image[..., [2, 1, 0, 3]]
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(bgr))
        if not ok:
            raise InvalidImageError("could not encode the result as PNG")
        return PixelFormat.PNG, buf.tobytes()
    fmt = _raw_format(channels, image.dtype, FORMAT_INFO[request_fmt].order == "bgra")
    if FORMAT_INFO[fmt].order == "bgra":
        image = image[..., [2, 1, 0, 3]]
    if image.dtype == np.uint16 and not np.dtype(np.uint16).isnative:  # pragma: no cover - big-endian hosts
        image = image.astype("<u2")
    return fmt, np.ascontiguousarray(image).tobytes()


def mask_bytes(mask: np.ndarray | None) -> bytes | None:
    """A 0/1 ``(H, W)`` mask as gray8 bytes with 255 on lines (None stays None)."""
    if mask is None:
        return None
    return np.ascontiguousarray((np.asarray(mask) != 0).astype(np.uint8) * 255).tobytes()
