"""Keep a restoration consistent with the JPEG it came from.

A baseline JPEG stores, for every 8x8 block, the block's DCT coefficients divided by a
quantization table and rounded: ``k = round(DCT(block - 128) / Q)``. Whatever the clean drawing
was, its coefficients lie in ``[(k - 1/2) Q, (k + 1/2) Q]``. That box is convex, and so is the
set the paper's eq. 2 defines (paper pixels of the mask are exactly white), and so is the pixel
range 0..255. Projecting a restoration onto sets that hold the truth can only bring it closer
to the truth (in the L2 sense, which is what PSNR measures), so :func:`make_consistent`
alternates the three projections (POCS) after the networks have run.

The layer an editor hands us is pixels, not a file: the coefficients ``k``, the table ``Q`` and
the position of the 8x8 grid have to be read back from the decoded pixels.

* :func:`find_jpeg_grid` tries the IJG quality tables (what libjpeg, Pillow, Krita, GIMP and
  most tools write; ITU T.81 Annex K scaled as libjpeg does) at QF 1-90 and keeps the one whose
  re-encoding reproduces the pixels, on the grid at (0, 0) or, for a layer cropped at an offset
  that is not a multiple of 8, on the likeliest other phases (then other encoders' tables, below).
  Anything else (a PNG, a JPEG that was edited, scaled or saved with tables none of those, or QF
  above 90, where there is little to gain) finds no grid, and the restoration is left as the
  networks made it. When the file is at hand its own table can
  be given instead (any encoder, any quality); it is still checked against the pixels.
* :func:`recover_coefficients` undoes the decoder's clipping at 0 and 255 (line art is mostly
  clipped white) before reading ``k`` back, and trusts only the blocks whose pixels the
  recovered coefficients reproduce within one gray level.
* Where no IJG table fits, :func:`find_jpeg_grid` tries other encoders' tables
  (:data:`OTHER_BASE_TABLES` scaled by quality, and Pillow's Photoshop-like presets): mozjpeg's
  default and the web tools built on it, its other predefined tables, flat tables. Such a grid
  must also fit far better than the grids 4 pixels away, on every phase.

Before the projection is trusted, :func:`outside_share` checks its assumption on the result: if
the last JPEG made the damage, the networks' restoration (close to the clean drawing) lies in
or next to that JPEG's quantization boxes. When an earlier, coarser JPEG did the damage (a
re-saved file, on the same grid or another) or the layer was resized between compression and
the last save, the clean drawing is far outside those boxes, and so is a good restoration: the
projection would pull it back towards the damaged input. :func:`first_quality` then tells, for
a re-save on the same grid, which coarser IJG quality the first save had (docs/wild.md).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from .imageio import estimate_jpeg_quality, ijg_table, scaled_table
from .steps import step
from .tiling import densest_window

#: Highest quality tried: above it the table's steps are 1-3 gray levels, which nearly any
#: 8-bit image fits, and the projection would pin the restoration to its input.
MAX_QF = 90
#: Share of the sampled textured blocks that must be reproduced for a grid to be accepted.
#: Measured on Pillow JPEGs of line art: 0.6-0.95 for the right table, at most 0.16 for any other.
MIN_REPRODUCED = 0.4
#: For a plane known within bounds (a colour JPEG's luminance, :func:`core.colour.jpeg_luma`): the
#: highest quality tried and the share of blocks to reproduce. Its pixels are known within 1.5 levels
#: at best and, where a channel clipped, from one side only, which fine tables fit on any block; the
#: right table's share is lower than on a gray plane (measured: docs/colour.md).
MAX_QF_BOUNDED = 80
MIN_REPRODUCED_BOUNDED = 0.3
#: ... and the search looks only at blocks with at least this many pixels known within a level or
#: white paper (a block of pixels known from one side only fits nearly any table).
MIN_KNOWN = 40
#: ... of which at least this many within a level (not paper: a bright flat block fits paper).
MIN_CLOSED = 8
#: Tables within this share of the best one's count as fitting as well (gray planes: some tables'
#: steps divide others'); a bounded plane's fits are looser, so there only ties count.
TIE = 0.01
#: Fewer textured blocks than this and no grid is claimed (too little evidence).
MIN_BLOCKS = 16
#: Phases other than (0, 0) looked at by :func:`find_jpeg_grid` (a cropped layer), the likeliest
#: by :func:`_phase_candidates`. On 192 layers (256 and 512 px) of val, kanji and train drawings
#: cut from JPEGs at QF 10-40 at offsets of 0-7 px, that ranking put the right phase first on 186,
#: within its first 3 on 191 and within its first 8 on all (``bench_wild --grid-phase 8``).
PHASES_TRIED = 8
#: On each of those phases the coarse stage of the table search (every table, 2 rounds of
#: clipping recovery) runs on this many textured blocks spread over the layer; the phases are
#: ranked by the best table's share there, those under :data:`MIN_COARSE` are given up, and the
#: others get the fine stage, best first, until one is accepted. Ranked so, the right phase came
#: first on all of the 192 layers. Coarse shares (same run): 0.25 or more on the right phase
#: (median 0.75); on the likeliest 8 phases of 144 clean and resized layers, at most 0.38 (median
#: 0.04), but up to 0.62 on a clean kanji drawing whose smooth strokes fit QF 88-90 tables on any
#: grid (``--grid-phase 4``): the coarse share ranks phases, :data:`MIN_CONTRAST` rejects those.
SHIFTED_COARSE_BLOCKS = 24
MIN_COARSE = 0.1
#: A phase whose coarse share reaches this gets the fine stage at once (the step profile's first
#: phase, most of the time), without waiting for the others to be ranked; the right phase is
#: then still the one found (the layers above: the same finds as with the full ranking), and a
#: wrong phase that reaches it must still pass :data:`MIN_CONTRAST`.
SURE_COARSE = 0.4
#: Tables of the coarse ranking that get the fine stage on those phases (2 at (0, 0)): on a drawing
#: of smooth strokes, QF 88-90 tables fit many blocks of any grid and can rank above the JPEG's own.
FINE_TABLES = 3
#: A grid at a phase other than (0, 0) must reproduce this much larger a share of its blocks
#: than the same table on the grids 4 pixels away (:func:`_share_away`): at least 0.59 on the
#: right phase of the 192 layers above; the tables that fit layers that are no JPEG by chance
#: (QF 88-90, on that kanji drawing) led by at most 0.08 (``--grid-phase 4``, docs/pipeline.md).
MIN_CONTRAST = 0.25
#: Gray levels by which a decoder (islow, float or SIMD IDCT) may differ from ours.
TOLERANCE = 1.0
#: Iterations of the clipping recovery and of the projections (measured: docs/pipeline.md).
RECOVER_ITERATIONS = 20
PROJECT_ITERATIONS = 10
#: Largest distance (DCT domain, L2 over the block, gray levels) left between the two sets after
#: the projections for a block to keep its projected value (measured: docs/pipeline.md).
MAX_GAP = 4.0
#: Blocks per chunk in the projection (memory: about 2 KiB per block).
_CHUNK = 16384
#: Block rows per band: the projection copies a band's pixels (about 12 bytes per pixel), not
#: the whole image's (at 8192² the pipeline peaked at 2697 MB with the whole-image copy, 2126 MB
#: in bands: ``benchmarks/bench_pipeline.py --parts 8192``). Blocks are independent, so the bands
#: give the same result as one pass.
_BAND_BLOCK_ROWS = 128
#: A coefficient counts as outside its box when it is more than this share of a step beyond it,
#: and more than :data:`OUTSIDE_FLOOR` gray levels (at QF 85-90 a quarter step is under one gray
#: level, less than a good restoration's own error).
OUTSIDE_STEP = 0.25
OUTSIDE_FLOOR = 3.0
#: Largest share of outside coefficients for which the projection is still applied, for a last
#: save at QF up to :data:`FINE_QF`, and above it (:func:`max_outside`). Measured (docs/wild.md,
#: ``benchmarks/bench_wild.py --calibrate``): single JPEGs gave at most 0.022 up to QF 75 and
#: 0.063 at QF 85-90; re-saves from a coarser quality (same or shifted grid) and JPEGs resized
#: before the last save gave at least 0.088 (one re-save 40 then 60: 0.049) and 0.149 above QF 80
#: (one JPEG shrunk x0.5 and saved at 85, where the step neither helps nor hurts: 0.080).
MAX_OUTSIDE = 0.05
MAX_OUTSIDE_FINE = 0.1
FINE_QF = 80
#: Blocks with lines looked at by :func:`outside_share` (a sample: the statistic is a share).
OUTSIDE_SAMPLE = 1024
#: An earlier table must be this much coarser than the last one (median over the lowest
#: frequencies) to be looked for by :func:`first_quality`, and must reproduce at least this
#: share of the sampled blocks after a simulated second save.
FIRST_RATIO = 2.0
FIRST_MIN_SHARE = 0.03
#: Phases other than (0, 0) that the other tables' search looks at (the right phase of a cropped
#: JPEG was within the first 3 of :func:`_phase_candidates` on 191 of 192 layers; see
#: :data:`PHASES_TRIED`).
OTHER_PHASES = 3
#: ... and only on a layer whose :func:`core.resample.block_grid_strength` is at least this: JPEGs
#: saved with those tables scored 0.77 or more, while a clean drawing has too little paper noise to
#: score and half of the JPEGs resized after saving scored below 0.6, where the search (45-100 ms
#: CPU) is spared (``benchmarks/bench_wild.py --encoders``, docs/pipeline.md).
OTHER_MIN_STRENGTH = 0.6
#: With a table that is not IJG's (another encoder's, found or the file's own), :func:`make_consistent`
#: lets every box reach this many steps further away from zero. mozjpeg, whose tables most of
#: those are, quantizes with trellis optimization by default, which picks smaller coefficients
#: than rounding where that saves bits: the clean drawing can then lie beyond the box, and
#: projecting onto the box would pull it back. Simulated by rounding with a dead zone (docs/pipeline.md).
OTHER_SLACK = 0.3
#: Other encoders' luminance tables (natural order; quality 50 as given, other qualities scaled as
#: libjpeg scales its own and clamped to 8 bits, baseline JPEG): the predefined tables of mozjpeg's
#: ``-quant-table`` other than the IJG one. mozjpeg's default (and so that of the web tools built
#: on it) is N. Robidoux's table for ImageMagick.
OTHER_BASE_TABLES: dict[str, tuple[int, ...]] = {
    "mozjpeg's default table": (
        16, 16, 16, 18, 25, 37, 56, 85, 16, 17, 20, 27, 34, 40, 53, 75, 16, 20, 24, 31, 43, 62, 91, 135,
        18, 27, 31, 40, 53, 74, 106, 156, 25, 34, 43, 53, 69, 94, 131, 189, 37, 40, 62, 74, 94, 124, 169, 238,
        56, 53, 91, 106, 131, 169, 226, 311, 85, 75, 135, 156, 189, 238, 311, 418,
    ),
    "mozjpeg's MS-SSIM table": (
        12, 17, 20, 21, 30, 34, 56, 63, 18, 20, 20, 26, 28, 51, 61, 55, 19, 20, 21, 26, 33, 58, 69, 55,
        26, 26, 26, 30, 46, 87, 86, 66, 31, 33, 36, 40, 46, 96, 100, 73, 40, 35, 46, 62, 81, 100, 111, 91,
        46, 66, 76, 86, 102, 121, 120, 101, 68, 90, 90, 96, 113, 102, 105, 103,
    ),
    "mozjpeg's PSNR-HVS table": (
        9, 10, 12, 14, 27, 32, 51, 62, 11, 12, 14, 19, 27, 44, 59, 73, 12, 14, 18, 25, 42, 59, 79, 78,
        17, 18, 25, 42, 61, 92, 87, 92, 23, 28, 42, 75, 79, 112, 112, 99, 40, 42, 59, 84, 88, 124, 132, 111,
        42, 64, 78, 95, 105, 126, 125, 99, 70, 75, 100, 102, 116, 100, 107, 98,
    ),
    "Klein, Silverstein and Carney's table": (
        10, 12, 14, 19, 26, 38, 57, 86, 12, 18, 21, 28, 35, 41, 54, 76, 14, 21, 25, 32, 44, 63, 92, 136,
        19, 28, 32, 41, 54, 75, 107, 157, 26, 35, 44, 54, 70, 95, 132, 190, 38, 41, 63, 75, 95, 125, 170, 239,
        57, 54, 92, 107, 132, 170, 227, 312, 86, 76, 136, 157, 190, 239, 312, 419,
    ),
    "a flat table": (16,) * 64,
}  # fmt: skip


def _dct_matrix() -> torch.Tensor:
    d = torch.zeros(8, 8, dtype=torch.float64)
    for u in range(8):
        a = math.sqrt((1 if u == 0 else 2) / 8)
        for i in range(8):
            d[u, i] = a * math.cos((2 * i + 1) * u * math.pi / 16)
    return d


# Blocks are kept flattened, (..., 64) in row-major order, so that the 2-D DCT of many blocks
# is one matrix product with the Kronecker square of the 1-D transform.
_K = torch.kron(_dct_matrix(), _dct_matrix()).float()
_KT = _K.T.contiguous()


def dct8(blocks: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II (the JPEG forward DCT) of flattened 8x8 blocks ``(..., 64)``."""
    return blocks @ _KT


