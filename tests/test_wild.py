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
from tests.mask_checks import assert_lines_and_some_rim

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


# ---- the wild backbone (RestoreOptions.wild_network)

MODELS = Path(__file__).resolve().parents[1] / "core" / "models"


@pytest.fixture(scope="module")
def with_wild():
    """The shipped default pair with a stand-in wild backbone: the shipped fast one, a framework
    model whose output differs from the default one's, so that its use is seen in the pixels."""
    return Restorer.from_files(
        MODELS / "mask_fast.safetensors",
        MODELS / "restore_default.safetensors",
        MODELS / "restore_baseline.safetensors",
        wild=MODELS / "restore_fast.safetensors",
    )


@pytest.fixture(scope="module")
def without_wild():
    return Restorer.from_files(
        MODELS / "mask_fast.safetensors",
        MODELS / "restore_default.safetensors",
        MODELS / "restore_baseline.safetensors",
    )


def _count_pixels(monkeypatch) -> dict[str, int]:
    """Pixels each network is run on, by its file name, from now on."""
    from core.runners import Runner

    pixels: dict[str, int] = {}
    real_call = Runner.__call__

    def counting(self, x, *a, **k):
        pixels[self.name] = pixels.get(self.name, 0) + x.shape[-2] * x.shape[-1]
        return real_call(self, x, *a, **k)

    monkeypatch.setattr(Runner, "__call__", counting)
    return pixels


def _check_wild_result(res, without_wild, layer, widened: bool):
    """``res`` came from the wild backbone: on the default mask (grown by one pixel for a layer with
    no JPEG table left: a resize softens the edges), white wherever that mask says paper, and not
    what the default backbone makes."""
    default = without_wild.restore(layer, RestoreOptions(return_mask=True))
    widened = cv2.dilate(default.mask, np.ones((3, 3), np.uint8)) if widened else default.mask
    assert np.array_equal(res.mask, widened)
    assert (res.image[widened == 0] == 255).all()
    assert not np.array_equal(res.image, default.image)


def test_a_single_jpeg_keeps_the_default_backbone(with_wild, without_wild):
    layer = _jpeg(_clean(), 20)
    res = with_wild.restore(layer, RestoreOptions())
    assert res.jpeg_quality == 20
    assert np.array_equal(res.image, without_wild.restore(layer, RestoreOptions()).image)
    assert not any("re-saved and resized" in n for n in res.notes)


def test_a_jpeg_resized_before_its_last_save_is_restored_again_with_the_wild_backbone(with_wild, without_wild):
    layer = _jpeg(_resize(_jpeg(_clean(), 20), 0.75), 90)
    fractions = []
    res = with_wild.restore(layer, RestoreOptions(return_mask=True), progress=fractions.append)
    assert res.jpeg_quality is None
    assert any("consistency step was skipped" in n for n in res.notes)
    assert any("restored again with the network trained on resized and re-saved JPEGs" in n for n in res.notes)
    assert any("no re-save at its size explains it" in n for n in res.notes), res.notes
    _check_wild_result(res, without_wild, layer, widened=False)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0  # never backwards over the added pass
    off = with_wild.restore(layer, RestoreOptions(wild_network=False))
    assert np.array_equal(off.image, without_wild.restore(layer, RestoreOptions()).image)
    assert not np.array_equal(off.image, res.image)


def test_a_large_layer_resized_before_its_last_save_is_decided_on_a_window(with_wild, monkeypatch):
    """On a layer that holds two probe windows, the default pair runs on one window only, and the
    result is the one the layer restored twice gives."""
    from core import pipeline

    layer = _jpeg(_resize(_jpeg(np.tile(_clean(), (4, 4)), 20), 0.75), 90)
    assert layer.size >= pipeline.PROBE_MIN_WINDOWS * pipeline.PROBE_SIDE**2
    pixels = _count_pixels(monkeypatch)
    fractions = []
    res = with_wild.restore(layer, RestoreOptions(return_mask=True), progress=fractions.append)
    assert pixels["restore_default.safetensors"] <= 2 * pipeline.PROBE_SIDE**2  # the window (tiles overlap)
    assert pixels["restore_fast.safetensors"] >= layer.size
    assert any(f"decided on a {pipeline.PROBE_SIDE} px window" in n for n in res.notes)
    assert not any("restored again" in n for n in res.notes)
    assert any("consistency step was skipped" in n for n in res.notes) and res.jpeg_quality is None
    assert "probe" in res.timings
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    monkeypatch.undo()
    monkeypatch.setattr(pipeline, "PROBE_SIDE", 10**5)  # no window: restored by the default pair, then again
    twice = with_wild.restore(layer, RestoreOptions(return_mask=True))
    assert any("restored again" in n for n in twice.notes)
    assert np.array_equal(res.image, twice.image) and np.array_equal(res.mask, twice.mask)


