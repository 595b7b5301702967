"""The colour layers' wild backbone (``core/models/restore_colour_wild.safetensors``, role
``wild_colour``, the ``wild_network`` option): a coloured 8-bit layer whose luminance holds no
JPEG grid (resized after its JPEG, or no JPEG at all) is restored by it instead of the colour
backbone, in one pass; one resized before its last save (a grid, but the last JPEG did not make the
damage and no re-save explains it) is restored again by it; a coloured JPEG at its size and a
re-saved one keep the colour backbone, bit for bit as without the file; gray layers and the other
choices are left alone.

``restore_fast.safetensors`` stands in for the colour wild backbone: a real framework backbone
whose output differs from the colour one's, so a test can tell which of the two restored a layer."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core import jpeg_consistency
from core.pipeline import DEFAULT_FILES, MODELS_DIR, WILD_FILES, RestoreOptions, Restorer, wild_files
from core.runners import Runner
from tests.colour_checks import GRAY_LAYOUTS, gray_layer
from tests.mask_checks import assert_lines_and_some_rim
from training.colour import coloured_crop, jpeg_rgb

CROP = Path(__file__).parent / "data" / "val_crop_empty_tomb.png"
STAND_IN = MODELS_DIR / "restore_fast.safetensors"
FILES = {role: MODELS_DIR / DEFAULT_FILES[role] for role in ("mask", "restore", "baseline")}
COLOUR = {
    "mask_colour": MODELS_DIR / "mask_colour.safetensors",
    "restore_colour": MODELS_DIR / "restore_colour.safetensors",
}
NOTE = "no JPEG grid in the layer's luminance"


@pytest.fixture(scope="module")
def coloured() -> np.ndarray:
    gray = np.asarray(Image.open(CROP).convert("L"))[:192, :192].copy()
    return coloured_crop(gray, 1)  # one ink per stroke


@pytest.fixture(scope="module")
def without() -> Restorer:
    return Restorer.from_files(**FILES, **COLOUR, device="cpu")


@pytest.fixture(scope="module")
def with_wild_colour() -> Restorer:
    return Restorer.from_files(**FILES, **COLOUR, wild_colour=STAND_IN, device="cpu")


def _resized(rgb: np.ndarray, s: float = 0.75) -> np.ndarray:
    """A coloured JPEG at QF 20, shrunk with Lanczos after its save and kept as pixels."""
    j = jpeg_rgb(rgb, 20)
    h, w = j.shape[:2]
    return cv2.resize(j, (round(w * s), round(h * s)), interpolation=cv2.INTER_LANCZOS4)


def _runs(restorer: Restorer, img, opts, monkeypatch):
    """The result, and the names of the networks run for it (one entry per tile and pass)."""
    names = []
    real = Runner.__call__

    def counting(self, *a, **k):
        names.append(self.name)
        return real(self, *a, **k)

    monkeypatch.setattr(Runner, "__call__", counting)
    try:
        res = restorer.restore(img, opts)
    finally:
        monkeypatch.setattr(Runner, "__call__", real)
    return res, names


def test_a_coloured_layer_without_a_jpeg_grid_gets_the_colour_wild_backbone_at_once(
    coloured, with_wild_colour, without, monkeypatch
):
    layer = _resized(coloured)
    with_wild_colour.restore(layer, RestoreOptions())  # first use: the tile-cost probes run here
    res, names = _runs(with_wild_colour, layer, RestoreOptions(return_mask=True), monkeypatch)
    assert any(NOTE in n for n in res.notes), res.notes
    assert STAND_IN.name in names and "restore_colour.safetensors" not in names  # one backbone pass
    assert res.jpeg_quality is None and res.image.shape == layer.shape
    before = without.restore(layer, RestoreOptions(return_mask=True))
    assert_lines_and_some_rim(res.mask, before.mask)  # the colour mask network's mask, and its rim
    assert (res.image[res.mask == 0] == 255).all()  # paper white (eq. 2)
    assert not np.array_equal(res.image, before.image)
    assert not any(NOTE in n for n in before.notes)


def test_a_coloured_jpeg_at_its_size_keeps_the_colour_backbone_and_its_step(
    coloured, with_wild_colour, without, monkeypatch
):
    layer = jpeg_rgb(coloured, 20)
    with_wild_colour.restore(layer, RestoreOptions())  # first use: the tile-cost probes run here
    searches = []
    real = jpeg_consistency.find_jpeg_grid

    def counting(*a, **k):
        searches.append(1)
        return real(*a, **k)

    monkeypatch.setattr(jpeg_consistency, "find_jpeg_grid", counting)
    res, names = _runs(with_wild_colour, layer, RestoreOptions(return_mask=True), monkeypatch)
    assert len(searches) == 2  # before the networks (the choice), and from the restoration (the step)
    assert res.jpeg_quality == 20 and not any(NOTE in n for n in res.notes)
    assert STAND_IN.name not in names and "restore_colour.safetensors" in names
    before = without.restore(layer, RestoreOptions(return_mask=True))
    assert np.array_equal(res.image, before.image) and np.array_equal(res.mask, before.mask)
    assert res.notes == before.notes
    # the step off: the grid still picks the backbone
    off = RestoreOptions(jpeg_consistency=False)
    assert np.array_equal(with_wild_colour.restore(layer, off).image, without.restore(layer, off).image)


def test_a_coloured_jpeg_resized_before_its_last_save_is_restored_again(
    coloured, with_wild_colour, without, monkeypatch
):
    """Its last save leaves a grid (so the colour backbone restores it first), but that JPEG did not
    make the damage and no re-save at its size explains it: the colour wild backbone restores it again."""
    j = jpeg_rgb(coloured, 20)
    h, w = j.shape[:2]
    layer = jpeg_rgb(cv2.resize(j, (round(w * 0.75), round(h * 0.75)), interpolation=cv2.INTER_LANCZOS4), 75)
    with_wild_colour.restore(layer, RestoreOptions())  # first use: the tile-cost probes run here
    res, names = _runs(with_wild_colour, layer, RestoreOptions(return_mask=True), monkeypatch)
    assert any("did not make all of its damage" in n for n in res.notes), res.notes
    assert any("no re-save at its size explains it" in n and "colour network" in n for n in res.notes), res.notes
    assert names.index("restore_colour.safetensors") < names.index(STAND_IN.name)  # restored again
    before = without.restore(layer, RestoreOptions(return_mask=True))
    assert_lines_and_some_rim(res.mask, before.mask)
    assert (res.image[res.mask == 0] == 255).all() and not np.array_equal(res.image, before.image)


def test_a_resaved_coloured_jpeg_keeps_the_colour_backbone(coloured, with_wild_colour, without):
    layer = jpeg_rgb(jpeg_rgb(coloured, 30, "4:4:4"), 75, "4:4:4")
    res = with_wild_colour.restore(layer, RestoreOptions())
    assert any("re-saved JPEG: first quality about 30" in n for n in res.notes), res.notes
    assert not any("colour network trained" in n for n in res.notes)
    assert np.array_equal(res.image, without.restore(layer, RestoreOptions()).image)


@pytest.mark.parametrize("layout", GRAY_LAYOUTS)
def test_gray_and_neutral_layers_are_untouched(with_wild_colour, without, layout):
    gray = np.asarray(Image.open(CROP).convert("L"))[:160, :160].copy()
    img, opts = gray_layer(cv2.resize(gray, (120, 120), interpolation=cv2.INTER_AREA), layout)
    a, b = with_wild_colour.restore(img, opts), without.restore(img, opts)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)


@pytest.mark.parametrize(
    "make, opts",
    [
        (lambda c: _resized(c), RestoreOptions(wild_network=False)),
        (lambda c: _resized(c), RestoreOptions(mask="none")),
        (lambda c: _resized(c), RestoreOptions(model=str(FILES["restore"]))),
        (lambda c: _resized(c).astype(np.uint16) * 257, RestoreOptions()),  # 16-bit: no JPEG plane
        # transparent pixels: composited on white, no JPEG plane to search
        (
            lambda c: np.dstack([_resized(c), np.where(_resized(c).min(-1) > 250, 0, 255).astype(np.uint8)]),
            RestoreOptions(),
        ),
    ],
    ids=["option-off", "no-mask", "own-model", "16-bit", "transparent"],
)
def test_the_other_choices_keep_their_backbone(coloured, with_wild_colour, without, make, opts):
    layer = make(coloured)
    res = with_wild_colour.restore(layer, opts)
    assert not any(NOTE in n for n in res.notes)
    assert np.array_equal(res.image, without.restore(layer, opts).image)


def test_the_shipped_file_is_loaded_with_the_default_pair_only(tmp_path, monkeypatch):
    assert WILD_FILES["wild_colour"] == "restore_colour_wild.safetensors"
    monkeypatch.setattr("core.pipeline.MODELS_DIR", tmp_path)
    assert wild_files()["wild_colour"] is None  # not installed: the colour backbone for every layer
    (tmp_path / WILD_FILES["wild_colour"]).write_bytes(b"")
    assert wild_files()["wild_colour"] == tmp_path / WILD_FILES["wild_colour"]
    assert wild_files(fast=True)["wild_colour"] is None


def test_a_mask_network_is_refused_as_colour_wild_backbone():
    from core.errors import WeightsError

    with pytest.raises(WeightsError, match="wild_colour model must be a restoration backbone"):
        Restorer.from_files(**FILES, wild_colour=FILES["mask"], device="cpu")
