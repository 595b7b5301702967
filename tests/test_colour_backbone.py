"""The optional colour-only backbone (``core/models/restore_colour.safetensors``, role
``restore_colour``): it restores coloured layers where the default backbone would, leaves gray and
neutral layers bit for bit as they were, and is chosen or turned off like the other model files
(``--colour-model FILE|none``); the fast pair and a backbone of the caller's own go without it.

``restore_wild.safetensors`` stands in for a colour backbone here: a real framework backbone that
differs from the default one, so a test can tell which of the two restored a layer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import pipeline
from core.cli import main as core_main
from core.errors import WeightsError
from core.pipeline import DEFAULT_FILES, MODELS_DIR, RestoreOptions, Restorer, colour_restore_path
from tests.colour_checks import GRAY_LAYOUTS, gray_layer
from training.colour import coloured_crop, jpeg_rgb

CROP = Path(__file__).parent / "data" / "val_crop_empty_tomb.png"
STAND_IN = MODELS_DIR / "restore_wild.safetensors"
FILES = {role: MODELS_DIR / DEFAULT_FILES[role] for role in ("mask", "restore", "baseline")}


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    return np.asarray(Image.open(CROP).convert("L"))[:160, :160].copy()


@pytest.fixture(scope="module")
def plain() -> Restorer:
    return Restorer.from_files(**FILES, device="cpu")


@pytest.fixture(scope="module")
def with_colour() -> Restorer:
    return Restorer.from_files(**FILES, restore_colour=STAND_IN, device="cpu")


def _backbones_used(restorer: Restorer, img, opts, monkeypatch) -> list:
    seen = []
    real = Restorer._backbone_call

    def spy(self, r, *a, **k):
        seen.append(r)
        return real(self, r, *a, **k)

    monkeypatch.setattr(Restorer, "_backbone_call", spy)
    restorer.restore(img, opts)
    monkeypatch.setattr(Restorer, "_backbone_call", real)
    return seen


def test_colour_layers_use_the_colour_backbone(gray, plain, with_colour, monkeypatch):
    rgb = jpeg_rgb(coloured_crop(gray, 1), 20)
    opts = RestoreOptions()
    with_colour.restore(rgb, opts)  # first use: the tile-cost probes run here
    seen = _backbones_used(with_colour, rgb, opts, monkeypatch)
    assert seen and all(r is with_colour._runners["restore_colour"] for r in seen)
    assert not np.array_equal(with_colour.restore(rgb, opts).image, plain.restore(rgb, opts).image)
    models = with_colour.info()["models"]
    assert models["restore_colour"]["name"] == STAND_IN.name and models["restore_colour"]["kind"] == "backbone"
    # a backbone the caller names restores every layer, colour ones too
    own = RestoreOptions(model=str(FILES["restore"]))
    seen = _backbones_used(with_colour, rgb, own, monkeypatch)
    assert seen and all(r is not with_colour._runners["restore_colour"] for r in seen)


@pytest.mark.parametrize("layout", GRAY_LAYOUTS)
def test_gray_and_neutral_layers_are_untouched(gray, plain, with_colour, layout):
    img, opts = gray_layer(gray, layout)
    a, b = plain.restore(img, opts), with_colour.restore(img, opts)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)


def test_colour_restore_path_choices(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "MODELS_DIR", tmp_path)
    assert colour_restore_path(None, restore_given=False) is None  # not installed
    (tmp_path / pipeline.COLOUR_RESTORE_FILE).write_bytes(STAND_IN.read_bytes())
    assert colour_restore_path(None, restore_given=False) == tmp_path / pipeline.COLOUR_RESTORE_FILE
    assert colour_restore_path(None, restore_given=True) is None  # a given backbone restores every layer
    assert colour_restore_path("none", restore_given=False) is None
    assert colour_restore_path("NONE", restore_given=True) is None
    assert colour_restore_path(str(STAND_IN), restore_given=True) == STAND_IN


def test_default_loads_the_installed_colour_backbone_but_not_with_the_fast_pair(tmp_path, monkeypatch):
    for name in {*DEFAULT_FILES.values(), pipeline.FAST_FILES["restore"]}:
        (tmp_path / name).symlink_to(MODELS_DIR / name)
    monkeypatch.setattr(pipeline, "MODELS_DIR", tmp_path)
    assert "restore_colour" not in Restorer.default(device="cpu").info()["models"]
    (tmp_path / pipeline.COLOUR_RESTORE_FILE).symlink_to(STAND_IN)
    models = Restorer.default(device="cpu").info()["models"]
    assert models["restore_colour"]["name"] == pipeline.COLOUR_RESTORE_FILE
    assert "restore_colour" not in Restorer.default(device="cpu", fast=True).info()["models"]


def test_a_mask_network_or_baseline_is_refused_as_colour_backbone():
    with pytest.raises(WeightsError, match="restore_colour model must be a restoration backbone"):
        Restorer.from_files(**FILES, restore_colour=FILES["mask"], device="cpu")
    with pytest.raises(WeightsError, match="restore_colour model must be a framework-mode backbone"):
        Restorer.from_files(**FILES, restore_colour=FILES["baseline"], device="cpu")


def test_command_lines_choose_and_turn_off_the_colour_backbone(capsys):
    from server.__main__ import build_parser, load_restorer

    base = ["--device", "cpu"]
    assert core_main(["info", *base, "--colour-model", str(STAND_IN)]) == 0
    assert json.loads(capsys.readouterr().out)["models"]["restore_colour"]["name"] == STAND_IN.name
    assert core_main(["info", *base, "--colour-model", "none"]) == 0
    assert "restore_colour" not in json.loads(capsys.readouterr().out)["models"]

    args = build_parser().parse_args([*base, "--colour-model", str(STAND_IN)])
    assert load_restorer(args).info()["models"]["restore_colour"]["name"] == STAND_IN.name
    args = build_parser().parse_args([*base, "--colour-model", "none"])
    assert "restore_colour" not in load_restorer(args).info()["models"]
    args = build_parser().parse_args([*base, "--restore-model", str(FILES["restore"])])
    assert "restore_colour" not in load_restorer(args).info()["models"]


def test_evaluate_chooses_the_colour_backbone():
    from training.evaluate import EvalConfig, _make_restorer

    cfg = EvalConfig(folder=CROP.parent, colour_model=str(STAND_IN), device="cpu")
    assert _make_restorer(cfg).info()["models"]["restore_colour"]["name"] == STAND_IN.name
    cfg = EvalConfig(folder=CROP.parent, colour_model="none", device="cpu")
    assert "restore_colour" not in _make_restorer(cfg).info()["models"]
