"""Image files and layer formats for the restore pipeline.

Two halves:

* **Layer conversions** (pure numpy). The networks work on one gray plane of floats in ``[0, 1]``
  (white = 1). :func:`to_gray_float` turns any supported layer into that plane and
  :func:`from_gray_float` turns the restored plane back into a layer of the caller's layout and
  bit depth.
* **Files**. :func:`read_image` reads PNG/JPEG/TIFF/WebP/BMP... (8 or 16 bits per channel) into a
  numpy layer; :func:`write_png` writes one losslessly.

Supported layers (numpy, ``uint8`` with white 255 or ``uint16`` with white 65535):

========  ===========  ==========================================================
layout    shape        meaning
========  ===========  ==========================================================
``L``     (H, W)       gray
``LA``    (H, W, 2)    gray + alpha (line art on a transparent layer)
``RGB``   (H, W, 3)    colour
``RGBA``  (H, W, 4)    colour + alpha
========  ===========  ==========================================================

Conversions, exactly:

* Alpha is composited on white: ``v = a * c + (1 - a)`` with ``a`` and ``c`` in ``[0, 1]``; a fully
  transparent pixel becomes white whatever its colour values hold.
* Colour becomes luminance with the BT.601 weights JPEG itself uses:
  ``Y = 0.299 R + 0.587 G + 0.114 B``. The pipeline uses this for colour layers without colour
  (a gray drawing saved as RGB); coloured layers go through :mod:`core.colour` instead.
* ``background="white"`` output keeps the input layout: gray in every colour channel, and an
  alpha channel (if the input had one) that is fully opaque, because the transparency was
  composited on white before restoring.
* ``background="transparent"`` output is black line art whose coverage is the alpha channel:
  colour channels 0 and ``alpha = white - v`` (pure white -> fully transparent, black -> opaque).
  Laid over white it shows the restored gray ``v`` again (up to rounding). Gray input gains an
  alpha channel (``LA``); colour input comes back as ``RGBA``.
* 16-bit input is converted to floats directly (no 8-bit step) and comes back as 16-bit.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InvalidImageError, InvalidOptionError
from .options import BACKGROUNDS as _BACKGROUNDS
from .steps import step

__all__ = [
    "LAYOUTS",
    "BACKGROUNDS",
    "IMAGE_EXTENSIONS",
    "LUMA_WEIGHTS",
    "GrayPlane",
    "ImageFile",
    "layout_of",
    "has_transparency",
    "to_gray_float",
    "from_gray_float",
    "quantize",
    "read_image",
    "write_png",
    "estimate_jpeg_quality",
    "scaled_table",
]

#: Channel count -> layout name.
LAYOUTS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
#: Output background choices (:data:`core.options.BACKGROUNDS`).
BACKGROUNDS = _BACKGROUNDS
#: BT.601 luma weights (R, G, B), the ones JPEG and Pillow's ``convert("L")`` use.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: File name endings treated as images when a folder is given to the CLI.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".webp", ".bmp")

# Rows converted per step, so that an 8192^2 RGBA layer never needs a full float copy per channel.
_CHUNK_ROWS = 512


def _rows(h: int) -> Iterator[slice]:
    for y in range(0, h, _CHUNK_ROWS):
        step("rows", y, h)  # a step boundary for a caller's hook (core.steps)
        yield slice(y, min(h, y + _CHUNK_ROWS))


def layout_of(img: np.ndarray) -> str:
    """Validate a layer and return its layout name (``L``, ``LA``, ``RGB`` or ``RGBA``).

    Raises:
        InvalidImageError: not a numpy array, dtype other than uint8/uint16, or a shape that is
            not ``(H, W)`` or ``(H, W, C)`` with ``C`` in 1..4, or an empty image.
    """
    if not isinstance(img, np.ndarray):
        raise InvalidImageError(f"image must be a numpy array, got {type(img).__name__}")
    if img.dtype not in (np.uint8, np.uint16):
        raise InvalidImageError(f"image pixels must be uint8 (0-255) or uint16 (0-65535), got {img.dtype}")
    if img.ndim == 2:
        channels = 1
    elif img.ndim == 3 and img.shape[2] in LAYOUTS:
        channels = img.shape[2]
    else:
        raise InvalidImageError(
            f"image shape {img.shape} is not (H, W) gray or (H, W, C) with C = 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA)"
        )
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise InvalidImageError(f"image is empty (shape {img.shape})")
    return LAYOUTS[channels]


@dataclass
class GrayPlane:
    """The network-ready view of a layer.

    Attributes:
        gray: (H, W) float32 in [0, 1], white = 1, alpha already composited on white.
        layout: the input's layout name.
        dtype: the input's numpy dtype (uint8 or uint16).
        notes: human-readable remarks about the conversion (colour, alpha).
    """

    gray: np.ndarray
    layout: str
    dtype: np.dtype
    notes: list[str]


def has_transparency(img: np.ndarray) -> bool:
    """True when the layer has an alpha channel (LA, RGBA) and some pixel is not fully opaque
    (in row chunks, no full-size temporary)."""
    if img.ndim != 3 or img.shape[2] not in (2, 4):
        return False
    white = 255 if img.dtype == np.uint8 else 65535
    return any(bool((img[y : y + _CHUNK_ROWS, :, -1] < white).any()) for y in range(0, img.shape[0], _CHUNK_ROWS))


def to_gray_float(img: np.ndarray) -> GrayPlane:
    """Convert a layer of any supported layout and depth to a gray float plane (see module doc).

    Works in row chunks: the only full-size allocation is the (H, W) float32 result.
    """
    layout = layout_of(img)
    white = 255.0 if img.dtype == np.uint8 else 65535.0
    h, w = img.shape[:2]
    notes: list[str] = []
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    out = np.empty((h, w), dtype=np.float32)
    colour = layout in ("RGB", "RGBA")
    alpha = layout in ("LA", "RGBA")
    wr, wg, wb = (np.float32(c / white) for c in LUMA_WEIGHTS)
    for rows in _rows(h):
        block = img[rows]
        if colour:
            v = block[..., 0] * wr + block[..., 1] * wg + block[..., 2] * wb
        elif alpha:
            v = block[..., 0].astype(np.float32) * np.float32(1.0 / white)
        else:
            v = block.astype(np.float32) * np.float32(1.0 / white)
        if alpha:
            a = block[..., -1].astype(np.float32) * np.float32(1.0 / white)
            v = v * a + (1.0 - a)
        np.clip(v, 0.0, 1.0, out=out[rows])
    if colour:
        notes.append("colour layer without colour (R = G = B): restored on its luminance (BT.601)")
    if alpha and has_transparency(img):
        notes.append("transparent pixels were composited on white before restoring")
    return GrayPlane(gray=out, layout=layout, dtype=img.dtype, notes=notes)


def quantize(x: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Round a float plane in [0, 1] (values outside are clipped) to uint8 or uint16."""
    dt = np.dtype(dtype)
    if dt == np.uint8:
        white = 255.0
    elif dt == np.uint16:
        white = 65535.0
    else:
        raise InvalidImageError(f"can only quantize to uint8 or uint16, not {dt}")
    out = np.empty(x.shape, dtype=dt)
    flat_in = x.reshape(x.shape[0], -1) if x.ndim > 1 else x.reshape(1, -1)
    flat_out = out.reshape(flat_in.shape)
    for rows in _rows(flat_in.shape[0]):
        v = np.clip(flat_in[rows].astype(np.float32) * np.float32(white) + np.float32(0.5), 0, white)
        flat_out[rows] = v.astype(dt)  # floor(x + 0.5) = round half up, as v >= 0
    return out


