"""Quality metrics (core.metrics): PSNR, SSIM, mIoU and boundary F-score."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import BOUNDARY_TOLERANCE, InvalidImageError, InvalidOptionError, boundary_fscore, miou, psnr, ssim

# ---------------------------------------------------------------------------------------------
# PSNR
# ---------------------------------------------------------------------------------------------

# A 2x2 white image against one with a single pixel 10 levels darker: MSE = 100 / 4 = 25,
# PSNR = 10 log10(255^2 / 25) = 10 log10(2601).
PSNR_HAND = 10 * math.log10(2601)


def test_psnr_hand_value_uint8():
    a = np.full((2, 2), 255, np.uint8)
    b = a.copy()
    b[1, 0] = 245
    assert PSNR_HAND == pytest.approx(34.1514, abs=1e-4)
    assert psnr(a, b) == pytest.approx(PSNR_HAND, rel=1e-12)
    assert psnr(b, a) == pytest.approx(PSNR_HAND, rel=1e-12)


def test_psnr_uses_the_dtype_white_level():
    # The same picture on the 16-bit and float scales gives the same PSNR.
    a16 = np.full((2, 2), 65535, np.uint16)
    b16 = a16.copy()
    b16[1, 0] = 65535 - 10 * 257
    assert psnr(a16, b16) == pytest.approx(PSNR_HAND, rel=1e-12)
    af = np.ones((2, 2), np.float64)
    bf = af.copy()
    bf[1, 0] = 1 - 10 / 255
    assert psnr(af, bf) == pytest.approx(PSNR_HAND, rel=1e-9)


def test_psnr_identical_is_infinite(rng):
    a = rng.integers(0, 256, size=(5, 7)).astype(np.uint8)
    assert psnr(a, a.copy()) == math.inf


def test_psnr_does_not_overflow_uint8():
    # 0 vs 255 everywhere: MSE = 255^2, PSNR = 0 dB (a wrap-around in uint8 would give 1^2).
    assert psnr(np.zeros((3, 3), np.uint8), np.full((3, 3), 255, np.uint8)) == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# SSIM
# ---------------------------------------------------------------------------------------------


def reference_ssim(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """Straightforward SSIM: for every 11x11 window fully inside the image, Gaussian-weighted
    (sigma 1.5) means, variances and covariance; K1 = 0.01, K2 = 0.03; mean of the SSIM map."""
    r = np.arange(11) - 5
    g = np.exp(-(r**2) / (2 * 1.5**2))
    w = np.outer(g, g)
    w /= w.sum()
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx = (w * (px - mx) ** 2).sum()
            vy = (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            values.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


@pytest.mark.parametrize("shape", [(11, 11), (16, 23), (30, 17)])
def test_ssim_matches_reference_uint8(rng, shape):
    a = rng.integers(0, 256, size=shape).astype(np.uint8)
    b = np.clip(a.astype(np.int32) + rng.integers(-40, 41, size=shape), 0, 255).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(reference_ssim(a, b, 255.0), rel=1e-9, abs=1e-12)


def test_ssim_matches_reference_float_and_uint16(rng):
    a = rng.random((14, 19))
    b = np.clip(a + rng.normal(0, 0.1, size=a.shape), 0, 1)
    assert ssim(a, b) == pytest.approx(reference_ssim(a, b, 1.0), rel=1e-9, abs=1e-12)
    a16 = (a * 65535).astype(np.uint16)
    b16 = (b * 65535).astype(np.uint16)
    assert ssim(a16, b16) == pytest.approx(reference_ssim(a16, b16, 65535.0), rel=1e-9, abs=1e-12)


def test_ssim_identical_is_one(rng, drawing):
    a = rng.integers(0, 256, size=(20, 20)).astype(np.uint8)
    assert ssim(a, a.copy()) == pytest.approx(1.0, abs=1e-12)
    img, _ = drawing
    assert ssim(img, img.copy()) == pytest.approx(1.0, abs=1e-12)


def test_ssim_small_images_are_valid():
    # Below 11 px no full window fits; the whole (padded) map is used and identical is still 1.
    a = np.array([[10, 200, 30], [40, 50, 255]], np.uint8)
    assert ssim(a, a.copy()) == pytest.approx(1.0, abs=1e-12)
    assert ssim(np.array([[7]], np.uint8), np.array([[7]], np.uint8)) == pytest.approx(1.0, abs=1e-12)
    assert ssim(np.array([[0]], np.uint8), np.array([[255]], np.uint8)) < 0.1


def test_ssim_is_symmetric_and_drops_with_noise(drawing, rng):
    img, _ = drawing
    previous = 1.0
    for sigma in (4, 12, 30, 60):
        noisy = np.clip(img + rng.normal(0, sigma, size=img.shape), 0, 255).astype(np.uint8)
        value = ssim(img, noisy)
        assert value == pytest.approx(ssim(noisy, img), rel=1e-12)
        assert value < previous
        previous = value
    assert previous < 0.7


def test_ssim_rejects_non_2d():
    with pytest.raises(InvalidImageError, match="2-D"):
        ssim(np.zeros((12, 12, 3), np.uint8), np.zeros((12, 12, 3), np.uint8))


# ---------------------------------------------------------------------------------------------
# mIoU
# ---------------------------------------------------------------------------------------------


def test_miou_hand_value_4x4():
    pred = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.uint8)
    gt = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.uint8)
    # line: intersection 4, union 5 -> 0.8; background: intersection 11, union 12 -> 11/12.
    expected = (4 / 5 + 11 / 12) / 2
    assert miou(pred, gt) == pytest.approx(expected, rel=1e-12)
    assert miou(gt, pred) == pytest.approx(expected, rel=1e-12)


def test_miou_extremes(drawing):
    _, lines = drawing
    assert miou(lines, lines.copy()) == 1.0
    assert miou(lines, 1 - lines) == 0.0
    blank = np.zeros((4, 4), np.uint8)
    assert miou(blank, blank.copy()) == 1.0  # the absent line class counts as IoU 1
    assert miou(np.ones((4, 4), np.uint8), np.ones((4, 4), np.uint8)) == 1.0


def test_miou_accepts_bool_and_integer_masks():
    pred = np.array([[True, False], [False, False]])
    gt = np.array([[1, 0], [0, 1]], np.int64)
    # line 1/2, background 2/3
    assert miou(pred, gt) == pytest.approx((1 / 2 + 2 / 3) / 2)


# ---------------------------------------------------------------------------------------------
# Boundary F-score
# ---------------------------------------------------------------------------------------------


def bar(shift: int = 0, size: int = 24) -> np.ndarray:
    """A 3-pixel-wide vertical bar at columns 8+shift .. 10+shift, rows 4..19."""
    m = np.zeros((size, size), np.uint8)
    m[4:20, 8 + shift : 11 + shift] = 1
    return m


def test_default_tolerance():
    assert BOUNDARY_TOLERANCE == 2


def test_boundary_fscore_identical(drawing):
    _, lines = drawing
    assert boundary_fscore(lines, lines.copy()) == 1.0
    assert boundary_fscore(bar(), bar()) == 1.0


@pytest.mark.parametrize("shift", [1, -1, 2])
def test_boundary_fscore_small_shift_within_tolerance(shift):
    assert boundary_fscore(bar(shift), bar()) == 1.0


def test_boundary_fscore_large_shift_is_low():
    # 5 px apart: columns 8-10 against 13-15, so no boundary pixel is within 2 px of the other.
    value = boundary_fscore(bar(5), bar())
    assert value == 0.0
    assert boundary_fscore(bar(), bar(5)) == 0.0
    # 3 px apart (columns 8-10 against 11-13): the inner edges match, the outer ones (8, 13) do not.
    assert 0.3 < boundary_fscore(bar(3), bar()) < 0.7


def test_boundary_fscore_tolerance_zero_needs_exact_edges():
    assert boundary_fscore(bar(), bar(), tolerance=0) == 1.0
    assert boundary_fscore(bar(1), bar(), tolerance=0) < 1.0


def test_boundary_fscore_empty_cases():
    empty = np.zeros((8, 8), np.uint8)
    assert boundary_fscore(empty, empty.copy()) == 1.0
    dot = empty.copy()
    dot[3, 3] = 1
    assert boundary_fscore(dot, empty) == 0.0
    assert boundary_fscore(empty, dot) == 0.0


@pytest.mark.parametrize("tolerance", [-1, 1.5, "2", None])
def test_boundary_fscore_rejects_bad_tolerance(tolerance):
    with pytest.raises(InvalidOptionError, match="tolerance"):
        boundary_fscore(bar(), bar(1), tolerance=tolerance)


# ---------------------------------------------------------------------------------------------
# Bad input shared by the metrics
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [psnr, ssim])
def test_image_metrics_reject_bad_pairs(fn):
    torch = pytest.importorskip("torch")
    a = np.zeros((12, 12), np.uint8)
    with pytest.raises(InvalidImageError, match="shape"):
        fn(a, np.zeros((12, 13), np.uint8))
    with pytest.raises(InvalidImageError, match="dtype"):
        fn(a, a.astype(np.uint16))
    with pytest.raises(InvalidImageError, match="numpy"):
        fn(torch.zeros(12, 12), torch.zeros(12, 12))
    with pytest.raises(InvalidImageError, match="NaN"):
        fn(np.full((12, 12), np.nan), np.zeros((12, 12)))
    with pytest.raises(InvalidImageError, match="pixel type"):
        fn(a.astype(np.int32), a.astype(np.int32))
    with pytest.raises(InvalidImageError, match="pixels"):
        fn(np.zeros((0, 12), np.uint8), np.zeros((0, 12), np.uint8))


@pytest.mark.parametrize("fn", [miou, boundary_fscore])
def test_mask_metrics_reject_bad_masks(fn):
    torch = pytest.importorskip("torch")
    m = np.zeros((6, 6), np.uint8)
    with pytest.raises(InvalidImageError, match=r"0 .*1"):
        fn(np.full((6, 6), 2, np.uint8), m)
    with pytest.raises(InvalidImageError, match=r"0 .*1"):
        fn(m, np.full((6, 6), 0.5))
    with pytest.raises(InvalidImageError, match=r"0 .*1"):
        fn(np.full((6, 6), np.nan), m)
    with pytest.raises(InvalidImageError, match="same size"):
        fn(m, np.zeros((6, 7), np.uint8))
    with pytest.raises(InvalidImageError, match="2 dimensions"):
        fn(np.zeros(6, np.uint8), np.zeros(6, np.uint8))
    with pytest.raises(InvalidImageError, match="numpy"):
        fn(torch.zeros(6, 6), torch.zeros(6, 6))


@pytest.mark.parametrize("fn", [miou, boundary_fscore])
def test_mask_metrics_reject_empty_masks(fn):
    empty = np.zeros((0, 5), np.uint8)
    with pytest.raises(InvalidImageError, match="pixels"):
        fn(empty, empty)


@pytest.mark.parametrize("fn", [psnr, ssim, miou, boundary_fscore])
def test_one_pixel_inputs_are_valid(fn):
    one = np.array([[1]], np.uint8)
    value = fn(one, one.copy())
    assert value == 1.0 or (fn is psnr and value == math.inf)
