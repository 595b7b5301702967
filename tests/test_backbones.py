"""The published backbones wrapped by core.backbones (FBCNN, DRUNet, SwinIR) at the slim preset.

Official-checkpoint loading (core.weights.load_official) is tested in tests/test_weights.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core import InvalidImageError, InvalidOptionError, UnsupportedModelError
from core.backbones import ADAPTERS, MODES, Backbone, backbone_from_config, build_backbone, qf_to_map_value

ARCHS = ["fbcnn", "drunet", "swinir"]
SIZES = [(37, 53), (16, 16), (1, 1), (9, 30)]


def make(arch: str, mode: str, qf_map: bool = False, seed: int = 0) -> Backbone:
    torch.manual_seed(seed)
    return build_backbone(arch, "slim", mode=mode, qf_map=qf_map).eval()


def random_mask(x: torch.Tensor) -> torch.Tensor:
    return (x < 0.6).to(x.dtype)


def assembled_input(net: Backbone, x: torch.Tensor, mask: torch.Tensor | None, qf: float | None) -> torch.Tensor:
    """The documented input channel order ``[image, qf_map?, mask?]``, before padding."""
    n, _, h, w = x.shape
    parts = [x]
    if net.qf_map:
        parts.append(torch.full((n, 1, h, w), (100.0 - qf) / 100.0))
    if net.mode == "framework":
        parts.append(mask)
    return torch.cat(parts, dim=1)


def raw_image(net: Backbone, inp: torch.Tensor, qf_control: torch.Tensor | None = None) -> torch.Tensor:
    """Call the wrapped spandrel network directly; return its first output channel."""
    out = net.net(inp, qf_control) if net.arch == "fbcnn" else net.net(inp)
    if isinstance(out, tuple):
        out = out[0]
    return out[:, :1]


def test_registry():
    assert list(ADAPTERS) == ARCHS
    assert MODES == ("baseline", "framework")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("arch", ARCHS)
def test_any_size_round_trips(arch, mode, size):
    net = make(arch, mode)
    x = torch.rand(2, 1, *size)
    with torch.no_grad():
        restored, qf_pred = net(x, random_mask(x) if mode == "framework" else None)
    assert restored.shape == (2, 1, *size)
    assert restored.dtype == torch.float32 and torch.isfinite(restored).all()
    if arch == "fbcnn":
        assert qf_pred is not None and qf_pred.shape == (2,) and torch.isfinite(qf_pred).all()
    else:
        assert qf_pred is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("arch", ARCHS)
def test_attributes(arch, mode):
    net = make(arch, mode)
    assert (net.arch, net.mode, net.preset) == (arch, mode, "slim")
    assert net.in_channels == (2 if mode == "framework" else 1)
    assert net.needs_qf is False
    assert net.predicts_qf is (arch == "fbcnn")
    assert net.multiple_of == (8 if arch != "swinir" else net.arch_kwargs["window_size"])
    cfg = net.config
    assert cfg["kind"] == "backbone" and cfg["arch"] == arch and cfg["mode"] == mode
    assert cfg["qf_map"] is False


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("arch", ARCHS)
def test_padding_is_replicate_bottom_right_and_cropped_back(arch, mode):
    # 13 x 11 is not a multiple of 8: the wrapper pads at the bottom/right by edge replication,
    # runs the network and crops the top-left 13 x 11 back.
    net = make(arch, mode)
    x = torch.rand(1, 1, 13, 11)
    mask = random_mask(x) if mode == "framework" else None
    m = net.multiple_of
    inp = assembled_input(net, x, mask, None)
    padded = F.pad(inp, (0, (-11) % m, 0, (-13) % m), mode="replicate")
    with torch.no_grad():
        expected = raw_image(net, padded)[:, :, :13, :11]
        restored, _ = net(x, mask)
    torch.testing.assert_close(restored, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_baseline_ignores_a_mask(arch):
    net = make(arch, "baseline")
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        a, _ = net(x)
        b, _ = net(x, torch.ones_like(x))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("qf_map", [False, True])
@pytest.mark.parametrize("arch", ARCHS)
def test_zero_initialised_mask_channel_reproduces_the_baseline(arch, qf_map):
    if qf_map and arch != "drunet":
        pytest.skip("only DRUNet takes a QF map natively")
    baseline = make(arch, "baseline", qf_map=qf_map, seed=1)
    framework = make(arch, "framework", qf_map=qf_map, seed=2)
    # Widen the baseline's weights by one zero input channel (and, for SwinIR, a zero output row).
    framework.net.load_state_dict(ADAPTERS[arch].widen_input(baseline.net.state_dict(), 1))
    torch.manual_seed(3)
    x = torch.rand(2, 1, 21, 19)
    qf = torch.tensor([20.0, 60.0]) if qf_map else None
    with torch.no_grad():
        ref, ref_qf = baseline(x, qf=qf)
        for mask in (torch.zeros_like(x), torch.ones_like(x), random_mask(x)):
            out, out_qf = framework(x, mask, qf=qf)
            torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
            if arch == "fbcnn":
                torch.testing.assert_close(out_qf, ref_qf, rtol=0, atol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_framework_output_depends_on_the_mask(arch):
    net = make(arch, "framework")
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        a, _ = net(x, torch.zeros_like(x))
        b, _ = net(x, torch.ones_like(x))
    assert not torch.allclose(a, b)


# ---------------------------------------------------------------------------------------------
# DRUNet's QF map
# ---------------------------------------------------------------------------------------------


def test_qf_to_map_value():
    torch.testing.assert_close(qf_to_map_value(torch.tensor([10, 40, 100])), torch.tensor([0.9, 0.6, 0.0]))


@pytest.mark.parametrize("mode", MODES)
def test_drunet_qf_map_is_100_minus_qf_over_100(mode):
    net = make("drunet", mode, qf_map=True)
    assert net.needs_qf and net.in_channels == (3 if mode == "framework" else 2)
    x = torch.rand(1, 1, 16, 24)
    mask = random_mask(x) if mode == "framework" else None
    with torch.no_grad():
        restored, _ = net(x, mask, qf=40)
        expected = raw_image(net, assembled_input(net, x, mask, 40.0))
        # spandrel's own call would use a 15/255 denoising map: that must not be what we feed.
        denoise_map = torch.cat([x, torch.full_like(x, 15 / 255)] + ([mask] if mask is not None else []), dim=1)
        wrong = raw_image(net, denoise_map)
    torch.testing.assert_close(restored, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(restored, wrong, atol=1e-4)


def test_drunet_per_image_qf():
    net = make("drunet", "baseline", qf_map=True)
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        both, _ = net(x, qf=torch.tensor([10.0, 90.0]))
        first, _ = net(x[:1], qf=10)
        second, _ = net(x[1:], qf=90)
    torch.testing.assert_close(both, torch.cat([first, second]), rtol=1e-5, atol=1e-6)


def test_qf_errors():
    net = make("drunet", "baseline", qf_map=True)
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(InvalidOptionError, match=r"QF map.*\(qf\)"):
        net(x)
    with pytest.raises(InvalidOptionError, match="1..100"):
        net(x, qf=0)
    with pytest.raises(InvalidOptionError, match="1..100"):
        net(x, qf=torch.tensor([50.0, 101.0]))
    with pytest.raises(InvalidOptionError, match="3 QF values for a batch of 2"):
        net(x, qf=torch.tensor([10.0, 20.0, 30.0]))


# ---------------------------------------------------------------------------------------------
# FBCNN's QF prediction and control
# ---------------------------------------------------------------------------------------------


def test_fbcnn_predicts_qf_on_the_0_100_scale():
    net = make("fbcnn", "baseline")
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        _, qf_pred = net(x)
        _, raw_qf = net.net(x)
    # FBCNN's head predicts (100 - QF) / 100; the wrapper reports the QF itself.
    torch.testing.assert_close(qf_pred, 100.0 * (1.0 - raw_qf.reshape(3)), rtol=1e-6, atol=1e-4)


def test_fbcnn_qf_controls_the_restoration():
    net = make("fbcnn", "baseline")
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        free, _ = net(x)
        at10, _ = net(x, qf=10)
        at90, _ = net(x, qf=90)
        expected, _ = net.net(x, torch.tensor([[0.9]]))
    assert not torch.allclose(at10, at90)
    assert not torch.allclose(free, at10)
    torch.testing.assert_close(at10, expected[:, :1], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# SwinIR's tied output channels
# ---------------------------------------------------------------------------------------------


def test_swinir_framework_returns_one_channel():
    net = make("swinir", "framework")
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        raw = net.net(torch.cat([x, random_mask(x)], dim=1))
        restored, _ = net(x, random_mask(x))
    assert raw.shape[1] == 2  # the network itself returns as many channels as it takes
    assert restored.shape == (1, 1, 16, 16)
    torch.testing.assert_close(restored, raw[:, :1], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Errors, config, sizes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_input_errors(arch):
    net = make(arch, "framework")
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(InvalidOptionError, match="needs a line mask"):
        net(x)
    with pytest.raises(InvalidImageError, match="mask shape"):
        net(x, torch.ones(1, 1, 8, 7))
    with pytest.raises(InvalidImageError, match="mask shape"):
        net(x, torch.ones(1, 8, 8))
    with pytest.raises(InvalidImageError, match=r"\(N, 1, H, W\)"):
        net(torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8))
    with pytest.raises(InvalidImageError, match=r"\(N, 1, H, W\)"):
        net(torch.rand(8, 8), torch.ones(8, 8))


@pytest.mark.parametrize("arch", ARCHS)
def test_rejects_non_float_and_empty_input(arch):
    net = make(arch, "baseline")
    with pytest.raises(InvalidImageError, match="float|uint8"):
        net(torch.full((1, 1, 8, 8), 255, dtype=torch.uint8))
    with pytest.raises(InvalidImageError, match="pixels|empty"):
        net(torch.rand(1, 1, 0, 8))


def test_build_errors():
    with pytest.raises(UnsupportedModelError, match="unknown backbone 'edsr'"):
        build_backbone("edsr")
    with pytest.raises(InvalidOptionError, match="mode.*'both'"):
        build_backbone("drunet", "slim", mode="both")
    with pytest.raises(InvalidOptionError, match="presets.*'tiny'"):
        build_backbone("drunet", "tiny")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("arch", ARCHS)
def test_config_rebuilds_the_same_network(arch, mode):
    net = make(arch, mode)
    again = backbone_from_config(net.config)
    assert again.config == net.config
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}


def test_malformed_config_is_unsupported():
    cfg = make("drunet", "baseline").config
    del cfg["arch_kwargs"]
    with pytest.raises(UnsupportedModelError, match="arch_kwargs"):
        backbone_from_config(cfg)
    with pytest.raises(UnsupportedModelError, match="'vgg'"):
        backbone_from_config({**make("drunet", "baseline").config, "arch": "vgg"})


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    ("arch", "qf_map", "published", "extra"),
    [
        # Published gray models (71.9 M, 32.6 M, 11.5 M parameters). One more input channel adds a
        # 3x3 kernel per first-layer filter (64 x 9); SwinIR also gains a tied output channel
        # (180 x 9 weights + 1 bias).
        ("fbcnn", False, 71_919_490, 64 * 9),
        ("drunet", True, 32_638_656, 64 * 9),
        ("swinir", False, 11_485_585, 180 * 9 + 180 * 9 + 1),
    ],
)
def test_full_preset_has_the_published_size(arch, qf_map, published, extra):
    if arch == "swinir":  # SwinIR's constructor calls .item(), so it cannot be built on "meta"
        base = build_backbone(arch, "full", "baseline", qf_map=qf_map)
        frame = build_backbone(arch, "full", "framework", qf_map=qf_map)
    else:
        with torch.device("meta"):  # counted, never allocated nor run
            base = build_backbone(arch, "full", "baseline", qf_map=qf_map)
            frame = build_backbone(arch, "full", "framework", qf_map=qf_map)
    assert n_params(base) == published
    assert n_params(frame) - n_params(base) == extra
    assert base.multiple_of == (7 if arch == "swinir" else 8)


@pytest.mark.parametrize("arch", ARCHS)
def test_slim_preset_is_smaller(arch):
    assert n_params(make(arch, "baseline")) < 20_000_000


@pytest.mark.parametrize("arch", ARCHS)
def test_trainable_with_masked_mse(arch):
    from core import masked_mse

    net = make(arch, "framework").train()
    x = torch.rand(2, 1, 16, 16)
    mask = random_mask(x)
    restored, _ = net(x, mask)
    loss = masked_mse(restored, torch.ones_like(x), mask)
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