def from_gray_float(gray: np.ndarray, layout: str, dtype: np.dtype | type, background: str = "white") -> np.ndarray:
    """Turn a restored (H, W) float plane in [0, 1] back into a layer (see the module doc).

    Args:
        gray: (H, W) float array, white = 1.
        layout: the input's layout name, which decides the output channels.
        dtype: uint8 or uint16, the output depth.
        background: ``"white"`` (same layout, opaque) or ``"transparent"`` (black lines with
            ``alpha = white - gray``; gray -> LA, colour -> RGBA).

    Returns:
        The layer as a new numpy array of ``dtype``.
    """
    if layout not in LAYOUTS.values():
        raise InvalidImageError(f"unknown layout {layout!r}; expected one of {sorted(LAYOUTS.values())}")
    if background not in BACKGROUNDS:
        raise InvalidOptionError(f"background must be one of {BACKGROUNDS}, got {background!r}")
    if gray.ndim != 2:
        raise InvalidImageError(f"restored plane must be (H, W), got shape {gray.shape}")
    dt = np.dtype(dtype)
    q = quantize(gray, dt)
    white = np.iinfo(dt).max
    h, w = q.shape
    colour = layout in ("RGB", "RGBA")
    if background == "white":
        if layout == "L":
            return q
        out = np.empty((h, w, len(layout)), dtype=dt)
        if colour:
            out[..., :3] = q[..., None]
        else:
            out[..., 0] = q
        if layout.endswith("A"):
            out[..., -1] = white
        return out
    # transparent: coverage = white - v, colour black
    out = np.zeros((h, w, 4 if colour else 2), dtype=dt)
    np.subtract(white, q, out=out[..., -1], dtype=dt)
    return out