def test_a_jpeg_resaved_at_its_size_keeps_the_default_backbone(with_wild, without_wild):
    """Its first save's blocks are still on an 8-pixel grid: the damage the default network knows."""
    layer = _jpeg(_jpeg(_clean(), 30), 75)
    res = with_wild.restore(layer, RestoreOptions())
    assert any("re-saved JPEG: first quality about 3" in n for n in res.notes)
    assert not any("resized and re-saved" in n for n in res.notes)
    assert np.array_equal(res.image, without_wild.restore(layer, RestoreOptions()).image)


def test_a_resaved_jpeg_goes_to_the_wild_backbone_where_the_two_disagree_widely(with_wild, without_wild, monkeypatch):
    """Where the re-save fit cannot tell (no coarser quality to try): a JPEG enlarged and saved again
    at a low quality keeps a strong grid, like a re-save at its size; where the two pairs'
    restorations lie far apart, the wild pair's is kept."""
    from core import pipeline

    monkeypatch.setattr(jc, "resave_fit", lambda *a, **k: None)
    layer = _jpeg(_jpeg(_clean(), 30), 75)
    kept = with_wild.restore(layer, RestoreOptions())
    assert np.array_equal(kept.image, without_wild.restore(layer, RestoreOptions()).image)
    assert not any("restored again" in n for n in kept.notes)
    monkeypatch.setattr(pipeline, "WILD_DISAGREEMENT", 0.0)  # any gap is too wide
    res = with_wild.restore(layer, RestoreOptions(return_mask=True))
    assert any("gray levels (RMS) from the default network's" in n for n in res.notes), res.notes
    _check_wild_result(res, without_wild, layer, widened=False)


def test_a_large_resaved_layer_asks_the_wild_backbone_on_a_window_first(with_wild, without_wild, monkeypatch):
    """Where the re-save fit cannot tell: on a layer that holds two windows the wild pair runs on one
    window only, and restores the whole layer where the two pairs disagree there; the result is then
    the one the whole-layer check gives."""
    from core import pipeline

    monkeypatch.setattr(jc, "resave_fit", lambda *a, **k: None)
    layer = _jpeg(_jpeg(np.tile(_clean(), (4, 4)), 30), 75)
    assert layer.size >= pipeline.PROBE_MIN_WINDOWS * pipeline.PROBE_SIDE**2
    pixels = _count_pixels(monkeypatch)
    kept = with_wild.restore(layer, RestoreOptions())
    assert pixels["restore_fast.safetensors"] <= 2 * pipeline.PROBE_SIDE**2  # the window only (tiles overlap)
    assert np.array_equal(kept.image, without_wild.restore(layer, RestoreOptions()).image)
    assert "probe" in kept.timings and not any("restored again" in n for n in kept.notes)
    monkeypatch.setattr(pipeline, "WILD_DISAGREEMENT", 0.0)
    res = with_wild.restore(layer, RestoreOptions(return_mask=True))
    assert any(f"(RMS) on a {pipeline.PROBE_SIDE} px window from the default" in n for n in res.notes), res.notes
    monkeypatch.setattr(pipeline, "PROBE_SIDE", 10**5)  # no window: the whole layer restored by both pairs
    whole = with_wild.restore(layer, RestoreOptions(return_mask=True))
    assert any("gray levels (RMS) from the default" in n for n in whole.notes)
    assert np.array_equal(res.image, whole.image) and np.array_equal(res.mask, whole.mask)


