"""Ink normalization (core/ink.py): which drawings are stretched, by how much, and that the rest
go through the pipeline bit-identical."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import ink
from core.errors import InvalidOptionError
from core.pipeline import RestoreOptions
from training.data import jpeg_degrade
from training.synth import light_variant, synth_drawing


def solid_drawing(h=192, w=192, seed=0) -> np.ndarray:
    """Thick black strokes (discs and bars) with anti-aliased edges on white."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dark = np.zeros((h, w), np.float32)
    for _ in range(6):
        cy, cx, r = rng.uniform(20, h - 20), rng.uniform(20, w - 20), rng.uniform(6, 16)
        dark = np.maximum(dark, np.clip(r - np.hypot(yy - cy, xx - cx) + 0.5, 0, 1))
    for _ in range(4):
        x0 = rng.uniform(10, w - 30)
        dark = np.maximum(dark, np.clip(np.minimum(xx - x0, x0 + 9 - xx) + 0.5, 0, 1) * (yy > 30) * (yy < h - 30))
    return np.rint(255 * (1 - dark)).astype(np.uint8)


def plane(u8: np.ndarray) -> np.ndarray:
    return u8.astype(np.float32) / 255.0


@pytest.mark.parametrize("f", [0.25, 0.4, 0.6])
@pytest.mark.parametrize("qf", [10, 30, 60])
def test_flat_light_ink_is_stretched_back_to_black(f, qf):
    light = light_variant(solid_drawing(), np.random.default_rng(1), darkness=(f, f), grain=False)
    k = ink.stretch_factor(plane(jpeg_degrade(light, qf)))
    assert 1 / k == pytest.approx(f, abs=6 / 255)  # the ink's darkness, within 6 levels


def test_dark_drawings_blank_pages_and_grain_are_left_alone():
    dark = solid_drawing()
    assert ink.stretch_factor(plane(jpeg_degrade(dark, 20))) == 1.0
    assert ink.stretch_factor(plane(jpeg_degrade(synth_drawing(np.random.default_rng(3), 192, 192), 20))) == 1.0
    assert ink.stretch_factor(np.ones((64, 64), np.float32)) == 1.0
    specks = np.ones((256, 256), np.float32)
    specks[3, 5] = 0.6
    assert ink.ink_level(specks) is None and ink.stretch_factor(specks) == 1.0
    grainy = light_variant(dark, np.random.default_rng(1), darkness=(0.4, 0.4), grain=True)
    assert ink.stretch_factor(plane(jpeg_degrade(grainy, 30))) == 1.0


def test_light_fill_beside_black_lines_is_not_taken_for_the_ink():
    # A large flat grey fill holding most of the non-paper pixels, and thin black lines: stretching
    # to the fill's level would clip the black lines to it.
    img = np.full((256, 256), 255, np.uint8)
    img[40:216, 40:216] = 200
    img[30:226:24, 20:236] = 0
    lv = ink.ink_level(plane(img))
    assert lv.share > 0.5 and lv.darker > ink.MAX_DARKER
    assert ink.stretch_factor(plane(jpeg_degrade(img, 30))) == 1.0


def test_stretch_and_unstretch_are_inverse_down_to_the_ink():
    x = torch.linspace(0.5, 1.0, 101)
    y = ink.stretch(x, 2.0)
    assert float(y.min()) == 0.0 and float(y.max()) == 1.0
    assert torch.allclose(ink.unstretch_(y.clone(), 2.0), x, atol=1e-6)
    # Darker than the ink (JPEG overshoot) clamps at 0, i.e. back to the ink's level.
    assert float(ink.unstretch_(ink.stretch(torch.tensor([0.2]), 2.0), 2.0)) == pytest.approx(0.5)


def test_option_is_checked():
    with pytest.raises(InvalidOptionError, match="normalize_ink"):
        RestoreOptions(normalize_ink="yes")
    assert RestoreOptions.from_dict({"normalize_ink": False}).normalize_ink is False


def test_stretched_qf_follows_the_ijg_scaling():
    assert ink.stretched_qf(30, 1.0) == pytest.approx(30)
    assert ink.stretched_qf(80, 1.0) == pytest.approx(80)
    assert ink.stretched_qf(30, 2.0) == pytest.approx(15)  # 5000/30 % doubled
    assert ink.stretched_qf(90, 2.0) == pytest.approx(80)  # 20 % doubled = 40 % -> QF 80
    assert ink.stretched_qf(60, 2.5) == pytest.approx(25)  # 80 % * 2.5 = 200 % -> QF 25
    assert ink.stretched_qf(5, 5.0) == 1.0
    # Against a real encoder: Pillow's QF-15 table is its QF-30 table doubled, within rounding
    # (where that stays under baseline JPEG's cap of 255).
    import io

    from PIL import Image

    def table(qf):
        buf = io.BytesIO()
        Image.new("L", (8, 8), 128).save(buf, "JPEG", quality=qf)
        return np.array(Image.open(buf).quantization[0], dtype=float)

    want = 2 * table(30)
    below = want < 255  # baseline JPEG caps its steps at 255
    assert below.sum() > 32
    assert np.abs(table(round(ink.stretched_qf(30, 2.0))) - want)[below].max() <= 1
