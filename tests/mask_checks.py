"""Checks on the masks a restoration returns (tests/test_wild.py, tests/test_colour_wild.py)."""

from __future__ import annotations

import cv2
import numpy as np


def assert_lines_and_some_rim(mask: np.ndarray, lines: np.ndarray) -> None:
    """``mask`` is the line mask ``lines`` with part of its one-pixel rim (eq. 2 on a layer taken
    for resized keeps the rim pixels the mask network was unsure of): every line pixel, no pixel
    farther out, and not the whole rim."""
    widened = cv2.dilate(lines, np.ones((3, 3), np.uint8))
    assert (mask >= lines).all(), "a line pixel of the mask network was dropped"
    assert (mask <= widened).all(), "a pixel beyond the lines' rim was kept"
    assert lines.sum() < mask.sum() < widened.sum(), (lines.sum(), mask.sum(), widened.sum())