@pytest.mark.parametrize(
    "name, first, shift, last, expect",
    [
        ("re-saved on the same grid", 30, (0, 0), 75, (30, 0, 0)),
        ("re-saved after a crop", 30, (3, 5), 75, (30, 5, 3)),
        ("re-saved after a crop, finer", 20, (3, 5), 90, (20, 5, 3)),
    ],
)
def test_the_resave_fit_finds_the_first_save(name, first, shift, last, expect):
    """With the clean drawing standing in for the restoration, the right first save (quality and grid
    phase, in the layer's pixels) explains nearly all of a re-save's damage."""
    clean = _clean()
    (dy, dx) = shift
    layer = _jpeg(_jpeg(clean, first)[dy:, dx:], last)
    fit = jc.resave_fit(layer, clean[dy:, dx:], jc.find_jpeg_grid(layer))
    assert (fit.quality, fit.dy, fit.dx) == expect, (name, fit)
    assert fit.ratio < 0.3 < jc.RESAVE_FIT


@pytest.mark.parametrize("scale, last", [(0.75, 90), (1.3, 85)])
def test_the_resave_fit_finds_no_resave_in_a_jpeg_resized_before_its_last_save(scale, last):
    clean = _clean()
    layer = _jpeg(_resize(_jpeg(clean, 20), scale), last)
    fit = jc.resave_fit(layer, _resize(clean, scale), jc.find_jpeg_grid(layer))
    assert fit.ratio >= jc.RESAVE_FIT, fit


def test_the_resave_fit_says_nothing_without_a_coarser_quality_or_room():
    clean = _clean()
    layer = _jpeg(clean, 8)  # no tried quality is 1.5 times as coarse as QF 8
    assert jc.resave_fit(layer, clean, jc.find_jpeg_grid(layer)) is None
    small = _jpeg(_jpeg(clean[:56, :56], 30), 75)
    assert jc.resave_fit(small, clean[:56, :56], jc.find_jpeg_grid(_jpeg(_jpeg(clean, 30), 75))) is None


def test_a_resave_after_a_crop_with_a_weak_grid_keeps_the_default_backbone(with_wild, without_wild):
    """The crop leaves two grids and a weak 8-pixel grid strength, as a resize does; the re-save fit
    finds the first save on its own grid, so the default pair restores it."""
    from core import resample

    layer = _jpeg(_jpeg(_clean(), 30)[3:, 5:], 75)
    assert resample.looks_resized(layer, table_found=True)  # the strength alone would send it on
    res = with_wild.restore(layer, RestoreOptions())
    assert any("consistency step was skipped" in n for n in res.notes)
    assert not any("resized and re-saved" in n for n in res.notes), res.notes
    assert np.array_equal(res.image, without_wild.restore(layer, RestoreOptions()).image)


def test_a_layer_without_a_jpeg_grid_gets_the_wild_backbone_at_once(with_wild, without_wild, monkeypatch):
    layer = _resize(_jpeg(_clean(), 20), 0.75)  # resized after the JPEG, kept as pixels
    from core.runners import Runner

    calls = []
    real_call = Runner.__call__

    def counting(self, *a, **k):
        calls.append(self.name)
        return real_call(self, *a, **k)

    monkeypatch.setattr(Runner, "__call__", counting)
    res = with_wild.restore(layer, RestoreOptions(return_mask=True))
    assert any("no JPEG block grid at the layer's size" in n for n in res.notes)
    assert "restore_default.safetensors" not in calls and "restore_fast.safetensors" in calls  # one pass
    monkeypatch.undo()
    _check_wild_result(res, without_wild, layer, widened=True)