# --------------------------------------------------------------------------------------- files


@dataclass
class ImageFile:
    """An image read from disk.

    Attributes:
        pixels: the layer (see the module doc), uint8 or uint16.
        format: the file format as Pillow names it (``"PNG"``, ``"JPEG"``...).
        jpeg_quality: the IJG quality (1-100) that best explains the file's luminance
            quantisation table, for JPEG files; ``None`` otherwise.
        jpeg_table: that table itself, 64 steps in natural order (JPEG files; else ``None``).
    """

    pixels: np.ndarray
    format: str
    jpeg_quality: int | None = None
    jpeg_table: tuple[int, ...] | None = None


# IJG standard luminance quantisation table (natural order), the base of libjpeg's quality scale.
_IJG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.int64,
)  # fmt: skip


def scaled_table(base, quality: int) -> np.ndarray:
    """A quantization table given at quality 50 (``base``, any shape) at ``quality`` 1-100, as
    libjpeg scales its tables (and ``-quant-table`` ones), clamped to 8 bits (baseline)."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be within 1..100, got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((np.asarray(base, dtype=np.int64) * scale + 50) // 100, 1, 255)


def ijg_table(quality: int) -> np.ndarray:
    """The 64 luminance steps (natural order) libjpeg writes for ``quality`` 1-100 (baseline)."""
    return scaled_table(_IJG_LUMA, quality)


def estimate_jpeg_quality(luma_table) -> int | None:
    """The libjpeg quality (1-100) whose scaled standard table is closest to ``luma_table``.

    Args:
        luma_table: 64 quantisation steps in natural (row-major) order, as Pillow's
            ``Image.quantization[0]`` gives them.

    Returns:
        The best quality, or ``None`` when the table is not 64 values. Files from encoders that
        do not use the IJG tables get the nearest IJG quality, which is only an estimate.
    """
    t = np.asarray(list(luma_table), dtype=np.int64)
    if t.size != 64:
        return None
    errors = [np.abs(ijg_table(q) - t).sum() for q in range(1, 101)]
    return int(np.argmin(errors)) + 1


def _png_bit_depth(path: Path) -> int | None:
    with open(path, "rb") as f:
        head = f.read(25)
    if len(head) == 25 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return head[24]
    return None


def _read_16bit_colour(path: Path, mode: str) -> np.ndarray:
    """Read a 16-bit colour/LA PNG or TIFF with OpenCV (Pillow reduces those to 8 bits)."""
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InvalidImageError(f"{path}: OpenCV could not decode this 16-bit image")
    if arr.ndim == 2:
        return arr
    if mode == "LA":  # OpenCV expands gray+alpha to BGRA
        return np.ascontiguousarray(arr[..., [0, 3]]) if arr.shape[2] == 4 else arr[..., 0]
    if arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    if arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    raise InvalidImageError(f"{path}: unsupported channel count {arr.shape[2]}")


def read_image(path: str | os.PathLike) -> ImageFile:
    """Read an image file into a uint8/uint16 layer (L, LA, RGB or RGBA).

    8-bit files, palettes, 1-bit and CMYK are read with Pillow (palette -> RGB/RGBA, 1-bit -> L,
    CMYK -> RGB) and EXIF orientation is applied, so the result looks as a viewer shows it.
    16-bit gray files stay 16-bit (Pillow); 16-bit colour PNG/TIFF files are read with OpenCV so
    they also stay 16-bit. 32-bit integer gray is accepted when its values fit in 16 bits.

    Raises:
        InvalidImageError: the file is missing, unreadable, not an image, or in a pixel format
            this reader does not handle (float images, 32-bit values above 65535...).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise InvalidImageError(f"{p}: no such file")
    try:
        im = Image.open(p)
        fmt = im.format or "?"
        mode = im.mode
        deep = False
        if fmt == "PNG" and mode in ("RGB", "RGBA", "LA"):
            deep = _png_bit_depth(p) == 16
        elif fmt == "TIFF" and mode in ("RGB", "RGBA", "LA"):
            bits = im.tag_v2.get(258, (8,))
            deep = max(bits if isinstance(bits, tuple) else (bits,)) == 16
        if deep:
            return ImageFile(_read_16bit_colour(p, mode), fmt)
        quality = table = None
        if fmt == "JPEG" and getattr(im, "quantization", None):
            luma = list(im.quantization.get(0, []))
            quality = estimate_jpeg_quality(luma)
            table = tuple(int(v) for v in luma) if len(luma) == 64 else None
        im = ImageOps.exif_transpose(im)
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InvalidImageError(f"{p}: not a readable image ({e})") from e
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        arr = np.asarray(im)
    elif mode.startswith("I;16"):
        arr = np.asarray(im).astype(np.uint16)
    elif mode == "I":
        wide = np.asarray(im)
        if wide.size and (wide.min() < 0 or wide.max() > 65535):
            raise InvalidImageError(f"{p}: 32-bit integer pixels outside 0..65535 are not supported")
        arr = wide.astype(np.uint16)
    elif mode == "1":
        arr = np.asarray(im.convert("L"))
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    elif mode in ("La", "RGBa"):
        arr = np.asarray(im.convert(mode.upper()))
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        arr = np.asarray(im.convert("RGB"))
    else:
        raise InvalidImageError(f"{p}: pixel mode {mode!r} is not supported (use 8/16-bit L, LA, RGB, RGBA)")
    return ImageFile(np.ascontiguousarray(arr), fmt, quality, table)


def write_png(path: str | os.PathLike, img: np.ndarray, *, compress_level: int = 1) -> None:
    """Write a layer (L, LA, RGB, RGBA; uint8 or uint16) to ``path`` as a lossless PNG.

    The file appears atomically (written beside it, then renamed). 16-bit ``LA`` is written as
    16-bit RGBA (gray copied into R, G and B) because neither Pillow nor OpenCV writes 16-bit
    gray+alpha PNGs; every other layer keeps its layout.

    Args:
        compress_level: zlib level 0-9; 1 is fast and still lossless.
    """
    layout = layout_of(img)
    p = Path(path)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.dtype == np.uint8:
        from PIL import Image

        def save(target: str) -> None:
            Image.fromarray(img, layout).save(target, format="PNG", compress_level=compress_level)

    else:
        import cv2

        if layout == "L":
            bgr = img
        elif layout == "LA":
            bgr = np.dstack([img[..., 0]] * 3 + [img[..., 1]])
        elif layout == "RGB":
            bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        else:
            bgr = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)

        def save(target: str) -> None:
            ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
            if not ok:
                raise OSError(f"OpenCV failed to encode {p}")
            buf.tofile(target)

    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=".png", dir=p.parent)
    os.close(fd)
    try:
        save(tmp)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
