"""lineart-restore core: masked restoration of JPEG-damaged line drawings.

Importing ``core`` is cheap (numpy and OpenCV only); the networks and the restore pipeline import
torch when first used.
"""

from .equations import DEFAULT_THETA, compose, gt_mask, masked_mse, threshold
from .errors import (
    CancelledError,
    InvalidImageError,
    InvalidOptionError,
    OutOfMemoryError,
    RestoreError,
    UnsupportedModelError,
    WeightsError,
)
from .masks import DIRECT_MASKS, adaptive_gaussian, otsu, otsu_dilated
from .metrics import BOUNDARY_TOLERANCE, boundary_fscore, miou, psnr, ssim

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_THETA",
    "threshold",
    "gt_mask",
    "compose",
    "masked_mse",
    "otsu",
    "otsu_dilated",
    "adaptive_gaussian",
    "DIRECT_MASKS",
    "psnr",
    "ssim",
    "miou",
    "boundary_fscore",
    "BOUNDARY_TOLERANCE",
    "RestoreError",
    "InvalidImageError",
    "InvalidOptionError",
    "WeightsError",
    "UnsupportedModelError",
    "OutOfMemoryError",
    "CancelledError",
    "__version__",
]
