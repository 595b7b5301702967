"""JPEGs as they reach artists: detection of re-saved and resized layers, and the gating of the
consistency step (docs/wild.md). Every input is made here with Pillow's libjpeg and OpenCV."""

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core import jpeg_consistency as jc
from core.pipeline import RestoreOptions, Restorer

DATA = Path(__file__).parent / "data"


def _clean() -> np.ndarray:
    return np.array(Image.open(DATA / "val_crop_empty_tomb.png").convert("L"))


def _jpeg(img: np.ndarray, qf: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img, "L").save(buf, "JPEG", quality=qf)
    buf.seek(0)
    return np.array(Image.open(buf).convert("L"))


def _resize(img: np.ndarray, s: float) -> np.ndarray:
    h, w = img.shape
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_LANCZOS4)


@pytest.mark.parametrize("qf", [10, 20, 40, 75, 90])
def test_a_single_jpeg_keeps_the_clean_drawing_inside_its_steps(qf):
    clean = _clean()
    layer = _jpeg(clean, qf)
    grid = jc.find_jpeg_grid(layer)
    assert grid is not None and grid.qf == qf
    assert jc.outside_share(clean, layer, grid) <= jc.max_outside(grid)
    assert jc.first_quality(layer, grid) is None  # no earlier save


@pytest.mark.parametrize("first,last", [(20, 75), (30, 75), (30, 90)])
def test_a_resaved_jpeg_is_found_with_its_first_quality(first, last):
    clean = _clean()
    layer = _jpeg(_jpeg(clean, first), last)
    grid = jc.find_jpeg_grid(layer)
    assert grid is not None and grid.qf == last  # the search finds the last save only
    assert jc.outside_share(clean, layer, grid) > jc.max_outside(grid)
    found = jc.first_quality(layer, grid)
    assert found is not None and abs(found[0] - first) <= 2, found


def test_a_resave_at_a_coarser_quality_still_trusts_the_last_table():
    clean = _clean()
    layer = _jpeg(_jpeg(clean, 90), 30)
    grid = jc.find_jpeg_grid(layer)
    assert grid is not None and grid.qf == 30
    assert jc.outside_share(clean, layer, grid) <= jc.max_outside(grid)


def test_a_resave_on_a_shifted_grid_is_found():
    clean = _clean()
    layer = _jpeg(_jpeg(clean, 30)[3:, 5:], 75)
    grid = jc.find_jpeg_grid(layer)
    assert grid is not None and grid.qf == 75
    assert jc.outside_share(clean[3:, 5:], layer, grid) > jc.max_outside(grid)


def test_a_jpeg_resized_before_the_last_save_is_found():
    clean = _clean()
    layer = _jpeg(_resize(_jpeg(clean, 20), 0.75), 90)
    grid = jc.find_jpeg_grid(layer)
    assert grid is not None and grid.qf == 90
    assert jc.outside_share(_resize(clean, 0.75), layer, grid) > jc.max_outside(grid)


def test_a_crop_at_an_odd_offset_and_a_png_export():
    clean = _clean()
    layer = _jpeg(clean, 10)[3:, 5:]  # (on this small crop the shifted grid is found at low QF only)
    grid = jc.find_jpeg_grid(layer)
    assert grid is not None and (grid.dy, grid.dx, grid.qf) == (5, 3, 10)
    assert jc.outside_share(clean[3:, 5:], layer, grid) <= jc.max_outside(grid)
    # a PNG of a resized JPEG: no table left, nothing to trust
    assert jc.find_jpeg_grid(_resize(_jpeg(clean, 30), 0.6)) is None


def test_outside_share_reads_uint8_and_float_alike():
    clean = _clean()
    layer = _jpeg(_jpeg(clean, 30), 75)
    grid = jc.find_jpeg_grid(layer)
    as_float = jc.outside_share(clean.astype(np.float32) / 255.0, layer, grid)
    assert as_float == pytest.approx(jc.outside_share(clean, layer, grid))
    assert jc.outside_share(np.full_like(clean, 255), np.full_like(layer, 255), grid) == 0.0


@pytest.fixture(scope="module")
def restorer():
    return Restorer.default()


def test_pipeline_skips_the_step_on_a_resaved_jpeg_and_says_why(restorer):
    clean = _clean()
    layer = _jpeg(_jpeg(clean, 30), 75)
    res = restorer.restore(layer, RestoreOptions())
    off = restorer.restore(layer, RestoreOptions(jpeg_consistency=False))
    assert res.jpeg_quality is None
    note = next(n for n in res.notes if "consistency step was skipped" in n)
    assert "re-saved JPEG: first quality about 3" in note and "last 75" in note
    assert np.array_equal(res.image, off.image)


def test_pipeline_skips_the_step_on_a_resized_jpeg(restorer):
    layer = _jpeg(_resize(_jpeg(_clean(), 20), 0.75), 90)
    res = restorer.restore(layer, RestoreOptions())
    assert res.jpeg_quality is None
    assert any("consistency step was skipped" in n for n in res.notes)


def test_pipeline_still_applies_the_step_on_a_single_jpeg(restorer):
    layer = _jpeg(_clean(), 20)
    res = restorer.restore(layer, RestoreOptions())
    assert res.jpeg_quality == 20
    assert any("made consistent" in n for n in res.notes)
    assert not any("skipped" in n for n in res.notes)


def test_the_threshold_is_looser_for_a_fine_last_save():
    coarse = jc.find_jpeg_grid(_jpeg(_clean(), 75))
    fine = jc.find_jpeg_grid(_jpeg(_clean(), 90))
    assert jc.max_outside(coarse) == jc.MAX_OUTSIDE < jc.max_outside(fine) == jc.MAX_OUTSIDE_FINE
