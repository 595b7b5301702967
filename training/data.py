"""Training data: clean line drawings from folders (plus synthetic ones), JPEG-degraded on the fly.

A sample is ``(jpeg, clean, qf)``: two ``(1, crop, crop)`` float tensors in ``[0, 1]`` (white = 1)
and the JPEG quality used. Degradation is real JPEG (Pillow's libjpeg) at a quality drawn per
sample, with a random offset of the 8x8 block grid relative to the crop.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from core.equations import gt_mask

log = logging.getLogger(__name__)

__all__ = [
    "IMAGE_SUFFIXES",
    "DataError",
    "PatchDataset",
    "jpeg_degrade",
    "list_images",
    "load_drawing",
    "load_folder",
    "sample_qf",
    "validation_crops",
]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
#: Share of the colour patches (``PatchDataset.colour_fraction``) saved with 4:4:4 chroma; the
#: others are 4:2:0, what most encoders write.
COLOUR_444 = 0.25
#: Fewer pure-white pixels than this and the drawing is reported as not having a 255 background.
MIN_WHITE_FRACTION = 0.3
#: What a colour patch is trained towards (:attr:`PatchDataset.colour_target`).
COLOUR_TARGETS = ("drawing", "plane", "inks")


class DataError(ValueError):
    """A data folder or image that cannot be used (missing, empty, unreadable, too small)."""


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder`` (sorted). Raises DataError when missing or empty."""
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"data folder does not exist: {folder}")
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return files


