"""JPEG consistency on coloured layers: the luminance a colour JPEG stored, read back from the
decoded RGB (core.colour.jpeg_luma), and the pipeline's projection of the coloured result onto it.
Real Pillow JPEGs and the shipped models on a real validation crop."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core import colour, jpeg_consistency
from core.metrics import psnr
from core.pipeline import RestoreOptions
from tests import test_colour
from tests.colour_checks import hue, hue_distance
from training.colour import INKS, coloured_crop, in_ink, jpeg_rgb

restorer, gray = test_colour.restorer, test_colour.gray  # the same module-scoped fixtures
ON, OFF = RestoreOptions(return_mask=True), RestoreOptions(return_mask=True, jpeg_consistency=False)


def _decoded_luma(rgb: np.ndarray, qf: int, subsampling: int) -> tuple[np.ndarray, np.ndarray]:
    """A Pillow RGB JPEG of ``rgb``, decoded to RGB and, without colour conversion, to its Y plane."""
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="JPEG", quality=qf, subsampling=subsampling)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        decoded = np.asarray(im.convert("RGB")).copy()
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        im.draft("YCbCr", im.size)  # the decoder's own planes, no colour conversion
        assert im.mode == "YCbCr"
        y = np.asarray(im)[..., 0].astype(np.float32)
    return decoded, y


@pytest.mark.parametrize("subsampling", [0, 2])  # 4:4:4, 4:2:0
def test_the_luminance_bounds_hold_the_decoders_own_luminance(gray, subsampling):
    """The recomputed Y is the decoder's within half a level where no channel clipped, and its
    one-sided bounds hold the decoder's Y where one did (whatever the chroma subsampling)."""
    decoded, y = _decoded_luma(coloured_crop(gray, 1), 20, subsampling)
    y8, (lower, upper) = colour.jpeg_luma(decoded)
    assert (y >= lower).all() and (y <= upper).all()
    closed = np.isfinite(lower) & np.isfinite(upper)
    assert closed.mean() > 0.2 and np.allclose(upper[closed] - lower[closed], 1.0)
    assert np.abs(y8[closed].astype(np.float32) - y[closed]).max() <= 1
    # where a channel clipped, the recomputed Y is off by more than a level: those bounds are open
    assert (np.abs(y8.astype(np.float32) - y) > 1)[~closed].any()


def test_the_grid_is_found_in_the_recomputed_luminance_only_with_its_bounds(gray):
    """The decoded RGB's luminance holds the JPEG's grid and quality once clipped pixels are open."""
    jpeg = jpeg_rgb(coloured_crop(gray, 1), 20)
    y8, bounds = colour.jpeg_luma(jpeg)
    grid = jpeg_consistency.find_jpeg_grid(y8, bounds=bounds)
    assert grid is not None and grid.qf == 20 and (grid.dy, grid.dx) == (0, 0)


def test_a_colour_jpeg_is_made_consistent_and_comes_closer_to_the_drawing(restorer, gray):
    clean = coloured_crop(gray, 1)
    jpeg = jpeg_rgb(clean, 20)
    before = restorer.restore(jpeg, OFF)
    after = restorer.restore(jpeg, ON)
    assert any("colour JPEG of quality 20" in n and "made consistent" in n for n in after.notes), after.notes
    assert after.jpeg_quality == 20 and before.jpeg_quality is None
    assert psnr(after.image, clean) > psnr(before.image, clean) + 0.05
    # paper stays exactly white where the mask says paper, and no pixel is left just short of white
    paper = after.mask == 0
    assert paper.any() and (after.image[paper] == 255).all()
    lightest = after.image.min(axis=2)
    assert not ((lightest > ON.theta) & (lightest < 255)).any()
    # only the luminance moved: where both are inked, each pixel's ink colour (its darkness per unit
    # of the darkest channel's) is the same up to rounding; its strength is what the step changes
    # (by 3.5 levels on average here, 2.7 with the first colour backbone)
    inked = (after.image.min(axis=2) < 160) & (before.image.min(axis=2) < 160)
    da, db = (255.0 - img.image[inked] for img in (after, before))
    shift = np.abs(da / da.max(axis=1, keepdims=True) - db / db.max(axis=1, keepdims=True))
    assert shift.mean() < 0.005 and shift.max() < 0.03, (shift.mean(), shift.max())