def idct8(coefs: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct8`."""
    return coefs @ _K


@dataclass(frozen=True)
class JpegGrid:
    """Where a layer's JPEG blocks are and how they were quantized.

    Attributes:
        qf: the IJG quality whose table fits; for a file's own table, the nearest IJG quality.
        table: the 8x8 table that fits.
        dy, dx: the first full block starts at row ``dy``, column ``dx`` (0-7).
        reproduced: share of the sampled textured blocks that the table reproduced.
        standard: the table is the IJG one for ``qf`` (found by search, or given and equal to it).
        encoder: for a table found among other encoders' (:func:`_other_tables`), whose it is
            (e.g. ``"mozjpeg's default table at quality 45"``); ``None`` otherwise.
    """

    qf: int
    table: np.ndarray
    dy: int
    dx: int
    reproduced: float
    standard: bool = True
    encoder: str | None = None


def _blocks(img: np.ndarray | torch.Tensor, dy: int, dx: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(nby, nbx, 64)`` copy of the full blocks of ``img`` on the grid (dy, dx), as ``dtype``."""
    t = img if isinstance(img, torch.Tensor) else torch.from_numpy(np.require(img, requirements=("C", "W")))
    t = t.to(dtype)
    h, w = t.shape
    nby, nbx = (h - dy) // 8, (w - dx) // 8
    t = t[dy : dy + 8 * nby, dx : dx + 8 * nbx]
    return t.reshape(nby, 8, nbx, 8).permute(0, 2, 1, 3).reshape(nby, nbx, 64)


def _block_view(img: np.ndarray | torch.Tensor, dy: int, dx: int) -> np.ndarray:
    """``(nby, 8, nbx, 8)`` view (no copy) of the full blocks of ``img`` on the grid (dy, dx)."""
    a = img.numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    h, w = a.shape
    nby, nbx = (h - dy) // 8, (w - dx) // 8
    return a[dy : dy + 8 * nby, dx : dx + 8 * nbx].reshape(nby, 8, nbx, 8)


def _blocks_at(img: np.ndarray | torch.Tensor, dy: int, dx: int, idx: torch.Tensor) -> torch.Tensor:
    """``(n, 64)`` float32 copy of the blocks ``idx`` (row-major block numbers) of the grid (dy, dx):
    ``_blocks(img, dy, dx).reshape(-1, 64)[idx]`` without copying the other blocks."""
    v = _block_view(img, dy, dx)
    i = idx.numpy()
    picked = v[i // v.shape[2], :, i % v.shape[2], :]  # (n, 8, 8): each block's rows, then columns
    return torch.from_numpy(np.ascontiguousarray(picked, dtype=np.float32)).reshape(-1, 64)


def _unblocks(b: torch.Tensor) -> torch.Tensor:
    nby, nbx = b.shape[:2]
    return b.reshape(nby, nbx, 8, 8).permute(0, 2, 1, 3).reshape(8 * nby, 8 * nbx)


def recover_coefficients(
    pixels: torch.Tensor,
    table: np.ndarray | torch.Tensor,
    iterations: int | None = None,
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
    start: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the quantized coefficients back from decoded 8-bit blocks.

    Args:
        pixels: ``(..., 64)`` decoded pixel values 0..255 (float), flattened 8x8 blocks.
        table: the 8x8 quantization table, or a stack of them ``(T, 1, 8, 8)`` (the result then
            gets a leading dimension T: every table is tried on every block).
        iterations: rounds of clipping recovery: pixels at 0 or 255 may stand for values the
            decoder clipped, so they are replaced by the current re-decoding (kept beyond the
            clip) before the coefficients are read again.
        bounds: ``(lower, upper)`` like ``pixels``, the range (0..255 scale, ``-inf``/``inf`` for
            none) each decoded value is known to lie in, instead of "exactly the pixel, or beyond
            0 or 255": a plane recomputed from clipped channels (a colour JPEG's luminance,
            :func:`core.colour.jpeg_luma`) knows some pixels only from one side. A block is then
            reproduced when its re-decoding lies within :data:`TOLERANCE` of those ranges.
        start: with ``bounds``, values (like ``pixels``) to start the search from instead of the
            pixels, e.g. a restoration: where many pixels are known from one side only the search
            can settle on coefficients that do not reproduce the block; the clean drawing's rounded
            coefficients are the stored ones, and a restoration close to it starts next to them.

    Returns:
        ``(k, ok)``: integer-valued coefficients ``(..., 64)`` and a bool ``(...)`` telling
        which blocks the coefficients reproduce within :data:`TOLERANCE`.
    """
    iterations = RECOVER_ITERATIONS if iterations is None else iterations
    q = torch.as_tensor(table, dtype=torch.float32)
    q = q.reshape(*q.shape[:-2], 64)
    # Pixels centred on 0 (the JPEG level shift). A pixel at 255 may stand for any value from 255
    # up, one at 0 for any value down to 0, every other pixel for itself: a re-decoding is clamped
    # into those bounds.
    centred = pixels - 128
    if bounds is None:
        lower = torch.where(pixels <= 0, -math.inf, centred)
        upper = torch.where(pixels >= 255, math.inf, centred)
    else:
        lower, upper = bounds[0] - 128, bounds[1] - 128
        if start is not None:
            centred = start - 128
    k = torch.round(dct8(centred) / q)
    if q.dim() > 1:  # many tables at once (the search): every block, every round
        for _ in range(iterations):
            k = torch.round(dct8(torch.clamp(idct8(k * q), lower, upper)) / q)
    else:  # one table: only blocks with clipped pixels can change, and only until k settles
        loose = ((pixels >= 255) | (pixels <= 0)) if bounds is None else (torch.isinf(lower) | torch.isinf(upper))
        todo = torch.nonzero(loose.flatten(0, -2).any(-1)).flatten()
        kf, lf, uf = k.view(-1, 64), lower.reshape(-1, 64), upper.reshape(-1, 64)
        for _ in range(iterations):
            if todo.numel() == 0:
                break
            kk = kf[todo]
            kn = torch.round(dct8(torch.clamp(idct8(kk * q), lf[todo], uf[todo])) / q)
            kf[todo] = kn
            todo = todo[(kn != kk).any(-1)]
    rec = (idct8(k * q) + 128).round().clamp(0, 255)
    if bounds is None:
        ok = ((rec - pixels).abs() <= TOLERANCE).all(-1)
    else:
        rec -= 128
        ok = ((rec >= lower - TOLERANCE) & (rec <= upper + TOLERANCE)).all(-1)
    return k, ok


def _recover_bounded(
    pixels: torch.Tensor, q: torch.Tensor, bounds: tuple[torch.Tensor, torch.Tensor], restored: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`recover_coefficients` for a plane with ``bounds``: started from the restoration
    (0..255), and where that does not reproduce a block, from the pixels. On coloured Pillow JPEGs
    (4:2:0, QF 20) the two starts reproduced 70-89 % and 55-77 % of the textured blocks, 79-93 %
    together (the clean drawing as the start: 97-99 %; ``benchmarks/colour_grid_calibration.py``)."""
    k, ok = recover_coefficients(pixels, q, bounds=bounds, start=restored)
    bad = torch.nonzero(~ok).flatten()
    if bad.numel():
        k2, ok2 = recover_coefficients(pixels[bad], q, bounds=(bounds[0][bad], bounds[1][bad]))
        k[bad] = k2
        ok[bad] = ok2
    return k, ok


@functools.lru_cache(maxsize=2)
def _ijg_tables(max_qf: int = MAX_QF) -> tuple[dict[int, np.ndarray], torch.Tensor]:
    """The IJG tables the search tries, by quality, and stacked ``(T, 1, 8, 8)`` (built once)."""
    tables = {qf: ijg_table(qf).reshape(8, 8) for qf in range(1, max_qf + 1)}
    stack = torch.as_tensor(np.stack(list(tables.values())), dtype=torch.float32)
    return tables, stack[:, None]


@functools.lru_cache(maxsize=1)
def _other_tables() -> dict[tuple[str, int], np.ndarray]:
    """The other encoders' tables the search tries when no IJG table fits, ``(name, quality)`` ->
    (8, 8) table (quality 0 for a fixed preset): :data:`OTHER_BASE_TABLES` at every quality, and
    Pillow's Photoshop-like presets; none equal to an IJG table, none twice, none whose nearest
    IJG quality is above :data:`MAX_QF` (as fine as the IJG tables that are not tried)."""
    from PIL import JpegPresets

    seen = {ijg_table(q).astype(np.int64).tobytes() for q in range(1, 101)}
    out: dict[tuple[str, int], np.ndarray] = {}

    def add(key, table) -> None:
        t = np.asarray(table, dtype=np.int64).reshape(8, 8)
        if t.tobytes() not in seen and estimate_jpeg_quality(t.reshape(-1)) <= MAX_QF:
            seen.add(t.tobytes())
            out[key] = t

    for name, base in OTHER_BASE_TABLES.items():
        for q in range(1, 101):
            add((name, q), scaled_table(base, q))
    for name, preset in JpegPresets.presets.items():
        add((f"Pillow's Photoshop-like preset '{name}'", 0), preset["quantization"][0])
    return out


def _other_grid(
    gray: np.ndarray, sample: int, rng: np.random.Generator, bounds=None, start: np.ndarray | None = None
) -> JpegGrid | None:
    """:func:`find_jpeg_grid` among the other encoders' tables (:func:`_other_tables`), on (0, 0)
    and the :data:`OTHER_PHASES` likeliest other phases: the coarse stage on
    :data:`SHIFTED_COARSE_BLOCKS` blocks spread over the layer, the fine stage on the best
    :data:`FINE_TABLES` (the coarsest of those that fit as well as the best), and on every phase
    the contrast with the grids 4 pixels away that shifted IJG grids need. With ``bounds`` (and
    ``start``: a colour JPEG's luminance, see :func:`find_jpeg_grid`), the bounded plane's rules:
    (0, 0) and the likeliest other phase, :data:`MIN_REPRODUCED_BOUNDED`, only ties count; and
    the contrast on every phase too."""
    tables = _other_tables()
    keys, stack = _other_stack(bounded=bounds is not None)
    phases = OTHER_PHASES if bounds is None else 1
    min_share, tie = (MIN_REPRODUCED, TIE) if bounds is None else (MIN_REPRODUCED_BOUNDED, 0.0)
    for dy, dx in [(0, 0), *_phase_candidates(gray, phases)]:
        blocks, idx = _sample_textured_idx(gray, dy, dx, sample, rng, bounds)
        n = blocks.shape[0]
        if n < MIN_BLOCKS:
            continue
        bb = _block_bounds(bounds, dy, dx, idx)
        st = None if start is None else _blocks_at(start, dy, dx, idx)
        spread = torch.linspace(0, n - 1, min(n, SHIFTED_COARSE_BLOCKS)).round().long()
        coarse = _coarse(
            blocks[spread],
            stack,
            keys,
            bounds=None if bb is None else (bb[0][spread], bb[1][spread]),
            start=None if st is None else st[spread],
        )
        if coarse[0][0] < MIN_COARSE:
            continue
        scored = [(float(_reproduced(blocks, tables[k], bounds=bb, start=st)), k) for _, k in coarse[:FINE_TABLES]]
        best = max(sc for sc, _ in scored)
        if best < min_share:
            continue
        share, key = max((float(tables[k].mean()), sc, k) for sc, k in scored if sc >= best - tie)[1:]
        table = tables[key]
        if share - _share_away(gray, dy, dx, table, sample // 4, rng, bounds) < MIN_CONTRAST:
            continue
        name, q = key
        return JpegGrid(
            qf=estimate_jpeg_quality(table.reshape(-1)), table=table, dy=dy, dx=dx, reproduced=share,
            standard=False, encoder=name if q == 0 else f"{name} at quality {q}",
        )  # fmt: skip
    return None


@functools.lru_cache(maxsize=2)
def _other_stack(bounded: bool = False) -> tuple[list, torch.Tensor]:
    """The keys of :func:`_other_tables` and the tables stacked ``(T, 1, 8, 8)`` (built once); for
    a bounded plane only those whose nearest IJG quality is at most :data:`MAX_QF_BOUNDED`, as for
    the IJG tables."""
    tables = _other_tables()
    keys = [k for k, t in tables.items() if not bounded or estimate_jpeg_quality(t.reshape(-1)) <= MAX_QF_BOUNDED]
    return keys, torch.as_tensor(np.stack([tables[k] for k in keys]), dtype=torch.float32)[:, None]


def _phase_candidates(gray: np.ndarray, count: int) -> list[tuple[int, int]]:
    """The ``count`` 8x8 grid phases other than (0, 0) most likely to be a cropped JPEG's, best first.

    A JPEG's blocks end in small steps in the light paper around its lines (ringing that stops at
    the block's edge); inside a block, and on a layer that is no JPEG at its size, those steps
    do not gather on one phase. Per axis, the clipped steps between light pixels
    (:func:`core.resample._profiles`) are folded modulo 8 and standardized; a phase (dy, dx)
    scores the sum of its two axes' values (a step between pixels p and p + 1 means a block starts
    at p + 1). Steps between all pixels, the lines' own edges included, hide the grid on small
    layers (``benchmarks/bench_wild.py --grid-phase``, docs/pipeline.md)."""
    from .resample import _profiles  # the same light-paper steps the enlargement search reads

    z = []
    for prof in reversed(_profiles(gray)):  # rows (dy), then columns (dx); its window keeps the phase
        fold = np.array([prof[p::8].mean() if prof[p::8].size else 0.0 for p in range(8)])
        z.append(np.roll((fold - fold.mean()) / (fold.std() + 1e-9), 1))  # index: the block's start
    ranked = sorted(((z[0][dy] + z[1][dx], (dy, dx)) for dy in range(8) for dx in range(8)), reverse=True)
    return [p for _, p in ranked if p != (0, 0)][:count]


def _sample_textured(gray: np.ndarray, dy: int, dx: int, limit: int, rng: np.random.Generator) -> torch.Tensor:
    return _sample_textured_idx(gray, dy, dx, limit, rng)[0]


def _sample_textured_idx(
    gray: np.ndarray, dy: int, dx: int, limit: int, rng: np.random.Generator, bounds=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``limit`` textured blocks of ``gray`` on the grid (dy, dx), and their block indices.
    With ``bounds``, only blocks with :data:`MIN_KNOWN` pixels known within a level or white paper,
    :data:`MIN_CLOSED` of them within a level: pixels known from one side only fit nearly any table."""
    # Per block, on views of the layer (only the sampled blocks are copied).
    v = _block_view(gray, dy, dx)
    textured = (v.max(axis=(1, 3)).astype(np.int16) - v.min(axis=(1, 3))) > 2
    if bounds is not None:
        lo, hi = bounds
        closed_px = (hi - lo) <= 1.01
        known_px = closed_px | (lo >= 254.0) | (hi <= 1.0)
        closed = _block_view(closed_px, dy, dx).sum(axis=(1, 3))
        known = _block_view(known_px, dy, dx).sum(axis=(1, 3))
        textured &= (known >= MIN_KNOWN) & (closed >= MIN_CLOSED)
    idx = torch.from_numpy(np.flatnonzero(textured))
    if idx.numel() > limit:
        idx = idx[torch.from_numpy(rng.choice(idx.numel(), limit, replace=False))]
    return _blocks_at(gray, dy, dx, idx), idx


def _block_bounds(bounds, dy: int, dx: int, idx: torch.Tensor | None = None):
    """``bounds`` ((H, W) lower and upper arrays, or None) as flattened blocks on the grid (dy, dx)."""
    if bounds is None:
        return None
    if idx is not None:
        return tuple(_blocks_at(b, dy, dx, idx) for b in bounds)
    return tuple(_blocks(b, dy, dx).reshape(-1, 64) for b in bounds)


def _reproduced(blocks, table, n=None, iterations=None, bounds=None, start=None) -> torch.Tensor:
    """Share of the first ``n`` of ``blocks`` that ``table`` (or each of a stack) reproduces; with
    ``bounds``, from the pixels or, where that fails, from ``start`` (see :func:`recover_coefficients`)."""
    if bounds is None:
        return recover_coefficients(blocks[:n], table, iterations)[1].float().mean(-1)
    lo, hi = bounds[0][:n], bounds[1][:n]
    ok = recover_coefficients(blocks[:n], table, iterations, bounds=(lo, hi))[1]
    if start is not None:
        ok = ok | recover_coefficients(blocks[:n], table, iterations, bounds=(lo, hi), start=start[:n])[1]
    return ok.float().mean(-1)


def _coarse(blocks: torch.Tensor, stack: torch.Tensor, keys: list, n=None, bounds=None, start=None) -> list:
    """The coarse stage of the table search: every table of ``stack`` on the first ``n`` of
    ``blocks`` with 2 rounds of clipping recovery (:func:`_reproduced`); ``(share of blocks
    reproduced, key)`` per table, best first."""
    return sorted(zip(_reproduced(blocks, stack, n, 2, bounds, start).tolist(), keys), reverse=True)


def _fit(
    blocks: torch.Tensor,
    candidates: list[np.ndarray] | None,
    coarse: list[tuple[float, int]] | None = None,
    fine: int = 2,
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
    start: torch.Tensor | None = None,
) -> tuple[float, int, np.ndarray, bool] | None:
    """The table that reproduces the most of ``blocks`` (textured blocks on one grid):
    ``(share, qf, table, standard)``, or ``None`` below :data:`MIN_REPRODUCED`. ``candidates``:
    the file's own table (and its transpose), or ``None`` for the IJG tables; then ``coarse`` is
    the coarse stage's ranking of them (by default, :func:`_coarse` on the first 48 blocks), and
    its best ``fine`` tables get the fine stage. ``bounds`` / ``start``: the blocks' pixel ranges
    and a restoration to start from, for a plane that is not the decoder's own
    (:func:`find_jpeg_grid`); such a plane is searched up to :data:`MAX_QF_BOUNDED` and needs
    :data:`MIN_REPRODUCED_BOUNDED`."""
    share = functools.partial(_reproduced, blocks, bounds=bounds, start=start)
    min_share = MIN_REPRODUCED if bounds is None else MIN_REPRODUCED_BOUNDED
    if candidates is not None:
        score, i = max((float(share(c)), i) for i, c in enumerate(candidates))
        if score < min_share:
            return None
        t = candidates[i]
        qf = estimate_jpeg_quality(t.reshape(-1))
        return score, qf, t, bool(np.array_equal(t.reshape(-1), ijg_table(qf)))
    tables, stack = _ijg_tables(MAX_QF if bounds is None else MAX_QF_BOUNDED)
    # Every table on a few blocks with a few rounds, then the best ones on all of the sample.
    if coarse is None:
        coarse = _coarse(blocks, stack, list(tables), 48, bounds, start)
    scored = [(float(share(tables[qf])), qf) for _, qf in coarse[:fine]]
    score = max(s for s, _ in scored)
    if score < min_share:
        return None
    # An image quantized at QF q may also fit a table whose steps divide q's: take the
    # coarsest (lowest QF) of those that fit as well as the best (a bounded plane's fits are
    # looser: there only ties count).
    qf = min(q for s, q in scored if s >= score - (TIE if bounds is None else 0.0))
    return score, qf, tables[qf].copy(), True


def _share_away(
    gray: np.ndarray, dy: int, dx: int, table: np.ndarray, sample: int, rng: np.random.Generator, bounds=None
) -> float:
    """The largest share of textured blocks that ``table`` reproduces on the grids 4 pixels away
    from (dy, dx) along either axis or both. A JPEG's blocks fit on its own grid only (on a grid
    right along one axis, only blocks that do not change along the other do); smooth pixels fit
    a fine table (QF 85-90) on any grid. ``bounds``: a bounded plane's (see :func:`find_jpeg_grid`)."""
    there = 0.0
    for ay, ax in ((4, 0), (0, 4), (4, 4)):
        py, px = (dy + ay) % 8, (dx + ax) % 8
        away, idx = _sample_textured_idx(gray, py, px, sample, rng, bounds)
        if away.shape[0]:
            there = max(there, float(_reproduced(away, table, bounds=_block_bounds(bounds, py, px, idx))))
    return there


def find_jpeg_grid(
    gray: np.ndarray,
    sample: int = 512,
    seed: int = 0,
    table: np.ndarray | list[int] | None = None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    start: np.ndarray | None = None,
    other_tables: bool = True,
) -> JpegGrid | None:
    """Find the quantization and block grid a decoded 8-bit gray layer came from.

    The grid at (0, 0) is tried first (a layer decoded from its file as is, at the cost it had
    before other phases were looked at). Then, for a cropped layer, the :data:`PHASES_TRIED`
    likeliest other phases (:func:`_phase_candidates`) are ranked by the coarse stage of the table
    search and get the fine stage in that order; a grid found there must also fit far better
    than on the grids 4 pixels away (:data:`MIN_CONTRAST`).

    Args:
        gray: ``(H, W)`` uint8 pixels as the editor holds them.
        sample: textured blocks looked at (at most).
        table: the 64 luminance steps (natural order) of the file the layer was decoded from, when
            it is known: then only that table is tried (and its transpose, for a layer that the
            file's EXIF orientation turned), at any quality and whoever wrote it. ``None``: the
            IJG tables at QF 1-:data:`MAX_QF` are searched.
        bounds: ``(lower, upper)`` (H, W) float arrays, the range each pixel of the decoded plane
            is known to lie in (see :func:`recover_coefficients`), for a plane that is not the
            decoder's own (a colour JPEG's luminance, :func:`core.colour.jpeg_luma`); ``gray`` is
            then that plane rounded. Such a plane is looked at on (0, 0) and on the likeliest other
            phase only.
        start: with ``bounds``, a restoration of the plane (0..255 scale) to start the search for
            the coefficients from (see :func:`recover_coefficients`), where a block's pixels leave
            them open.
        other_tables: where no IJG table fits, try other encoders' tables (:func:`_other_grid`;
            not with a file's ``table``).

    Returns:
        The grid, or ``None`` when no tried table on any grid reproduces the pixels (not a JPEG,
        an edited or rescaled one, an encoder's own tables that are none of those tried, very high
        quality).
    """
    if gray.dtype != np.uint8 or gray.ndim != 2 or min(gray.shape) < 8:
        return None
    rng = np.random.default_rng(seed)
    candidates = None
    if table is not None:
        given = np.asarray(table, dtype=np.int64).reshape(8, 8)
        if given.min() < 1:
            raise ValueError("quantization steps must be >= 1")
        candidates = [given] if np.array_equal(given, given.T) else [given, given.T]

    # The usual case first, and alone where it fits: a layer decoded from its file as is.
    if bounds is not None:
        # A plane known within bounds: (0, 0), then (only where that fails) the likeliest other phase.
        def phases():
            yield 0, 0
            yield from _phase_candidates(gray, 1)

        for dy, dx in phases():
            blocks, idx = _sample_textured_idx(gray, dy, dx, sample, rng, bounds)
            if blocks.shape[0] < MIN_BLOCKS:
                continue
            bb = _block_bounds(bounds, dy, dx, idx)
            st = None if start is None else _blocks_at(start, dy, dx, idx)
            fit = _fit(blocks, candidates, bounds=bb, start=st)
            if fit is not None:
                return JpegGrid(qf=fit[1], table=fit[2], dy=dy, dx=dx, reproduced=fit[0], standard=fit[3])
        return (
            _other_tables_where_grid(gray, sample, rng, bounds, start) if candidates is None and other_tables else None
        )
    blocks = _sample_textured(gray, 0, 0, sample, rng)
    fit = _fit(blocks, candidates) if blocks.shape[0] >= MIN_BLOCKS else None
    if fit is not None:
        return JpegGrid(qf=fit[1], table=fit[2], dy=0, dx=0, reproduced=fit[0], standard=fit[3])
    # A cropped layer: the likeliest phases by the paper's steps, ranked by the coarse stage.
    if candidates is None:
        tables, stack = _ijg_tables()
        keys: list = list(tables)
    else:
        stack, keys = torch.as_tensor(np.stack(candidates), dtype=torch.float32)[:, None], list(range(len(candidates)))

    def accepted(dy: int, dx: int, blocks: torch.Tensor, coarse: list) -> JpegGrid | None:
        fit = _fit(blocks, candidates, coarse, FINE_TABLES)
        if fit is None or fit[0] - _share_away(gray, dy, dx, fit[2], sample // 4, rng) < MIN_CONTRAST:
            return None
        return JpegGrid(qf=fit[1], table=fit[2], dy=dy, dx=dx, reproduced=fit[0], standard=fit[3])

    ranked = []
    for dy, dx in _phase_candidates(gray, PHASES_TRIED):
        blocks = _sample_textured(gray, dy, dx, sample, rng)
        n = blocks.shape[0]
        if n < MIN_BLOCKS:
            continue
        spread = torch.linspace(0, n - 1, min(n, SHIFTED_COARSE_BLOCKS)).round().long()  # over the whole layer
        coarse = _coarse(blocks[spread], stack, keys)
        if coarse[0][0] >= SURE_COARSE:  # no need to rank the others first
            grid = accepted(dy, dx, blocks, coarse)
            if grid is not None:
                return grid
        elif coarse[0][0] >= MIN_COARSE:
            ranked.append((coarse[0][0], (dy, dx), blocks, coarse))
    ranked.sort(key=lambda r: -r[0])  # (stable: the step profile's order among equals)
    for _, (dy, dx), blocks, coarse in ranked:
        grid = accepted(dy, dx, blocks, coarse)
        if grid is not None:
            return grid
    # No IJG table on any grid: another encoder's (mozjpeg, Photoshop-like presets, flat tables).
    return _other_tables_where_grid(gray, sample, rng) if candidates is None and other_tables else None


def _other_tables_where_grid(gray: np.ndarray, sample: int, rng, bounds=None, start=None) -> JpegGrid | None:
    """:func:`_other_grid`, where the paper's noise keeps an 8-pixel grid at all
    (:func:`core.resample.block_grid_strength` at least :data:`OTHER_MIN_STRENGTH`)."""
    from .resample import block_grid_strength

    strength = block_grid_strength(gray)
    if strength is None or strength < OTHER_MIN_STRENGTH:
        return None
    return _other_grid(gray, sample, rng, bounds, start)


def make_consistent(
    restored: torch.Tensor,
    jpeg: np.ndarray,
    grid: JpegGrid,
    paper: np.ndarray | torch.Tensor | None = None,
    iterations: int | None = None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[torch.Tensor, float]:
    """Project a restoration onto the JPEG's quantization boxes (and the mask's white paper).

    Args:
        restored: ``(H, W)`` float, 0..1 (modified in place and returned).
        jpeg: ``(H, W)`` uint8, the decoded JPEG the restoration was made from.
        grid: from :func:`find_jpeg_grid`.
        paper: ``(H, W)`` bool, pixels eq. 2 makes white (mask 0), or ``None``.
        iterations: rounds of the alternating projections.
        bounds: ``(lower, upper)`` for a plane that is not the decoder's own (see
            :func:`find_jpeg_grid`).

    Returns:
        ``(restored, share)``: the projected image and the share of blocks that were trusted and
        projected. Only full blocks whose coefficients reproduce the JPEG are touched; paper
        pixels end exactly white as before.
    """
    iterations = PROJECT_ITERATIONS if iterations is None else iterations
    h, w = jpeg.shape
    dy, dx = grid.dy, grid.dx
    nby, nbx = (h - dy) // 8, (w - dx) // 8
    if nby == 0 or nbx == 0:
        return restored, 0.0
    q = torch.as_tensor(grid.table, dtype=torch.float32).reshape(64)
    slack = 0.0 if grid.standard else OTHER_SLACK  # (an encoder that may not round: see there)
    paper = None if paper is None else np.asarray(paper, dtype=bool)
    cols = slice(dx, dx + 8 * nbx)
    trusted = active = 0
    for b0 in range(0, nby, _BAND_BLOCK_ROWS):
        step("rows", b0, nby)  # a step boundary for a caller's hook (core.steps)
        rows = slice(dy + 8 * b0, dy + 8 * min(nby, b0 + _BAND_BLOCK_ROWS))
        bb = None if bounds is None else tuple(b[rows, cols] for b in bounds)
        t, a = _project_band(restored, jpeg, paper, rows, cols, q, iterations, bb, slack)
        trusted += t
        active += a
    return restored, (trusted / active if active else 1.0)


def _project_band(
    restored: torch.Tensor,
    jpeg: np.ndarray,
    paper: np.ndarray | None,
    rows: slice,
    cols: slice,
    q: torch.Tensor,
    iterations: int,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    slack: float = 0.0,
) -> tuple[int, int]:
    """:func:`make_consistent` on the full blocks inside ``rows`` x ``cols`` (multiples of 8 on
    the grid), in place; returns (trusted blocks, blocks with a line pixel). ``slack``: the boxes
    reach that many more steps away from zero (:data:`OTHER_SLACK`)."""
    px_all = _blocks(jpeg[rows, cols], 0, 0)
    nby, nbx = px_all.shape[:2]
    px_all = px_all.reshape(-1, 64)
    y_all = _blocks(restored[rows, cols], 0, 0).reshape(-1, 64)
    bb_all = _block_bounds(bounds, 0, 0)
    if paper is not None:
        white_all = _blocks(paper[rows, cols], 0, 0, torch.bool).reshape(-1, 64)
        active = torch.nonzero(~white_all.all(1)).flatten()  # all-paper blocks stay white
    else:
        white_all = None
        active = torch.arange(px_all.shape[0])
    if active.numel() == 0:
        return 0, 0
    trusted = 0
    for c0 in range(0, active.numel(), _CHUNK):
        idx = active[c0 : c0 + _CHUNK]
        if bb_all is None:
            k, ok = recover_coefficients(px_all[idx], q)
        else:
            k, ok = _recover_bounded(px_all[idx], q, (bb_all[0][idx], bb_all[1][idx]), y_all[idx] * 255.0)
        idx, k = idx[ok], k[ok]
        trusted += idx.numel()
        if idx.numel() == 0:
            continue
        lo, hi = (k - 0.5) * q, (k + 0.5) * q
        if slack:
            lo = lo - slack * q * (k <= 0)
            hi = hi + slack * q * (k >= 0)
        y0 = y_all[idx] * 255.0
        y = y0.clone()
        white = white_all[idx] if white_all is not None else None
        todo = torch.arange(idx.numel())
        for _ in range(iterations):  # each block until it settles
            if todo.numel() == 0:
                break
            yt = y[todo]
            yn = (idct8(torch.clamp(dct8(yt - 128), lo[todo], hi[todo])) + 128).clamp_(0, 255)
            if white is not None:
                yn = yn.masked_fill_(white[todo], 255.0)
            y[todo] = yn
            todo = todo[(yn - yt).abs().amax(-1) > 0.01]
        # Where the mask calls a line pixel paper, no block both is white there and fits the
        # JPEG: the projections then stop short of each other, and the block is left as it was.
        c = dct8(y - 128)
        gap = (c - torch.clamp(c, lo, hi)).norm(dim=1)
        y = torch.where((gap <= MAX_GAP)[:, None], y, y0)
        y_all[idx] = y / 255.0
    restored[rows, cols] = _unblocks(y_all.reshape(nby, nbx, 64))
    return trusted, active.numel()


#: ITU T.81 Annex K.2, the chrominance table libjpeg scales by quality (natural order).
_IJG_CHROMA = np.array(
    [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99] + [99] * 4 + [47, 66] + [99] * 38
)
#: Share of the textured blocks of both chroma planes (mean) that the chroma table must reproduce
#: for them to be taken as stored at full resolution (4:4:4). Measured on Pillow JPEGs of coloured
#: drawings at QF 10-80: 4:4:4 gave 0.79-1.0, 4:2:0 (upsampled chroma) at most 0.33
#: (``python -m benchmarks.colour_grid_calibration --parts chroma``).
CHROMA_MIN_SHARE = 0.6


def ijg_chroma_table(quality: int) -> np.ndarray:
    """The 8x8 chrominance steps libjpeg writes for ``quality`` (same scaling as the luminance's)."""
    return scaled_table(_IJG_CHROMA, quality).reshape(8, 8)


def reproduced_share(
    plane: np.ndarray, table: np.ndarray, dy: int, dx: int, bounds: tuple[np.ndarray, np.ndarray], sample: int = 512
) -> float | None:
    """Share of the sampled textured blocks of ``plane`` (uint8, pixels within ``bounds``) on the
    grid (dy, dx) that ``table`` reproduces; ``None`` with fewer than :data:`MIN_BLOCKS` of them."""
    blocks, idx = _sample_textured_idx(plane, dy, dx, sample, np.random.default_rng(0))
    if blocks.shape[0] < MIN_BLOCKS:
        return None
    return float(_reproduced(blocks, table, bounds=_block_bounds(bounds, dy, dx, idx)))


def max_outside(grid: JpegGrid) -> float:
    """The :func:`outside_share` above which the projection onto ``grid``'s boxes is skipped."""
    return MAX_OUTSIDE_FINE if grid.qf > FINE_QF else MAX_OUTSIDE


def outside_share(
    restored: torch.Tensor | np.ndarray,
    jpeg: np.ndarray,
    grid: JpegGrid,
    paper: np.ndarray | None = None,
    sample: int = OUTSIDE_SAMPLE,
    seed: int = 0,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Share of the DCT coefficients of ``restored`` that lie more than :data:`OUTSIDE_STEP` of a
    step (and :data:`OUTSIDE_FLOOR` gray levels) outside the quantization boxes of ``jpeg``
    (trusted blocks with lines only).

    Args:
        restored: ``(H, W)`` restoration, 0..1 (float) or 0..255 (uint8).
        jpeg: ``(H, W)`` uint8, the layer it was made from.
        grid: from :func:`find_jpeg_grid`.
        paper: ``(H, W)`` bool, pixels the mask calls paper (blocks all paper are left out), or None.
        bounds: ``(lower, upper)`` for a plane that is not the decoder's own (see
            :func:`find_jpeg_grid`).

    Returns:
        The share (0..1); 0.0 when no block can be checked. Above :func:`max_outside` the last
        JPEG did not make the damage, and the projection onto its boxes would undo the restoration.
    """
    r = restored if isinstance(restored, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(restored))
    scale = 1.0 if r.dtype == torch.uint8 else 255.0
    px = _blocks(jpeg, grid.dy, grid.dx).reshape(-1, 64)
    if px.shape[0] == 0:
        return 0.0
    keep = (px.amax(1) - px.amin(1)) > 2
    if paper is not None:
        keep &= ~_blocks(np.asarray(paper, dtype=bool), grid.dy, grid.dx, torch.bool).reshape(-1, 64).all(1)
    idx = torch.nonzero(keep).flatten()
    if idx.numel() == 0:
        return 0.0
    if idx.numel() > sample:
        rng = np.random.default_rng(seed)
        idx = idx[torch.from_numpy(rng.choice(idx.numel(), sample, replace=False))]
    q = torch.as_tensor(grid.table, dtype=torch.float32).reshape(64)
    y = _blocks_at(r, grid.dy, grid.dx, idx) * scale
    if bounds is None:
        k, ok = recover_coefficients(px[idx], q)
    else:
        k, ok = _recover_bounded(px[idx], q, _block_bounds(bounds, grid.dy, grid.dx, idx), y)
    if not bool(ok.any()):
        return 0.0
    y = y[ok]
    c = dct8(y - 128)
    k = k[ok]
    gap = (c - torch.clamp(c, (k - 0.5) * q, (k + 0.5) * q)).abs()
    return float((gap > torch.clamp(OUTSIDE_STEP * q, min=OUTSIDE_FLOOR)).float().mean())


def _table_stack(qualities) -> torch.Tensor:
    """The IJG tables of ``qualities``, stacked ``(T, 64)`` (natural order)."""
    return torch.as_tensor(np.stack([ijg_table(q) for q in qualities]), dtype=torch.float32)


def _coarser(table, qualities, ratio: float) -> list[int]:
    """Those of the IJG ``qualities`` whose tables are at least ``ratio`` times as coarse as
    ``table`` (64 steps, natural order), median over the ten lowest frequencies."""
    last = np.asarray(table, dtype=np.float64).reshape(64)
    low = [0, 1, 8, 9, 16, 2, 10, 17, 24, 3]
    return [q for q in qualities if np.median(ijg_table(q)[low] / last[low]) >= ratio]


@functools.lru_cache(maxsize=32)
def _coarser_tables(table_key: bytes) -> tuple[list[int], torch.Tensor | None]:
    """IJG qualities whose tables are at least :data:`FIRST_RATIO` times as coarse as ``table``
    over the lowest frequencies, and those tables stacked ``(T, 1, 8, 8)``."""
    qfs = _coarser(np.frombuffer(table_key, dtype=np.int64), range(1, 100), FIRST_RATIO)
    if not qfs:
        return [], None
    return qfs, _table_stack(qfs).reshape(-1, 1, 8, 8)


def first_quality(gray: np.ndarray, grid: JpegGrid, sample: int = 128, seed: int = 0) -> tuple[int, float] | None:
    """The quality of an earlier, coarser JPEG save on the same grid, if the layer is a re-save.

    Every IJG table at least :data:`FIRST_RATIO` times as coarse as the last one is tried: the
    first save's coefficients are read back from the sampled blocks with it, decoded (rounded
    and clipped as a decoder does), saved again with the last table and decoded; a table that
    reproduces the layer's pixels (within one gray level) on a share of the blocks that no
    single save reaches is the first save's. Of the tables that do equally well, the coarsest.

    Returns:
        ``(quality, share of blocks reproduced)``, or ``None`` (no coarser save on this grid found).
    """
    qfs, stack = _coarser_tables(np.asarray(grid.table, dtype=np.int64).reshape(64).tobytes())
    if not qfs:
        return None
    blocks = _sample_textured(gray, grid.dy, grid.dx, sample, np.random.default_rng(seed))
    if blocks.shape[0] < MIN_BLOCKS:
        return None
    q2 = torch.as_tensor(grid.table, dtype=torch.float32).reshape(64)
    k1, _ = recover_coefficients(blocks, stack, iterations=2)
    first = (idct8(k1 * stack.reshape(-1, 1, 64)) + 128).round().clamp(0, 255)
    second = (idct8(torch.round(dct8(first - 128) / q2) * q2) + 128).round().clamp(0, 255)
    share = ((second - blocks).abs() <= TOLERANCE).all(-1).float().mean(1)
    best = float(share.max())
    if best < FIRST_MIN_SHARE:
        return None
    return min(q for q, s in zip(qfs, share.tolist()) if s >= best - 0.02), best


#: Qualities :func:`resave_fit` tries as the first save of a re-save: those of these whose IJG table
#: is at least :data:`RESAVE_RATIO` times as coarse as the last one (median over the lowest
#: frequencies; a first save barely coarser than the last leaves little of its own).
RESAVE_QUALITIES = (8, 10, 12, 15, 18, 20, 23, 26, 30, 35, 40, 45, 50)
RESAVE_RATIO = 1.5
#: Side of the window (the one with the most line edges) on which :func:`resave_fit` measures: 256 px
#: hold 1,024 blocks, and the fit takes about 0.1 s there on one CPU thread.
RESAVE_SIDE = 256
#: Phases kept from the scan of all 64 (each with :data:`RESAVE_SCAN` tables, on the
#: :data:`RESAVE_SCAN_SIDE` window with the most line edges inside the first) for every table.
RESAVE_PHASES = 6
RESAVE_SCAN = 3
RESAVE_SCAN_SIDE = 128
#: Below this share of the last save's residual, a re-save at the layer's size explains its
#: damage (a JPEG re-saved on the same grid or after a crop), at or above it the damage was made
#: before a resize (docs/wild.md, ``python -m benchmarks.bench_wild --resave-fit 256 --images 0
#: --every 2 --families double_aligned double_shifted resize_then_jpeg``): on 286 training crops
#: whose step was skipped, JPEGs resized before their last save gave 0.74-1.72 and re-saves mostly
#: less (median 0.49 on the same grid, 0.56 after a crop; the tenth above 0.73-0.76 are first saves
#: barely coarser than the last); routing gained the same (within 0.005 dB) at any threshold from
#: 0.66 to 0.74 there and less from 0.75 on; 0.72, since re-saves of small hatched layers fit up to
#: 0.70 (`tests/test_wild.py`).
RESAVE_FIT = 0.72


@dataclass(frozen=True)
class ResaveFit:
    """What :func:`resave_fit` found: ``ratio`` (residual of the best re-save over that of the last
    save alone) and the best re-save: the first save's ``quality`` and grid phase ``(dy, dx)``."""

    ratio: float
    quality: int
    dy: int
    dx: int


def _save_blocks(blocks: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Blocks (..., 64) of 0..255 pixels saved as a JPEG with ``table`` and decoded (rounded, clipped)."""
    return (idct8(torch.round(dct8(blocks - 128) / table) * table) + 128).round_().clamp_(0, 255)


def _round_trips(img: torch.Tensor, tables: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``img`` (..., H, W) float 0..255 saved as a JPEG with each of ``tables`` ((T, 64) or (64,))
    on the grid (dy, dx) and decoded (rounded, clipped): (T, H, W), or like ``img`` for one table;
    pixels outside the full blocks are kept."""
    h, w = img.shape[-2:]
    nby, nbx = (h - dy) // 8, (w - dx) // 8
    rows, cols = slice(dy, dy + 8 * nby), slice(dx, dx + 8 * nbx)
    b = img[..., rows, cols].reshape(*img.shape[:-2], nby, 8, nbx, 8).transpose(-3, -2)
    q = tables.reshape(-1, 1, 64) if tables.dim() == 2 else tables
    y = _save_blocks(b.reshape(*img.shape[:-2], nby * nbx, 64), q)
    lead = y.shape[:-2]
    out = img.expand(*lead, h, w).clone()
    out[..., rows, cols] = y.reshape(*lead, nby, nbx, 8, 8).transpose(-3, -2).reshape(*lead, 8 * nby, 8 * nbx)
    return out


def _window_255(restored: np.ndarray | torch.Tensor, win: tuple[slice, slice]) -> torch.Tensor:
    """The ``win`` window of a restoration (0..1 float or uint8) as float 0..255."""
    r = restored if isinstance(restored, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(restored))
    return r[win].to(torch.float32) * (1.0 if r.dtype == torch.uint8 else 255.0)


def _edgiest_window(gray: np.ndarray, side: int) -> tuple[slice, slice]:
    """The ``side`` x ``side`` window of ``gray`` (uint8) with the most pixels of line edges (neither
    paper nor solid ink: 16-239), its corner on a multiple of 8. Solid fills hold no JPEG detail to
    fit, and a restoration can differ from the drawing there by more than the JPEG's steps."""
    return densest_window((gray > 15) & (gray < 240), side, 8)


def resave_fit(layer: np.ndarray, restored: np.ndarray | torch.Tensor, grid: JpegGrid) -> ResaveFit | None:
    """Whether two JPEG saves at the layer's size explain its damage, for a layer whose last save
    did not make it all (:func:`outside_share`): a re-save (on the same grid or after a crop), or a
    JPEG resized between its saves.

    On the :data:`RESAVE_SIDE` window with the most line edges, the restoration (standing in for
    the clean drawing) is saved at a coarser IJG quality on one of the 64 grid phases, then with the layer's
    last table on its grid, and compared with the layer (RMS over the window less an 8-pixel rim);
    the best such re-save's residual is divided by that of the last save alone. A re-save's first
    blocks lie on some 8-pixel grid, and the right phase and quality halve the residual or better;
    a resize before the last save moved them off any, and no re-save does much better than the last
    save alone. Every phase is scanned with :data:`RESAVE_SCAN` tables on a smaller window
    (:data:`RESAVE_SCAN_SIDE`), the best :data:`RESAVE_PHASES` with all of them on the whole one:
    the full search (every phase, every table, 256 px) fell on the same side of
    :data:`RESAVE_FIT` on 77 of 78 kanji crops whose step was skipped, and on the 78th found a
    worse first save.

    Args:
        layer: ``(H, W)`` uint8, the layer.
        restored: ``(H, W)`` its restoration, 0..1 float or uint8.
        grid: the layer's last JPEG (:func:`find_jpeg_grid`).

    Returns:
        The fit (its ``ratio`` below :data:`RESAVE_FIT`: a re-save at the layer's size), or ``None``
        where no quality is coarse enough to try or the window is under 64 px.
    """
    quals = _coarser(grid.table, RESAVE_QUALITIES, RESAVE_RATIO)
    win = _edgiest_window(layer, RESAVE_SIDE)
    if not quals or min(layer[win].shape) < 64:
        return None
    r = _window_255(restored, win)
    target = torch.from_numpy(np.ascontiguousarray(layer[win], dtype=np.float32))
    dy, dx = (grid.dy - win[0].start) % 8, (grid.dx - win[1].start) % 8
    q2 = torch.as_tensor(grid.table, dtype=torch.float32).reshape(64)
    tables = _table_stack(quals)

    def residuals(py: int, px: int, which: list[int], part=(slice(None), slice(None))) -> torch.Tensor:
        """RMS (inner pixels of ``part``) of each first save in ``which`` on the phase, then the last."""
        first = _round_trips(r[part], tables[which], py, px)
        second = _round_trips(first, q2, dy, dx)
        return (second[:, 8:-8, 8:-8] - target[part][8:-8, 8:-8]).pow(2).mean((-1, -2)).sqrt()

    alone = float((_round_trips(r, q2, dy, dx)[8:-8, 8:-8] - target[8:-8, 8:-8]).pow(2).mean().sqrt())
    scan = sorted({round(i * (len(quals) - 1) / max(RESAVE_SCAN - 1, 1)) for i in range(RESAVE_SCAN)})
    part = _edgiest_window(layer[win], RESAVE_SCAN_SIDE)  # (its corner on the window's 8-pixel steps)
    phases = sorted((float(residuals(py, px, scan, part).min()), (py, px)) for py in range(8) for px in range(8))
    best = (math.inf, 0, 0, 0)
    for _, (py, px) in phases[:RESAVE_PHASES]:
        res = residuals(py, px, list(range(len(quals))))
        i = int(torch.argmin(res))
        if float(res[i]) < best[0]:
            best = (float(res[i]), quals[i], py, px)
    ratio = best[0] / alone if alone > 0 else 1.0
    return ResaveFit(ratio, best[1], (best[2] + win[0].start) % 8, (best[3] + win[1].start) % 8)


#: IJG qualities tried by :func:`same_grid_resave` for the first save, around the last save's: from
#: this much below it to this much above, and below :data:`SAME_GRID_TOP` (a near-lossless first
#: save changes too little to tell, and on some JPEGs saved once a save at 96-100 first fitted
#: just below 1 by chance).
SAME_GRID_BELOW = 20
SAME_GRID_ABOVE = 15
SAME_GRID_TOP = 94
#: Every this many qualities first, then those next to the best: a third of the round trips, for
#: the same decisions on the calibration's JPEGs saved once and a few re-saves fewer found.
SAME_GRID_STEP = 3
#: Below this share of the last save's residual, a first save on the same grid at about the last
#: quality explains the layer better than the last save alone: a re-save, whose clean drawing the
#: consistency step must not keep to the last save's steps (docs/wild.md, *Re-saves at about the
#: same quality*; ``python -m benchmarks.bench_wild --same-grid 256 --images 0 --every 1``).
SAME_GRID_FIT = 0.98


def same_grid_resave(layer: np.ndarray, restored: np.ndarray | torch.Tensor, grid: JpegGrid) -> ResaveFit | None:
    """Whether the layer is a JPEG saved twice on the same grid at about the same quality, which
    the consistency step's check cannot see: its restoration lies inside the last save's boxes, but
    the clean drawing does not (the first save's decoder clipped every overshoot above white and
    rounded the pixels, and the second save quantized that; keeping to those boxes lost up to 3.7 dB
    on the training crops of ``python -m benchmarks.bench_wild --same-grid``).

    On the blocks of the last save's grid that hold more than paper, in the :data:`RESAVE_SIDE`
    window with the most line edges, the restoration (standing in for the clean drawing) is saved
    at IJG qualities from :data:`SAME_GRID_BELOW` below the last one to :data:`SAME_GRID_ABOVE`
    above it (at most :data:`SAME_GRID_TOP`; every :data:`SAME_GRID_STEP`-th, then the ones next to
    the best), then with the last table, and compared with the layer, as :func:`resave_fit` does
    across grids: the best such re-save's residual (RMS) over that of the last save alone. On a
    JPEG saved once a first save only adds rounding and clipping the layer does not hold (1.0 or
    more), on a re-save it adds what the layer holds (below :data:`SAME_GRID_FIT`). About 5-15 ms
    on one CPU thread.

    Returns:
        The fit, or ``None`` for a table that is not IJG's (a file's own) or fewer than
        :data:`MIN_BLOCKS` blocks with lines in the window.
    """
    if not grid.standard:
        return None
    win = _edgiest_window(layer, RESAVE_SIDE)
    r = _window_255(restored, win)
    dy, dx = (grid.dy - win[0].start) % 8, (grid.dx - win[1].start) % 8
    rb = _blocks(r, dy, dx).reshape(-1, 64)
    tb = _blocks(layer[win], dy, dx).reshape(-1, 64)
    lines = ((rb < 255) | (tb < 255)).any(1)
    if int(lines.sum()) < MIN_BLOCKS:
        return None
    rb, tb = rb[lines], tb[lines]
    lo, hi = max(1, grid.qf - SAME_GRID_BELOW), min(SAME_GRID_TOP, grid.qf + SAME_GRID_ABOVE)
    if lo > hi:
        return None
    last = torch.as_tensor(grid.table, dtype=torch.float32).reshape(64)
    alone = float((_save_blocks(rb, last) - tb).pow(2).mean().sqrt())

    def best_of(quals: list[int]) -> tuple[float, int]:
        firsts = _table_stack(quals)[:, None, :]
        res = (_save_blocks(_save_blocks(rb, firsts), last) - tb).pow(2).mean((-1, -2)).sqrt()
        i = int(torch.argmin(res))
        return float(res[i]), quals[i]

    scanned = list(range(lo, hi + 1, SAME_GRID_STEP))
    best = best_of(scanned)
    near = [q for q in range(best[1] - SAME_GRID_STEP + 1, best[1] + SAME_GRID_STEP) if lo <= q <= hi]
    near = [q for q in near if q not in scanned]
    if near:
        best = min(best, best_of(near))
    return ResaveFit(best[0] / alone if alone > 0 else 1.0, best[1], grid.dy, grid.dx)