def load_drawing(path: str | os.PathLike) -> np.ndarray:
    """Read a clean drawing as 8-bit gray ``(H, W)``; transparency is composited on white.

    Raises:
        DataError: unreadable file, or a drawing whose background is not pure white (255).
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                # 16-bit drawings: 65535 is white, reduce to 8 bits (257 = 65535 / 255).
                arr = np.asarray(im, dtype=np.float64)
                scale = 257.0 if arr.max() > 255 else 1.0
                arr = np.clip(np.rint(arr / scale), 0, 255).astype(np.uint8)
            else:
                arr = np.asarray(im.convert("L"))
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DataError(f"cannot read image {path}: {e}") from None
    white = float((arr == 255).mean())
    if white < MIN_WHITE_FRACTION:
        raise DataError(
            f"{path}: only {white:.0%} of pixels are pure white (255); line drawings for training need "
            "an exact-white background (eq. 3 takes every pixel below 255 as line)"
        )
    return np.ascontiguousarray(arr)


def load_folder(folders: Sequence[str | os.PathLike], min_size: int = 1) -> list[np.ndarray]:
    """Load every usable drawing of ``folders``; bad ones are skipped with a warning.

    Raises:
        DataError: a folder is missing or empty, or no drawing at all is usable.
    """
    images = []
    for folder in folders:
        for p in list_images(folder):
            try:
                img = load_drawing(p)
            except DataError as e:
                warnings.warn(f"skipping {e}", stacklevel=2)
                continue
            if min(img.shape) < min_size:
                warnings.warn(
                    f"skipping {p}: {img.shape[1]}x{img.shape[0]} is smaller than the {min_size}px crop", stacklevel=2
                )
                continue
            images.append(img)
    if not images:
        raise DataError(f"no usable drawings in {', '.join(map(str, folders))}")
    return images


def jpeg_degrade(img: np.ndarray, qf: int, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """JPEG-compress a gray uint8 image at quality ``qf`` with Pillow and decode it.

    Args:
        img: ``(H, W)`` uint8.
        qf: JPEG quality 1-100.
        offset: ``(dy, dx)`` in 0..7: the 8x8 block grid starts this many pixels above/left of the
            image (the image is padded with white, compressed, and cropped back).

    Returns:
        ``(H, W)`` uint8, the decoded JPEG.
    """
    if img.dtype != np.uint8 or img.ndim != 2:
        raise DataError(f"jpeg_degrade takes a 2-D uint8 image, got {img.dtype} {img.shape}")
    if not 1 <= int(qf) <= 100:
        raise DataError(f"JPEG quality must be within 1..100, got {qf}")
    dy, dx = offset
    src = np.pad(img, ((dy, 0), (dx, 0)), constant_values=255) if (dy or dx) else img
    buf = io.BytesIO()
    Image.fromarray(src, "L").save(buf, format="JPEG", quality=int(qf))
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("L"))
    return np.ascontiguousarray(out[dy:, dx:])


def sample_qf(rng: np.random.Generator, lo: int = 5, hi: int = 95) -> int:
    """A JPEG quality weighted towards low values, as FBCNN trains: 3/4 of draws from 10..60
    (clipped to ``[lo, hi]``), the rest uniform over ``lo..hi``."""
    if rng.random() < 0.75:
        a, b = max(lo, 10), min(hi, 60)
        if a <= b:
            return int(rng.integers(a, b + 1))
    return int(rng.integers(lo, hi + 1))


@dataclass
class PatchDataset(torch.utils.data.Dataset):
    """Random training patches; item ``i`` is a pure function of ``(seed, i)``.

    Args:
        images: clean drawings (uint8 ``(H, W)``), e.g. from :func:`load_folder`.
        crop: patch side in pixels.
        length: virtual epoch length (number of items).
        qf: fixed JPEG quality, or None to draw from ``qf_range`` with :func:`sample_qf`.
        qf_range: (low, high) qualities when ``qf`` is None.
        synth_fraction: share of patches that are procedural drawings (training.synth).
        light_fraction: share of patches whose lines are made light: half of them with pencil
            grain, half flat (a light pen or a faded scan), so that flat grey is not taken for texture.
        synth_gradients: share of the synthetic drawings with shapes shaded by grey ramps
            (``synth_drawing(gradients=...)``); 0 leaves the synthetic drawings as they were.
        wild_fraction: share of patches degraded by :func:`training.degrade.degrade` (re-saved,
            resized, cropped, exported) instead of one JPEG; their target is the clean drawing
            put through the same geometry. The QF returned is the first save's.
            With ``colour_fraction`` too, that share of the wild patches is drawn in colour and
            degraded as RGB.
        wild_families: the :data:`training.degrade.FAMILIES` those patches are drawn from (uniformly);
            None for all of them. A backbone that only ever sees layers routed to it (the wild
            pair: resized layers, some re-saves after a crop) can be trained on those alone.
        wild_scales: the (low, high) scale factors of the resize families (None:
            :data:`training.degrade.SCALE_RANGE`), e.g. to weigh shrunk files, as the web makes them.
        colour_fraction: share of patches drawn in colour (:func:`training.colour.colourize`: one ink
            per stroke or per drawing, light inks included), saved as an RGB JPEG (4:2:0, or 4:4:4
            for :data:`COLOUR_444` of them) and given as the plane the pipeline hands the colour
            layers' own mask network for that layer (:func:`core.pipeline.network_planes`,
            ``mask_input(colour_mask=True)``, which is also the plane the backbone sees). See
            :meth:`colour_item` and ``colour_target``.
        colour_light: share of the colour patches drawn in light inks only (yellow, light blue,
            pink: :data:`training.colour.LIGHT_INKS`), the rest from every ink; 0 draws every
            patch's inks from all of them (a third light) and no extra random number.
        colour_random: share of the colour patches whose inks are drawn from the whole RGB cube
            (:func:`training.colour.random_ink`) instead of the named inks; 0 draws no extra random
            number.
        colour_target: what a colour patch's target is: ``"drawing"``, the gray drawing (mask
            training: its mask is eq. 3's); ``"plane"``, the line plane of the clean coloured
            drawing (its darkest channel, the distance from white), stretched as the input was
            (:mod:`core.ink`): what the colour stage needs from the backbone, since it turns
            ``1 - plane`` back into each ink's colour (:func:`core.colour.to_layer`).
            ``"inks"``: the ink network's item instead, ``(features, darkness)``: the (7, H, W)
            input :func:`core.colour.ink_features` makes of the JPEG and the clean coloured
            patch's darkness ``1 - c`` (3, H, W) (``python -m training inks``).
        seed: base seed.
    """

    images: list[np.ndarray]
    crop: int = 96
    length: int = 10**9
    qf: int | None = None
    qf_range: tuple[int, int] = (5, 95)
    synth_fraction: float = 0.0
    light_fraction: float = 0.0
    synth_gradients: float = 0.0
    wild_fraction: float = 0.0
    wild_families: tuple[str, ...] | None = None
    wild_scales: tuple[float, float] | None = None
    colour_fraction: float = 0.0
    colour_light: float = 0.0
    colour_random: float = 0.0
    colour_target: str = "drawing"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.colour_target not in COLOUR_TARGETS:
            raise DataError(f"colour_target must be one of {', '.join(COLOUR_TARGETS)}, got {self.colour_target!r}")

    def __len__(self) -> int:
        return self.length

    def _real_patch(self, rng: np.random.Generator, size: int) -> np.ndarray:
        best = None
        for _ in range(8):  # prefer patches with some ink: blank ones teach nothing
            img = self.images[int(rng.integers(len(self.images)))]
            h, w = img.shape
            if h < size or w < size:
                img = np.pad(img, ((0, max(0, size - h)), (0, max(0, size - w))), constant_values=255)
                h, w = img.shape
            y, x = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
            patch = img[y : y + size, x : x + size]
            ink = float((patch < 255).mean())
            if ink > 0.02:
                return patch
            if best is None or ink > best[0]:
                best = (ink, patch)
        return best[1]

    def __getitem__(self, index: int):
        return self._item(index)[:3]

    def _degraded(self, clean: np.ndarray, rng: np.random.Generator, size: int):
        """``clean`` (a gray or RGB ``size``-pixel patch) degraded by :func:`training.degrade.degrade`
        (a family of ``wild_families``), then cropped to ``crop``: ``(image, reference, first QF)``,
        the reference being the clean patch put through the same geometry."""
        from .degrade import SCALE_RANGE, degrade

        c = self.crop
        extra = ((0, 0),) * (clean.ndim - 2)  # the channels of an RGB patch
        # A resize may halve the patch: degrade a patch twice as big, then crop.
        big = np.pad(clean, ((0, size), (0, size), *extra), mode="reflect") if min(clean.shape[:2]) >= size else clean
        family = None if not self.wild_families else self.wild_families[int(rng.integers(len(self.wild_families)))]
        d = degrade(
            np.ascontiguousarray(big), rng, family, qf_range=self.qf_range, scale_range=self.wild_scales or SCALE_RANGE
        )
        img, ref = d.image, d.reference
        if min(img.shape[:2]) < c:
            pad = ((0, max(0, c - img.shape[0])), (0, max(0, c - img.shape[1])), *extra)
            img, ref = np.pad(img, pad, constant_values=255), np.pad(ref, pad, constant_values=255)
        y, x = int(rng.integers(img.shape[0] - c + 1)), int(rng.integers(img.shape[1] - c + 1))
        crop = (slice(y, y + c), slice(x, x + c))
        return np.ascontiguousarray(img[crop]), np.ascontiguousarray(ref[crop]), d.info["qf"]

    def _colour_patch(self, rgb: np.ndarray, coloured: np.ndarray, drawing: torch.Tensor, qf: float):
        """The item of a colour patch: ``rgb`` as the plane the pipeline makes of it, with the target
        of ``colour_target``: ``drawing`` (a (1, H, W) gray drawing whose eq. 3 mask is the line
        mask), or the line plane of ``coloured``, the clean coloured patch in ``rgb``'s geometry."""
        from core.pipeline import network_planes

        from .colour import line_plane

        if self.colour_target == "inks":
            from core import colour

            cp = colour.prepare(rgb)
            dark = torch.from_numpy(1.0 - coloured.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()
            return torch.from_numpy(colour.ink_features(rgb, cp.gray, cp.direction)), dark, torch.tensor(float(qf)), rgb
        planes = network_planes(rgb)
        plane = planes.mask_input(colour_mask=True)[0].float()
        target = drawing if self.colour_target == "drawing" else line_plane(coloured, planes.ink_k)[None]
        return plane, target, torch.tensor(float(qf)), rgb

    def _inks(self, rng: np.random.Generator) -> dict:
        """:func:`training.colour.colourize`'s ink choice for one colour patch: light inks only for a
        ``colour_light`` share, inks from the whole RGB cube for a ``colour_random`` share."""
        if self.colour_random and rng.random() < self.colour_random:
            return {"any_colour": True}
        return {"light": True if self.colour_light and rng.random() < self.colour_light else None}

    def colour_item(self, index: int):
        """Item ``index`` with the RGB JPEG patch it was made from: ``(plane, clean, qf, rgb)``,
        ``rgb`` an (crop, crop, 3) uint8 array for a colour patch, ``None`` for a gray one."""
        return self._item(index)

    def _item(self, index: int):
        from .synth import light_variant, synth_drawing

        rng = np.random.default_rng((self.seed, int(index)))
        size = self.crop + 8
        if rng.random() < self.synth_fraction:
            clean = synth_drawing(rng, size, size, gradients=self.synth_gradients)
        else:
            clean = self._real_patch(rng, size)
            k = int(rng.integers(4))
            clean = np.rot90(clean, k)
            if rng.random() < 0.5:
                clean = clean[:, ::-1]
            clean = np.ascontiguousarray(clean)
        if rng.random() < self.light_fraction:
            clean = light_variant(clean, rng, grain=bool(rng.random() < 0.5))
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float().div_(255.0).unsqueeze(0)
        c = self.crop
        if self.wild_fraction and rng.random() < self.wild_fraction:
            if self.colour_fraction and rng.random() < self.colour_fraction:
                from .colour import colourize

                # In colour, degraded as RGB (each save draws its chroma subsampling); a mask
                # network's target is the darkest channel, as a gray drawing as far from white.
                rgb, ref, qf = self._degraded(colourize(clean, rng, **self._inks(rng)), rng, size)
                return self._colour_patch(rgb, ref, to_t(ref.min(axis=2)), qf)
            img, ref, qf = self._degraded(clean, rng, size)
            return to_t(img), to_t(ref), torch.tensor(float(qf)), None
        qf = self.qf if self.qf is not None else sample_qf(rng, *self.qf_range)
        if self.colour_fraction and rng.random() < self.colour_fraction:
            from .colour import colourize, jpeg_rgb

            sub = "4:4:4" if rng.random() < COLOUR_444 else "4:2:0"
            coloured = colourize(clean, rng, **self._inks(rng))
            rgb = jpeg_rgb(coloured, qf, sub)
            dy, dx = int(rng.integers(8)), int(rng.integers(8))  # shift the block grid inside the crop
            crop = (slice(dy, dy + c), slice(dx, dx + c))
            return self._colour_patch(np.ascontiguousarray(rgb[crop]), coloured[crop], to_t(clean[crop]), qf)
        jpeg = jpeg_degrade(clean, qf)
        dy, dx = int(rng.integers(8)), int(rng.integers(8))  # shift the block grid inside the crop
        jpeg, clean = jpeg[dy : dy + c, dx : dx + c], clean[dy : dy + c, dx : dx + c]
        return to_t(jpeg), to_t(clean), torch.tensor(float(qf)), None


def validation_crops(images: Sequence[np.ndarray], crop: int = 256, per_image: int = 1) -> list[np.ndarray]:
    """Deterministic crops for validation: the ``per_image`` inkiest ``crop`` squares on a grid."""
    out = []
    for img in images:
        h, w = img.shape
        if h < crop or w < crop:
            out.append(img)
            continue
        cands = []
        for y in range(0, h - crop + 1, crop // 2):
            for x in range(0, w - crop + 1, crop // 2):
                p = img[y : y + crop, x : x + crop]
                cands.append((float(gt_mask(p).mean()), y, x))
        cands.sort(reverse=True)
        for _, y, x in cands[:per_image]:
            out.append(np.ascontiguousarray(img[y : y + crop, x : x + crop]))
    return out
