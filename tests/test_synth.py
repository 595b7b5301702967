"""Synthetic line drawings (training/synth.py): value contract, determinism, light variant, CLI."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.synth_checks import ramp_share
from training.synth import add_synth_parser, contact_sheet, force_background, light_variant, synth_drawing

SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_drawing_contract(seed):
    img = synth_drawing(np.random.default_rng(seed), 96, 130)
    assert img.dtype == np.uint8 and img.shape == (96, 130)
    line = img < 255
    # some ink, and plenty of paper
    assert 0.002 < line.mean() < 0.8
    # the background rule: every pixel >= 250 with no pixel < 250 within 2 px is exactly 255
    assert np.array_equal(force_background(img), img)


def test_background_is_exactly_white_far_from_ink():
    img = synth_drawing(np.random.default_rng(3), 128, 128)
    near_dark = cv2.dilate((img < 250).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    # pixels with no clearly visible ink within 2 px are pure paper, and there is plenty of it
    assert (img[~near_dark] == 255).all()
    assert (img == 255).mean() > 0.2
    # values 250..254 occur only right next to darker ink (anti-aliasing), never on their own
    faint = (img >= 250) & (img < 255)
    assert near_dark[faint].all()


def test_drawings_vary_in_darkness_and_width():
    """Across seeds the generator produces both dark and light inks and thin and thick lines."""
    darkest = []
    for seed in range(40):
        img = synth_drawing(np.random.default_rng(seed), 128, 128)
        darkest.append(int(np.percentile(img[img < 255], 5)))
    darkest = np.array(darkest)
    assert (darkest < 40).any(), "no drawing with dark ink"
    assert (darkest > 70).any(), "no drawing with light ink"


def test_some_drawings_have_flat_light_tones():
    """A share of drawings carries a flat near-white tone (220-249) over a sizeable area: line
    pixels by eq. 3, which the mask network must learn to keep (the real set has none)."""
    toned = 0
    for seed in range(40):
        img = synth_drawing(np.random.default_rng(seed), 128, 128)
        tone = (img >= 220) & (img <= 249)
        # a flat area: tone pixels whose 3x3 neighbourhood is all tone, not anti-aliased edges
        core = cv2.erode(tone.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        toned += core.mean() > 0.02
    assert 3 <= toned <= 20, toned


def test_some_drawings_have_flat_grey_insets_inside_black():
    """Black shapes with flat mid/light grey insets (125-245), as woodcut-like clip art has: the
    grey is flat (its 3x3 neighbourhood has one value) and black is within a few pixels."""
    inset = 0
    for seed in range(40):
        img = synth_drawing(np.random.default_rng(seed), 256, 256)
        k = np.ones((3, 3), np.uint8)
        flat = (cv2.erode(img, k) == cv2.dilate(img, k)) & (img >= 125) & (img <= 245)
        near_black = cv2.dilate((img < 30).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        inset += (flat & near_black).sum() >= 20
    # the generator before the insets: 0 of 40; with the insets but the tool's grain on them, 5
    assert 10 <= inset <= 30, inset


def test_gradients_off_changes_nothing():
    """``gradients=0`` draws no random number for the shading: each seed keeps its drawing."""
    for seed in range(6):
        rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
        assert np.array_equal(synth_drawing(rng_a, 96, 96), synth_drawing(rng_b, 96, 96, gradients=0.0))
        assert rng_a.random() == rng_b.random()  # the generators were left in the same state


def test_gradient_shading():
    """With ``gradients=1`` most drawings carry a grey ramp over a sizeable area (none without),
    with the background rule and the value contract kept."""
    shaded = 0
    for seed in range(30):
        plain = synth_drawing(np.random.default_rng(seed), 128, 128)
        img = synth_drawing(np.random.default_rng(seed), 128, 128, gradients=1.0)
        assert np.array_equal(force_background(img), img)
        assert ramp_share(plain) < 0.01
        shaded += ramp_share(img) > 0.01
    assert shaded >= 15, shaded


def test_anti_aliased_edges():
    """Strokes have intermediate gray levels at their edges, not only ink and paper."""
    img = synth_drawing(np.random.default_rng(1), 128, 128)
    values = np.unique(img)
    assert len(values) > 30


def test_deterministic():
    a = synth_drawing(np.random.default_rng(7), 64, 80)
    b = synth_drawing(np.random.default_rng(7), 64, 80)
    c = synth_drawing(np.random.default_rng(8), 64, 80)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_too_small_rejected():
    with pytest.raises(ValueError, match="8x8"):
        synth_drawing(np.random.default_rng(0), 4, 64)


@pytest.mark.parametrize("seed", range(6))
def test_light_variant_keeps_background_and_mask(seed):
    clean = synth_drawing(np.random.default_rng(seed), 96, 96)
    light = light_variant(clean, np.random.default_rng(100 + seed))
    assert light.dtype == np.uint8 and light.shape == clean.shape
    bg = clean == 255
    assert (light[bg] == 255).all()
    assert (light[~bg] < 255).all(), "a line pixel became background"
    # never darker than the factor's upper bound allows on average, and lighter than the original
    d_clean = 255.0 - clean[~bg].astype(float)
    d_light = 255.0 - light[~bg].astype(float)
    assert d_light.sum() < d_clean.sum()


def test_light_variant_factor_within_range():
    """On solid black ink the median kept darkness is the drawn factor, inside the range."""
    clean = np.full((64, 64), 255, np.uint8)
    clean[16:48, 16:48] = 0
    for seed in range(5):
        for lo, hi in [(0.25, 0.6), (0.4, 0.45)]:
            light = light_variant(clean, np.random.default_rng(seed), darkness=(lo, hi))
            ratio = np.median((255.0 - light[16:48, 16:48]) / 255.0)
            assert lo - 0.03 <= ratio <= hi + 0.03
            # grain: pencil texture makes the ink uneven
            assert light[16:48, 16:48].std() > 5


def test_light_variant_without_grain_is_the_same_lightening_untextured():
    """grain=False: one factor for the whole image, the same one as with grain from an equal
    generator, and flat ink stays flat."""
    clean = np.full((64, 64), 255, np.uint8)
    clean[8:56, 8:56] = 0
    clean[8:56, 56] = 200
    for seed in range(4):
        smooth = light_variant(clean, np.random.default_rng(seed), grain=False)
        grainy = light_variant(clean, np.random.default_rng(seed))
        assert (smooth[clean == 255] == 255).all() and (smooth[clean < 255] < 255).all()
        ink = smooth[8:56, 8:56]
        assert ink.min() == ink.max(), "ink is uneven without grain"
        f = (255.0 - float(ink[0, 0])) / 255.0
        assert 0.25 - 1 / 255 <= f <= 0.6 + 1 / 255
        assert abs(np.median(255.0 - grainy[8:56, 8:56]) / 255.0 - f) < 0.03  # same factor
        assert grainy[8:56, 8:56].std() > 5


def test_light_variant_deterministic_and_validated():
    clean = synth_drawing(np.random.default_rng(2), 64, 64)
    a = light_variant(clean, np.random.default_rng(5))
    b = light_variant(clean, np.random.default_rng(5))
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="darkness"):
        light_variant(clean, np.random.default_rng(5), darkness=(0.7, 0.2))
    with pytest.raises(ValueError, match="uint8"):
        light_variant(clean.astype(np.float32), np.random.default_rng(5))


def test_force_background_rule():
    img = np.full((20, 20), 252, np.uint8)
    img[10, 10] = 0  # a dark pixel: its 5x5 neighbourhood keeps its faint values
    out = force_background(img)
    assert out[10, 10] == 0
    assert out[8, 8] == 252 and out[12, 12] == 252
    assert out[7, 10] == 255 and out[0, 0] == 255


def test_contact_sheet_cli(tmp_path):
    parser = argparse.ArgumentParser()
    add_synth_parser(parser.add_subparsers())
    out = tmp_path / "sheet.png"
    args = parser.parse_args(["synth", "--out", str(out), "--rows", "1", "--cols", "2", "--size", "48"])
    assert args.func(args) == 0
    sheet = np.array(Image.open(out))
    # 2 rows (samples + light variants) of 48 px tiles with 6 px gaps
    assert sheet.shape == (2 * 48 + 3 * 6, 2 * 48 + 3 * 6)
    assert np.array_equal(sheet, contact_sheet(0, 1, 2, 48))


def test_folder_cli(tmp_path):
    parser = argparse.ArgumentParser()
    add_synth_parser(parser.add_subparsers())
    args = parser.parse_args(["synth", "--folder", str(tmp_path / "d"), "--count", "3", "--size", "40"])
    assert args.func(args) == 0
    files = sorted((tmp_path / "d").glob("*.png"))
    assert len(files) == 3
    assert np.array(Image.open(files[0])).shape == (40, 40)
    shaded = ["synth", "--folder", str(tmp_path / "g"), "--count", "3", "--size", "40", "--gradients", "1"]
    args = parser.parse_args(shaded)
    assert args.func(args) == 0
    first = np.array(Image.open(tmp_path / "g" / "synth_00000.png"))
    assert np.array_equal(first, synth_drawing(np.random.default_rng(0), 40, 40, gradients=1.0))


@pytest.mark.filterwarnings("error")
def test_many_seeds_and_sizes_render_without_warnings():
    """Degenerate geometry (repeated points, tiny canvases) must neither warn nor fail."""
    for seed in range(80):
        h, w = np.random.default_rng(seed).integers(8, 72, 2)
        img = synth_drawing(np.random.default_rng(seed), int(h), int(w))
        assert img.shape == (h, w)
