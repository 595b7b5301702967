"""A coloured layer through the real WebSocket server (loopback) comes back in its colours, byte for
byte what the pipeline gives, in the RGBA order the client sent (rgba8) and in Krita's (bgra8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.pipeline import RestoreOptions, Restorer
from server import client
from server.app import serve_in_thread
from tests.colour_checks import hue, hue_distance
from training.colour import INKS, in_ink, jpeg_rgb

CROP = Path(__file__).parent / "data" / "val_crop_empty_tomb.png"


@pytest.fixture(scope="module")
def restorer() -> Restorer:
    return Restorer.default(device="cpu")


@pytest.fixture(scope="module")
def server(restorer):
    with serve_in_thread(restorer) as srv:
        yield srv


@pytest.fixture(scope="module")
def layer() -> tuple[np.ndarray, np.ndarray]:
    """(gray drawing, its brown RGB JPEG with an opaque alpha channel)."""
    gray = np.asarray(Image.open(CROP).convert("L"))
    rgb = jpeg_rgb(in_ink(gray, INKS["brown"]), 30)
    return gray, np.dstack([rgb, np.full(gray.shape, 255, np.uint8)])


@pytest.mark.parametrize("background", ["white", "transparent"])
def test_rgba8_round_trip_keeps_the_colours(server, restorer, layer, background):
    gray, rgba = layer
    h, w = gray.shape
    res = client.restore(server.url, rgba.tobytes(), w, h, "rgba8", {"background": background}, timeout=120)
    want = restorer.restore(rgba, RestoreOptions(background=background))
    assert res.format == "rgba8"
    got = np.frombuffer(res.data, np.uint8).reshape(h, w, 4)
    np.testing.assert_array_equal(got, want.image)
    assert res.notes == want.notes and not any("gray" in n for n in res.notes)
    solid = gray < 64
    assert hue_distance(hue(got[solid][:, :3].mean(axis=0)), hue(INKS["brown"])) < 8
    paper = np.frombuffer(res.mask, np.uint8).reshape(h, w) == 0
    if background == "white":
        assert (got[paper] == 255).all()
    else:
        assert (got[paper, 3] == 0).all()


def test_bgra8_round_trip_is_krita_order(server, restorer, layer):
    gray, rgba = layer
    h, w = gray.shape
    bgra = np.ascontiguousarray(rgba[..., [2, 1, 0, 3]])
    res = client.restore(server.url, bgra.tobytes(), w, h, "bgra8", {}, timeout=120)
    want = restorer.restore(rgba, RestoreOptions()).image
    assert res.format == "bgra8"
    np.testing.assert_array_equal(np.frombuffer(res.data, np.uint8).reshape(h, w, 4), want[..., [2, 1, 0, 3]])
