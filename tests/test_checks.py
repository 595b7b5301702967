"""Input validation (core.checks) and how every public image function treats bad input.

Decisions asserted here:

* Valid images: numpy or torch, dtype uint8 / uint16 / any float, at least 2 dimensions, every
  side >= 1 pixel (a 1x1 image is valid), no NaN or inf in float images.
* Valid masks: same rules for shape, any numeric dtype (bool included), values exactly 0 or 1.
* Anything else raises :class:`core.InvalidImageError` (a ``ValueError`` and a ``RestoreError``
  with code ``"invalid_image"``) whose message names the problem.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import (
    InvalidImageError,
    RestoreError,
    adaptive_gaussian,
    compose,
    gt_mask,
    otsu,
    otsu_dilated,
    psnr,
    ssim,
    threshold,
)
from core.checks import check_broadcast, check_image, check_mask, check_same_shape, is_torch, white_level

# ---------------------------------------------------------------------------------------------
# The helpers themselves
# ---------------------------------------------------------------------------------------------


def test_is_torch():
    assert is_torch(torch.zeros(1))
    assert not is_torch(np.zeros(1))
    assert not is_torch([0.0])
    assert not is_torch(None)


@pytest.mark.parametrize(
    ("x", "white"),
    [
        (np.zeros(1, np.uint8), 255),
        (np.zeros(1, np.uint16), 65535),
        (np.zeros(1, np.float16), 1.0),
        (np.zeros(1, np.float32), 1.0),
        (np.zeros(1, np.float64), 1.0),
        (torch.zeros(1, dtype=torch.uint8), 255),
        (torch.zeros(1, dtype=torch.float32), 1.0),
        (torch.zeros(1, dtype=torch.float16), 1.0),
        (torch.zeros(1, dtype=torch.bfloat16), 1.0),
    ],
)
def test_white_level(x, white):
    assert white_level(x) == white


@pytest.mark.parametrize(
    "x",
    [
        np.zeros(1, np.int32),
        np.zeros(1, np.int64),
        np.zeros(1, np.int8),
        np.zeros(1, np.bool_),
        np.zeros(1, object),
        np.zeros(1, np.complex64),
        torch.zeros(1, dtype=torch.int32),
        torch.zeros(1, dtype=torch.bool),
    ],
    ids=lambda x: str(x.dtype),
)
def test_white_level_rejects_other_dtypes(x):
    with pytest.raises(InvalidImageError, match="unsupported pixel type .*uint8.*uint16.*float"):
        white_level(x)


def test_check_image_returns_its_input_unchanged():
    a = np.zeros((3, 4), np.uint8)
    assert check_image(a) is a
    t = torch.zeros(1, 1, 3, 4)
    assert check_image(t) is t


def test_check_image_min_size_and_name():
    with pytest.raises(InvalidImageError, match=r"^tile is 3x2 pixels; at least 4x4 is needed$"):
        check_image(np.zeros((2, 3), np.uint8), "tile", min_size=4)
    check_image(np.zeros((4, 4), np.uint8), min_size=4)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_image_rejects_non_finite(bad):
    a = np.zeros((2, 2), np.float32)
    a[1, 1] = bad
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        check_image(a)
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        check_image(torch.from_numpy(a))


def test_check_same_shape_compares_only_height_and_width():
    check_same_shape(np.zeros((1, 1, 3, 4)), np.zeros((3, 4)))
    with pytest.raises(InvalidImageError, match=r"pred is \(3, 4\) but target is \(4, 3\)"):
        check_same_shape(np.zeros((3, 4)), np.zeros((4, 3)), ("pred", "target"))


@pytest.mark.parametrize("dtype", [np.uint8, np.bool_, np.int32, np.int64, np.float32, np.float64])
def test_check_mask_accepts_numeric_0_1(dtype):
    m = np.array([[0, 1], [1, 0]]).astype(dtype)
    assert check_mask(m) is m
    t = torch.tensor([[0, 1], [1, 0]], dtype=torch.float32)
    assert check_mask(t, like=torch.zeros(1, 1, 2, 2)) is t


@pytest.mark.parametrize("values", [[[0, 2]], [[0, -1]], [[0.0, 0.5]], [[0.0, np.nan]], [[255, 0]]])
def test_check_mask_rejects_values_other_than_0_1(values):
    with pytest.raises(InvalidImageError, match=r"seg must hold only 0 \(background\) and 1 \(line\)"):
        check_mask(np.array(values), name="seg")


def test_check_mask_rejects_bad_containers_and_shapes():
    with pytest.raises(InvalidImageError, match="numpy array or torch tensor, got list"):
        check_mask([[0, 1]])
    with pytest.raises(InvalidImageError, match="at least 2 dimensions"):
        check_mask(np.zeros(3))
    with pytest.raises(InvalidImageError, match="same size"):
        check_mask(np.zeros((2, 3)), like=np.zeros((3, 2)))


def test_check_mask_rejects_empty_masks():
    with pytest.raises(InvalidImageError, match="pixels"):
        check_mask(np.zeros((0, 4), np.uint8))
    with pytest.raises(InvalidImageError, match="pixels"):
        check_mask(torch.zeros(1, 1, 4, 0))


def test_check_broadcast():
    # A mask may have fewer leading dimensions (or size-1 ones) than the image ...
    check_broadcast(np.zeros((2, 1, 3, 4)), np.zeros((3, 4)))
    check_broadcast(torch.zeros(2, 3, 3, 4), torch.zeros(2, 1, 3, 4))
    check_broadcast(torch.zeros(2, 1, 3, 4), torch.zeros(1, 1, 3, 4))
    # ... but must never enlarge it, nor disagree with it.
    with pytest.raises(InvalidImageError, match=r"mask of shape \(1, 1, 3, 4\) does not fit image of shape \(3, 4\)"):
        check_broadcast(np.zeros((3, 4)), np.zeros((1, 1, 3, 4)))
    with pytest.raises(InvalidImageError, match="does not fit"):
        check_broadcast(torch.zeros(2, 1, 3, 4), torch.zeros(3, 1, 3, 4))
    with pytest.raises(InvalidImageError, match="does not fit"):
        check_broadcast(np.zeros((3, 4)), np.zeros((4, 3)))
    with pytest.raises(InvalidImageError, match="both be numpy arrays or both torch tensors"):
        check_broadcast(np.zeros((3, 4)), torch.zeros(3, 4))


def test_invalid_image_error_is_a_value_error_with_a_stable_code():
    with pytest.raises(ValueError) as info:
        check_image(np.zeros(3, np.uint8))
    assert isinstance(info.value, RestoreError)
    assert info.value.code == "invalid_image"


# ---------------------------------------------------------------------------------------------
# Every public function that takes an image applies the same rules
# ---------------------------------------------------------------------------------------------

IMAGE_FUNCTIONS = {
    "threshold": threshold,
    "gt_mask": gt_mask,
    "compose": lambda img: compose(img, np.ones(img.shape[-2:], np.uint8) if isinstance(img, np.ndarray) else [[1]]),
    "otsu": otsu,
    "otsu_dilated": otsu_dilated,
    "adaptive_gaussian": adaptive_gaussian,
    "psnr": lambda img: psnr(img, img),
    "ssim": lambda img: ssim(img, img),
}

BAD_IMAGES = {
    "int32": (np.zeros((3, 3), np.int32), "pixel type int32"),
    "int64": (np.zeros((3, 3), np.int64), "pixel type int64"),
    "bool": (np.zeros((3, 3), np.bool_), "pixel type bool"),
    "object": (np.zeros((3, 3), object), "pixel type object"),
    "complex": (np.zeros((3, 3), np.complex128), "pixel type complex128"),
    "0-d": (np.array(255, np.uint8), "at least 2 dimensions"),
    "1-d": (np.zeros(3, np.uint8), "at least 2 dimensions"),
    "0 rows": (np.zeros((0, 3), np.uint8), "3x0 pixels"),
    "0 columns": (np.zeros((3, 0), np.uint8), "0x3 pixels"),
    "NaN": (np.array([[0.5, np.nan], [0.0, 1.0]]), "NaN"),
    "inf": (np.array([[0.5, np.inf], [0.0, 1.0]], np.float32), "infinite"),
    "list": ([[0, 255], [255, 0]], "numpy array or torch tensor, got list"),
    "None": (None, "numpy array or torch tensor, got NoneType"),
}


@pytest.mark.parametrize("bad", list(BAD_IMAGES), ids=list(BAD_IMAGES))
@pytest.mark.parametrize("fn_name", list(IMAGE_FUNCTIONS))
def test_public_functions_reject_bad_images(fn_name, bad):
    img, message = BAD_IMAGES[bad]
    with pytest.raises(InvalidImageError, match=message):
        IMAGE_FUNCTIONS[fn_name](img)


@pytest.mark.parametrize(
    "img",
    [
        np.array([[200]], np.uint8),
        np.array([[60000]], np.uint16),
        np.array([[0.5]], np.float16),
        np.array([[0.5]], np.float32),
        np.array([[0.5]], np.float64),
    ],
    ids=lambda a: str(a.dtype),
)
@pytest.mark.parametrize("fn_name", list(IMAGE_FUNCTIONS))
def test_public_functions_accept_one_pixel_images_of_every_dtype(fn_name, img):
    IMAGE_FUNCTIONS[fn_name](img)


@pytest.mark.parametrize("fn", [threshold, gt_mask], ids=["threshold", "gt_mask"])
def test_torch_functions_reject_bad_tensors(fn):
    with pytest.raises(InvalidImageError, match="pixel type int64"):
        fn(torch.zeros(1, 1, 3, 3, dtype=torch.int64))
    with pytest.raises(InvalidImageError, match="NaN"):
        fn(torch.full((1, 1, 2, 2), float("nan")))
    with pytest.raises(InvalidImageError, match="0x2 pixels"):
        fn(torch.zeros(1, 1, 2, 0))
