"""The ink network (``core/inknet.py``, role ``colour_inks``, ``core/models/colour_inks.safetensors``):
it corrects the colour stage's ink colours of coloured layers and nothing else. A fresh network
changes nothing; the banded run equals a run on the whole layer; gray and neutral layers never
reach it; it is chosen or turned off like the other model files (``--inks-model FILE|none``); its
training (``python -m training inks``) scores the ink colour at the clean strength."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import colour, pipeline
from core.cli import main as core_main
from core.errors import InvalidOptionError, WeightsError
from core.inknet import INK_FEATURES, InkNet, build_inknet
from core.pipeline import DEFAULT_FILES, MODELS_DIR, RestoreOptions, Restorer, colour_inks_path
from core.weights import load_model, read_metadata, save_model
from tests.colour_checks import GRAY_LAYOUTS, gray_layer
from training.colour import coloured_crop, jpeg_rgb
from training.synth import synth_drawing
from training.train import TrainConfig, ink_loss, train

CROP = Path(__file__).parent / "data" / "val_crop_empty_tomb.png"
FILES = {role: MODELS_DIR / DEFAULT_FILES[role] for role in ("mask", "restore", "baseline")}
SHIPPED = MODELS_DIR / pipeline.COLOUR_INKS_FILE


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    return np.asarray(Image.open(CROP).convert("L"))[:160, :160].copy()


def _busy(preset: str = "small", seed: int = 0) -> InkNet:
    """A network whose correction is not zero (random last layer), so that a test can see it work."""
    torch.manual_seed(seed)
    net = build_inknet(preset)
    torch.nn.init.normal_(net.tail.weight, std=0.05)
    return net.eval()


@pytest.fixture(scope="module")
def busy_file(tmp_path_factory) -> Path:
    return save_model(_busy(), tmp_path_factory.mktemp("inks") / "busy.safetensors", training={"task": "inks"})


def test_a_fresh_network_returns_the_first_estimate_on_any_size():
    net = build_inknet("small").eval()
    for h, w in ((16, 16), (17, 9), (1, 3)):
        feats = torch.rand(2, INK_FEATURES, h, w)
        with torch.no_grad():
            u = net(feats)
        assert u.shape == (2, 3, h, w) and torch.equal(u, feats[:, 4:7])
    with torch.no_grad():
        assert (_busy()(torch.rand(1, INK_FEATURES, 9, 11)) >= 0).all()  # never a negative darkness
    with pytest.raises(InvalidOptionError, match="features"):
        net(torch.rand(1, 3, 8, 8))
    with pytest.raises(InvalidOptionError, match="presets"):
        build_inknet("huge")


def test_weights_round_trip(tmp_path):
    net = _busy("medium", seed=3)
    path = save_model(net, tmp_path / "inks.safetensors", training={"task": "inks"})
    meta = read_metadata(path)
    assert meta["model"] == {"kind": "inknet", "channels": 32, "blocks": 4, "preset": "medium"}
    back = load_model(path)
    feats = torch.rand(1, INK_FEATURES, 20, 24)
    with torch.no_grad():
        assert isinstance(back, InkNet) and torch.equal(back(feats), net(feats))


@pytest.mark.parametrize("rows", [16, 40])
def test_bands_give_the_whole_layers_result(gray, rows):
    """:func:`core.colour.refine_directions` runs the network band by band with context rows: the
    result is the one of a single run on the whole layer (the context exceeds the network's reach),
    scaled per pixel to the first estimate's strength."""
    net = _busy("medium", seed=1)
    rgb = jpeg_rgb(coloured_crop(gray, 1), 20)
    cp = colour.prepare(rgb)

    def run(f: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(f)[None])[0].numpy()

    whole = run(colour.ink_features(rgb, cp.gray, cp.direction)).transpose(1, 2, 0)
    banded = colour.refine_directions(rgb, cp.gray, cp.direction, run, rows=rows)
    assert banded.shape == cp.direction.shape
    # each pixel's colour is the network's, its strength (largest channel) the first estimate's
    np.testing.assert_allclose(banded.max(axis=2), cp.direction.max(axis=2), rtol=1e-5, atol=1e-6)
    ratio = whole.max(axis=2, keepdims=True) / np.maximum(banded.max(axis=2, keepdims=True), 1e-6)
    np.testing.assert_allclose(banded * ratio, whole, atol=1e-4)
    assert np.abs(banded - cp.direction).max() > 0.01  # the network did change the colours


def test_features_are_the_layers_darkness_the_plane_and_the_first_estimate(gray):
    rgb = jpeg_rgb(coloured_crop(gray, 0), 30)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    cp = colour.prepare(rgb)
    f = colour.ink_features(rgb, cp.gray, cp.direction)
    assert f.shape == (7, *rgb.shape[:2]) and f.dtype == np.float32
    np.testing.assert_allclose(f[:3], (255 - rgb.astype(np.float32)).transpose(2, 0, 1) / 255, atol=1e-6)
    np.testing.assert_array_equal(f[3], 1 - cp.gray)
    np.testing.assert_array_equal(f[4:], cp.direction.transpose(2, 0, 1))
    np.testing.assert_array_equal(colour.ink_features(rgba, cp.gray, cp.direction), f)  # opaque RGBA alike


def test_a_fresh_network_changes_no_pixel_and_a_busy_one_only_colour_layers(gray, busy_file, tmp_path):
    fresh = save_model(build_inknet("small"), tmp_path / "fresh.safetensors", training={"task": "inks"})
    plain = Restorer.from_files(**FILES, device="cpu")
    same = Restorer.from_files(**FILES, colour_inks=fresh, device="cpu")
    busy = Restorer.from_files(**FILES, colour_inks=busy_file, device="cpu")
    rgb = jpeg_rgb(coloured_crop(gray, 1), 20)
    for opts in (RestoreOptions(), RestoreOptions(background="transparent", jpeg_consistency=False)):
        assert np.array_equal(plain.restore(rgb, opts).image, same.restore(rgb, opts).image)
        assert not np.array_equal(plain.restore(rgb, opts).image, busy.restore(rgb, opts).image)
    for layout in GRAY_LAYOUTS:  # gray and neutral layers never reach it
        img, opts = gray_layer(gray, layout)
        a, b = plain.restore(img, opts), busy.restore(img, opts)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask), layout


