"""Direct masks (core.masks): Otsu, Otsu + dilation, adaptive Gaussian thresholding."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from core import DIRECT_MASKS, InvalidImageError, adaptive_gaussian, otsu, otsu_dilated
from core import masks as masks_module

ALL_MASKS = [otsu, otsu_dilated, adaptive_gaussian]


def dilate3x3(mask: np.ndarray) -> np.ndarray:
    """Reference 3x3 dilation written with numpy only: a pixel is set when any pixel within
    Chebyshev distance 1 (inside the image) is set."""
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = mask
    out = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            out |= padded[dy : dy + h, dx : dx + w]
    return out


def jpeg_like(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add small ringing-like noise: background stays in 247..255, lines move by up to +-8."""
    noise = rng.integers(-8, 9, size=img.shape)
    out = img.astype(np.int32) + noise
    out = np.where(img == 255, np.clip(out, 247, 255), np.clip(out, 0, 255))
    return out.astype(np.uint8)


def test_direct_mask_registry():
    assert DIRECT_MASKS == {"otsu": otsu, "otsu_d": otsu_dilated, "agt": adaptive_gaussian}


@pytest.mark.parametrize("fn", ALL_MASKS)
def test_clean_drawing_gives_its_lines(drawing, fn):
    img, lines = drawing
    out = fn(img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert set(np.unique(out)) <= {0, 1}
    expected = dilate3x3(lines) if fn is otsu_dilated else lines
    np.testing.assert_array_equal(out, expected)
    # The input is not modified.
    np.testing.assert_array_equal(img, drawing[0])


def test_otsu_on_a_noisy_drawing_still_finds_the_lines(drawing, rng):
    img, lines = drawing
    np.testing.assert_array_equal(otsu(jpeg_like(img, rng)), lines)


def test_agt_on_a_noisy_drawing_marks_every_line_pixel(drawing, rng):
    img, lines = drawing
    out = adaptive_gaussian(jpeg_like(img, rng))
    assert np.all(out[lines == 1] == 1)
    # Background noise next to lines can trip AGT, but far from the lines it stays background.
    far = dilate3x3(dilate3x3(dilate3x3(lines))) == 0
    assert out[far].mean() < 0.05


def test_otsu_dilated_grows_by_exactly_one_pixel():
    img = np.full((7, 8), 255, np.uint8)
    img[3, 4] = 0  # a dot in the middle
    img[0, 0] = 0  # a dot in the corner: its 3x3 block is clipped by the border
    out = otsu_dilated(img)
    expected = np.zeros((7, 8), np.uint8)
    expected[2:5, 3:6] = 1
    expected[0:2, 0:2] = 1
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(otsu(img), (img == 0).astype(np.uint8))


def test_otsu_threshold_splits_two_gray_levels():
    # Two populations, 90 and 160: Otsu puts the split between them; the darker one is "line".
    img = np.full((6, 6), 160, np.uint8)
    img[:, :2] = 90
    np.testing.assert_array_equal(otsu(img), (img == 90).astype(np.uint8))


def test_agt_parameters_are_the_papers_35_and_2():
    sig = inspect.signature(adaptive_gaussian)
    assert sig.parameters["window"].default == 35 == masks_module.AGT_WINDOW
    assert sig.parameters["c"].default == 2 == masks_module.AGT_C


def test_agt_constant_c():
    # Flat gray 200 with two single darker pixels. The Gaussian-weighted local mean stays 200
    # (one pixel barely moves a 35x35 window), so a pixel is a line when it is at least c darker.
    img = np.full((40, 40), 200, np.uint8)
    img[10, 10] = 199  # 1 darker: background with c = 2
    img[30, 30] = 197  # 3 darker: line with c = 2, background with c = 5
    out = adaptive_gaussian(img)
    assert out[10, 10] == 0 and out[30, 30] == 1
    assert out.sum() == 1
    out5 = adaptive_gaussian(img, c=5)
    assert out5.sum() == 0


def test_agt_window_is_35_pixels():
    # A large dark fill: 5 px inside its edge, a 35-px Gaussian window still sees the white
    # outside (local mean well above the pixel), a 3-px window does not (mean == pixel).
    img = np.full((80, 80), 255, np.uint8)
    img[10:70, 10:70] = 100
    default = adaptive_gaussian(img)
    assert default[40, 15] == 1  # 5 px from the left edge of the fill
    assert default[40, 40] == 0  # the centre of the fill is flat at the window's scale
    assert adaptive_gaussian(img, window=3)[40, 15] == 0
    np.testing.assert_array_equal(default, adaptive_gaussian(img, window=35, c=2))


@pytest.mark.parametrize("window", [0, 1, 4, 36])
def test_agt_rejects_bad_windows(window):
    with pytest.raises(InvalidImageError, match="window"):
        adaptive_gaussian(np.full((8, 8), 255, np.uint8), window=window)


@pytest.mark.parametrize("value", [255, 200, 128])
@pytest.mark.parametrize("fn", ALL_MASKS)
def test_flat_light_image_has_no_lines(fn, value):
    out = fn(np.full((9, 11), value, np.uint8))
    np.testing.assert_array_equal(out, np.zeros((9, 11), np.uint8))


def test_flat_dark_image():
    black = np.zeros((9, 11), np.uint8)
    # Otsu's fallback for a single gray level: a dark page is all line ...
    np.testing.assert_array_equal(otsu(black), np.ones_like(black))
    np.testing.assert_array_equal(otsu_dilated(black), np.ones_like(black))
    # ... while AGT only sees local contrast, and a flat page has none.
    np.testing.assert_array_equal(adaptive_gaussian(black), np.zeros_like(black))


@pytest.mark.parametrize("fn", ALL_MASKS)
def test_16_bit_and_float_input_match_8_bit(drawing, rng, fn):
    img, _ = drawing
    noisy = jpeg_like(img, rng)
    ref = fn(noisy)
    np.testing.assert_array_equal(fn(noisy.astype(np.uint16) * 257), ref)
    np.testing.assert_array_equal(fn(noisy.astype(np.float32) / 255), ref)
    np.testing.assert_array_equal(fn(noisy.astype(np.float64) / 255), ref)


@pytest.mark.parametrize("fn", ALL_MASKS)
def test_one_pixel_images_are_valid(fn):
    assert fn(np.array([[255]], np.uint8)).tolist() == [[0]]
    dark = fn(np.array([[3]], np.uint8))
    assert dark.shape == (1, 1) and dark.dtype == np.uint8


@pytest.mark.parametrize("fn", ALL_MASKS)
def test_bad_inputs(fn):
    torch = pytest.importorskip("torch")
    with pytest.raises(InvalidImageError, match="numpy"):
        fn(torch.full((4, 4), 255, dtype=torch.uint8))
    with pytest.raises(InvalidImageError, match=r"\(H, W\)"):
        fn(np.full((4, 4, 3), 255, np.uint8))
    with pytest.raises(InvalidImageError, match="2 dimensions"):
        fn(np.full(4, 255, np.uint8))
    for dtype in (np.int32, np.bool_, object):
        with pytest.raises(InvalidImageError, match="pixel type"):
            fn(np.ones((4, 4), dtype))
    with pytest.raises(InvalidImageError, match="pixels"):
        fn(np.zeros((0, 4), np.uint8))
    with pytest.raises(InvalidImageError, match="NaN"):
        fn(np.array([[0.5, np.nan]]))
    with pytest.raises(InvalidImageError, match="numpy array"):
        fn([[255, 0]])
