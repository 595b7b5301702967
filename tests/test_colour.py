"""Coloured line art in, coloured line art out (core/colour.py, the pipeline's colour path, and the
coloured evaluation sets of training/colour.py), with the shipped models on a real validation crop."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core import colour
from core.imageio import to_gray_float
from core.metrics import miou, psnr
from core.pipeline import RestoreOptions, Restorer
from tests.colour_checks import hue, hue_distance
from training.colour import (
    INKS,
    colour_mask,
    coloured_crop,
    colourize,
    in_ink,
    jpeg_rgb,
    rgb_ssim,
)

CROP = Path(__file__).parent / "data" / "val_crop_empty_tomb.png"


@pytest.fixture(scope="module")
def restorer() -> Restorer:
    return Restorer.default(device="cpu")


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    return np.asarray(Image.open(CROP).convert("L"))


# ---- the colour model itself (no network) ------------------------------------------------------


def test_clean_colour_drawing_goes_through_prepare_and_back(gray):
    """Without JPEG damage, the line plane and the ink directions rebuild the drawing: exactly up
    to rounding for one ink; with one ink per stroke, up to the few pixels where strokes of two
    inks meet within the colour window."""
    one = colourize(gray, np.random.default_rng(1), per_stroke=False)
    plane = colour.prepare(one)
    back = colour.to_layer(plane.gray, plane.direction, "RGB", np.uint8)
    assert np.abs(back.astype(int) - one).max() <= 2
    many = colourize(gray, np.random.default_rng(1), per_stroke=True)
    plane = colour.prepare(many)
    back = colour.to_layer(plane.gray, plane.direction, "RGB", np.uint8)
    assert psnr(back, many) > 40 and (np.abs(back.astype(int) - many).max(axis=2) > 3).mean() < 0.05


def test_the_line_plane_is_the_distance_from_white():
    """Light yellow, whose luminance (about 210) a gray mask takes for paper, is dark in the line
    plane: it is as dark as its darkest channel."""
    g = np.full((64, 64), 255, np.uint8)
    g[20:44, 28:36] = 0
    yellow = in_ink(g, INKS["yellow"])
    assert to_gray_float(yellow).gray[30, 30] > 0.8  # luminance: nearly paper
    assert colour.prepare(yellow).gray[30, 30] < 0.25


def test_neutral_detection():
    g = np.full((16, 16, 3), 200, np.uint8)
    assert colour.is_neutral(g)
    g[3, 3] = (200, 200, 204)  # within JPEG noise
    assert colour.is_neutral(g)
    g[3, 3] = (150, 120, 90)
    assert not colour.is_neutral(g)
    rgba = np.dstack([g, np.full((16, 16), 255, np.uint8)])
    assert not colour.is_neutral(rgba)
    rgba[3, 3, 3] = 0  # its only coloured pixel is fully transparent
    assert colour.is_neutral(rgba)
    assert colour.is_neutral(np.zeros((4, 4), np.uint8))


def test_the_neutral_check_has_a_step_boundary_per_band():
    """The check reads every pixel of a neutral layer (0.9 s for an 8192^2 RGBA one): a server
    reports progress and gives other jobs their turn between its bands (core.steps)."""
    from core.steps import step_hook

    seen = []
    with step_hook(lambda *s: seen.append(s)):
        assert colour.is_neutral(np.full((1100, 8, 4), 255, np.uint8))
    assert seen == [("rows", 0, 1100), ("rows", 512, 1100), ("rows", 1024, 1100)]


# ---- the pipeline on coloured layers ----------------------------------------------------------


@pytest.mark.parametrize("ink", ["brown", "blue", "red", "sepia"])
def test_stroke_hue_is_kept(restorer, gray, ink):
    clean = in_ink(gray, INKS[ink])
    jpeg = jpeg_rgb(clean, 20)
    res = restorer.restore(jpeg, RestoreOptions())
    out = res.image
    assert out.shape == clean.shape and out.dtype == np.uint8
    solid = gray < 64
    got = out[solid].mean(axis=0)
    assert hue_distance(hue(got), hue(INKS[ink])) < 8, (got, INKS[ink])
    assert psnr(out, clean) > psnr(jpeg, clean) + 1.0
    assert not any("gray" in n for n in res.notes), res.notes


def test_paper_is_exactly_white_and_near_white_is_white(restorer, gray):
    clean = coloured_crop(gray, 1)
    res = restorer.restore(jpeg_rgb(clean, 20), RestoreOptions())
    paper = res.mask == 0
    assert paper.any() and (res.image[paper] == 255).all()
    # the eq. 1 threshold on the line plane: no pixel is left just short of white in every channel
    assert not ((res.image.min(axis=2) > RestoreOptions().theta) & (res.image.min(axis=2) < 255)).any()


def test_several_inks_in_one_drawing(restorer):
    g = np.full((96, 128), 255, np.uint8)
    cv2.line(g, (10, 20), (118, 20), 0, 3, cv2.LINE_AA)
    cv2.line(g, (10, 70), (118, 70), 0, 3, cv2.LINE_AA)
    clean = colourize(g, np.random.default_rng(0), per_stroke=False)
    clean[:48] = in_ink(g[:48], INKS["blue"])
    clean[48:] = in_ink(g[48:], INKS["red"])
    out = restorer.restore(jpeg_rgb(clean, 30), RestoreOptions()).image
    assert hue_distance(hue(out[20, 30:100].min(axis=0)), hue(INKS["blue"])) < 10
    assert hue_distance(hue(out[70, 30:100].min(axis=0)), hue(INKS["red"])) < 10


def test_light_yellow_ink_is_masked_as_line(restorer, gray):
    """Yellow (luminance about 210): its strokes are masked as lines, not forced to white, and come
    back yellow, more saturated than the JPEG left them."""
    clean = in_ink(gray, INKS["yellow"])
    jpeg = jpeg_rgb(clean, 30)
    res = restorer.restore(jpeg, RestoreOptions())
    truth = (gray < 255).astype(np.uint8)
    assert res.mask[gray < 128].mean() > 0.85
    assert miou(res.mask, truth) > 0.8
    solid = gray < 64
    got = res.image[solid].mean(axis=0)
    assert hue_distance(hue(got), hue(INKS["yellow"])) < 8
    assert got[2] < jpeg[solid].mean(axis=0)[2] - 20  # bluer channel darker: more yellow than the JPEG
    assert psnr(res.image, clean) > psnr(jpeg, clean) + 2


def test_transparent_background_gives_coloured_strokes_with_coverage_alpha(restorer, gray):
    clean = in_ink(gray, INKS["brown"])
    jpeg = jpeg_rgb(clean, 30)
    white = restorer.restore(jpeg, RestoreOptions()).image
    res = restorer.restore(jpeg, RestoreOptions(background="transparent"))
    rgba = res.image
    assert rgba.shape == (*gray.shape, 4)
    alpha = rgba[..., 3].astype(float) / 255
    assert (rgba[res.mask == 0, 3] == 0).all()
    over_white = rgba[..., :3] * alpha[..., None] + 255 * (1 - alpha[..., None])
    assert np.abs(over_white - white).max() <= 2
    solid = gray < 64
    assert hue_distance(hue(rgba[solid][:, :3].mean(axis=0)), hue(INKS["brown"])) < 8


def test_rgba_layer_keeps_its_layout(restorer, gray):
    clean = in_ink(gray, INKS["blue"])
    rgba = np.dstack([jpeg_rgb(clean, 30), np.full(gray.shape, 255, np.uint8)])
    out = restorer.restore(rgba, RestoreOptions()).image
    assert out.shape == rgba.shape and (out[..., 3] == 255).all()


def test_sixteen_bit_colour(restorer, gray):
    clean = in_ink(gray, INKS["red"])
    deep = jpeg_rgb(clean, 30).astype(np.uint16) * 257
    out = restorer.restore(deep, RestoreOptions()).image
    assert out.dtype == np.uint16 and out.shape == deep.shape
    assert psnr((out // 257).astype(np.uint8), clean) > psnr(jpeg_rgb(clean, 30), clean)


# ---- gray stays as it was ---------------------------------------------------------------------


def test_gray_drawing_saved_as_rgb_jpeg_comes_back_neutral_and_as_the_gray_path(restorer, gray):
    jpeg = jpeg_rgb(np.dstack([gray] * 3), 20)
    assert (jpeg[..., 0] == jpeg[..., 1]).all() and (jpeg[..., 1] == jpeg[..., 2]).all()
    res = restorer.restore(jpeg, RestoreOptions())
    out = res.image
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    # today's path: the same restoration as the gray layer of the same pixels
    gray_res = restorer.restore(np.ascontiguousarray(jpeg[..., 0]), RestoreOptions())
    assert abs(psnr(out[..., 0], gray) - psnr(gray_res.image, gray)) < 0.05


def test_gray_layer_result_does_not_depend_on_the_colour_code(restorer, gray, monkeypatch):
    """A gray layer never reaches core.colour: the result is the gray path's, bit for bit."""
    jpeg = np.asarray(Image.open(CROP).convert("L"))
    before = restorer.restore(jpeg, RestoreOptions()).image

    def boom(*_a, **_k):
        raise AssertionError("the colour path ran on a gray layer")

    monkeypatch.setattr(colour, "prepare", boom)
    assert np.array_equal(restorer.restore(jpeg, RestoreOptions()).image, before)


