"""Coloured line art: strokes in one or several ink colours on white paper, restored in colour.

The networks restore one gray plane. A coloured drawing is, pixel by pixel, white paper covered by
an ink of colour ``ink`` with coverage ``a`` (0..1)::

    c = 1 - a * (1 - ink)                       (per channel, floats, white = 1)

so its *darkness* ``d = 1 - c = a * (1 - ink)`` is the ink's darkness scaled by the coverage. Two
things follow, and this module is built on them:

* **The line plane.** ``v = 1 - max_channel(d)`` (the darkest channel: the distance from white
  paper) is exactly a gray drawing of coverage ``a`` in an ink of level ``1 - max(1 - ink)``. A
  light ink (yellow, light blue, pink: luminance near 200-230) is dark there (yellow's blue
  channel is near 0), so the mask network sees it as a line. The plane handed to the networks is
  not ``min(R, G, B)`` itself, though: in a 4:2:0 JPEG the channels differ only by the chroma,
  stored at half resolution, and a light ink's darkest channel is mostly chroma, i.e. blurred.
  It is the JPEG's full-resolution **luminance** darkness ``1 - Y`` stretched by the local ratio
  ``max_channel(d) / (1 - Y)`` of the ink around the pixel: sharp like ``Y``, as dark as the
  darkest channel (:func:`prepare`).
* **The colour.** Per unit of luminance darkness, every pixel of one ink has the same darkness
  vector ``q = d / (1 - Y)``: the ratio does not depend on the coverage. Chroma subsampling,
  its upsampling and JPEG's ringing move chroma around but keep local sums about right, so
  ``q`` is estimated as a ratio of local sums, ``box(w d) / box(w (1 - Y))`` over a 13-pixel
  window, ``w`` marking the clearly inked pixels (paper's faint ringing stays out); where a window
  holds little ink, a 49-pixel window's estimate (and then the whole drawing's) takes over.
* **The ink network** (optional, :mod:`core.inknet`, :func:`refine_directions`): that ratio cannot
  undo what 4:2:0 does to a thin stroke (its chroma averaged with the paper beside it, then
  clipped by the decoder where it spills onto paper); a small network trained on coloured JPEGs
  corrects ``u`` from the JPEG's darkness, the line plane and the ratio's estimate (each pixel's
  colour, not its strength: the largest channel stays the ratio's). The line plane's stretch keeps
  the ratio's ``g``, so the networks' input does not depend on it.
* **The stretch** ``g = max(q)`` is applied in full only where the window holds enough ink
  (:data:`EVIDENCE`) and fades to 1 on paper far from any, whose JPEG noise it would only
  amplify. The mask network gets the same plane without the faint darkness that the stretch
  made of JPEG noise (:data:`NOISE_LEVEL`); the backbone gets it all.
* **Back to colour.** With ``u = q / g`` and the restored line plane ``v'``, the restored
  darkness is ``d' = (1 - v') u``: paper (``v' = 1``, eq. 2) is exactly white, the threshold
  post-process of ``v'`` makes near-white pixels pure white, a neutral ink (``q`` equal in all
  channels) gives ``R = G = B``, and with ``background="transparent"`` a pixel is the ink
  ``1 - d' / max(d')`` with alpha ``max(d')`` (the coverage), which laid over white is the same.

A layer whose chroma stays within JPEG noise everywhere (:func:`is_neutral`; a gray drawing saved
as an RGB JPEG decodes to ``R = G = B`` exactly) does not come here at all: the pipeline restores
it on its luminance as before, bit for bit.

Measured by ``python -m training evaluate --colour`` and ``benchmarks/compare_waifu2x_colour.py``;
the figures are in docs/colour.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .imageio import LUMA_WEIGHTS, has_transparency, layout_of, quantize
from .steps import step

__all__ = [
    "CHROMA_WEIGHTS",
    "NEUTRAL_SPREAD",
    "ColourPlane",
    "chroma_of",
    "correct_luma",
    "ink_features",
    "is_neutral",
    "jpeg_chroma",
    "jpeg_luma",
    "luma_of",
    "prepare",
    "refine_directions",
    "set_chroma",
    "to_layer",
]

#: A layer whose channels never differ by more than this many 8-bit levels (after alpha) is
#: neutral and is restored as gray. A gray drawing saved as an RGB JPEG has no chroma at all.
NEUTRAL_SPREAD = 6
#: Radii (pixels) of the windows over which the ink's colour is estimated: local, then wider.
LOCAL_RADIUS = 6
WIDE_RADIUS = 24
#: Pixels darker than this (darkest channel) count as ink when the colour is estimated.
INK_DARKNESS = 0.04
#: Evidence (in pixels of full ink) below which a window leans on the wider estimate.
PRIOR_WEIGHT = 0.5
#: The line plane's stretch never exceeds this (a very light ink's JPEG noise grows with it).
MAX_GAIN = 6.0
#: Ink evidence (pixels of full luminance darkness, weighted) a window needs for the full stretch.
EVIDENCE = 2.0
#: The mask network's plane drops darkness below this much per unit of stretch beyond 1: the
#: stretched JPEG noise of a light ink (for yellow, stretched about 4.8x, below 97 levels; a gray
#: or black ink, stretch 1, keeps everything). Chosen on coloured val/kanji crops (docs/colour.md).
NOISE_LEVEL = 0.1
#: ... and darkness below this anywhere: the faint blocky noise that 4:2:0 chroma leaves near
#: coloured strokes made the mask network mark whole blocks (kanji in yellow at QF 20: mIoU 0.78).
#: A higher floor (5 levels) erased the faint strokes of a pale drawing (val's feather: 0.86 -> 0.37).
FAINT = 2.5 / 255.0
#: Rows per band in the per-pixel steps.
_ROWS = 512


@dataclass
class ColourPlane:
    """A coloured layer ready for the networks.

    Attributes:
        gray: (H, W) float32 line plane in [0, 1] (white = 1), see the module doc.
        direction: (H, W, 3) float32 ``u``: the darkness of each channel per unit of the line
            plane's darkness (the ink's colour; its largest channel is 1 where the plane has the
            ink's full stretch).
        layout, dtype: the input's layout name and numpy dtype.
        notes: remarks for people.
        mask_gray: the mask network's plane: ``gray`` without the faint darkness the stretch made
            of JPEG noise (see :data:`NOISE_LEVEL`, :data:`FAINT`).
    """

    gray: np.ndarray
    direction: np.ndarray
    layout: str
    dtype: np.dtype
    notes: list[str]
    mask_gray: np.ndarray | None = None


def is_neutral(img: np.ndarray, spread: int = NEUTRAL_SPREAD) -> bool:
    """True when a layer has no colour to keep: gray layouts, or RGB(A) whose channels differ by at
    most ``spread`` 8-bit levels on every pixel that is not fully transparent."""
    layout = layout_of(img)
    if layout not in ("RGB", "RGBA"):
        return True
    limit = spread if img.dtype == np.uint8 else spread * 257
    for y in range(0, img.shape[0], _ROWS):
        step("rows", y, img.shape[0])  # a step boundary for a caller's hook (core.steps)
        band = img[y : y + _ROWS]
        rgb = band[..., :3]
        lo = np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
        diff = _max3(rgb).astype(np.int32) - lo
        if layout == "RGBA":
            diff[band[..., 3] == 0] = 0
        if int(diff.max()) > limit:
            return False
    return True


def _max3(x: np.ndarray) -> np.ndarray:
    """The largest of the first three channels (numpy's ``max(axis=2)`` is several times slower)."""
    return _largest(x[..., 0], x[..., 1], x[..., 2])


def _largest(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The element-wise largest of three planes."""
    return np.maximum(np.maximum(a, b), c)


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=False, borderType=cv2.BORDER_CONSTANT)


def _darkness_and_luma(img: np.ndarray) -> list[np.ndarray]:
    """RGB(A) rows -> four (rows, W) float32 planes: the darkness ``d = 1 - c`` of the red, green
    and blue on white (composited: scaled by the alpha), in [0, 1], and the luminance's ``1 - Y``.
    Planes rather than one (rows, W, 4) array: every later step works on contiguous memory."""
    white = 255.0 if img.dtype == np.uint8 else 65535.0
    scale = np.float32(1.0 / white)
    alpha = img[..., 3] * scale if img.shape[2] == 4 else None
    planes = []
    for c in range(3):
        d = np.subtract(white, img[..., c], dtype=np.float32)
        d *= scale
        if alpha is not None:
            d *= alpha
        planes.append(d)
    wr, wg, wb = (np.float32(c) for c in LUMA_WEIGHTS)
    dy = np.multiply(planes[0], wr)
    dy += planes[1] * wg
    dy += planes[2] * wb
    return [*planes, dy]


def _inked(dd: list[np.ndarray]) -> list[np.ndarray]:
    """The planes ``dd`` with every pixel that is not clearly inked set to 0. Every clearly-inked
    pixel counts alike (paper's faint ringing stays out); weighting by the darkness instead favours
    stroke cores, whose 4:2:0 chroma is diluted: 0.1-0.4 dB worse."""
    inked = _largest(*dd[:3]) > np.float32(INK_DARKNESS)
    return [p * inked for p in dd]


def prepare(img: np.ndarray) -> ColourPlane:
    """An RGB(A) layer (uint8/uint16) -> its line plane and ink directions (see the module doc).

    Works in row bands (each with the wide window's rows around it), so that its temporaries stay
    a band's size: besides the results (20 bytes per pixel) it needs about 70 bytes per pixel of
    one band.
    """
    layout = layout_of(img)
    if layout not in ("RGB", "RGBA"):
        raise ValueError(f"colour.prepare needs an RGB or RGBA layer, got {layout}")
    h, w = img.shape[:2]
    # The whole drawing's ratio first: the windows lean on it where they hold little ink.
    sums = np.zeros(4)
    for y in range(0, h, _ROWS):
        step("rows", y, 2 * h)
        sums += [cv2.sumElems(p)[0] for p in _inked(_darkness_and_luma(img[y : y + _ROWS]))]
    q_all = np.maximum(sums[:3] / sums[3], 0) if sums[3] > 0 else np.ones(3)
    gray = np.empty((h, w), np.float32)
    mask_gray = np.empty((h, w), np.float32)
    direction = np.empty((h, w, 3), np.float32)
    halo = max(WIDE_RADIUS, LOCAL_RADIUS)
    for y in range(0, h, _ROWS):
        step("rows", h + y, 2 * h)
        y0, y1 = max(0, y - halo), min(h, y + _ROWS + halo)
        inner = slice(y - y0, min(h, y + _ROWS) - y0)
        rows = slice(y, min(h, y + _ROWS))
        dd = _darkness_and_luma(img[y0:y1])
        dy = dd[3][inner]
        wdd = _inked(dd)
        del dd
        gray[rows], mask_gray[rows], direction[rows] = _band_planes(wdd, dy, inner, q_all)
    notes = ["colour input: lines found and restored on their darkness, colours kept per stroke"]
    if has_transparency(img):
        notes.append("transparent pixels were composited on white before restoring")
    return ColourPlane(gray=gray, direction=direction, layout=layout, dtype=img.dtype, notes=notes, mask_gray=mask_gray)


def _band_planes(wdd: list[np.ndarray], dy: np.ndarray, inner: slice, q_all: np.ndarray):
    """One band's line plane, mask plane and directions (its ``inner`` rows), from the inked
    darkness planes ``wdd`` (R, G, B, luminance) of the band and the rows around it and the
    luminance darkness ``dy`` of the inner rows."""
    # The wide windows' ratio, then the local ones', each leaning on the one before where it has
    # little evidence.
    prior = np.float32(PRIOR_WEIGHT)
    prior_q = prior * q_all.astype(np.float32)
    wide_y = _box(wdd[3], WIDE_RADIUS)[inner]
    wide_y += prior
    local_y = _box(wdd[3], LOCAL_RADIUS)[inner]
    conf = np.clip(local_y * np.float32(1.0 / EVIDENCE), 0.0, 1.0)
    local_y += prior
    q = []
    for c in range(3):
        wide = _box(wdd[c], WIDE_RADIUS)[inner]
        wide += prior_q[c]
        wide /= wide_y
        wide *= prior
        qc = _box(wdd[c], LOCAL_RADIUS)[inner]
        qc += wide
        qc /= local_y
        np.maximum(qc, 0.0, out=qc)
        q.append(qc)
    del wide, wide_y, local_y
    # The stretch of the line plane: the ink's, where the window holds ink, fading to none (1) on
    # paper far from any (whose JPEG noise the stretch would only amplify).
    gain = np.clip(_largest(*q), 1.0, MAX_GAIN)
    gain -= 1.0
    gain *= conf
    gain += 1.0
    dark = dy * gain
    gray = np.clip(1.0 - dark, 0.0, 1.0)
    # The mask network's plane: the same, without the faint darkness the stretch made out of
    # JPEG noise, nor the faintest of all (see FAINT).
    mask_gray = np.where(dark < np.float32(NOISE_LEVEL) * (gain - 1.0) + np.float32(FAINT), np.float32(1.0), gray)
    # Darkness per unit of the line plane's darkness: the ink's colour, scaled back by the stretch.
    for qc in q:
        qc /= gain
    return gray, mask_gray, cv2.merge(q)


#: Rows of context above and below each band the ink network sees (more than its reach: 20 pixels
#: for the ``medium`` preset, ten 3x3 convolutions at half resolution).
INK_HALO = 24


def ink_features(img: np.ndarray, gray: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The ink network's input (:class:`core.inknet.InkNet`) for rows of an RGB(A) layer: a
    (7, rows, W) float32 array of the layer's darkness ``1 - c`` per channel (composited on white),
    the line plane's darkness ``1 - gray`` and the first estimate of the ink directions ``u``
    (:func:`prepare`'s ``gray`` and ``direction`` for the same rows)."""
    out = np.empty((7, *gray.shape), np.float32)
    out[:3] = _darkness_and_luma(img)[:3]
    np.subtract(1.0, gray, out=out[3])
    out[4:] = direction.transpose(2, 0, 1)
    return out


def refine_directions(img: np.ndarray, gray: np.ndarray, direction: np.ndarray, run, rows: int = _ROWS) -> np.ndarray:
    """The ink directions ``direction`` of :func:`prepare` corrected by the ink network
    (:mod:`core.inknet`): ``run`` takes a (7, h, W) float32 array (:func:`ink_features` of ``img``,
    ``gray`` and ``direction``) and returns the (3, h, W) directions. Works in bands of ``rows`` rows,
    each with :data:`INK_HALO` rows of context on both sides; returns a new (H, W, 3) array."""
    h = img.shape[0]
    out = np.empty_like(direction)
    for y in range(0, h, rows):
        step("rows", y, h)
        y0, y1 = max(0, y - INK_HALO), min(h, y + rows + INK_HALO)
        feats = ink_features(img[y0:y1], gray[y0:y1], direction[y0:y1])
        u = run(feats)[:, y - y0 : y - y0 + min(rows, h - y)].transpose(1, 2, 0)
        out[y : y + rows] = _with_strength(u, direction[y : y + rows])
    return out


def _with_strength(u: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The ink network's directions ``u`` scaled per pixel to the largest channel of the first
    estimate ``first``: the network changes each pixel's colour, never its strength, so the result's
    darkest channel stays the restored line plane (and a transparent layer's alpha its coverage).
    Where the network gives (almost) no darkness, the first estimate stays."""
    top = _max3(u)
    keep = top < np.float32(1e-3)
    scaled = u * (_max3(first) / np.maximum(top, np.float32(1e-3)))[..., None]
    return np.where(keep[..., None], first, scaled).astype(np.float32, copy=False)


def to_layer(gray: np.ndarray, direction: np.ndarray, layout: str, dtype, background: str = "white") -> np.ndarray:
    """The restored line plane ``v'`` and the directions ``u`` -> an RGB(A) layer of ``dtype``.

    The darkness is ``d = (1 - v') u`` (clipped to 0..1). ``white``: ``1 - d`` in the input's
    layout (alpha opaque); ``transparent``: RGBA with alpha ``max(d)`` (the coverage) and colour
    ``1 - d / max(d)`` (the ink), which laid over white is ``1 - d`` again.
    """
    dt = np.dtype(dtype)
    white = np.iinfo(dt).max
    h, w = gray.shape
    transparent = background == "transparent"
    channels = 4 if (transparent or layout == "RGBA") else 3
    out = np.empty((h, w, channels), dtype=dt)
    for y in range(0, h, _ROWS):
        step("rows", y, h)  # a step boundary for a caller's hook (core.steps)
        rows = slice(y, y + _ROWS)
        d = _drawn(gray[rows], direction[rows])
        if transparent:
            alpha = _max3(d)
            ink = 1.0 - d / np.maximum(alpha, np.float32(1e-6))[..., None]
            a8 = quantize(alpha, dt)
            out[rows, :, :3] = np.where((a8 == 0)[..., None], 0, quantize(ink, dt))
            out[rows, :, 3] = a8
        else:
            out[rows, :, :3] = quantize(1.0 - d, dt)
            if channels == 4:
                out[rows, :, 3] = white
    return out


# -- JPEG consistency on the luminance a colour JPEG stored ------------------------------------------
#
# A JPEG stores Y at full resolution; a decoder turns Y, Cb, Cr into R, G, B with the JFIF (BT.601,
# full range) matrix and rounds and clips each channel. ``0.299 R + 0.587 G + 0.114 B`` gives the
# decoder's Y back within half a level wherever no channel clipped (Cb and Cr cancel out exactly,
# whatever the chroma upsampling). Where a channel clipped at 255 the true Y is at least the
# recomputed one, where one clipped at 0 at most: :func:`jpeg_luma` gives those one-sided bounds, which
# :func:`core.jpeg_consistency.recover_coefficients` uses to read the stored coefficients back.


#: JFIF's Cb and Cr from R, G, B (each plus 128).
CHROMA_WEIGHTS = ((-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))


def _stored_plane(rgb: np.ndarray, weights, offset: float):
    """Rows of an 8-bit RGB layer -> a JPEG plane ``offset + weights . (R, G, B)`` recomputed, rounded
    (uint8), and its bounds: +-0.5, open on the side a clipped channel pushes it (a channel at 255
    stood for more, one at 0 for less; the sign of its weight says which way the plane moves), and
    open above 254.5 and below 0.5 (the decoder clips the plane too)."""
    v = np.full(rgb.shape[:2], np.float32(offset), np.float32)
    for c in range(3):
        v += rgb[..., c] * np.float32(weights[c])
    lower, upper = v - np.float32(0.5), v + np.float32(0.5)
    for c in range(3):
        high, low = rgb[..., c] == 255, rgb[..., c] == 0
        up, down = (high, low) if weights[c] > 0 else (low, high)
        upper[up] = np.inf
        lower[down] = -np.inf
    upper[v >= 254.5] = np.inf
    lower[v <= 0.5] = -np.inf
    return np.clip(v + np.float32(0.5), 0, 255).astype(np.uint8), lower, upper


def _may_be_jpeg(img: np.ndarray) -> bool:
    """An 8-bit RGB layer, or RGBA without transparent pixels (else no JPEG planes: composited)."""
    if img.dtype != np.uint8 or layout_of(img) not in ("RGB", "RGBA"):
        return False
    return img.shape[2] == 3 or int(img[..., 3].min()) == 255


def jpeg_chroma(img: np.ndarray) -> list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]] | None:
    """An 8-bit RGB(A) layer -> its Cb and Cr planes as :func:`jpeg_luma` gives its luminance (each
    ``(plane8, (lower, upper))``), or ``None`` where that gives ``None``. They are the stored planes
    only where the JPEG kept its chroma at full resolution (4:4:4)."""
    if not _may_be_jpeg(img):
        return None
    return [_stored_plane_banded(img[..., :3], weights, 128.0) for weights in CHROMA_WEIGHTS]


def _stored_plane_banded(rgb: np.ndarray, weights, offset: float):
    """:func:`_stored_plane` of a whole layer, in row bands (its temporaries stay a band's size):
    ``(plane8, (lower, upper))``."""
    h, w = rgb.shape[:2]
    p8 = np.empty((h, w), np.uint8)
    lower = np.empty((h, w), np.float32)
    upper = np.empty((h, w), np.float32)
    for y in range(0, h, _ROWS):
        step("rows", y, h)
        rows = slice(y, y + _ROWS)
        p8[rows], lower[rows], upper[rows] = _stored_plane(rgb[rows], weights, offset)
    return p8, (lower, upper)


def _drawn(gray: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The (rows, W, 3) float32 darkness ``(1 - v') u``, clipped to 0..1, that :func:`to_layer` draws."""
    d = np.subtract(1.0, gray, dtype=np.float32)[..., None] * direction
    np.clip(d, 0.0, 1.0, out=d)
    return d


def _weigh(x: np.ndarray, weights) -> np.ndarray:
    """``x[..., 0] w0 + x[..., 1] w1 + x[..., 2] w2`` in float32 (a luminance or chroma of RGB)."""
    return x[..., 0] * np.float32(weights[0]) + x[..., 1] * np.float32(weights[1]) + x[..., 2] * np.float32(weights[2])


def _rgb_of(gray: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The (rows, W, 3) float32 colour (0..255) :func:`to_layer` makes of ``gray`` and ``direction``."""
    return np.float32(255.0) - _drawn(gray, direction) * np.float32(255.0)


def chroma_of(gray: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cb and Cr (0..255, float32) of the layer :func:`to_layer` makes (before its rounding)."""
    out = (np.empty(gray.shape, np.float32), np.empty(gray.shape, np.float32))
    for y in range(0, gray.shape[0], _ROWS):
        rows = slice(y, y + _ROWS)
        rgb = _rgb_of(gray[rows], direction[rows])
        for plane, w in zip(out, CHROMA_WEIGHTS):
            plane[rows] = np.float32(128.0) + _weigh(rgb, w)
    return out


def set_chroma(gray: np.ndarray, direction: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> None:
    """Give the layer :func:`to_layer` makes the chroma ``cb``, ``cr`` (0..255), its luminance kept:
    the ink directions change (in place) where the line plane has any darkness; paper stays white."""
    for y in range(0, gray.shape[0], _ROWS):
        rows = slice(y, y + _ROWS)
        luma = _weigh(_rgb_of(gray[rows], direction[rows]), LUMA_WEIGHTS)
        b, r = cb[rows] - np.float32(128.0), cr[rows] - np.float32(128.0)
        new = np.stack(
            [
                luma + np.float32(1.402) * r,
                luma - np.float32(0.344136) * b - np.float32(0.714136) * r,
                luma + np.float32(1.772) * b,
            ],
            axis=-1,
        )
        d = np.clip(np.float32(1.0) - new * np.float32(1.0 / 255.0), 0.0, 1.0)
        dark = np.subtract(1.0, gray[rows], dtype=np.float32)
        inked = dark > np.float32(1e-3)
        u = direction[rows]
        u[inked] = d[inked] / dark[inked][:, None]


def jpeg_luma(img: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]] | None:
    """An 8-bit RGB(A) layer -> its luminance as a JPEG stored it: ``(y8, (lower, upper))``, the
    recomputed Y rounded (uint8) and the range (0..255 scale, float32, ``-inf``/``inf`` where open)
    the decoder's Y lies in: the recomputed Y +- 0.5 (the decoder rounds each channel), open upwards
    where a channel is 255, downwards where one is 0. ``None`` for 16-bit layers and for RGBA with
    transparent pixels (no JPEG plane: the pixels were composited on white)."""
    if not _may_be_jpeg(img):
        return None
    return _stored_plane_banded(img[..., :3], LUMA_WEIGHTS, 0.0)


def _luma_per_darkness(direction: np.ndarray) -> np.ndarray:
    """``u . (0.299, 0.587, 0.114)``: the luminance darkness per unit of the line plane's darkness."""
    return _weigh(direction, LUMA_WEIGHTS)


def luma_of(gray: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The luminance (0..1, float32) of the layer :func:`to_layer` makes of ``gray`` and
    ``direction`` (before its 8-bit rounding)."""
    out = np.empty(gray.shape, np.float32)
    for y in range(0, gray.shape[0], _ROWS):
        rows = slice(y, y + _ROWS)
        out[rows] = 1.0 - _weigh(_drawn(gray[rows], direction[rows]), LUMA_WEIGHTS)
    return out


def correct_luma(gray: np.ndarray, direction: np.ndarray, luma: np.ndarray, target: np.ndarray) -> None:
    """Move the line plane ``gray`` (in place) so that the layer's luminance goes from ``luma``
    (:func:`luma_of`) to ``target``: the coverage changes, each pixel's ink colour does not.
    Pixels whose ink has (almost) no luminance darkness are left alone."""
    for y in range(0, gray.shape[0], _ROWS):
        rows = slice(y, y + _ROWS)
        s = _luma_per_darkness(direction[rows])
        delta = target[rows] - luma[rows]
        g = gray[rows]
        g += np.where(s > np.float32(MIN_LUMA_SHARE), delta / np.maximum(s, np.float32(MIN_LUMA_SHARE)), 0.0)
        np.clip(g, 0.0, 1.0, out=g)


#: :func:`correct_luma` leaves pixels alone whose ink darkens the luminance by less than this per unit
#: of the line plane's darkness (a luminance step would become a large, noisy coverage step).
MIN_LUMA_SHARE = 0.05
