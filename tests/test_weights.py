"""Weights files (core.weights): our safetensors format and official .pth checkpoints."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from spandrel.architectures.DRUNet import DRUNet
from spandrel.architectures.FBCNN import FBCNN
from spandrel.architectures.SwinIR import SwinIR

from core import RestoreError, UnsupportedModelError, WeightsError
from core.backbones import Backbone, build_backbone
from core.masknet import MaskUNet, build_masknet
from core.weights import FORMAT, FORMAT_VERSION, load_model, load_official, read_metadata, save_model

TRAINING = {"steps": 123, "qf_range": [5, 95], "val": {"psnr": 31.5}, "note": "unit test"}


def tiny_models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "mask-blind": build_masknet("blind", "slim"),
        "mask-qfmap": build_masknet("qfmap", "slim"),
        "mask-single": build_masknet("single", "slim", qf=20),
        "fbcnn-baseline": build_backbone("fbcnn", "slim", "baseline"),
        "fbcnn-framework": build_backbone("fbcnn", "slim", "framework"),
        "drunet-baseline": build_backbone("drunet", "slim", "baseline"),
        "drunet-framework-qfmap": build_backbone("drunet", "slim", "framework", qf_map=True),
        "swinir-baseline": build_backbone("swinir", "slim", "baseline"),
        "swinir-framework": build_backbone("swinir", "slim", "framework"),
    }


MODEL_NAMES = list(tiny_models())


def run(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Deterministic forward of any of our models on ``x`` (N, 1, H, W)."""
    with torch.no_grad():
        if isinstance(model, MaskUNet):
            return model(x, torch.full((x.shape[0],), 30.0) if model.needs_qf else None)
        mask = (x < 0.5).float() if model.mode == "framework" else None
        out, qf = model(x, mask, qf=40 if model.needs_qf else None)
        return out if qf is None else torch.cat([out.flatten(), qf])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Every tiny model, saved once with TRAINING metadata."""
    folder = tmp_path_factory.mktemp("ours")
    out = {}
    for name, model in tiny_models().items():
        out[name] = (model.eval(), save_model(model, folder / f"{name}.safetensors", training=TRAINING))
    yield out
    for _, path in out.values():  # slim FBCNN files are ~60 MB each: keep pytest's temp small
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Our format: round trips
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_round_trip(saved, name):
    model, path = saved[name]
    loaded = load_model(path)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert not loaded.training  # returned in eval mode
    original, again = model.state_dict(), loaded.state_dict()
    assert original.keys() == again.keys()
    for key in original:
        assert torch.equal(original[key], again[key]), key
    x = torch.rand(2, 1, 19, 23)
    torch.testing.assert_close(run(loaded, x), run(model, x), rtol=0, atol=0)
    assert loaded.training_info == TRAINING
    assert loaded.source_path == str(path)


@pytest.mark.parametrize("name", ["mask-single", "drunet-framework-qfmap"])
def test_metadata(saved, name):
    model, path = saved[name]
    meta = read_metadata(path)
    assert meta == {"format_version": FORMAT_VERSION, "model": model.config, "training": TRAINING}


def test_save_writes_no_temporary_file_and_overwrites(tmp_path):
    net = build_masknet("blind", "slim")
    path = save_model(net, tmp_path / "sub" / "m.safetensors")
    assert path == tmp_path / "sub" / "m.safetensors"
    assert os.listdir(tmp_path / "sub") == ["m.safetensors"]
    torch.manual_seed(5)
    other = build_masknet("blind", "slim")
    save_model(other, path)
    assert torch.equal(load_model(path).tail.weight, other.tail.weight)
    assert read_metadata(path)["training"] == {}


def test_save_refuses_other_modules(tmp_path):
    with pytest.raises(TypeError, match="MaskUNet, Backbone or InkNet"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "x.safetensors")


# ---------------------------------------------------------------------------------------------
# Our format: bad files
# ---------------------------------------------------------------------------------------------


def rewrite(src: Path, dst: Path, metadata: dict[str, str] | None, drop: str | None = None) -> Path:
    """Copy the tensors of ``src`` into ``dst`` with other metadata (and optionally one tensor less)."""
    with safe_open(str(src), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys() if k != drop}
    save_file(tensors, str(dst), metadata=metadata)
    return dst


def good_metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), "pt") as f:
        return dict(f.metadata())


@pytest.fixture
def blind(saved) -> Path:
    return saved["mask-blind"][1]


def test_metadata_is_as_documented(blind):
    meta = good_metadata(blind)
    assert meta["format"] == FORMAT == "lineart-restore"
    assert meta["format_version"] == "1"
    assert json.loads(meta["model"])["kind"] == "masknet"
    assert json.loads(meta["training"]) == TRAINING


@pytest.mark.parametrize("fn", [read_metadata, load_model])
def test_missing_file(tmp_path, fn):
    with pytest.raises(WeightsError, match="not found.*nothing.safetensors"):
        fn(tmp_path / "nothing.safetensors")
    with pytest.raises(WeightsError, match="not found"):
        fn(tmp_path)  # a folder is not a weights file


def test_no_metadata(blind, tmp_path):
    path = rewrite(blind, tmp_path / "plain.safetensors", None)
    with pytest.raises(WeightsError, match="no lineart-restore metadata.*load_official"):
        load_model(path)


def test_foreign_format_tag(blind, tmp_path):
    path = rewrite(blind, tmp_path / "foreign.safetensors", {**good_metadata(blind), "format": "someone-else"})
    with pytest.raises(WeightsError, match="not one of our models"):
        load_model(path)


def test_newer_format_version(blind, tmp_path):
    path = rewrite(blind, tmp_path / "v2.safetensors", {**good_metadata(blind), "format_version": "2"})
    with pytest.raises(UnsupportedModelError, match="newer.*format 2.*upgrade"):
        load_model(path)
    assert issubclass(UnsupportedModelError, WeightsError)


@pytest.mark.parametrize("version", ["", "one", "1.5"])
def test_unreadable_format_version(blind, tmp_path, version):
    meta = {**good_metadata(blind), "format_version": version}
    path = rewrite(blind, tmp_path / "vx.safetensors", meta)
    with pytest.raises(WeightsError, match="format_version"):
        load_model(path)


def test_missing_model_description(blind, tmp_path):
    meta = good_metadata(blind)
    del meta["model"]
    with pytest.raises(WeightsError, match="malformed"):
        load_model(rewrite(blind, tmp_path / "nomodel.safetensors", meta))


def test_malformed_model_json(blind, tmp_path):
    meta = {**good_metadata(blind), "model": "{not json"}
    with pytest.raises(WeightsError, match="malformed"):
        load_model(rewrite(blind, tmp_path / "badjson.safetensors", meta))


def test_unknown_model_kind(blind, tmp_path):
    meta = {**good_metadata(blind), "model": json.dumps({"kind": "gan"})}
    with pytest.raises(UnsupportedModelError, match="unknown model kind 'gan'"):
        load_model(rewrite(blind, tmp_path / "gan.safetensors", meta))


def test_incomplete_model_description(blind, tmp_path):
    cfg = json.loads(good_metadata(blind)["model"])
    del cfg["channels"]
    meta = {**good_metadata(blind), "model": json.dumps(cfg)}
    with pytest.raises(UnsupportedModelError, match="incomplete or malformed"):
        load_model(rewrite(blind, tmp_path / "partial.safetensors", meta))


def test_tensors_that_do_not_match_the_description(saved, blind, tmp_path):
    # blind tensors described as a qfmap network: the head conv has the wrong input width.
    meta = {**good_metadata(blind), "model": json.dumps(saved["mask-qfmap"][0].config)}
    with pytest.raises(WeightsError, match="do not match"):
        load_model(rewrite(blind, tmp_path / "mismatch.safetensors", meta))
    # a tensor missing from the file
    with pytest.raises(WeightsError, match="do not match"):
        load_model(rewrite(blind, tmp_path / "missing.safetensors", good_metadata(blind), drop="tail.bias"))


@pytest.mark.parametrize("keep", ["half", "header", "4 bytes", "empty"])
def test_truncated_file(blind, tmp_path, keep):
    data = blind.read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    cut = {
        "half": 8 + header_len + (len(data) - 8 - header_len) // 2,
        "header": 8 + header_len // 2,
        "4 bytes": 4,
        "empty": 0,
    }[keep]
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:cut])
    for fn in (read_metadata, load_model):
        with pytest.raises(WeightsError, match="truncated|cannot read"):
            fn(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "noise.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"not json at all!" + bytes(64))
    with pytest.raises(WeightsError, match="cannot read"):
        load_model(path)


# ---------------------------------------------------------------------------------------------
# Official checkpoints (the published key layouts, at tiny sizes spandrel still detects)
# ---------------------------------------------------------------------------------------------


def official_networks() -> dict[str, tuple[torch.nn.Module, bool]]:
    """spandrel networks in the published gray layouts -> (network, weights nested under "params")."""
    torch.manual_seed(7)
    return {
        # Published: nc=[64,128,256,512], nb=4. spandrel needs nb >= 2 to detect FBCNN, and its QF
        # head fixes the last width at 512.
        "fbcnn": (FBCNN(in_nc=1, out_nc=1, nc=[16, 32, 64, 512], nb=2), False),
        # Published: in_nc=2 (image + QF map), bias-free, nc=[64,128,256,512], nb=4.
        "drunet": (DRUNet(in_nc=2, out_nc=1, nc=[16, 32, 64, 128], nb=2), False),
        # Published CAR model: window 7, img_range 255, mlp_ratio 2, 1conv; shrunk in depth/width.
        "swinir": (
            SwinIR(
                upscale=1,
                in_chans=1,
                img_size=14,
                window_size=7,
                img_range=255.0,
                depths=[2, 2],
                embed_dim=12,
                num_heads=[6, 6],
                mlp_ratio=2,
                upsampler="",
                resi_connection="1conv",
            ),
            True,
        ),
    }


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    folder = tmp_path_factory.mktemp("official")
    out = {}
    for arch, (net, nested) in official_networks().items():
        path = folder / f"{arch}.pth"
        state = net.state_dict()
        torch.save({"params": state} if nested else state, path)
        out[arch] = (net.eval(), path)
    yield out
    for _, path in out.values():  # the FBCNN file is ~120 MB: do not leave it in pytest's temp
        path.unlink(missing_ok=True)


# Sizes where the published networks need no padding of their own (8 for FBCNN/DRUNet, window 7).
OFFICIAL_SIZE = {"fbcnn": (16, 24), "drunet": (16, 24), "swinir": (14, 21)}


@pytest.mark.parametrize("arch", ["fbcnn", "drunet", "swinir"])
def test_official_baseline_equals_the_published_network(official, arch):
    net, path = official[arch]
    model = load_official(path, "baseline")
    assert isinstance(model, Backbone)
    assert (model.arch, model.mode, model.preset) == (arch, "baseline", "official")
    assert model.needs_qf is (arch == "drunet")
    assert model.predicts_qf is (arch == "fbcnn")
    torch.manual_seed(8)
    x = torch.rand(2, 1, *OFFICIAL_SIZE[arch])
    with torch.no_grad():
        if arch == "fbcnn":
            restored, qf_pred = model(x)
            expected, raw_qf = net(x)
            torch.testing.assert_close(qf_pred, 100 * (1 - raw_qf.reshape(2)), rtol=1e-6, atol=1e-4)
        elif arch == "drunet":
            restored, _ = model(x, qf=torch.tensor([10.0, 50.0]))
            qf_map = torch.stack([torch.full_like(x[0], 0.9), torch.full_like(x[1], 0.5)])
            expected = net(torch.cat([x, qf_map], dim=1))
            # Not spandrel's descriptor default of a 15/255 denoising map:
            wrong = net(torch.cat([x, torch.full_like(x, 15 / 255)], dim=1))
            assert not torch.allclose(restored, wrong, atol=1e-4)
        else:
            restored, _ = model(x)
            expected = net(x)
    torch.testing.assert_close(restored, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch", ["fbcnn", "drunet", "swinir"])
def test_official_framework_starts_equal_to_the_baseline(official, arch):
    _, path = official[arch]
    base = load_official(path, "baseline")
    frame = load_official(path, "framework")
    assert frame.mode == "framework" and frame.in_channels == base.in_channels + 1
    torch.manual_seed(9)
    x = torch.rand(1, 1, 17, 26)  # odd: the wrappers pad
    qf = 30 if arch == "drunet" else None
    with torch.no_grad():
        ref, ref_qf = base(x, qf=qf)
        for mask in (torch.zeros_like(x), torch.ones_like(x), (x < 0.4).float()):
            out, out_qf = frame(x, mask, qf=qf)
            torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
            if arch == "fbcnn":
                torch.testing.assert_close(out_qf, ref_qf, rtol=0, atol=1e-6)


@pytest.mark.parametrize("arch", ["drunet", "swinir"])
def test_official_model_saves_in_our_format(official, arch, tmp_path):
    _, path = official[arch]
    frame = load_official(path, "framework")
    again = load_model(save_model(frame, tmp_path / "f.safetensors"))
    assert again.config == frame.config
    x = torch.rand(1, 1, 14, 16)
    torch.testing.assert_close(run(again, x), run(frame, x), rtol=0, atol=0)


def test_official_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_official(tmp_path / "fbcnn_gray.pth")


def test_official_unknown_network(tmp_path):
    path = tmp_path / "linear.pth"
    torch.save(torch.nn.Linear(3, 3).state_dict(), path)
    with pytest.raises(UnsupportedModelError, match="does not recognise"):
        load_official(path)


def test_official_colour_model_is_refused(tmp_path):
    path = tmp_path / "fbcnn_color.pth"
    torch.save(FBCNN(in_nc=3, out_nc=3, nc=[8, 16, 32, 512], nb=2).state_dict(), path)
    try:
        with pytest.raises(UnsupportedModelError, match="grayscale"):
            load_official(path)
    finally:
        path.unlink()


def test_official_unsupported_architecture(tmp_path):
    from spandrel.architectures.DnCNN import DnCNN

    path = tmp_path / "dncnn.pth"
    torch.save(DnCNN(in_nc=1, out_nc=1, nc=8, nb=17).state_dict(), path)
    with pytest.raises(UnsupportedModelError, match="supported backbones are fbcnn, drunet, swinir"):
        load_official(path)


def test_official_truncated_file(official, tmp_path):
    _, path = official["drunet"]
    data = path.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="cannot load"):
        load_official(cut)


class _Payload:
    """Pickles as a call to os.getcwd: a restricted unpickler must refuse to make that call."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_official_refuses_code_in_pickles(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"m_head.weight": torch.zeros(1), "payload": _Payload()}, path)
    with pytest.raises(RestoreError) as info:
        load_official(path)
    # Refused while unpickling (a plain WeightsError), not after running it and failing detection.
    assert type(info.value) is WeightsError
    assert "forbidden" in str(info.value) and "getcwd" in str(info.value)


def test_official_rejects_unknown_mode(official):
    from core import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="mode"):
        load_official(official["drunet"][1], "both")
