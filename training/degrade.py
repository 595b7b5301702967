"""Degradations of JPEGs as they reach artists, for training and for the wild benchmark.

A clean drawing becomes what a person finds on the web or in a folder: saved once, re-saved
(same grid or a shifted one, either quality higher), resized between saves or after the last
one (down or up, several kernels), cropped at any offset, exported as PNG. Every encoder is a
real one (Pillow's libjpeg: :func:`training.data.jpeg_degrade` for gray, :func:`encode` for RGB
with chroma subsampling). Everything drawn comes from the ``rng`` given, so a sample is a pure
function of its seed (fixed-seed validation: :func:`validation_pairs`).

Resizing changes the size, so :func:`degrade` returns the reference too: the clean drawing put
through the same geometry (same crop, same resize kernel), which is what a restoration of the
degraded image can hope to reach.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from .data import DataError, jpeg_degrade, sample_qf

__all__ = [
    "FAMILIES",
    "KERNELS",
    "Degraded",
    "dead_zone_jpeg",
    "degrade",
    "encode",
    "encode_with_table",
    "resize",
    "validation_pairs",
]

#: The degradation families, in the benchmark's order.
FAMILIES = ("single", "double_aligned", "double_shifted", "resize_then_jpeg", "resize_png", "crop", "png_export")
#: OpenCV resampling kernels drawn for a resize.
KERNELS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
#: Scale factors drawn for a resize (below 1: smaller).
SCALE_RANGE = (0.5, 2.0)
#: Chroma subsampling drawn for RGB saves (Pillow: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0).
SUBSAMPLINGS = (0, 1, 2)


@dataclass(frozen=True)
class Degraded:
    """One degraded sample: ``image`` (what the tool gets), ``reference`` (the clean drawing put
    through the same geometry, same shape) and ``info`` (what was done, JSON-friendly)."""

    image: np.ndarray
    reference: np.ndarray
    info: dict


def dead_zone_jpeg(img: np.ndarray, table: np.ndarray, zone: float) -> np.ndarray:
    """A stand-in for an encoder that does not round its coefficients (mozjpeg's trellis
    quantization takes a smaller coefficient where that saves bits): ``img`` (gray uint8, sides cut
    to multiples of 8) through a baseline JPEG's transform with the luminance ``table``, each
    coefficient rounded towards zero unless it lies ``zone`` of a step past the half step (0: the
    usual rounding), decoded with rounding and clipping. Not a real encoder: for the benchmark
    and the test of the consistency step's wider boxes (``core.jpeg_consistency.OTHER_SLACK``)."""
    import torch

    from core import jpeg_consistency as jc

    h, w = (img.shape[0] // 8) * 8, (img.shape[1] // 8) * 8
    blocks = torch.from_numpy(img[:h, :w].astype(np.float32) - 128).reshape(h // 8, 8, w // 8, 8)
    blocks = blocks.permute(0, 2, 1, 3).reshape(-1, 64)
    q = torch.as_tensor(np.asarray(table).reshape(64), dtype=torch.float32)
    c = jc.dct8(blocks)
    k = torch.sign(c) * torch.floor(torch.abs(c) / q + 0.5 - zone).clamp(min=0)
    out = (jc.idct8(k * q) + 128).reshape(h // 8, w // 8, 8, 8).permute(0, 2, 1, 3).reshape(h, w)
    return out.round().clamp(0, 255).numpy().astype(np.uint8)


def encode(img: np.ndarray, qf: int, subsampling: int | None = None) -> np.ndarray:
    """Save ``img`` (gray ``(H, W)`` or RGB ``(H, W, 3)`` uint8) as a JPEG at ``qf`` and decode it.

    Gray goes through :func:`training.data.jpeg_degrade`; RGB through Pillow with the given chroma
    ``subsampling`` (None: Pillow's default, 4:2:0).
    """
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise DataError(f"encode takes a gray or RGB uint8 image, got {img.dtype} {img.shape}")
    if img.ndim == 2:
        return jpeg_degrade(img, int(qf))
    buf = io.BytesIO()
    kw = {} if subsampling is None else {"subsampling": int(subsampling)}
    Image.fromarray(img, "RGB").save(buf, format="JPEG", quality=int(qf), **kw)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def encode_with_table(img: np.ndarray, table, subsampling: int | None = None) -> np.ndarray:
    """Save ``img`` (gray or RGB uint8) as a JPEG written by libjpeg (through Pillow) with the 64
    steps ``table`` (natural order; another encoder's, say) for luminance and, for RGB, for chroma
    too, with chroma ``subsampling`` (None: Pillow's default, 4:2:0), and decode it."""
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise DataError(f"encode_with_table takes a gray or RGB uint8 image, got {img.dtype} {img.shape}")
    steps = [int(v) for v in np.asarray(table).reshape(-1)]
    mode = "L" if img.ndim == 2 else "RGB"
    kw = {} if subsampling is None or mode == "L" else {"subsampling": int(subsampling)}
    buf = io.BytesIO()
    Image.fromarray(img, mode).save(buf, format="JPEG", qtables=[steps] if mode == "L" else [steps, steps], **kw)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.ascontiguousarray(np.asarray(im.convert(mode)))


def resize(img: np.ndarray, scale: float, kernel: str) -> np.ndarray:
    """``img`` scaled by ``scale`` (both sides, rounded) with an OpenCV ``kernel`` of :data:`KERNELS`."""
    h, w = img.shape[:2]
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    return np.ascontiguousarray(cv2.resize(img, size, interpolation=KERNELS[kernel]))


def _save(img: np.ndarray, qf: int, rng: np.random.Generator, info: dict, key: str) -> np.ndarray:
    sub = int(rng.choice(SUBSAMPLINGS)) if img.ndim == 3 else None
    info[key] = int(qf)
    if sub is not None:
        info[key + "_subsampling"] = sub
    return encode(img, qf, sub)


def degrade(
    clean: np.ndarray,
    rng: np.random.Generator,
    family: str | None = None,
    qf_range: tuple[int, int] = (5, 95),
    resave_range: tuple[int, int] = (30, 95),
    scale_range: tuple[float, float] = SCALE_RANGE,
) -> Degraded:
    """Degrade ``clean`` (gray or RGB uint8) as one of :data:`FAMILIES` (drawn when None).

    * ``single``: one save at a quality from :func:`training.data.sample_qf`.
    * ``double_aligned`` / ``double_shifted``: saved, then saved again at an independent quality
      (``resave_range``; either may be higher), on the same grid or after a crop of 1-7 pixels
      on each side.
    * ``resize_then_jpeg``: saved, resized (a scale drawn log-uniformly from ``scale_range``,
      :data:`SCALE_RANGE` unless given; a kernel of :data:`KERNELS`), saved again at quality 60-95.
    * ``resize_png``: saved, resized, kept as pixels (an export with no table).
    * ``crop``: saved, then cropped at an offset that is not a multiple of 8.
    * ``png_export``: saved and exported losslessly (same pixels as ``single``; no table).
    """
    family = FAMILIES[int(rng.integers(len(FAMILIES)))] if family is None else family
    if family not in FAMILIES:
        raise ValueError(f"unknown degradation family {family!r}; known: {', '.join(FAMILIES)}")
    lo, hi = qf_range
    info: dict = {"family": family}
    ref = clean
    img = _save(clean, sample_qf(rng, lo, hi), rng, info, "qf")
    if family in ("double_aligned", "double_shifted"):
        if family == "double_shifted":
            dy, dx = int(rng.integers(1, 8)), int(rng.integers(1, 8))
            img, ref = img[dy:, dx:], ref[dy:, dx:]
            info["shift"] = [dy, dx]
        img = _save(
            np.ascontiguousarray(img), int(rng.integers(resave_range[0], resave_range[1] + 1)), rng, info, "qf2"
        )
    elif family in ("resize_then_jpeg", "resize_png"):
        scale = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
        if abs(scale - 1) < 0.05:
            scale = 1.1
        kernel = str(rng.choice(list(KERNELS)))
        if kernel == "area" and scale > 1:
            kernel = "linear"  # area is a downscaling kernel
        img, ref = resize(img, scale, kernel), resize(ref, scale, kernel)
        info.update(scale=round(scale, 4), kernel=kernel)
        if family == "resize_then_jpeg":
            img = _save(img, int(rng.integers(60, 96)), rng, info, "qf2")
    elif family == "crop":
        dy, dx = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        img, ref = img[dy:, dx:], ref[dy:, dx:]
        info["crop"] = [dy, dx]
    elif family == "png_export":
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        buf.seek(0)
        with Image.open(buf) as im:
            img = np.asarray(im)
    return Degraded(np.ascontiguousarray(img), np.ascontiguousarray(ref), info)


def validation_pairs(
    crops: Sequence[np.ndarray],
    families: Sequence[str] = FAMILIES,
    seed: int = 0,
    qf_range: tuple[int, int] = (10, 40),
    scale_range: tuple[float, float] = SCALE_RANGE,
) -> list[Degraded]:
    """Fixed-seed validation: every crop in every family, drawn from ``(seed, family, crop)`` (the
    family's index in :data:`FAMILIES`, so a subset of families draws the same pairs as the whole)."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown degradation family {unknown[0]!r}; known: {', '.join(FAMILIES)}")
    out = []
    for fam in families:
        fi = FAMILIES.index(fam)
        for ci, c in enumerate(crops):
            out.append(degrade(c, np.random.default_rng([seed, fi, ci]), fam, qf_range, scale_range=scale_range))
    return out
