"""Shared pytest set-up for the lineart-restore tests.

* torch is never imported here: some test modules (the wire protocol, the exports check) must be
  able to run with torch absent or blocked. When a test module has imported torch, every test runs
  with one intra-op thread, because the CI machine has few cores shared with other jobs.
* ``drawing`` is a small synthetic line drawing whose line pixels are known exactly.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


#: Gray levels used by :func:`make_drawing`.
LINE_BLACK = 0
LINE_GRAY = 40


def make_drawing(height: int = 24, width: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A clean uint8 drawing (white = 255) and its exact line mask (uint8, 1 on lines).

    Lines: a black horizontal stroke (row 6, columns 3..width-4), a 2-pixel-wide gray vertical
    stroke (columns 20-21, rows 3..height-4) and a single black dot at (height-5, 5). The image
    needs ``height >= 12`` and ``width >= 26``.
    """
    if height < 12 or width < 26:
        raise ValueError("make_drawing needs at least 12 x 26 pixels")
    img = np.full((height, width), 255, np.uint8)
    img[6, 3 : width - 3] = LINE_BLACK
    img[3 : height - 3, 20:22] = LINE_GRAY
    img[height - 5, 5] = LINE_BLACK
    return img, (img < 255).astype(np.uint8)


@pytest.fixture
def drawing() -> tuple[np.ndarray, np.ndarray]:
    """``(image, mask)`` from :func:`make_drawing` at its default 24 x 32 size."""
    return make_drawing()


@pytest.fixture
def drawing_factory():
    """:func:`make_drawing` itself, for tests that need another size."""
    return make_drawing


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so that every "random" test input is the same on every run."""
    return np.random.default_rng(20240611)