def test_the_wild_backbone_leaves_colour_and_other_choices_alone(with_wild, without_wild):
    layer = _resize(_jpeg(_clean(), 20), 0.75)
    for opts in (RestoreOptions(mask="none"), RestoreOptions(model=str(MODELS / "restore_default.safetensors"))):
        assert np.array_equal(with_wild.restore(layer, opts).image, without_wild.restore(layer, opts).image)
    brown = np.stack([layer, 128 + layer // 2, 64 + 3 * (layer // 4)], axis=-1).astype(np.uint8)
    res = with_wild.restore(brown, RestoreOptions())
    assert np.array_equal(res.image, without_wild.restore(brown, RestoreOptions()).image)
    assert not any("re-saved and resized" in n for n in res.notes)


def test_the_block_grid_strength_tells_a_jpeg_at_its_size_from_a_resized_one():
    from core.resample import (
        RESIZED_LEAD,
        RESIZED_WITHOUT_TABLE,
        block_grid_lead,
        block_grid_strength,
        looks_resized,
        resize_evidence,
    )

    clean = _clean()
    assert block_grid_strength(clean) is None and block_grid_lead(clean) is None  # no paper noise to measure
    # Without a table the doubt goes to the wild pair; with one (a JPEG at the layer's size after
    # all) it stays with the default pair.
    assert "no JPEG noise to go by" in resize_evidence(clean, table_found=False)
    assert not looks_resized(clean, table_found=True)
    for layer in (_jpeg(clean, 20), _jpeg(clean, 20)[3:, 5:], _jpeg(_jpeg(clean, 30), 75)):
        assert block_grid_strength(layer) > RESIZED_WITHOUT_TABLE
        assert block_grid_lead(layer) > RESIZED_LEAD
        assert not looks_resized(layer, table_found=False)
    for s in (0.75, 1.5):
        layer = _resize(_jpeg(clean, 20), s)
        assert block_grid_strength(layer) < RESIZED_WITHOUT_TABLE
        assert looks_resized(layer, table_found=False)


def test_a_resized_jpeg_with_a_strong_folded_grid_is_told_by_its_block_period():
    """Shrunk x0.8 after its save, a JPEG's blocks are 6.4 pixels wide: folded modulo 8 on this
    small layer they still score as a grid (the strength alone keeps it on the default pair), but
    their own period outdoes the 8-pixel one."""
    from core.resample import RESIZED_LEAD, RESIZED_WITHOUT_TABLE, block_grid_lead, block_grid_strength, resize_evidence

    clean = np.array(Image.open(DATA / "val_crop_eye_solid.png").convert("L"))
    layer = _resize(_jpeg(clean, 20), 0.8)
    assert block_grid_strength(layer) > RESIZED_WITHOUT_TABLE
    assert block_grid_lead(layer) < RESIZED_LEAD
    assert "another period" in resize_evidence(layer, table_found=False)
    for at_size in (_jpeg(clean, 20), _jpeg(clean, 20)[3:, 5:], _jpeg(_jpeg(clean, 20), 80)):
        assert block_grid_lead(at_size) > RESIZED_LEAD
        assert resize_evidence(at_size, table_found=False) is None


def test_the_wild_mask_network_goes_with_the_wild_backbone(without_wild):
    """With a wild mask network (stand-in: mask_default), the wild route masks with it: its lines,
    and eq. 2 keeps only the uncertain part of their one-pixel rim (not all of it, as widened)."""
    r = Restorer.from_files(
        MODELS / "mask_fast.safetensors",
        MODELS / "restore_default.safetensors",
        wild=MODELS / "restore_fast.safetensors",
        wild_mask=MODELS / "mask_default.safetensors",
    )
    other = Restorer.from_files(MODELS / "mask_default.safetensors", MODELS / "restore_default.safetensors")
    for layer in (_resize(_jpeg(_clean(), 20), 0.75), _jpeg(_resize(_jpeg(_clean(), 20), 0.75), 90)):
        res = r.restore(layer, RestoreOptions(return_mask=True))
        assert any("network trained on resized and re-saved JPEGs" in n for n in res.notes)
        assert_lines_and_some_rim(res.mask, other.restore(layer, RestoreOptions(return_mask=True)).mask)
    single = _jpeg(_clean(), 20)
    res = r.restore(single, RestoreOptions(return_mask=True))
    assert np.array_equal(res.image, without_wild.restore(single, RestoreOptions()).image)


def test_eq2_keeps_the_uncertain_rim_of_a_layer_taken_for_resized(monkeypatch):
    """The shipped pipeline on a JPEG shrunk and saved again: eq. 2 keeps the wild backbone's value
    on the rim pixels the wild mask network was unsure of (RIM_MARGIN), the same result elsewhere;
    with no margin it whitens them, as on every layer not taken for resized."""
    from core import pipeline

    shipped = Restorer.default(device="cpu")
    layer = _jpeg(_resize(_jpeg(_clean(), 20), 0.8), 85)
    res = shipped.restore(layer, RestoreOptions(return_mask=True))
    assert any("network trained on resized and re-saved JPEGs" in n for n in res.notes), res.notes
    monkeypatch.setattr(pipeline, "RIM_MARGIN", 0.0)
    plain = shipped.restore(layer, RestoreOptions(return_mask=True))
    assert_lines_and_some_rim(res.mask, plain.mask)
    rim = (res.mask == 1) & (plain.mask == 0)
    assert (plain.image[rim] == 255).all() and (res.image[rim] < 255).any()
    assert np.array_equal(res.image[~rim], plain.image[~rim])
    single = _jpeg(_clean(), 20)
    monkeypatch.undo()
    a = shipped.restore(single, RestoreOptions(return_mask=True))
    monkeypatch.setattr(pipeline, "RIM_MARGIN", 0.0)
    b = shipped.restore(single, RestoreOptions(return_mask=True))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)


@pytest.mark.parametrize("first,last", [(30, 30), (40, 45), (75, 85), (36, 33)])
def test_a_resave_at_about_the_same_quality_is_told_from_a_single_save(first, last):
    """Saved twice on one grid at about one quality, a layer passes the consistency step's check
    (its clean drawing is near the last save's steps), but a first save on its grid explains it
    better than the last alone; a JPEG saved once is explained best by its one save."""
    clean = _clean()
    twice = _jpeg(_jpeg(clean, first), last)
    grid = jc.find_jpeg_grid(twice)
    assert grid is not None and grid.qf == last
    fit = jc.same_grid_resave(twice, clean, grid)
    assert fit is not None and fit.ratio < jc.SAME_GRID_FIT and abs(fit.quality - first) <= 3, fit
    assert (fit.dy, fit.dx) == (grid.dy, grid.dx)
    once = _jpeg(clean, last)
    fit = jc.same_grid_resave(once, clean, jc.find_jpeg_grid(once))
    assert fit is not None and fit.ratio >= 1.0, fit


def test_the_same_grid_fit_needs_an_ijg_table_and_lines():
    layer = _jpeg(_clean(), 40)
    grid = jc.find_jpeg_grid(layer)
    own = jc.JpegGrid(grid.qf, grid.table + 1, grid.dy, grid.dx, grid.reproduced, standard=False)
    assert jc.same_grid_resave(layer, layer, own) is None
    blank = np.full((128, 128), 255, np.uint8)
    assert jc.same_grid_resave(blank, blank, grid) is None


def test_pipeline_skips_the_step_on_a_resave_at_about_the_same_quality(restorer, monkeypatch):
    """The note names both saves and the step is skipped; the restoration is the one without the
    step, which keeps nearer to the clean drawing (this crop's strokes on white paper lose 1.6 dB
    to the step); a JPEG saved once keeps the step."""
    from core.metrics import psnr

    clean = np.array(Image.open(DATA / "val_crop_eye_solid.png").convert("L"))
    layer = _jpeg(_jpeg(clean, 40), 40)
    res = restorer.restore(layer, RestoreOptions())
    assert res.jpeg_quality is None
    assert any("re-saved JPEG on the same grid: first quality about" in n and "last 40" in n for n in res.notes)
    assert any("consistency step was skipped" in n for n in res.notes), res.notes
    off = restorer.restore(layer, RestoreOptions(jpeg_consistency=False))
    assert np.array_equal(res.image, off.image)
    monkeypatch.setattr(jc, "same_grid_resave", lambda *a, **k: None)
    kept = restorer.restore(layer, RestoreOptions())
    assert kept.jpeg_quality == 40 and psnr(clean, kept.image) < psnr(clean, res.image) - 1.0
    monkeypatch.undo()
    assert restorer.restore(_jpeg(clean, 40), RestoreOptions()).jpeg_quality == 40
