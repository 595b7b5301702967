"""Coloured variants of gray line drawings, for evaluation (and later training) in colour.

A gray ground truth ``g`` (white paper = 255) is a coverage map ``a = (255 - g) / 255``; its coloured
variant in an ink ``ink`` (RGB, 0..255) is ``c = 255 - a (255 - ink)`` per channel, anti-aliased
exactly as the gray one. Inks are drawn per drawing (one ink) or per stroke (each connected
stroke its own ink), from dark inks (sepia, brown, blue, red, green, violet) and light ones
(yellow, light blue, pink, whose luminance is near 200-230), each jittered a little.
JPEG damage is Pillow's RGB JPEG with 4:2:0 or 4:4:4 chroma subsampling (:func:`jpeg_rgb`).

Everything is seeded: ``colourize(g, np.random.default_rng(seed))`` always gives the same image.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import torch

from core import ink

__all__ = [
    "COLOUR_SEED",
    "DARK_INKS",
    "INKS",
    "LIGHT_INKS",
    "colour_mask",
    "coloured_crop",
    "colourize",
    "in_ink",
    "random_ink",
    "jpeg_rgb",
    "line_plane",
    "rgb_ssim",
]

#: Dark inks (RGB).
DARK_INKS = {
    "sepia": (112, 66, 20),
    "brown": (101, 56, 28),
    "blue": (25, 45, 160),
    "red": (185, 25, 35),
    "green": (25, 110, 55),
    "violet": (95, 35, 125),
}
#: Light inks (RGB), luminance 200-230: a luminance-only mask would take them for paper.
LIGHT_INKS = {
    "yellow": (250, 222, 40),
    "light blue": (165, 212, 255),
    "pink": (255, 178, 212),
}
INKS = {**DARK_INKS, **LIGHT_INKS}
#: Seed of the evaluation sets' colours.
COLOUR_SEED = 2028
#: Each channel of a drawn ink moves by up to this many levels.
JITTER = 8
SUBSAMPLING = {"4:2:0": 2, "4:4:4": 0}


#: A random ink (:func:`random_ink`) is at least this many levels from white in its darkest channel.
MIN_INK_DARKNESS = 25


def random_ink(rng: np.random.Generator) -> np.ndarray:
    """An ink drawn uniformly from the RGB cube, at least :data:`MIN_INK_DARKNESS` levels from white
    in its darkest channel: colours outside the named inks, so that a network trained on them does
    not learn the named inks' palette."""
    while True:
        ink = rng.integers(0, 256, size=3)
        if 255 - int(ink.min()) >= MIN_INK_DARKNESS:
            return ink


def _ink(rng: np.random.Generator, light: bool | None = None, any_colour: bool = False) -> np.ndarray:
    if any_colour:
        return random_ink(rng)
    pool = list(INKS.values()) if light is None else list((LIGHT_INKS if light else DARK_INKS).values())
    base = np.asarray(pool[int(rng.integers(len(pool)))], dtype=np.int64)
    return np.clip(base + rng.integers(-JITTER, JITTER + 1, size=3), 0, 255)


def in_ink(gray: np.ndarray, ink) -> np.ndarray:
    """A gray uint8 drawing drawn in one ink (RGB) instead: ``c = 255 - (255 - g) / 255 (255 - ink)``,
    rounded; (H, W, 3) uint8."""
    cover = (255.0 - gray.astype(np.float64)) / 255.0
    return np.floor(255.0 - cover[..., None] * (255.0 - np.asarray(ink, np.float64)) + 0.5).astype(np.uint8)


def colourize(
    gray: np.ndarray,
    rng: np.random.Generator,
    per_stroke: bool | None = None,
    light: bool | None = None,
    any_colour: bool = False,
) -> np.ndarray:
    """A coloured (H, W, 3) uint8 variant of a gray uint8 drawing (see the module doc).

    Args:
        gray: (H, W) uint8, paper exactly 255.
        rng: the random source (seeded by the caller).
        per_stroke: one ink per connected stroke (True), one for the drawing (False), or drawn
            at random (None, half and half).
        light: inks drawn from :data:`LIGHT_INKS` only (True), :data:`DARK_INKS` only (False), or
            from both (None).
        any_colour: inks drawn from the whole RGB cube instead (:func:`random_ink`; ``light`` is
            then ignored).
    """
    if per_stroke is None:
        per_stroke = bool(rng.integers(2))
    if not per_stroke:
        return in_ink(gray, _ink(rng, light, any_colour))
    n, labels = cv2.connectedComponents((gray < 255).astype(np.uint8), connectivity=8)
    ink = np.stack([_ink(rng, light, any_colour) for _ in range(max(n, 1))])[labels]
    cover = (255.0 - gray.astype(np.float64)) / 255.0
    c = 255.0 - cover[..., None] * (255.0 - ink)
    return np.clip(np.floor(c + 0.5), 0, 255).astype(np.uint8)


def colour_mask(img: np.ndarray) -> np.ndarray:
    """The ground-truth line mask of a coloured drawing: every pixel that is not pure white."""
    return (img.min(axis=2) < 255).astype(np.uint8)


def line_plane(img: np.ndarray, ink_k: float = 1.0) -> torch.Tensor:
    """The line plane of a clean coloured drawing, what a colour layer's backbone is trained
    towards: its darkest channel (the distance from white paper, the plane
    :func:`core.colour.to_layer` turns back into each ink's colour), in [0, 1] as a float32
    ``(H, W)`` tensor, stretched by the light-ink factor ``ink_k`` the layer's JPEG got
    (:func:`core.ink.stretch`, as the network's input is)."""
    plane = torch.from_numpy(img.min(axis=2).astype(np.float32) / 255.0)
    return ink.stretch(plane, ink_k) if ink_k != 1.0 else plane


def jpeg_rgb(img: np.ndarray, qf: int, subsampling: str = "4:2:0") -> np.ndarray:
    """Pillow's RGB JPEG round trip at quality ``qf`` with ``subsampling`` 4:2:0 or 4:4:4."""
    from PIL import Image

    if subsampling not in SUBSAMPLING:
        raise ValueError(f"subsampling must be one of {', '.join(SUBSAMPLING)}, got {subsampling!r}")
    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format="JPEG", quality=int(qf), subsampling=SUBSAMPLING[subsampling])
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy()


def rgb_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two RGB uint8 images: the mean of the three channels' SSIM."""
    from core.metrics import ssim

    return float(np.mean([ssim(np.ascontiguousarray(a[..., k]), np.ascontiguousarray(b[..., k])) for k in range(3)]))


def coloured_crop(gray: np.ndarray, index: int, seed: int = COLOUR_SEED, any_colour: bool = False) -> np.ndarray:
    """The coloured variant used by the evaluation sets for the ``index``-th drawing of a set:
    odd drawings get one ink per stroke, even ones one ink for the drawing; seeded by
    ``(seed, index)`` so every run sees the same colours. ``any_colour``: inks from the whole RGB
    cube (:func:`random_ink`) instead of the named ones."""
    return colourize(gray, np.random.default_rng([seed, index]), per_stroke=bool(index % 2), any_colour=any_colour)
