"""Procedural synthetic line drawings, and the "light, textured lines" variant of a drawing.

The real training set (clip art rendered from SVG) is almost all black, clean, uniform-width
ink. These generators add what it lacks: pressure-tapered strokes of varied width, light as well
as dark lines, pencil/brush grain, hatching, closed shapes, small filled areas, flat light
tones (near-white fills that are still lines), black shapes with flat grey insets and, when asked
for, shapes shaded with grey ramps (``gradients``).

Value conventions follow :mod:`core.checks`: ``uint8`` gray ``(H, W)``, white = 255, and the
background (every pixel with no ink nearby) is *exactly* 255 so that eq. 3 (``clean < 255``) gives
the line mask.

How a drawing is rendered:

1. Strokes are smooth Catmull-Rom curves through random control points. Each segment is drawn
   with ``cv2.line(..., LINE_AA)`` at ``SUPERSAMPLE`` x resolution with its own thickness, which
   gives pressure tapering (thin ends, thick middle) and round joins. The canvas holds ink
   *darkness* (0 = paper) and a later stroke paints over an earlier one, as a normal-blend brush
   on one layer does.
2. The canvas is reduced to the output size with area averaging (a second anti-aliasing pass).
3. A per-drawing grain (multiplicative noise on darkness) imitates pencil or dry brush. Noise
   only scales existing ink, so untouched paper stays at darkness 0.
4. The background is forced to 255 with the rule used for the real data (see
   ``/work/shared/data/README.md``): a pixel >= 250 with no pixel < 250 in its 5x5 neighbourhood
   becomes 255; faint anti-aliasing right next to strokes stays as rendered.

Everything is driven by the caller's ``numpy.random.Generator``: the same generator state gives
the same image.

Speed (one core, OpenCV threading off, seeds 0-99, CPU time of the calling thread measured with
``time.thread_time`` while other jobs loaded the 2-core machine): 256x256 median 10.0 ms, p95
16.3 ms; 512x512 median 40.9 ms, p95 61.5 ms. On the idle machine, wall-clock for 256x256 was
median 8.1 ms, p95 13.2 ms.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "synth_drawing",
    "light_variant",
    "force_background",
    "contact_sheet",
    "add_synth_parser",
    "run_synth",
    "SUPERSAMPLE",
]

#: Drawing resolution factor before the area-averaging downsample.
SUPERSAMPLE = 2
#: Fixed-point bits for sub-pixel coordinates in OpenCV drawing calls.
_SHIFT = 3
_ONE = 1 << _SHIFT


# ---------------------------------------------------------------------------------------------
# small geometry helpers
# ---------------------------------------------------------------------------------------------


def _catmull_rom(points: np.ndarray, step: float, closed: bool = False) -> np.ndarray:
    """Sample a uniform Catmull-Rom spline through ``points`` (K, 2) about every ``step`` px.

    Returns an (M, 2) float array that passes through every control point. Open curves use
    duplicated end points as phantom neighbours; closed curves wrap around.
    """
    p = np.asarray(points, dtype=np.float64)
    if closed:
        p = np.concatenate([p[-1:], p, p[:2]], axis=0)
    else:
        p = np.concatenate([p[:1], p, p[-1:]], axis=0)
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        n = max(2, int(math.ceil(np.linalg.norm(p2 - p1) / step)))
        t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
        t2, t3 = t * t, t * t * t
        seg = 0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t3)
        out.append(seg)
    out.append(p[-2][None, :])
    return np.concatenate(out, axis=0)


def _walk(rng: np.random.Generator, start: np.ndarray, n: int, seg_len: float, turn: float) -> np.ndarray:
    """Control points of a smooth random walk: ``n`` points, steps of about ``seg_len`` px,
    heading changing by at most ``turn`` radians per step (so curves stay flowing)."""
    pts = [np.asarray(start, dtype=np.float64)]
    heading = rng.uniform(0, 2 * math.pi)
    curl = rng.uniform(-turn, turn) * 0.5
    for _ in range(n - 1):
        heading += curl + rng.uniform(-turn, turn)
        length = seg_len * rng.uniform(0.6, 1.4)
        pts.append(pts[-1] + length * np.array([math.cos(heading), math.sin(heading)]))
    return np.stack(pts)


def _blob(rng: np.random.Generator, centre: np.ndarray, rx: float, ry: float, wobble: float) -> np.ndarray:
    """Control points of a closed, slightly irregular ellipse-like shape (K, 2)."""
    k = int(rng.integers(6, 11))
    ang = np.sort(rng.uniform(0, 2 * math.pi, k)) if wobble > 0.25 else np.linspace(0, 2 * math.pi, k, endpoint=False)
    rad = 1.0 + rng.uniform(-wobble, wobble, k)
    rot = rng.uniform(0, math.pi)
    x = rx * rad * np.cos(ang)
    y = ry * rad * np.sin(ang)
    c, s = math.cos(rot), math.sin(rot)
    return np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)


def _pressure(n: int, rng: np.random.Generator, taper: bool) -> np.ndarray:
    """Width multipliers (n,) along a stroke: tapered ends for pen-pressure strokes, plus a slow
    wobble; untapered strokes (vector-like) stay nearly constant."""
    t = np.linspace(0.0, 1.0, n)
    if taper:
        a = rng.uniform(0.08, 0.45)  # ramp-in length (fraction of stroke)
        b = rng.uniform(0.08, 0.55)  # ramp-out length
        floor = rng.uniform(0.05, 0.3)
        prof = np.minimum(1.0, np.minimum(t / a, (1.0 - t) / b)).clip(0, 1) ** rng.uniform(0.6, 1.2)
        prof = floor + (1 - floor) * prof
    else:
        prof = np.ones(n)
    phase, freq = rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 3.0)
    prof = prof * (1.0 + rng.uniform(0.0, 0.15) * np.sin(2 * math.pi * freq * t + phase))
    return prof


# ---------------------------------------------------------------------------------------------
# drawing primitives on the supersampled darkness canvas (uint8, 0 = paper, 255 = black ink)
# ---------------------------------------------------------------------------------------------


def _fix(p: np.ndarray) -> np.ndarray:
    """Float canvas coordinates -> int fixed-point coordinates for OpenCV (shift=_SHIFT)."""
    return np.rint(p * (_ONE * SUPERSAMPLE)).astype(np.int32)


def _stroke(canvas: np.ndarray, path: np.ndarray, widths: np.ndarray, dark: int) -> None:
    """Draw a variable-width polyline. ``path`` (M, 2) in output pixels, ``widths`` (M,) in
    output pixels, ``dark`` 1..255 ink darkness. Consecutive segments of equal integer thickness
    are merged into one ``cv2.polylines`` call to keep the number of calls small."""
    if len(path) < 2:
        return
    fp = _fix(path)
    th = np.maximum(1, np.rint(widths * SUPERSAMPLE)).astype(np.int32)
    seg_th = np.maximum(th[:-1], th[1:])
    start = 0
    n = len(seg_th)
    while start < n:
        end = start + 1
        while end < n and seg_th[end] == seg_th[start]:
            end += 1
        cv2.polylines(canvas, [fp[start : end + 1]], False, int(dark), int(seg_th[start]), cv2.LINE_AA, _SHIFT)
        start = end


def _fill(canvas: np.ndarray, poly: np.ndarray, dark: int) -> None:
    """Fill a closed polygon (K, 2) in output pixels with anti-aliased edges."""
    cv2.fillPoly(canvas, [_fix(poly)], int(dark), cv2.LINE_AA, _SHIFT)


def _grain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Zero-mean, unit-ish variance paper-tooth noise (H, W) float32: fine speckle plus a
    coarser component and faint streaks along a random direction (paper fibre / brush hair)."""
    fine = rng.standard_normal((h, w), dtype=np.float32)
    fine = cv2.GaussianBlur(fine, (0, 0), 0.6)
    coarse = cv2.resize(
        rng.standard_normal((h // 4 + 2, w // 4 + 2), dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR
    )
    # directional streaks: blur fresh noise with a short line kernel
    k = 7
    ker = np.zeros((k, k), np.float32)
    ang = rng.uniform(0, math.pi)
    c, s = math.cos(ang), math.sin(ang)
    for r in np.linspace(-(k // 2), k // 2, 2 * k):
        ker[int(round(k // 2 + r * s)), int(round(k // 2 + r * c))] = 1.0
    ker /= ker.sum()
    streak = cv2.filter2D(rng.standard_normal((h, w), dtype=np.float32), -1, ker)
    g = fine / (fine.std() + 1e-6) + 0.5 * coarse + 0.8 * streak / (streak.std() + 1e-6)
    return g / (g.std() + 1e-6)


def force_background(img: np.ndarray) -> np.ndarray:
    """Set to exactly 255 every pixel >= 250 whose 5x5 neighbourhood has no pixel < 250 (the rule
    used for the real data). Returns a new uint8 array; other pixels are unchanged."""
    if img.dtype != np.uint8 or img.ndim != 2:
        raise ValueError(f"force_background takes a 2-D uint8 image, got {img.dtype} {img.shape}")
    dark = (img < 250).astype(np.uint8)
    near = cv2.dilate(dark, np.ones((5, 5), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    out = img.copy()
    out[(img >= 250) & (near == 0)] = 255
    return out


def _shape_to_fill(
    rng: np.random.Generator, outlines: list[np.ndarray], p_outline: float, near_focus, lscale: float, step: float
) -> np.ndarray:
    """The outline of an area to fill with a tone: with probability ``p_outline`` one of the big
    outlined shapes already drawn (when there is one), else a free-standing blob near a focus."""
    if outlines and rng.random() < p_outline:
        return _catmull_rom(outlines[int(rng.integers(0, len(outlines)))], step, closed=True)
    r = rng.uniform(15, 60) * lscale
    return _catmull_rom(_blob(rng, near_focus(), r, r * rng.uniform(0.4, 1.0), 0.25), step, closed=True)


def _gradient_shading(
    rng: np.random.Generator, shape: tuple[int, int], outlines: list[np.ndarray], near_focus, lscale: float, step: float
) -> np.ndarray:
    """Darkness (supersampled canvas units, 0 = paper) of one or two shapes shaded with a grey ramp,
    as a gradient tool or an airbrush leaves them in digital line art: usually inside one of the big
    outlined shapes, sometimes a free-standing patch. The ramp runs linearly across the shape in a
    random direction, or radially from a point in it, between two greys (values 30-220 at one end,
    up to 249 at the other; either end the darker). Such shading is line by eq. 3; the real
    training drawings hold none (a smooth ramp covers under 1 % of every one of them), and the
    backbone left JPEG blocks in the one val drawing that has it."""
    out = np.zeros(shape, np.uint8)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    for _ in range(int(rng.integers(1, 3))):
        poly = _shape_to_fill(rng, outlines, 0.7, near_focus, lscale, step)
        inside = np.zeros(shape, np.uint8)
        _fill(inside, poly, 255)
        ys, xs = np.nonzero(inside)
        if ys.size < 16:
            continue
        if rng.random() < 0.65:  # linear: across the shape's extent along a random direction
            ang = rng.uniform(0, 2 * math.pi)
            u = math.cos(ang) * xx + math.sin(ang) * yy
            lo, hi = float(u[ys, xs].min()), float(u[ys, xs].max())
            t = (u - lo) / max(hi - lo, 1.0)
        else:  # radial: from a point of the shape out to about its far edge
            i = int(rng.integers(ys.size))
            dist = np.hypot(xx - xs[i], yy - ys[i])
            t = dist / max(float(dist[ys, xs].max()) * rng.uniform(0.6, 1.1), 1.0)
        t = np.clip(t, 0.0, 1.0)
        if rng.random() < 0.5:
            t = t * t * (3 - 2 * t)  # eased ends
        dark_value = rng.uniform(30, 220)
        light_value = rng.uniform(min(dark_value + 25, 245), 249)
        a, b = (dark_value, light_value) if rng.random() < 0.5 else (light_value, dark_value)
        ramp = 255.0 - (a + (b - a) * t)  # darkness
        np.maximum(out, np.where(inside > 0, np.rint(ramp), 0).astype(np.uint8), out=out)
    return out


# ---------------------------------------------------------------------------------------------
# the generator
# ---------------------------------------------------------------------------------------------


def synth_drawing(rng: np.random.Generator, height: int, width: int, gradients: float = 0.0) -> np.ndarray:
    """Render one synthetic line drawing.

    Args:
        rng: numpy random Generator; the image is a pure function of its state (and ``gradients``).
        height, width: output size in pixels (each >= 8).
        gradients: probability that the drawing gets one or two shapes shaded with a grey ramp
            (:func:`_gradient_shading`). 0 (the default) draws no random number for it, so a seed
            gives the drawing it gave before the option existed.

    Returns:
        ``uint8`` array ``(height, width)``: ink 0..~250 on a background of exactly 255. Line
        pixels (eq. 3 mask, ``< 255``) typically cover 5-30 % of the image.

    A drawing has one "style" (base width, ink darkness range, tool texture, taper habit) and a
    mix of long contours, closed shapes, short detail strokes, hatching patches, an occasional
    small filled area, sometimes a flat light tone (220-249) inside a shape and sometimes a black
    shape with flat grey insets (125-245), concentrated around a few focal points so that empty
    paper remains, as in real line art.
    """
    if height < 8 or width < 8:
        raise ValueError(f"synthetic drawings need at least 8x8 pixels, got {width}x{height}")
    h, w = int(height), int(width)
    canvas = np.zeros((h * SUPERSAMPLE, w * SUPERSAMPLE), np.uint8)
    scale = math.sqrt(h * w) / 256.0  # density and lengths follow the image size

    # ---- drawing style --------------------------------------------------------------------
    tool = rng.choice(["vector", "pen", "pencil", "brush"], p=[0.25, 0.35, 0.2, 0.2])
    base_w = float(np.exp(rng.uniform(math.log(0.7), math.log(5.0))))
    if tool == "pencil":
        base_w = min(base_w, 2.2)
    ink_mode = rng.choice(["dark", "mixed", "light"], p=[0.5, 0.35, 0.15])

    def ink() -> int:
        """Ink *value* 0..200 turned into darkness 55..255."""
        if ink_mode == "dark":
            v = rng.uniform(0, 40)
        elif ink_mode == "light":
            v = rng.uniform(90, 200)
        else:
            v = rng.uniform(0, 40) if rng.random() < 0.55 else rng.uniform(60, 200)
        return int(round(255 - v))

    taper_prob = {"vector": 0.1, "pen": 0.85, "pencil": 0.7, "brush": 0.95}[str(tool)]
    step = 1.5  # curve sampling step in output px

    def width_for() -> float:
        return float(np.clip(base_w * np.exp(rng.normal(0, 0.35)), 0.5, 6.0))

    # ---- focal points where the "object" is ----------------------------------------------
    n_focus = int(rng.integers(1, 4))
    foci = np.stack([rng.uniform(0.1, 0.9, n_focus) * w, rng.uniform(0.1, 0.9, n_focus) * h], axis=1)
    spread = rng.uniform(0.15, 0.4) * min(h, w)
    drawn: list[np.ndarray] = []  # sampled paths, to attach details to

    def near_focus() -> np.ndarray:
        f = foci[rng.integers(0, n_focus)]
        return f + rng.normal(0, spread, 2)

    def on_drawing() -> tuple[np.ndarray, np.ndarray]:
        """A point on an already drawn path and the unit normal there."""
        path = drawn[rng.integers(0, len(drawn))]
        i = int(rng.integers(1, len(path) - 1)) if len(path) > 2 else 0
        tan = path[min(i + 1, len(path) - 1)] - path[max(i - 1, 0)]
        norm = float(np.linalg.norm(tan))
        if norm < 1e-6:  # repeated points: any direction will do
            ang = rng.uniform(0, 2 * math.pi)
            tan, norm = np.array([math.cos(ang), math.sin(ang)]), 1.0
        tan = tan / norm
        return path[i], np.array([-tan[1], tan[0]])

    def curve(
        ctrl: np.ndarray,
        closed: bool = False,
        wmul: float = 1.0,
        dark: int | None = None,
        taper: bool | None = None,
        keep: bool = True,
    ) -> None:
        path = _catmull_rom(ctrl, step, closed)
        if taper is None:
            taper = bool(rng.random() < taper_prob)
        widths = np.clip(width_for() * wmul * _pressure(len(path), rng, taper and not closed), 0.5, 6.0)
        _stroke(canvas, path, widths, ink() if dark is None else dark)
        if keep and len(path) > 3:
            drawn.append(path)

    lscale = min(scale, 2.5)
    density = rng.uniform(0.7, 1.5) * scale * scale

    outlines: list[np.ndarray] = []  # control points of the big closed shapes, for flat tones
    # big outlines: closed irregular shapes, often drawn as 1-3 overlapping strokes like an artist does
    for _ in range(max(1, int(round(rng.uniform(1, 4) * density)))):
        rx = rng.uniform(20, 90) * lscale
        ctrl = _blob(rng, near_focus(), rx, rx * rng.uniform(0.3, 1.0), rng.uniform(0.05, 0.35))
        outlines.append(ctrl)
        pieces = int(rng.choice([1, 1, 2, 3]))
        if pieces == 1:
            curve(ctrl, closed=True)
        else:
            ring = _catmull_rom(ctrl, 4.0, closed=True)
            cuts = np.sort(rng.choice(len(ring), pieces, replace=False))
            for a, b in zip(cuts, np.roll(cuts, -1)):
                seg = np.concatenate([ring[a:], ring[:b]]) if b <= a else ring[a:b]
                lap = int(rng.integers(-2, 4))  # small overlap or gap at the joins
                seg = np.concatenate([seg, ring[b : b + lap]]) if lap > 0 else seg[: len(seg) + lap or None]
                if len(seg) >= 3:
                    curve(seg[:: max(1, len(seg) // 12)], taper=True)

    # tubes (limbs, stems, sleeves): two roughly parallel contours around a smooth spine
    for _ in range(int(round(rng.uniform(0, 3) * density))):
        spine = _catmull_rom(
            _walk(rng, near_focus(), int(rng.integers(3, 6)), rng.uniform(20, 45) * lscale, rng.uniform(0.1, 0.5)), 6.0
        )
        if len(spine) < 3:
            continue
        tan = np.gradient(spine, axis=0)
        nrm = np.stack([-tan[:, 1], tan[:, 0]], 1) / (np.linalg.norm(tan, axis=1, keepdims=True) + 1e-9)
        r = rng.uniform(5, 22) * lscale * (1 + 0.3 * np.sin(np.linspace(0, rng.uniform(1, 4), len(spine))))[:, None]
        for sgn in (1, -1):
            side = spine + sgn * r * nrm
            curve(side[:: max(1, len(side) // 10)])

    # long flowing contours
    for _ in range(int(round(rng.uniform(1, 5) * density))):
        curve(_walk(rng, near_focus(), int(rng.integers(4, 8)), rng.uniform(20, 50) * lscale, rng.uniform(0.15, 0.6)))

    # small closed shapes (eyes, buttons, wheels, holes)
    for _ in range(int(round(rng.uniform(0, 4) * density))):
        rx = rng.uniform(3, 15) * lscale
        curve(
            _blob(rng, near_focus(), rx, rx * rng.uniform(0.5, 1.0), rng.uniform(0.0, 0.15)),
            closed=True,
            wmul=rng.uniform(0.5, 1.0),
        )

    # details attached to existing lines: folds, creases, fur ticks, leaving the line at a slant
    for _ in range(int(round(rng.uniform(2, 12) * density))):
        p, nrm = on_drawing()
        tan = np.array([nrm[1], -nrm[0]]) * rng.choice([-1, 1])
        d = nrm * rng.choice([-1, 1]) + tan * rng.uniform(0.3, 1.5)
        d /= max(float(np.linalg.norm(d)), 1e-6)
        length = rng.uniform(5, 25) * lscale
        mid = p + 0.5 * length * d + tan * rng.normal(0, 0.12 * length)
        curve(np.stack([p, mid, p + length * d]), wmul=rng.uniform(0.4, 1.0), taper=True, keep=False)

    # parallel echoes of an existing line (folds, motion lines, shading)
    for _ in range(int(rng.random() < 0.5) * int(rng.integers(1, 4))):
        path = drawn[rng.integers(0, len(drawn))]
        a = int(rng.integers(0, max(1, len(path) - 8)))
        piece = path[a : a + int(rng.integers(8, 40))]
        if len(piece) < 4:
            continue
        tan = np.gradient(piece, axis=0)
        nrm = np.stack([-tan[:, 1], tan[:, 0]], 1) / (np.linalg.norm(tan, axis=1, keepdims=True) + 1e-9)
        gapw = rng.uniform(3, 8) * rng.choice([-1, 1])
        for k in range(1, int(rng.integers(2, 5))):
            curve(
                (piece + k * gapw * nrm)[:: max(1, len(piece) // 6)], wmul=rng.uniform(0.4, 0.8), taper=True, keep=False
            )

    # hatching patches: parallel (optionally crossed) short tapered strokes inside an ellipse
    for _ in range(int(rng.random() < 0.45) + int(rng.random() < 0.15 * density)):
        c = near_focus()
        rx, ry = rng.uniform(12, 45) * lscale, rng.uniform(8, 30) * lscale
        spacing = rng.uniform(3.0, 7.0)
        hw = float(np.clip(base_w * rng.uniform(0.3, 0.6), 0.5, 1.8))
        hdark = ink()
        for ang in [rng.uniform(0, math.pi)] + ([rng.uniform(0, math.pi)] if rng.random() < 0.35 else []):
            d = np.array([math.cos(ang), math.sin(ang)])
            nrm = np.array([-d[1], d[0]])
            r_big = max(rx, ry)
            for off in np.arange(-r_big, r_big, spacing):
                # chord of the axis-aligned ellipse along direction d at offset `off`:
                # solve |(p0 + t d - c) / (rx, ry)| = 1 for t
                p0 = c + nrm * (off + rng.normal(0, 0.3))
                q = (p0 - c) / np.array([rx, ry])
                e = d / np.array([rx, ry])
                qa, qb, qc = e @ e, 2 * q @ e, q @ q - 1
                disc = qb * qb - 4 * qa * qc
                if disc <= 0:
                    continue
                sq = math.sqrt(disc)
                t0, t1 = (-qb - sq) / (2 * qa), (-qb + sq) / (2 * qa)
                t0, t1 = t0 + rng.uniform(0, 0.15) * (t1 - t0), t1 - rng.uniform(0, 0.15) * (t1 - t0)
                if t1 - t0 < 3:
                    continue
                pts = np.stack([p0 + t0 * d, p0 + 0.5 * (t0 + t1) * d + nrm * rng.normal(0, 0.3), p0 + t1 * d])
                path = _catmull_rom(pts, step)
                widths = np.clip(hw * _pressure(len(path), rng, True), 0.5, 6.0)
                _stroke(canvas, path, widths, hdark)

    # occasional small filled areas (pupils, hair shadows, flat grey)
    for _ in range(int(rng.random() < 0.35) + int(rng.random() < 0.15)):
        r = rng.uniform(3, 16) * lscale
        poly = _catmull_rom(_blob(rng, near_focus(), r, r * rng.uniform(0.4, 1.0), 0.3), step, closed=True)
        _fill(canvas, poly, ink() if rng.random() < 0.7 else int(rng.uniform(40, 150)))

    # flat light tones under the lines (a grey base or shadow, 220-249, as digital art often has):
    # usually filling one of the big outlined shapes, sometimes a free-standing patch. Such fills
    # are line pixels (eq. 3) that a mask must keep although they are nearly white.
    tone = np.zeros_like(canvas)
    flat = np.zeros_like(canvas)  # digital fills, left without the tool texture below
    if rng.random() < 0.3:
        for _ in range(int(rng.integers(1, 3))):
            _fill(tone, _shape_to_fill(rng, outlines, 0.75, near_focus, lscale, step), int(rng.integers(6, 36)))
        flat[tone > canvas] = 255  # where the tone shows; strokes over it keep their texture
    canvas = np.maximum(canvas, tone)
    if gradients > 0 and rng.random() < gradients:
        shading = _gradient_shading(rng, canvas.shape, outlines, near_focus, lscale, step)
        flat[shading > canvas] = 255  # digital fills: no tool texture
        canvas = np.maximum(canvas, shading)

    # solid black shapes with flat lighter insets (highlights, scales, patterns cut into black, as
    # woodcut-like clip art has): the inset *replaces* the darkness, so the drawing gets flat mid
    # and light greys bordered by black, which the tones above (added with max) cannot make. Such
    # shapes are digital fills, so the tool texture below leaves them alone (`flat`): with grain
    # on them the networks learnt to keep the JPEG's speckle in flat grey as if it were texture.
    if rng.random() < 0.4:
        for _ in range(int(rng.integers(1, 3))):
            r = rng.uniform(15, 60) * lscale
            c = near_focus()
            body = _catmull_rom(_blob(rng, c, r, r * rng.uniform(0.4, 1.0), 0.3), step, closed=True)
            _fill(canvas, body, int(round(255 - rng.uniform(0, 25))))
            _fill(flat, body, 255)
            level = int(rng.uniform(10, 130))  # one grey per shape: value 125-245
            for _ in range(int(rng.integers(3, 10))):
                rr = r * rng.uniform(0.15, 0.35)
                poly = _blob(rng, c + rng.normal(0, 0.3 * r, 2), rr, rr * rng.uniform(0.4, 1.0), 0.3)
                _fill(canvas, _catmull_rom(poly, step, closed=True), level)

    # ---- back to output resolution, texture, background rule -------------------------------
    dark = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    tex = {
        "vector": 0.0,
        "pen": rng.uniform(0.0, 0.08),
        "pencil": rng.uniform(0.25, 0.5),
        "brush": rng.uniform(0.1, 0.3),
    }[str(tool)]
    if tex > 0:
        untextured = cv2.resize(flat, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        dark *= np.clip(1.0 + tex * (1.0 - untextured) * _grain(rng, h, w), 0.0, 1.8)
    img = np.clip(np.rint(255.0 * (1.0 - np.clip(dark, 0.0, 1.0))), 0, 255).astype(np.uint8)
    return force_background(img)


def light_variant(
    clean: np.ndarray, rng: np.random.Generator, darkness: tuple[float, float] = (0.25, 0.6), grain: bool = True
) -> np.ndarray:
    """The "light lines" version of a clean drawing, textured unless ``grain`` is False.

    Line darkness ``255 - value`` is multiplied by one factor ``f ~ U(darkness)`` for the whole
    image and, with ``grain``, by pencil-like multiplicative grain (mean 1) on line pixels only.

    Args:
        clean: ``uint8`` (H, W) drawing with a background of exactly 255.
        rng: numpy Generator; the result is a pure function of ``clean`` and its state.
        darkness: (low, high) range of the scale factor, ``0 < low <= high <= 1``.
        grain: False leaves out the grain: the same lines, only lightened by the same ``f`` as
            with grain from an equal ``rng`` (``f`` is its first draw).

    Returns:
        ``uint8`` (H, W). Pixels equal to 255 in ``clean`` stay 255; line pixels stay line pixels
        (at most 254), so the eq. 3 mask of the result equals that of ``clean``.
    """
    if not isinstance(clean, np.ndarray) or clean.dtype != np.uint8 or clean.ndim != 2:
        raise ValueError(
            f"light_variant takes a 2-D uint8 image, got {getattr(clean, 'dtype', type(clean))} "
            f"{getattr(clean, 'shape', '')}"
        )
    lo, hi = float(darkness[0]), float(darkness[1])
    if not 0.0 < lo <= hi <= 1.0:
        raise ValueError(f"darkness range must satisfy 0 < low <= high <= 1, got {darkness}")
    f = rng.uniform(lo, hi) if hi > lo else lo
    h, w = clean.shape
    texture = np.clip(1.0 + rng.uniform(0.2, 0.4) * _grain(rng, h, w), 0.2, 1.8) if grain else 1.0
    d = (255.0 - clean.astype(np.float32)) * (f * texture)
    out = np.clip(np.rint(255.0 - d), 0, 254).astype(np.uint8)
    line = clean < 255
    return np.where(line, out, np.uint8(255))


# ---------------------------------------------------------------------------------------------
# contact sheet + CLI
# ---------------------------------------------------------------------------------------------


def contact_sheet(
    seed: int = 0,
    rows: int = 3,
    cols: int = 4,
    size: int = 256,
    light_row: bool = True,
    gap: int = 6,
    gradients: float = 0.0,
) -> np.ndarray:
    """A grid of ``rows x cols`` synthetic drawings (seeds ``seed .. seed+rows*cols-1``, with
    ``gradients`` as in :func:`synth_drawing`), plus one extra row showing :func:`light_variant`
    of the first ``cols`` samples. Returns uint8 (H, W) with mid-grey gaps between tiles so the
    white backgrounds are visibly separate."""
    tiles = []
    for i in range(rows * cols):
        tiles.append(synth_drawing(np.random.default_rng(seed + i), size, size, gradients=gradients))
    if light_row:
        for i in range(cols):
            tiles.append(light_variant(tiles[i], np.random.default_rng(10_000 + seed + i)))
    n_rows = rows + (1 if light_row else 0)
    sheet = np.full((n_rows * size + (n_rows + 1) * gap, cols * size + (cols + 1) * gap), 160, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = gap + r * (size + gap), gap + c * (size + gap)
        sheet[y : y + size, x : x + size] = t
    return sheet


def add_synth_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``synth`` (write a contact sheet or a folder of synthetic drawings)."""
    p = subparsers.add_parser(
        "synth",
        help="write a contact sheet (or a folder) of synthetic line drawings",
        description="Render procedural line drawings. With --out FILE.png a contact sheet (last row: the "
        "light, textured variant of the first row); with --folder DIR, --count separate PNGs.",
    )
    p.add_argument("--out", type=Path, default=Path("docs/img/synth_contact_sheet.png"), help="contact sheet PNG")
    p.add_argument("--folder", type=Path, default=None, help="write --count drawings here instead of a sheet")
    p.add_argument("--count", type=int, default=16, help="number of drawings for --folder")
    p.add_argument("--size", type=int, default=256, help="tile / drawing side in pixels")
    p.add_argument("--rows", type=int, default=3)
    p.add_argument("--cols", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--gradients",
        type=float,
        default=0.0,
        metavar="P",
        help="probability of shapes shaded with grey ramps in each drawing (as training's --gradients; default 0)",
    )
    p.set_defaults(func=run_synth)
    return p


def run_synth(args: argparse.Namespace) -> int:
    """Entry point of ``python -m training synth``; returns a process exit code."""
    from PIL import Image

    if args.size < 8:
        raise SystemExit(f"--size must be at least 8, got {args.size}")
    if args.folder is not None:
        args.folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        for i in range(args.count):
            img = synth_drawing(np.random.default_rng(args.seed + i), args.size, args.size, gradients=args.gradients)
            Image.fromarray(img).save(args.folder / f"synth_{args.seed + i:05d}.png")
        dt = time.perf_counter() - t0
        print(f"wrote {args.count} drawings to {args.folder} ({1000 * dt / max(1, args.count):.1f} ms each)")
        return 0
    sheet = contact_sheet(args.seed, args.rows, args.cols, args.size, gradients=args.gradients)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(args.out)
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0
