"""Two-plane mask networks (``MaskUNet(planes=2)``): the colour layers' mask network may be given a
coloured layer's darkest channel beside its line plane (``NetworkPlanes.mask_input(planes=2)``).

Covered here: the network (shapes, errors, config), widening a one-plane network without changing
what it predicts (``with_planes``, ``python -m training mask --planes 2 --init``), ONNX Runtime, what
the pipeline hands a two-plane colour mask network, and the training patches and validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import colour, pipeline
from core.errors import InvalidImageError, InvalidOptionError
from core.masknet import build_masknet, masknet_from_config
from core.ort_engine import OrtCore
from core.pipeline import DEFAULT_FILES, MODELS_DIR, RestoreOptions, Restorer
from core.weights import load_model, save_model
from tests.colour_checks import gray_layer
from tests.test_training import _cfg as training_cfg
from training.colour import coloured_crop, jpeg_rgb
from training.data import DataError, PatchDataset
from training.synth import synth_drawing
from training.train import TrainConfig, train

CROP = Path(__file__).parent / "data" / "val_crop_empty_tomb.png"
FILES = {role: MODELS_DIR / DEFAULT_FILES[role] for role in ("mask", "restore", "baseline")}

torch.set_num_threads(1)


def _net(variant="blind", planes=2, seed=0):
    torch.manual_seed(seed)
    kw = {"qf": 30} if variant == "single" else {}
    return build_masknet(variant, "slim", channels=[8, 16, 32], blocks=1, planes=planes, **kw).eval()


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    return np.asarray(Image.open(CROP).convert("L"))[:160, :160].copy()


# -- the network ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["blind", "qfmap", "single"])
def test_two_plane_network_takes_two_planes(variant):
    net = _net(variant)
    assert net.planes == 2 and net.in_channels == 2 + (variant == "qfmap")
    assert net.head.weight.shape[1] == net.in_channels
    with torch.no_grad():
        out = net(torch.rand(2, 2, 21, 30), 30)
    assert out.shape == (2, 2, 21, 30)
    with pytest.raises(InvalidImageError, match=r"\(N, 2, H, W\)"):
        net(torch.rand(1, 1, 16, 16), 30)


def test_planes_are_checked():
    with pytest.raises(InvalidOptionError, match="1 or 2 image planes"):
        build_masknet("blind", "slim", planes=3)


def test_config_records_the_planes_and_old_files_have_one():
    net = _net(planes=2)
    assert net.config["planes"] == 2 and masknet_from_config(net.config).planes == 2
    old = dict(net.config)
    del old["planes"]  # written before the option existed
    assert masknet_from_config(old).planes == 1


@pytest.mark.parametrize("variant", ["blind", "qfmap"])
def test_widening_keeps_every_prediction(variant):
    """The added plane starts with zero weights: the widened network predicts exactly what the
    one-plane one did, whatever the second plane holds (and qfmap's QF map still reaches it)."""
    one = _net(variant, planes=1, seed=4)
    two = one.with_planes(2)
    assert two.planes == 2 and two.config == {**one.config, "planes": 2}
    x = torch.rand(1, 1, 24, 40)
    other = torch.rand(1, 1, 24, 40)
    with torch.no_grad():
        assert torch.allclose(two(torch.cat([x, other], 1), 40), one(x, 40), atol=1e-6)
        if variant == "qfmap":
            assert not torch.allclose(two(torch.cat([x, other], 1), 90), two(torch.cat([x, other], 1), 40))
    with pytest.raises(InvalidOptionError, match="cannot be cut"):
        two.with_planes(1)


def test_two_plane_network_through_onnxruntime_matches_torch():
    net = _net(planes=2, seed=5)
    with torch.no_grad():  # make the second plane matter
        net.head.weight[:, 1].normal_(0, 0.3)
    core = OrtCore(net, "mask")
    x = torch.rand(1, 2, 37, 52)
    with torch.no_grad():
        assert float((net(x, core=core) - net(x)).abs().max()) < 1e-4
        swapped = x.flip(1)
        assert float((net(swapped, core=core) - net(x, core=core)).abs().max()) > 1e-3


# -- what the pipeline hands it ------------------------------------------------------------------


def test_network_planes_second_plane_is_the_darkest_channel(gray):
    rgb = jpeg_rgb(coloured_crop(gray, 1), 30)
    planes = pipeline.network_planes(rgb, normalize_ink=False)
    two = planes.mask_input(colour_mask=True, planes=2)
    assert two.shape == (1, 2, *gray.shape)
    assert torch.equal(two[:, :1], planes.x)
    want = rgb.min(axis=2).astype(np.float32) / 255.0
    np.testing.assert_allclose(two[0, 1].numpy(), want, atol=1e-6)
    assert torch.equal(planes.mask_input(colour_mask=True), planes.x)  # one plane: as before
    with pytest.raises(InvalidOptionError, match="1 or 2 image planes"):
        planes.mask_input(colour_mask=True, planes=3)


def test_light_ink_stretch_applies_to_both_planes():
    """A pale drawing is stretched to full contrast for the networks: its darkest channel too."""
    g = np.full((96, 96), 255, np.uint8)
    g[20:76, 30:40] = 150
    g[40:50, 10:86] = 150
    rgb = np.stack([np.full_like(g, 255), 255 - (255 - g) // 3, 255 - (255 - g) // 4], -1).astype(np.uint8)
    planes = pipeline.network_planes(rgb)
    assert planes.ink_k > 1.0
    plain = colour.prepare(rgb).darkest
    got = planes.mask_input(colour_mask=True, planes=2)[0, 1].numpy()
    np.testing.assert_allclose(got, np.clip(1.0 - (1.0 - plain) * planes.ink_k, 0.0, None), atol=1e-6)


def test_gray_layer_gets_its_plane_twice(gray):
    planes = pipeline.network_planes(gray)
    two = planes.mask_input(planes=2)
    assert torch.equal(two[:, 0], two[:, 1]) and torch.equal(two[:, :1], planes.x)


@pytest.fixture(scope="module")
def two_plane_file(tmp_path_factory) -> Path:
    """The shipped default mask network widened to two planes, its second plane given weight so
    that it changes the mask: a real colour mask network stand-in."""
    net = load_model(MODELS_DIR / DEFAULT_FILES["mask"]).with_planes(2)
    with torch.no_grad():
        net.head.weight[:, 1] = net.head.weight[:, 0]
    return save_model(net, tmp_path_factory.mktemp("m") / "mask_colour2.safetensors")


def test_pipeline_gives_a_two_plane_colour_mask_both_planes(gray, two_plane_file, monkeypatch):
    r = Restorer.from_files(**FILES, mask_colour=two_plane_file, device="cpu")
    rgb = jpeg_rgb(coloured_crop(gray, 1), 20)
    opts = RestoreOptions(return_mask=True)
    r.restore(rgb, opts)  # first use: the tile-cost probes run here (with two planes)
    seen = []
    real = Restorer._mask_logit_diff

    def spy(self, runner, x, *a, **k):
        seen.append((runner, x.clone()))
        return real(self, runner, x, *a, **k)

    monkeypatch.setattr(Restorer, "_mask_logit_diff", spy)
    got = r.restore(rgb, opts)
    want = pipeline.network_planes(rgb).mask_input(colour_mask=True, planes=2)
    assert len(seen) == 1 and seen[0][0] is r._runners["mask_colour"]
    assert torch.equal(seen[0][1], want)
    assert got.mask.shape == gray.shape and 0 < got.mask.mean() < 1
    # gray layers never reach it: masked by the default network, on one plane
    seen.clear()
    img, gopts = gray_layer(gray, "L")
    r.restore(img, gopts)
    assert seen and all(s[0] is r._runners["mask"] and s[1].shape[1] == 1 for s in seen)


# -- training ------------------------------------------------------------------------------------


def _drawings(n=3):
    return [synth_drawing(np.random.default_rng(200 + i), 96, 96) for i in range(n)]


def test_patches_for_a_two_plane_network():
    ds = PatchDataset(_drawings(), crop=32, colour_fraction=0.5, mask_planes=2, seed=1)
    kinds = set()
    for i in range(24):
        x, clean, _qf, rgb = ds.colour_item(i)
        assert x.shape == (2, 32, 32) and clean.shape == (1, 32, 32)
        if rgb is None:  # a gray patch: its JPEG twice
            assert torch.equal(x[0], x[1])
            kinds.add("gray")
        else:  # a colour patch: the line plane and the darkest channel (unstretched here or not)
            want = pipeline.network_planes(rgb).mask_input(colour_mask=True, planes=2)[0]
            assert torch.equal(x, want)
            kinds.add("colour")
    assert kinds == {"gray", "colour"}
    with pytest.raises(DataError, match="mask training"):
        PatchDataset(_drawings(1), crop=32, colour_target="plane", mask_planes=2)
    with pytest.raises(DataError, match="1 or 2"):
        PatchDataset(_drawings(1), crop=32, mask_planes=3)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("drawings")
    for i, img in enumerate(_drawings(4)):
        Image.fromarray(img).save(d / f"d{i}.png")
    return d


def _cfg(data_dir: Path, out: Path, **kw) -> TrainConfig:
    """test_training's tiny run, as a fast mask network on half colour patches, validated."""
    mask = dict(task="mask", preset="fast", colour_fraction=0.5, val_dirs=[str(data_dir)], val_crop=64)
    return training_cfg(data_dir, out, **{**mask, **kw})


def test_training_widens_a_one_plane_init_and_trains_it(tmp_path, data_dir):
    one = tmp_path / "one"
    train(_cfg(data_dir, one, steps=2))
    start = load_model(one / "model.safetensors")
    assert start.planes == 1

    two = tmp_path / "two"
    train(_cfg(data_dir, two, steps=3, planes=2, init=str(one / "model.safetensors")))
    tuned = load_model(two / "model.safetensors")
    assert tuned.planes == 2 and tuned.config == {**start.config, "planes": 2}
    rows = (two / "val.csv").read_text().splitlines()
    assert rows[0].split(",")[2:] == ["miou", "miou_colour"] and len(rows) >= 2
    # the first validation (step 0) is the one-plane network's own: the added plane starts unused
    zero = tmp_path / "zero"
    train(_cfg(data_dir, zero, steps=0, planes=2, init=str(one / "model.safetensors")))
    ref = tmp_path / "ref"
    train(_cfg(data_dir, ref, steps=0, init=str(one / "model.safetensors")))
    assert (zero / "val.csv").read_text().splitlines()[1].split(",")[2:] == (ref / "val.csv").read_text().splitlines()[
        1
    ].split(",")[2:]


def test_planes_options_are_checked(tmp_path, data_dir):
    with pytest.raises(ValueError, match="--planes applies to mask training"):
        train(_cfg(data_dir, tmp_path / "r", task="restore", planes=2))
    with pytest.raises(ValueError, match="--planes is 1 or 2"):
        train(_cfg(data_dir, tmp_path / "p", planes=4))


def test_a_two_plane_training_mask_for_a_backbone_is_a_clear_error(tmp_path, data_dir, two_plane_file):
    backbone = dict(task="restore", mode="framework", preset="slim", train_mask=str(two_plane_file))
    with pytest.raises(ValueError, match="takes 2 image planes.*one-plane mask network"):
        train(_cfg(data_dir, tmp_path / "r", **backbone))
