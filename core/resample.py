"""Finding a JPEG that was enlarged after it was saved, and its factor (docs/wild.md).

A JPEG's mosquito noise lives in whole 8x8 blocks, so the steps in the light, not-white paper
around lines fall on block boundaries. Enlarged by ``s`` after the save, those boundaries lie on
a grid of period ``P = 8 s``. Per axis, the profile of clipped pixel steps between light pixels
(dark line pixels and their surroundings left out) is scored at every candidate period ``P`` in
8.5-20 by the magnitude of its Fourier sum at ``1/P``, relative to the median over all the
candidates (the noise floor); both axes are summed, since a resize scales both sides alike. The
factor is claimed only when the best period stands well above the floor, clear of any other
period, and its harmonic at ``2/P`` stands up too (a shrunk JPEG, whose blocks are smaller than 8,
shows up at ``2/P`` alone); the period is then refined to 0.002 px on its first 8 harmonics. A
small layer holds few blocks, so a weaker periodicity is taken too where the round trip below is
closer and the period outdoes the block periods a shrunk JPEG would have.

Periodic patterns drawn at the layer's size (a screentone's dots, regular hatching) also put steps
on a grid, so last comes a check of what the periodicity cannot tell: a layer enlarged by ``s``
holds no detail finer than the JPEG's pixels, so shrinking it by ``1/s`` and enlarging it back
changes it little, while crisp dots and lines drawn at the layer's size do not survive that round
trip (:func:`roundtrip_residual`). The thresholds are calibrated on val and kanji crops (single,
double JPEGs, crops, PNG exports, shrunk and enlarged layers with the four resize kernels of
:mod:`training.degrade`), where nothing unenlarged passed, and on synthetic screentones:
``python -m benchmarks.wild_resample --detect`` and ``--screentone``.

A layer found enlarged is brought back to the JPEG's size by :func:`undo_enlargement`, which
also tells which kernel the editor enlarged it with (the one whose least-squares inverse explains
the layer best), so that the restoration is enlarged again the same way (``--gains``). Torch-free
(numpy and OpenCV).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

__all__ = [
    "ENLARGE_KERNELS",
    "Enlargement",
    "PERIODS",
    "block_grid_lead",
    "block_grid_strength",
    "find_enlargement",
    "looks_resized",
    "resize_evidence",
    "roundtrip_residual",
    "Shrunk",
    "undo_enlargement",
]

#: Candidate block periods in pixels (x1.06 - x2.5).
PERIODS = np.arange(8.5, 20.0001, 0.02)
#: Claim only when the summed score at the best period is at least this many times the floor ...
MIN_SCORE = 4.5
#: ... the harmonic at 2/P at least this many times its own floor ...
MIN_HARMONIC = 3.0
#: ... and the best period beats any period more than 0.6 px away by this ratio.
MIN_LEAD = 1.4
#: Light pixels: 255 - v at most this (darker ones are lines), dilated by :data:`_LINE_MARGIN`.
_LINE_LEVEL = 60
_LINE_MARGIN = 5
#: Steps are clipped here so that a few line edges do not outweigh the paper's noise.
_CLIP = 20.0
#: Below this many light steps per axis nothing is claimed.
_MIN_STEPS = 2000.0
#: Smallest side looked at; larger layers are scored on a centred window of this side at most.
MIN_SIDE = 128
MAX_SIDE = 2048
#: Largest :func:`roundtrip_residual` (gray levels, RMS near ink) of a layer claimed enlarged. Of
#: the layers the periodicity alone claimed among the crops of ``python -m benchmarks.wild_resample
#: --detect --images 6 --kanji 2 --crop 640`` (plus 6 ``lineart/train`` drawings), the enlarged
#: JPEGs (any of the four kernels of :mod:`training.degrade`) were 91 % below it, the screentones of
#: ``--screentone`` all 10 or more. With it, ``--detect`` keeps 205 of those 229 finds, and
#: ``--screentone`` counts none.
MAX_ROUNDTRIP = 8.0
#: A weaker periodicity (a small layer holds few blocks: its best period scores at least
#: :data:`WEAK_SCORE` times the floor and leads by :data:`WEAK_LEAD`, harmonic not asked for) is
#: enough where the round trip is within :data:`WEAK_ROUNDTRIP` levels. On 256 px ``lineart/train``
#: crops of every degradation family, 13 of the 14 enlarged layers whose period came out within 1 %
#: left 5.4 or less, the layers at their size whose periodicity passed these two 7.1 or more
#: (docs/wild.md).
WEAK_SCORE = 2.5
WEAK_LEAD = 1.3
WEAK_ROUNDTRIP = 5.0
#: ... and the period must stand at least this high over the block periods of a shrunk JPEG
#: (:data:`SHRUNK_PERIODS`, away from 8, 4 and 8/3): a JPEG shrunk x0.9 and kept as pixels (blocks
#: of 7.2 px) passed the three tests above at x1.125 on two of 32 640 px crops, with 0.42 and 0.46
#: here; the enlarged layers the weaker rule found scored 1.18 or more (``python -m
#: benchmarks.wild_resample --detect --images 6 --kanji 2 --crop 640``).
WEAK_OVER_SHRUNK = 0.8
SHRUNK_PERIODS = (4.2, 8.5)


@dataclass(frozen=True)
class Enlargement:
    """A confident finding: ``factor`` (the layer is the JPEG enlarged by it), ``period`` (the
    block period in pixels), ``score`` / ``harmonic`` / ``lead`` / ``roundtrip`` (the evidence,
    see the module); ``weak``: found by the weaker rule, whose factor is less sure to the pixel
    (:func:`undo_enlargement` then searches the JPEG's size around it)."""

    factor: float
    period: float
    score: float
    harmonic: float
    lead: float
    roundtrip: float
    weak: bool = False


def _window(gray: np.ndarray) -> np.ndarray:
    """The layer's central window of at most :data:`MAX_SIDE` pixels a side, starting on the
    8-pixel lattice (so that an 8x8 grid phase read in it is the layer's)."""
    h, w = gray.shape
    if max(h, w) > MAX_SIDE:
        top, left = max(0, (h - MAX_SIDE) // 2) // 8 * 8, max(0, (w - MAX_SIDE) // 2) // 8 * 8
        gray = gray[top : top + MAX_SIDE, left : left + MAX_SIDE]
    return gray


def _profiles(gray: np.ndarray) -> list[np.ndarray]:
    """Per axis, the column sums of the clipped pixel steps between light pixels, on the layer's
    central window (:func:`_window`)."""
    g = _window(gray).astype(np.float32)
    line = cv2.dilate((g < 255 - _LINE_LEVEL).astype(np.uint8), np.ones((_LINE_MARGIN, _LINE_MARGIN), np.uint8)).astype(
        bool
    )
    out = []
    for gg, ll in ((g, line), (g.T, line.T)):
        keep = ~(ll[:, 1:] | ll[:, :-1])
        steps = np.minimum(np.abs(np.diff(gg, axis=1)), _CLIP) * keep
        out.append(steps.sum(0, dtype=np.float64))
    return out


#: Zero-padded FFT length: bins of 1/32768 cycles per pixel, finer than the period steps.
_NFFT = 1 << 15


def _padded_spectrum(profile: np.ndarray, nfft: int) -> tuple[np.ndarray, int]:
    """|FFT| of the centred ``profile`` zero-padded to ``nfft`` (or its own length, if longer), and
    that length: bin ``k`` is the frequency ``k / length``."""
    n = max(nfft, profile.size)
    return np.abs(np.fft.rfft(profile - profile.mean(), n=n)), n


def _spectrum(profile: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """|Fourier sum| of the centred ``profile`` at frequencies ``1 / periods`` (nearest bin of a
    zero-padded FFT)."""
    spec, n = _padded_spectrum(profile, _NFFT)
    return spec[np.rint(n / periods).astype(np.int64)]


def _scores(profiles: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """The summed, floor-relative scores at :data:`PERIODS` and at their harmonics, or ``None``
    when the layer has too little light paper noise to say anything."""
    tot1 = np.zeros(PERIODS.size)
    tot2 = np.zeros(PERIODS.size)
    for prof in profiles:
        if prof.sum() < _MIN_STEPS * _CLIP / 4:
            return None
        s1 = _spectrum(prof, PERIODS)
        s2 = _spectrum(prof, PERIODS / 2)
        tot1 += s1 / max(float(np.median(s1)), 1e-9)
        tot2 += s2 / max(float(np.median(s2)), 1e-9)
    return tot1 / float(np.median(tot1)), tot2 / float(np.median(tot2))


#: Harmonics of the block period whose exact Fourier sums :func:`_refine` adds up. A block edge is
#: a step, rich in harmonics, and the k-th drifts k times as fast with a wrong period: with the
#: first 8 the JPEG's own size came out right on 319 of 322 enlarged layers found, with the first 2
#: on 287 of 319 (``python -m benchmarks.wild_resample --sizes --images 6 --kanji 2 --train 6
#: --crop 512 [--harmonics 2]``; 320 px crops: 179 of 186, 113 of 181).
REFINE_HARMONICS = tuple(range(1, 9))


def _refine(profiles: list[np.ndarray], period: float) -> float:
    """The period within 0.1 px of ``period`` (steps of 0.002) where the exact Fourier sums at the
    first :data:`REFINE_HARMONICS` of it, each relative to its best, both axes, add up highest:
    the size the layer is resampled to depends on it (a 0.5 % error is a pixel in 200)."""
    fine = np.arange(period - 0.1, period + 0.1001, 0.002)
    total = np.zeros(fine.size)
    for prof in profiles:
        x = np.arange(prof.size) + 0.5
        p = prof - prof.mean()
        for harmonic in REFINE_HARMONICS:
            mag = np.abs(np.exp(-2j * np.pi * np.outer(harmonic / fine, x)) @ p)
            total += mag / max(float(mag.max()), 1e-9)
    return float(fine[int(np.argmax(total))])


def find_enlargement(gray: np.ndarray) -> Enlargement | None:
    """The factor by which an 8-bit gray layer was enlarged after its JPEG save, or ``None``
    (not enlarged, shrunk, not a JPEG's pixels, or not sure: the caller then keeps its path).
    A finding of the weaker rule says so (``weak``): that rule was calibrated on gray layers, and
    the luma of a coloured JPEG, whose chroma 4:2:0 stored in 16-pixel blocks, fooled it once, so
    the pipeline takes such findings on gray layers only (docs/wild.md)."""
    if gray.dtype != np.uint8 or gray.ndim != 2 or min(gray.shape) < MIN_SIDE:
        return None
    profiles = _profiles(gray)
    found = _scores(profiles)
    if found is None:
        return None
    s1, s2 = found
    i = int(np.argmax(s1))
    far = np.abs(PERIODS - PERIODS[i]) > 0.6
    lead = float(s1[i] / s1[far].max())
    strong = s1[i] >= MIN_SCORE and s2[i] >= MIN_HARMONIC and lead >= MIN_LEAD
    if not strong and (s1[i] < WEAK_SCORE or lead < WEAK_LEAD):
        return None
    period = _refine(profiles, float(PERIODS[i]))
    if not strong and _lead(profiles, period, SHRUNK_PERIODS) < WEAK_OVER_SHRUNK:
        return None
    roundtrip = roundtrip_residual(gray, period / 8.0)
    if roundtrip > (MAX_ROUNDTRIP if strong else WEAK_ROUNDTRIP):
        return None
    return Enlargement(period / 8.0, period, float(s1[i]), float(s2[i]), lead, roundtrip, weak=not strong)


#: The kernels an editor may have enlarged a JPEG with (OpenCV flags), among which
#: :func:`undo_enlargement` picks.
ENLARGE_KERNELS = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}
#: The kernel is chosen on a centred window of at most this side.
KERNEL_WINDOW = 512
#: The least-squares shrink works on chunks of this many output pixels per axis, each solved with
#: this many more on either side: the pseudo-inverse of an enlargement falls to 1e-7 of its peak
#: 16 pixels away (condition number 3.4 for x1.5 bilinear), so the chunks agree with the whole.
_CHUNK = 256
_HALO = 32


@dataclass(frozen=True)
class Shrunk:
    """A layer brought back to its JPEG's own size by :func:`undo_enlargement`: ``image`` (same
    dtype and channels as the layer), the enlargement ``kernel`` it was shrunk with (a key of
    :data:`ENLARGE_KERNELS`: the one that explains the layer best, unless the caller gave one) and
    the ``residual`` each kernel leaves on the window (gray levels, RMS near ink; the least is the
    best kernel's)."""

    image: np.ndarray
    kernel: str
    residual: dict[str, float]


def _enlargement_block(n_small: int, n_big: int, flag: int, s0: int, s1: int) -> tuple[int, int, np.ndarray]:
    """Columns ``s0:s1`` of the matrix that enlarges an axis of ``n_small`` pixels to ``n_big``
    with the OpenCV kernel ``flag``, on the rows they reach (about ``s0 f`` to ``s1 f``): ``(lo,
    hi, ut)`` with ``ut`` of shape ``(s1 - s0, hi - lo)`` (float64), read off OpenCV by enlarging
    unit rows (each one the whole axis, so the layer's own edges are as OpenCV treats them)."""
    f = n_big / n_small
    lo, hi = max(0, int(np.floor(s0 * f))), min(n_big, int(np.ceil(s1 * f)))
    unit = np.zeros((s1 - s0, n_small), np.float32)
    unit[np.arange(s1 - s0), np.arange(s0, s1)] = 1.0
    return lo, hi, cv2.resize(unit, (n_big, s1 - s0), interpolation=flag)[:, lo:hi].astype(np.float64)


@lru_cache(maxsize=8)
def _axis_inverse(n_small: int, n_big: int, flag: int) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """The least-squares inverse of enlarging an axis of ``n_small`` pixels to ``n_big`` with the
    OpenCV kernel ``flag``, in chunks (:data:`_CHUNK`, each solved with :data:`_HALO` more pixels
    on either side): ``(a, b, lo, hi, pinv)``, output pixels ``a:b`` being ``pinv`` times input
    pixels ``lo:hi``. Kept for the next call (the rounds of :func:`_shrink_within_range`, the
    other axis of a square layer)."""
    chunks = []
    for a in range(0, n_small, _CHUNK):
        b = min(n_small, a + _CHUNK)
        s0, s1 = max(0, a - _HALO), min(n_small, b + _HALO)
        lo, hi, ut = _enlargement_block(n_small, n_big, flag, s0, s1)
        chunks.append((a, b, lo, hi, np.linalg.solve(ut @ ut.T, ut)[a - s0 : b - s0].astype(np.float32)))
    return tuple(chunks)


def _shrink_axis(x: np.ndarray, n_small: int, flag: int) -> np.ndarray:
    """The least-squares inverse of enlarging axis 0 of ``x`` (float32, any trailing shape) from
    ``n_small`` rows with the OpenCV kernel ``flag``: the ``n_small`` rows whose enlargement comes
    closest to ``x`` (:func:`_axis_inverse`)."""
    flat = x.reshape(x.shape[0], -1)
    out = np.empty((n_small, flat.shape[1]), np.float32)
    for a, b, lo, hi, pinv in _axis_inverse(n_small, x.shape[0], flag):
        out[a:b] = pinv @ flat[lo:hi]
    return out.reshape((n_small, *x.shape[1:]))


def _shrink(layer: np.ndarray, size: tuple[int, int], flag: int) -> np.ndarray:
    """The float32 image of ``size`` (width, height) whose enlargement with ``flag`` to the
    layer's size comes closest to ``layer`` (float32; 2-D or with channels), in least squares."""
    rows = _shrink_axis(layer, size[1], flag)
    return np.swapaxes(_shrink_axis(np.swapaxes(rows, 0, 1), size[0], flag), 0, 1)


#: For a factor found by the weaker rule, :func:`undo_enlargement` tries JPEG sizes this share of
#: their larger side around the factor's (at least 3 pixels either way): on 384 px crops
#: enlarged x1.15 that the weaker rule found at x1.144-1.149 (a size 1 to 3 pixels off, up to 7
#: dB lost), the right size left 0.33-0.79 of the residual of the best size near it (three x1.15
#: crops, each kernel).
SIZE_SEARCH = 0.006
#: Rounds of :func:`_shrink_within_range`.
CLIP_ROUNDS = 8


def _shrink_within_range(layer: np.ndarray, size: tuple[int, int], flag: int) -> np.ndarray:
    """:func:`_shrink` of an 8-bit layer (as float32) whose enlargement was clipped to 0-255:
    a bicubic or Lanczos enlargement overshoots beside every line on white paper, and the layer
    holds 255 where the enlargement made more, so 255 (and 0) are bounds, not values. Each of
    :data:`CLIP_ROUNDS` rounds fits again with the clipped pixels' targets set to the last fit's
    enlargement where it lies beyond the bound (a bicubic JPEG enlarged x1.5 came back at 41.5 dB
    in one round, 54.8 after these 8, 58.5 after 17; a bilinear one, which never overshoots, at 57
    dB in one; ``tests/test_resample.py``)."""
    top, bottom = layer >= 254.5, layer <= 0.5
    target = layer
    for _ in range(CLIP_ROUNDS if flag in (cv2.INTER_CUBIC, cv2.INTER_LANCZOS4) and top.any() else 1):
        small = _shrink(target, size, flag)
        fit = cv2.resize(small, (layer.shape[1], layer.shape[0]), interpolation=flag).reshape(layer.shape)
        target = layer.copy()
        target[top] = np.maximum(fit[top], 255.0)
        target[bottom] = np.minimum(fit[bottom], 0.0)
    return small


def _kernel_residual(gray: np.ndarray, size: tuple[int, int], flag: int) -> float:
    """What enlarging with ``flag`` leaves unexplained of an 8-bit gray layer (its size ``size``
    at the JPEG's scale): the RMS residual near ink of the least-squares fit on a central window
    of about :data:`KERNEL_WINDOW` layer pixels, taken as a block of the whole layer's enlargement
    (a crop of an enlarged layer is not itself an enlargement of whole pixels), its rim, which
    pixels outside the block reach, left out."""
    fits = []
    for n_big, n_small in ((gray.shape[0], size[1]), (gray.shape[1], size[0])):
        half = min(n_small, round(KERNEL_WINDOW * n_small / n_big)) // 2
        s0, s1 = max(0, n_small // 2 - half), min(n_small, n_small // 2 + half)
        lo, hi, ut = _enlargement_block(n_small, n_big, flag, s0, s1)
        rim = int(np.ceil(6 * n_big / n_small))
        inner = slice(rim if s0 > 0 else 0, (hi - lo) - rim if s1 < n_small else hi - lo)
        fits.append((lo, hi, ut, inner))
    (ylo, yhi, uy, yin), (xlo, xhi, ux, xin) = fits
    g = gray[ylo:yhi, xlo:xhi].astype(np.float64)
    x = np.linalg.solve(uy @ uy.T, uy @ g) @ np.linalg.solve(ux @ ux.T, ux).T
    diff = (g - uy.T @ x @ ux)[yin, xin]
    near = cv2.dilate((gray[ylo:yhi, xlo:xhi] < 250).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)[yin, xin]
    return float(np.sqrt(np.mean(diff[near] ** 2))) if near.any() else 0.0


def undo_enlargement(
    image: np.ndarray, factor: float, gray: np.ndarray | None = None, search: bool = False, kernel: str | None = None
) -> Shrunk:
    """An 8-bit layer enlarged by ``factor`` after its JPEG save, brought back to the JPEG's size.

    Shrinking with a fixed kernel leaves the enlargement's own blur in: a JPEG enlarged with the
    bilinear kernel and shrunk back with Lanczos is softer than the JPEG was, and the restored
    result enlarged with Lanczos is sharper than the layer's lines. So the layer is explained
    instead: for each kernel of :data:`ENLARGE_KERNELS`, the least-squares small image whose
    enlargement with that kernel comes closest to the layer (on a central window of ``gray``, the
    layer's gray, needed for a layer with channels, or of the 2-D layer itself:
    :func:`_kernel_residual`); the kernel that leaves
    the least behind near ink is the one the editor used (docs/wild.md, ``python -m
    benchmarks.wild_resample --gains``), and the whole layer is shrunk by least squares with it,
    0 and 255 taken for the bounds the enlargement was clipped to (:func:`_shrink_within_range`).
    With ``search`` (a factor found by the weaker rule) the JPEG's size is searched around the
    factor's first (:data:`SIZE_SEARCH`). ``kernel``, a name of :data:`ENLARGE_KERNELS`, is the
    kernel when it is known (a benchmark's answer): the size is found as without it, the kernel is
    not. The caller enlarges its restoration back with the same kernel."""
    h, w = image.shape[:2]
    g = image if gray is None else gray
    if kernel is not None and kernel not in ENLARGE_KERNELS:
        raise ValueError(f"kernel must be one of {sorted(ENLARGE_KERNELS)}, not {kernel!r}")
    if g.ndim != 2:
        raise ValueError("undo_enlargement needs the layer's gray for a layer with channels")
    fits: dict[tuple[tuple[int, int], str], float] = {}

    def residual_of(size: tuple[int, int], name: str) -> float:
        if (size, name) not in fits:
            fits[size, name] = _kernel_residual(g, size, ENLARGE_KERNELS[name])
        return fits[size, name]

    size = (max(8, round(w / factor)), max(8, round(h / factor)))
    if search:
        # a factor off by a few thousandths puts the JPEG a pixel or more off, and only its own
        # size is explained well: the sizes around it, the larger side a pixel at a time
        side, jpeg_side = max(w, h), max(size)
        reach = max(3, int(np.ceil(SIZE_SEARCH * jpeg_side)))
        sizes = {
            (max(8, round(w * n / side)), max(8, round(h * n / side)))
            for n in range(jpeg_side - reach, jpeg_side + reach + 1)
        }
        size = min(sorted(sizes), key=lambda c: min(residual_of(c, "linear"), residual_of(c, "lanczos")))
    residual = {name: residual_of(size, name) for name in ENLARGE_KERNELS}
    if kernel is None:
        kernel = min(residual, key=residual.get)
    flag = ENLARGE_KERNELS[kernel]
    planes = [image] if image.ndim == 2 else [image[..., c] for c in range(image.shape[2])]
    # a channel at a time: three float32 copies of one channel at most
    small = [
        np.clip(_shrink_within_range(p.astype(np.float32), size, flag) + 0.5, 0, 255).astype(np.uint8) for p in planes
    ]
    return Shrunk(small[0] if image.ndim == 2 else np.stack(small, axis=-1), kernel, residual)


def roundtrip_residual(gray: np.ndarray, factor: float) -> float:
    """How much of an 8-bit gray layer is lost when it is shrunk by ``1 / factor`` (OpenCV's area
    kernel, which averages away what is finer than the smaller grid) and enlarged back: the RMS
    difference, in gray levels, over the pixels within two of ink (darker than 250), on the central
    window of :func:`find_enlargement`, with Lanczos or nearest neighbours for the enlargement,
    whichever comes closer (an editor may have enlarged the JPEG either way). A JPEG enlarged by
    ``factor`` after its save scores a few levels (what its last save added); dots and lines drawn
    crisp at the layer's size score ten or more."""
    g = _window(gray).astype(np.float32)
    near = cv2.dilate((g < 250).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if not near.any():
        return 0.0
    h, w = g.shape
    small = cv2.resize(g, (max(8, round(w / factor)), max(8, round(h / factor))), interpolation=cv2.INTER_AREA)
    return min(
        float(np.sqrt(np.mean((g[near] - cv2.resize(small, (w, h), interpolation=kernel)[near]) ** 2)))
        for kernel in (cv2.INTER_LANCZOS4, cv2.INTER_NEAREST)
    )


def _paper_profiles(gray: np.ndarray) -> list[np.ndarray] | None:
    """:func:`_profiles`, or ``None`` where the layer has too little light paper noise to say
    anything about a block grid (a clean drawing, a small layer, a JPEG shrunk to a fraction)."""
    if gray.dtype != np.uint8 or gray.ndim != 2 or min(gray.shape) < 32:
        return None
    profiles = _profiles(gray)
    if any(prof.sum() < _MIN_STEPS * _CLIP / 16 for prof in profiles):
        return None
    return profiles


def _strength(profiles: list[np.ndarray]) -> float:
    total = 0.0
    for prof in profiles:
        n = prof.size - prof.size % 8
        bins = prof[:n].reshape(-1, 8).sum(0)
        spectrum = np.abs(np.fft.rfft(bins))
        total += float(spectrum[1] + spectrum[3]) / max(float(bins.mean()), 1e-9)
    return total / 2


def block_grid_strength(gray: np.ndarray) -> float | None:
    """How much of the layer's paper noise falls on an 8-pixel grid at its own size.

    The pixel-step profile of :func:`find_enlargement`, per axis, is folded modulo 8 and scored by
    its Fourier components of period 8 and 8/3 relative to its mean, averaged over both axes.
    Those two hold the 8x8 grid's steps wherever they lie (also two grids, a re-save after a crop)
    and none of a 4-pixel pattern, such as a JPEG's blocks halved. A JPEG saved at the layer's
    size (also re-saved or cropped at any offset) scores well above 1; a JPEG resized after its save
    keeps only its last save's grid, if any. ``None`` where the layer has too little light paper
    noise to say (a clean drawing, or a small one)."""
    profiles = _paper_profiles(gray)
    return None if profiles is None else _strength(profiles)


#: Zero-padded FFT length of :func:`block_grid_lead` (bins of 1/16384 cycles per pixel).
_LEAD_NFFT = 1 << 14
#: The periods :func:`block_grid_lead` compares the 8-pixel grid with: a JPEG shrunk to x0.52 or
#: enlarged to x2.5 after its save has blocks of 4.2 or 20 pixels.
_LEAD_PERIODS = (4.2, 20.0)


def _lead(profiles: list[np.ndarray], period: float = 8.0, others: tuple[float, float] = _LEAD_PERIODS) -> float:
    """The profiles' Fourier magnitude at ``period`` over the largest at any block period in
    ``others`` (shortest, longest) away from the 8-pixel grid's harmonics, averaged over the axes."""
    total = 0.0
    for prof in profiles:
        spec, n = _padded_spectrum(prof, _LEAD_NFFT)
        freq = np.arange(spec.size) / n
        k = round(n / period)
        peak = float(spec[k - 1 : k + 2].max())
        band = (freq > 1 / others[1]) & (freq < 1 / others[0])
        for h in (1 / 8, 2 / 8, 3 / 8):  # the grid's own harmonics, and the spread a short profile gives them
            band &= np.abs(freq - h) > 0.03 * h + 2 / prof.size
        total += peak / max(float(spec[band].max()), 1e-9)
    return total / 2


def block_grid_lead(gray: np.ndarray) -> float | None:
    """How far the 8-pixel period stands above any other block period in the layer's paper noise.

    Per axis, the magnitude of the step profile's Fourier sum (:func:`find_enlargement`'s profile)
    at period 8 over the largest at any other period of 4.2-20 pixels (3 % or more away from 8 and
    its harmonics 4 and 8/3), averaged over both axes. A JPEG at the layer's size peaks at 8; one
    resized after its save peaks at its own block period (8 times the factor), which the folded
    :func:`block_grid_strength` cannot see: a JPEG enlarged x1.1 (blocks of 8.8 pixels) still
    folds into a strong grid on a small layer. ``None`` where there is too little paper noise."""
    profiles = _paper_profiles(gray)
    return None if profiles is None else _lead(profiles)


#: :func:`block_grid_strength` below which a layer without a JPEG table in its pixels is taken for
#: one resized after compression: ``python -m benchmarks.bench_wild --grid-strength 256`` on
#: ``lineart/train`` crops (single JPEGs, crops and PNG exports scored 1.33 or more, JPEGs resized
#: and kept as pixels 0.52 at the median) and ``--route 256`` (the threshold with the best mean
#: gain; 1.0 to 1.6 are within 0.03 dB of it).
RESIZED_WITHOUT_TABLE = 1.4
#: :func:`block_grid_lead` below which a layer without a JPEG table is taken for a resized one
#: whatever its strength: of the ``lineart/train`` crops with no table found (``python -m
#: benchmarks.bench_wild --grid-strength 256 --route 256 --images 0``), the JPEGs resized after their
#: save scored 0.59 or less, the re-saves at the layer's size 0.60 or more (a thin margin); the
#: routing sweep gains most here (+1.942 dB over the default pair, +1.921 with the strength alone).
RESIZED_LEAD = 0.6
#: The same for a layer whose last JPEG did not make its damage (``jpeg_consistency.outside_share``):
#: JPEGs resized before the last save keep only the last save's grid (1.04 at the median), re-saves
#: at the layer's size also the first's (1.21 at the median after a crop, 2.66 on the same grid).
#: The wild backbone gains 1.6 dB on the first and loses about 0.5 dB on the others, so the
#: threshold is high (``--route``: the best mean gain).
RESIZED_WITH_TABLE = 1.6


def resize_evidence(gray: np.ndarray, table_found: bool) -> str | None:
    """Why the layer's JPEG damage looks not to be on an 8-pixel grid at its size, i.e. the layer
    was resized after compression (a phrase for the notes), or ``None``.

    Without a table: a weak grid (:data:`RESIZED_WITHOUT_TABLE`), a grid that another block period
    outdoes (:data:`RESIZED_LEAD`), or no paper noise to measure at all: a JPEG shrunk to about
    half keeps too little, and the wild pair restores a clean drawing within 0.2 dB of the default
    one (about 50 dB either way), so the doubt goes to the pair that cannot lose much.

    With a table found (a JPEG saved at the layer's size after all, whose step the caller found did
    not make the damage): a weak grid (:data:`RESIZED_WITH_TABLE`); ``None`` where the layer has
    too little paper noise to say. The lead does not serve there: the last save puts an 8-pixel grid
    on the layer whatever came before, and routing by a lead below 0.8 as well sent kanji re-saves
    on the same grid to the wild pair, 0.5 dB worse, for +0.04 dB on training crops (``python -m
    benchmarks.bench_wild --route 256 --images 0 [--train .../kanji]``)."""
    profiles = _paper_profiles(gray)
    if profiles is None:
        return (
            None
            if table_found
            else "no JPEG noise to go by at the layer's size (a clean drawing, or a JPEG shrunk after compression?)"
        )
    if _strength(profiles) < (RESIZED_WITH_TABLE if table_found else RESIZED_WITHOUT_TABLE):
        return "no JPEG block grid at the layer's size (resized after compression?)"
    if not table_found and _lead(profiles) < RESIZED_LEAD:
        return "its JPEG noise repeats at another period than 8 pixels (resized after compression?)"
    return None


def looks_resized(gray: np.ndarray, table_found: bool) -> bool:
    """Whether :func:`resize_evidence` finds the layer resized after compression."""
    return resize_evidence(gray, table_found) is not None