def test_roles_are_checked(busy_file):
    with pytest.raises(WeightsError, match="colour_inks model must be the ink network"):
        Restorer.from_files(**FILES, colour_inks=FILES["mask"], device="cpu")
    with pytest.raises(WeightsError, match="not the ink network"):
        Restorer.from_files(**{**FILES, "restore": busy_file}, device="cpu")


def test_inks_path_choices_and_command_lines(tmp_path, busy_file, monkeypatch, capsys):
    from server.__main__ import build_parser, load_restorer
    from training.evaluate import EvalConfig, _make_restorer

    base = ["--device", "cpu"]
    assert core_main(["info", *base, "--inks-model", str(busy_file)]) == 0
    models = json.loads(capsys.readouterr().out)["models"]
    assert models["colour_inks"]["name"] == busy_file.name and models["colour_inks"]["kind"] == "inks"
    assert core_main(["info", *base, "--inks-model", "none"]) == 0
    assert "colour_inks" not in json.loads(capsys.readouterr().out)["models"]
    args = build_parser().parse_args([*base, "--inks-model", str(busy_file)])
    assert load_restorer(args).info()["models"]["colour_inks"]["name"] == busy_file.name
    args = build_parser().parse_args([*base, "--inks-model", "none"])
    assert "colour_inks" not in load_restorer(args).info()["models"]
    cfg = EvalConfig(folder=CROP.parent, inks_model=str(busy_file), device="cpu")
    assert _make_restorer(cfg).info()["models"]["colour_inks"]["name"] == busy_file.name
    cfg = EvalConfig(folder=CROP.parent, inks_model="none", device="cpu")
    assert "colour_inks" not in _make_restorer(cfg).info()["models"]

    monkeypatch.setattr(pipeline, "MODELS_DIR", tmp_path)
    assert colour_inks_path(None) is None  # not installed
    assert colour_inks_path("none") is None and colour_inks_path(str(busy_file)) == busy_file
    for name in {*DEFAULT_FILES.values(), pipeline.FAST_FILES["restore"]}:
        (tmp_path / name).symlink_to(MODELS_DIR / name)
    assert "colour_inks" not in Restorer.default(device="cpu").info()["models"]
    (tmp_path / pipeline.COLOUR_INKS_FILE).symlink_to(busy_file)
    for fast in (False, True):  # it reads the JPEG, not the restoration: it goes with any backbone
        assert Restorer.default(device="cpu", fast=fast).info()["models"]["colour_inks"]["kind"] == "inks"


def test_ink_loss_scores_the_colour_at_the_clean_strength():
    d = torch.rand(2, 3, 8, 8)
    strength = d.amax(dim=1, keepdim=True)
    u = d / strength
    assert float(ink_loss(u, d)) < 1e-12
    paper = torch.zeros_like(d)
    assert float(ink_loss(torch.rand_like(d), paper)) == 0.0  # paper costs nothing
    assert float(ink_loss(u * 0.5, d)) > 1e-3


def test_training_two_steps_writes_an_ink_network(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        Image.fromarray(synth_drawing(np.random.default_rng(310 + i), 96, 96)).save(data / f"d{i}.png")
    cfg = TrainConfig(
        task="inks",
        preset="small",
        out=str(tmp_path / "run"),
        train_dirs=[str(data)],
        val_dirs=[str(data)],
        val_crop=64,
        crop=48,
        batch=2,
        steps=2,
        progress=False,
        bf16="off",
        threads=1,
    )
    path = train(cfg)
    meta = read_metadata(path)
    assert meta["model"]["kind"] == "inknet"
    training = meta["training"]
    assert training["task"] == "inks" and training["loss"] == "ink_mse" and training["colour_fraction"] == 1.0
    val = training["validation"]
    assert {"psnr_inks", "psnr_inks_first", "psnr_inks_any", "psnr_inks_any_first"} <= set(val)
    assert all(10.0 < val[k] < 100.0 for k in ("psnr_inks", "psnr_inks_first", "psnr_inks_any"))
    with pytest.raises(ValueError, match="presets"):
        train(TrainConfig(task="inks", preset="slim", train_dirs=[str(data)], steps=1))