@pytest.mark.parametrize("ink", ["brown", "blue"])
def test_the_hue_of_the_strokes_is_kept(restorer, gray, ink):
    clean = in_ink(gray, INKS[ink])
    jpeg = jpeg_rgb(clean, 30, "4:4:4")
    res = restorer.restore(jpeg, ON)
    assert res.jpeg_quality == 30, res.notes
    got = res.image[gray < 64].mean(axis=0)
    assert hue_distance(hue(got), hue(INKS[ink])) < 8, (got, INKS[ink])
    assert psnr(res.image, clean) > psnr(restorer.restore(jpeg, OFF).image, clean)


def test_a_colour_layer_that_is_no_jpeg_is_left_as_the_networks_made_it(restorer, gray):
    """A PNG of a clean coloured drawing holds no grid: no note of the step, the same result as
    without it (the note of the backbone chosen for a layer with no grid aside)."""
    clean = coloured_crop(gray, 1)
    y8, bounds = colour.jpeg_luma(clean)
    assert jpeg_consistency.find_jpeg_grid(y8, bounds=bounds) is None
    on, off = restorer.restore(clean, ON), restorer.restore(clean, OFF)
    step_notes = [n for n in on.notes if "consistent" in n or "quantization" in n or "quality" in n]
    assert on.jpeg_quality is None and not step_notes, on.notes
    assert on.notes == off.notes
    assert np.array_equal(on.image, off.image)


def test_gray_and_neutral_layers_never_reach_the_colour_step(restorer, gray, monkeypatch):
    """Gray layers and colour layers without colour keep the gray path's consistency step, bit for bit."""
    gray_jpeg = np.asarray(Image.open(io.BytesIO(_jpeg_bytes(gray, 20))).convert("L"))
    neutral = jpeg_rgb(np.dstack([gray] * 3), 20)
    before = [restorer.restore(x, ON) for x in (gray_jpeg, neutral)]
    assert all(r.jpeg_quality == 20 for r in before)

    def boom(*_a, **_k):
        raise AssertionError("the colour consistency step ran on a gray layer")

    for name in ("jpeg_luma", "luma_of", "correct_luma"):
        monkeypatch.setattr(colour, name, boom)
    for x, b in zip((gray_jpeg, neutral), before):
        assert np.array_equal(restorer.restore(x, ON).image, b.image)


def test_transparent_and_sixteen_bit_layers_have_no_jpeg_luminance(gray):
    rgba = np.dstack([coloured_crop(gray, 1), np.full(gray.shape, 255, np.uint8)])
    assert colour.jpeg_luma(rgba) is not None
    rgba[0, 0, 3] = 0
    assert colour.jpeg_luma(rgba) is None
    assert colour.jpeg_luma(coloured_crop(gray, 1).astype(np.uint16) * 257) is None


def _jpeg_bytes(img: np.ndarray, qf: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=qf)
    return buf.getvalue()


def test_the_chroma_bounds_hold_the_decoders_own_chroma_at_full_resolution(gray):
    decoded, _ = _decoded_luma(coloured_crop(gray, 1), 20, 0)
    buf = io.BytesIO()
    Image.fromarray(coloured_crop(gray, 1), "RGB").save(buf, format="JPEG", quality=20, subsampling=0)
    with Image.open(buf) as im:
        im.draft("YCbCr", im.size)
        ycc = np.asarray(im).astype(np.float32)
    for k, (p8, (lower, upper)) in enumerate(colour.jpeg_chroma(decoded), start=1):
        assert (ycc[..., k] >= lower).all() and (ycc[..., k] <= upper).all()
        assert np.abs(p8.astype(np.float32) - ycc[..., k])[np.isfinite(lower) & np.isfinite(upper)].max() <= 1


def test_a_4_4_4_jpeg_gets_its_chroma_made_consistent_too_and_4_2_0_does_not(restorer, gray, monkeypatch):
    import core.pipeline as pipeline

    clean = coloured_crop(gray, 1)
    full, half = jpeg_rgb(clean, 30, "4:4:4"), jpeg_rgb(clean, 30, "4:2:0")
    res = restorer.restore(full, ON)
    assert "its chroma (stored at full resolution, 4:4:4) too" in res.notes[-1], res.notes
    assert (res.image[res.mask == 0] == 255).all()
    assert "chroma" not in restorer.restore(half, ON).notes[-1]
    monkeypatch.setattr(pipeline.Restorer, "_make_chroma_consistent", staticmethod(lambda job, plane, grid: False))
    luma_only = restorer.restore(full, ON)
    assert "chroma" not in luma_only.notes[-1]
    assert psnr(res.image, clean) > psnr(luma_only.image, clean)