# ---- the coloured evaluation sets -------------------------------------------------------------


def test_coloured_variants_are_seeded_and_antialiased(gray):
    a, b = coloured_crop(gray, 3), coloured_crop(gray, 3)
    assert np.array_equal(a, b) and not np.array_equal(a, coloured_crop(gray, 4))
    truth = (gray < 255).astype(np.uint8)
    assert (colour_mask(a) <= truth).all() and np.array_equal(colour_mask(a)[gray < 250], truth[gray < 250])
    assert (a[gray == 255] == 255).all()
    one = colourize(gray, np.random.default_rng(0), per_stroke=False)
    inks = {tuple(p) for p in one[gray == 0]}
    assert len(inks) == 1  # one ink for the whole drawing
    assert 0.99 < rgb_ssim(a, a) <= 1.0


def test_jpeg_rgb_subsampling():
    img = in_ink(np.tile(np.repeat(np.array([0, 255], np.uint8), 4), (32, 4)), INKS["red"])
    sub, full = jpeg_rgb(img, 90, "4:2:0"), jpeg_rgb(img, 90, "4:4:4")
    assert psnr(full, img) > psnr(sub, img)
    with pytest.raises(ValueError):
        jpeg_rgb(img, 90, "4:1:1")


def test_prepare_in_row_bands_equals_one_band(monkeypatch):
    """colour.prepare works in row bands with the wide window's rows around each; the planes are
    the same as from one band holding the whole layer (a band edge crossing strokes included)."""
    rng = np.random.default_rng(5)
    g = np.full((300, 90), 255, np.uint8)
    for _ in range(12):
        p = rng.integers(0, [90, 300], size=(2, 2))
        cv2.line(g, tuple(map(int, p[0])), tuple(map(int, p[1])), int(rng.integers(0, 200)), 2, cv2.LINE_AA)
    img = jpeg_rgb(in_ink(g, (30, 110, 200)), 25)
    whole = colour.prepare(img)
    monkeypatch.setattr(colour, "_ROWS", 40)
    banded = colour.prepare(img)
    for name in ("gray", "mask_gray", "direction"):
        np.testing.assert_array_equal(getattr(banded, name), getattr(whole, name))
