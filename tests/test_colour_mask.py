"""The optional colour-only mask network (``core/models/mask_colour.safetensors``, role
``mask_colour``): used for coloured layers only, gray and neutral layers untouched bit for bit, and
chosen or turned off like the other model files (``--mask-colour-model FILE|none``).

``mask_default.safetensors`` stands in for a colour mask here: a real mask network that differs
from the default one, so a test can tell which of the two masked a layer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import pipeline
from core.cli import main as core_main
from core.errors import WeightsError
from core.pipeline import DEFAULT_FILES, MODELS_DIR, RestoreOptions, Restorer, colour_mask_path
from tests.colour_checks import GRAY_LAYOUTS, gray_layer
from training.colour import coloured_crop, jpeg_rgb

CROP = Path(__file__).parent / "data" / "val_crop_empty_tomb.png"
STAND_IN = MODELS_DIR / "mask_default.safetensors"
FILES = {role: MODELS_DIR / DEFAULT_FILES[role] for role in ("mask", "restore", "baseline")}


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    return np.asarray(Image.open(CROP).convert("L"))[:160, :160].copy()


@pytest.fixture(scope="module")
def plain() -> Restorer:
    return Restorer.from_files(**FILES, device="cpu")


@pytest.fixture(scope="module")
def with_colour() -> Restorer:
    return Restorer.from_files(**FILES, mask_colour=STAND_IN, device="cpu")


def test_colour_layers_use_the_colour_mask(gray, plain, with_colour, monkeypatch):
    """A coloured layer is masked by the colour mask network, on the full line plane (the plane it
    was trained on: NetworkPlanes.mask_input(colour_mask=True)), not on the gray mask's plane."""
    rgb = jpeg_rgb(coloured_crop(gray, 1), 20)
    opts = RestoreOptions(return_mask=True)
    with_colour.restore(rgb, opts)  # first use: the tile-cost probes run here
    seen = []
    real = Restorer._mask_logit_diff

    def spy(self, r, x, *a, **k):
        seen.append((r, x.clone()))
        return real(self, r, x, *a, **k)

    monkeypatch.setattr(Restorer, "_mask_logit_diff", spy)
    got = with_colour.restore(rgb, opts)
    planes = pipeline.network_planes(rgb)
    assert len(seen) == 1 and seen[0][0] is with_colour._runners["mask_colour"]
    assert torch.equal(seen[0][1], planes.mask_input(colour_mask=True)) and torch.equal(seen[0][1], planes.x)
    assert not torch.equal(planes.x, planes.mask_input())  # the gray mask network's plane is another
    assert not np.array_equal(got.mask, plain.restore(rgb, opts).mask)  # and it is another network
    models = with_colour.info()["models"]
    assert models["mask_colour"]["name"] == STAND_IN.name and models["mask_colour"]["kind"] == "mask"


@pytest.mark.parametrize("layout", GRAY_LAYOUTS)
def test_gray_and_neutral_layers_are_untouched(gray, plain, with_colour, layout):
    img, opts = gray_layer(gray, layout)
    a, b = plain.restore(img, opts), with_colour.restore(img, opts)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)


def test_colour_mask_path_choices(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "MODELS_DIR", tmp_path)
    assert colour_mask_path(None, mask_given=False) is None  # not installed
    (tmp_path / pipeline.COLOUR_MASK_FILE).write_bytes(STAND_IN.read_bytes())
    assert colour_mask_path(None, mask_given=False) == tmp_path / pipeline.COLOUR_MASK_FILE
    assert colour_mask_path(None, mask_given=True) is None  # a given --mask-model masks every layer
    assert colour_mask_path("none", mask_given=False) is None
    assert colour_mask_path("NONE", mask_given=True) is None
    assert colour_mask_path(str(STAND_IN), mask_given=True) == STAND_IN


def test_default_loads_the_installed_colour_mask(tmp_path, monkeypatch):
    for name in DEFAULT_FILES.values():
        (tmp_path / name).symlink_to(MODELS_DIR / name)
    monkeypatch.setattr(pipeline, "MODELS_DIR", tmp_path)
    assert "mask_colour" not in Restorer.default(device="cpu").info()["models"]
    (tmp_path / pipeline.COLOUR_MASK_FILE).symlink_to(STAND_IN)
    models = Restorer.default(device="cpu").info()["models"]
    assert models["mask_colour"]["name"] == pipeline.COLOUR_MASK_FILE


def test_a_backbone_is_refused_as_colour_mask():
    with pytest.raises(WeightsError, match="mask_colour model must be a mask network"):
        Restorer.from_files(**FILES, mask_colour=FILES["restore"], device="cpu")


def test_command_lines_choose_and_turn_off_the_colour_mask(capsys):
    from server.__main__ import build_parser, load_restorer

    base = ["--device", "cpu"]
    assert core_main(["info", *base, "--mask-colour-model", str(STAND_IN)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["models"]["mask_colour"]["name"] == STAND_IN.name
    assert core_main(["info", *base, "--mask-colour-model", "none"]) == 0
    assert "mask_colour" not in json.loads(capsys.readouterr().out)["models"]

    args = build_parser().parse_args([*base, "--mask-colour-model", str(STAND_IN)])
    assert load_restorer(args).info()["models"]["mask_colour"]["name"] == STAND_IN.name
    args = build_parser().parse_args([*base, "--mask-colour-model", "none"])
    assert "mask_colour" not in load_restorer(args).info()["models"]


def test_evaluate_chooses_the_colour_mask():
    from training.evaluate import EvalConfig, _make_restorer

    cfg = EvalConfig(folder=CROP.parent, mask_colour_model=str(STAND_IN), device="cpu")
    assert _make_restorer(cfg).info()["models"]["mask_colour"]["name"] == STAND_IN.name
    cfg = EvalConfig(folder=CROP.parent, mask_colour_model="none", device="cpu")
    assert "mask_colour" not in _make_restorer(cfg).info()["models"]
