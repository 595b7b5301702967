"""Paper equations 1-4 (core.equations) on small hand-computed arrays and tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core import DEFAULT_THETA, InvalidImageError, InvalidOptionError, compose, gt_mask, masked_mse, threshold

# ---------------------------------------------------------------------------------------------
# Eq. 1: threshold (pixels > theta become white, the others are kept)
# ---------------------------------------------------------------------------------------------


def test_default_theta_is_the_papers_251():
    assert DEFAULT_THETA == 251


def test_threshold_uint8_boundary():
    img = np.array([[0, 128, 250, 251], [252, 253, 254, 255]], np.uint8)
    out = threshold(img)
    np.testing.assert_array_equal(out, [[0, 128, 250, 251], [255, 255, 255, 255]])
    assert out.dtype == np.uint8 and out.shape == img.shape


def test_threshold_does_not_modify_its_input():
    img = np.array([[252, 10]], np.uint8)
    threshold(img)
    np.testing.assert_array_equal(img, [[252, 10]])


def test_threshold_uint16_uses_the_16_bit_scale():
    # theta 251 on the 8-bit scale is 251 * 257 = 64507 on the 16-bit scale.
    img = np.array([[0, 1000, 64506, 64507, 64508, 64764, 65535]], np.uint16)
    out = threshold(img)
    np.testing.assert_array_equal(out, [[0, 1000, 64506, 64507, 65535, 65535, 65535]])
    assert out.dtype == np.uint16


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threshold_float_numpy(dtype):
    img = np.array([[0.0, 0.5, 251 / 255, 252 / 255, 1.0]], dtype)
    out = threshold(img)
    expected = np.array([[0.0, 0.5, 251 / 255, 1.0, 1.0]], dtype)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_threshold_float_torch(dtype):
    img = torch.tensor([[[[0.0, 0.5, 251 / 255, 252 / 255, 1.0]]]], dtype=dtype)
    out = threshold(img)
    expected = torch.tensor([[[[0.0, 0.5, 251 / 255, 1.0, 1.0]]]], dtype=dtype)
    assert torch.equal(out, expected)
    assert out.dtype == dtype and out.shape == (1, 1, 1, 5)
    # The input tensor is untouched.
    assert img[0, 0, 0, 3].item() == pytest.approx(252 / 255)


def test_threshold_uint8_torch():
    img = torch.tensor([[250, 251, 252, 255]], dtype=torch.uint8)
    assert threshold(img).tolist() == [[250, 251, 255, 255]]


def test_threshold_custom_theta():
    img = np.array([[0, 1, 100, 200, 255]], np.uint8)
    np.testing.assert_array_equal(threshold(img, theta=100), [[0, 1, 100, 255, 255]])
    np.testing.assert_array_equal(threshold(img, theta=0), [[0, 255, 255, 255, 255]])
    np.testing.assert_array_equal(threshold(img, theta=255), img)


@pytest.mark.parametrize("theta", [-1, 256, 1000, float("nan")])
def test_threshold_theta_out_of_range(theta):
    with pytest.raises(InvalidOptionError, match="theta"):
        threshold(np.zeros((2, 2), np.uint8), theta)


@pytest.mark.parametrize("theta", ["251", None])
def test_threshold_theta_not_a_number(theta):
    with pytest.raises(InvalidOptionError, match="theta"):
        threshold(np.zeros((2, 2), np.uint8), theta)


# ---------------------------------------------------------------------------------------------
# Eq. 3: ground-truth mask (1 where the clean drawing is not pure white)
# ---------------------------------------------------------------------------------------------


def test_gt_mask_uint8():
    clean = np.array([[0, 128], [254, 255]], np.uint8)
    m = gt_mask(clean)
    np.testing.assert_array_equal(m, [[1, 1], [1, 0]])
    assert m.dtype == np.uint8


def test_gt_mask_uint16_and_float():
    np.testing.assert_array_equal(gt_mask(np.array([[0, 65534, 65535]], np.uint16)), [[1, 1, 0]])
    np.testing.assert_array_equal(gt_mask(np.array([[0.0, 254 / 255, 1.0]], np.float32)), [[1, 1, 0]])


def test_gt_mask_torch_keeps_dtype():
    clean = torch.tensor([[[[0.0, 0.999, 1.0]]]])
    m = gt_mask(clean)
    assert m.dtype == torch.float32
    assert m.tolist() == [[[[1.0, 1.0, 0.0]]]]
    m8 = gt_mask(torch.tensor([[254, 255]], dtype=torch.uint8))
    assert m8.dtype == torch.uint8 and m8.tolist() == [[1, 0]]


def test_gt_mask_of_a_drawing_marks_its_lines(drawing):
    img, lines = drawing
    np.testing.assert_array_equal(gt_mask(img), lines)


# ---------------------------------------------------------------------------------------------
# Eq. 2: compose = max(I, white - white * M)
# ---------------------------------------------------------------------------------------------


def test_compose_uint8_hand_values():
    restored = np.array([[10, 200], [250, 0]], np.uint8)
    mask = np.array([[1, 0], [0, 1]], np.uint8)
    out = compose(restored, mask)
    np.testing.assert_array_equal(out, [[10, 255], [255, 0]])
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(restored, [[10, 200], [250, 0]])  # input untouched


@pytest.mark.parametrize("mask_dtype", [np.uint8, np.bool_, np.float32, np.int64])
def test_compose_accepts_any_numeric_0_1_mask(mask_dtype):
    restored = np.array([[3, 4, 5]], np.uint8)
    mask = np.array([[1, 0, 1]]).astype(mask_dtype)
    np.testing.assert_array_equal(compose(restored, mask), [[3, 255, 5]])


@pytest.mark.parametrize(
    ("dtype", "white"), [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0), (np.float64, 1.0)]
)
def test_compose_equals_the_papers_max_formula(rng, dtype, white):
    if np.issubdtype(dtype, np.integer):
        restored = rng.integers(0, white + 1, size=(9, 13)).astype(dtype)
    else:
        restored = rng.random((9, 13)).astype(dtype)
    mask = (rng.random((9, 13)) < 0.3).astype(np.uint8)
    expected = np.maximum(restored.astype(np.float64), white - white * mask.astype(np.float64))
    out = compose(restored, mask)
    assert out.dtype == dtype and out.shape == restored.shape
    np.testing.assert_array_equal(out.astype(np.float64), expected)


def test_compose_torch_batch_and_gradient():
    restored = torch.tensor([[[[0.2, 0.9], [0.4, 0.7]]], [[[0.1, 0.3], [0.5, 0.6]]]], requires_grad=True)
    mask = torch.tensor([[[[1, 0], [0, 1]]], [[[0, 0], [1, 1]]]], dtype=torch.float32)
    out = compose(restored, mask)
    expected = torch.maximum(restored.detach(), 1.0 - mask)
    assert out.shape == (2, 1, 2, 2)
    assert torch.equal(out.detach(), expected)
    out.sum().backward()
    # Gradients flow only through line pixels; the forced-white background is a constant.
    assert torch.equal(restored.grad, mask)


def test_compose_rejects_a_mask_that_is_not_0_1():
    with pytest.raises(InvalidImageError, match="0 .*1"):
        compose(np.zeros((2, 2), np.uint8), np.array([[0, 2], [1, 0]]))
    with pytest.raises(InvalidImageError, match="0 .*1"):
        compose(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5))


def test_compose_rejects_a_mask_of_another_size():
    with pytest.raises(InvalidImageError, match=r"(?=.*\(2, 2\))(?=.*\(2, 3\))"):
        compose(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))


def test_compose_rejects_mixed_numpy_and_torch():
    with pytest.raises(InvalidImageError, match="numpy|torch"):
        compose(np.zeros((2, 2), np.uint8), torch.zeros(2, 2))
    with pytest.raises(InvalidImageError, match="numpy|torch"):
        compose(torch.zeros(2, 2), np.zeros((2, 2)))


def test_compose_output_keeps_the_image_shape():
    # A mask with more leading dimensions than the image must not enlarge the result.
    with pytest.raises(InvalidImageError, match="shape|size"):
        compose(np.zeros((2, 2), np.uint8), np.ones((1, 1, 2, 2), np.uint8))
    with pytest.raises(InvalidImageError, match="shape|size"):
        compose(torch.zeros(2, 1, 2, 2), torch.ones(3, 1, 2, 2))


# ---------------------------------------------------------------------------------------------
# Eq. 4: masked MSE = sum(((pred - target) * M)^2) / sum(M)
# ---------------------------------------------------------------------------------------------

PRED = [[0.0, 0.5], [1.0, 0.25]]
TARGET = [[0.5, 0.5], [0.0, 1.0]]
MASK = [[1, 1], [0, 1]]
# Line pixels: (0 - 0.5)^2 + 0^2 + (0.25 - 1)^2 = 0.25 + 0.5625 over 3 pixels.
EXPECTED_MSE = 0.8125 / 3


def test_masked_mse_numpy_hand_value():
    loss = masked_mse(np.array(PRED), np.array(TARGET), np.array(MASK, np.uint8))
    assert isinstance(loss, float)
    assert loss == pytest.approx(EXPECTED_MSE, rel=1e-12)


def test_masked_mse_torch_hand_value_and_gradient():
    pred = torch.tensor([[PRED]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([[TARGET]], dtype=torch.float64)
    mask = torch.tensor([[MASK]], dtype=torch.float64)
    loss = masked_mse(pred, target, mask)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(EXPECTED_MSE, rel=1e-12)
    loss.backward()
    # d/dpred = 2 (pred - target) M / sum(M)
    expected_grad = 2 * (pred.detach() - target) * mask / 3
    torch.testing.assert_close(pred.grad, expected_grad, rtol=0, atol=1e-15)


def test_masked_mse_ignores_background_errors():
    pred = np.array([[0.0, 1.0]])
    target = np.array([[0.0, 0.0]])
    assert masked_mse(pred, target, np.array([[1, 0]])) == 0.0
    assert masked_mse(pred, target, np.array([[1, 1]])) == pytest.approx(0.5)


def test_masked_mse_empty_mask_is_zero_and_differentiable():
    assert masked_mse(np.ones((3, 3)), np.zeros((3, 3)), np.zeros((3, 3), np.uint8)) == 0.0
    pred = torch.rand(2, 1, 3, 3, requires_grad=True)
    loss = masked_mse(pred, torch.zeros(2, 1, 3, 3), torch.zeros(2, 1, 3, 3))
    assert loss.item() == 0.0
    loss.backward()
    assert pred.grad is not None
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def test_masked_mse_broadcasts_a_one_channel_mask():
    # pred (1, 2, 2, 2) vs a (1, 1, 2, 2) mask with one line pixel: the mask covers both channels.
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0] = 1.0
    target[0, 1] = 3.0
    mask = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]])
    loss = masked_mse(pred, target, mask)
    assert loss.item() == pytest.approx((1.0 + 9.0) / 2)
    # Same as repeating the mask explicitly, and the numpy path agrees.
    assert loss.item() == pytest.approx(masked_mse(pred, target, mask.expand(1, 2, 2, 2)).item())
    assert masked_mse(pred.numpy(), target.numpy(), mask.numpy()) == pytest.approx(loss.item())


def test_masked_mse_batch_of_masks():
    pred = torch.zeros(2, 1, 1, 2)
    target = torch.ones(2, 1, 1, 2)
    mask = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 1.0]]]])
    assert masked_mse(pred, target, mask).item() == pytest.approx(1.0)


def test_masked_mse_rejects_mismatched_shapes():
    with pytest.raises(InvalidImageError, match="pred"):
        masked_mse(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3), torch.ones(1, 1, 2, 2))
    with pytest.raises(InvalidImageError, match="mask"):
        masked_mse(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 3, 2))
    with pytest.raises(InvalidImageError, match="differ"):
        masked_mse(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 2), torch.ones(1, 1, 2, 2))


def test_masked_mse_rejects_a_mask_batch_that_does_not_broadcast():
    with pytest.raises(InvalidImageError, match="shape|size"):
        masked_mse(torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2), torch.ones(3, 1, 2, 2))


def test_masked_mse_rejects_mixed_types_and_non_arrays():
    with pytest.raises(InvalidImageError, match="torch"):
        masked_mse(torch.zeros(1, 1, 2, 2), np.zeros((1, 1, 2, 2)), torch.ones(1, 1, 2, 2))
    with pytest.raises(InvalidImageError, match="numpy|torch"):
        masked_mse([[0.0]], [[0.0]], [[1]])


def test_masked_mse_rejects_a_mask_that_is_not_0_1():
    with pytest.raises(InvalidImageError, match="0 .*1"):
        masked_mse(np.zeros((2, 2)), np.ones((2, 2)), np.full((2, 2), 2))
    with pytest.raises(InvalidImageError, match="0 .*1"):
        masked_mse(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2), torch.full((1, 1, 2, 2), 2.0))


# ---------------------------------------------------------------------------------------------
# Properties over many small random inputs
# ---------------------------------------------------------------------------------------------

small_uint8 = arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 6)))


@settings(max_examples=60, deadline=None)
@given(img=small_uint8, theta=st.integers(0, 255))
def test_threshold_properties(img, theta):
    out = threshold(img, theta)
    np.testing.assert_array_equal(out, np.where(img > theta, 255, img))
    np.testing.assert_array_equal(threshold(out, theta), out)  # idempotent
    # The 16-bit image of the same picture thresholds to the same picture.
    np.testing.assert_array_equal(threshold(img.astype(np.uint16) * 257, theta), out.astype(np.uint16) * 257)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_compose_and_gt_mask_properties(data):
    img = data.draw(small_uint8)
    mask = data.draw(arrays(np.uint8, img.shape, elements=st.integers(0, 1)))
    out = compose(img, mask)
    np.testing.assert_array_equal(out, np.maximum(img, 255 - 255 * mask.astype(np.int64)))
    # Lines of the composed image lie inside the mask, so composing again changes nothing.
    assert np.all(gt_mask(out) <= mask)
    np.testing.assert_array_equal(compose(out, mask), out)
    # With the drawing's own ground-truth mask, compose gives the drawing back.
    np.testing.assert_array_equal(compose(img, gt_mask(img)), img)
