"""The mask-predicting U-Net (core.masknet): shapes, variants, QF conditioning, size, errors."""

from __future__ import annotations

import pytest
import torch

from core import InvalidImageError, InvalidOptionError, UnsupportedModelError
from core.masknet import MASK_PRESETS, VARIANTS, MaskUNet, build_masknet, masknet_from_config

SIZES = [(37, 53), (8, 8), (1, 1), (9, 30)]


def make(variant: str, preset: str = "slim", seed: int = 0) -> MaskUNet:
    torch.manual_seed(seed)
    kwargs = {"qf": 30} if variant == "single" else {}
    return build_masknet(variant, preset, **kwargs).eval()


def qf_for(variant: str, n: int):
    return torch.linspace(10, 90, n) if variant == "qfmap" else None


def test_variants():
    assert VARIANTS == ("blind", "qfmap", "single")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("variant", VARIANTS)
def test_logits_and_mask_shapes(variant, size):
    net = make(variant)
    x = torch.rand(2, 1, *size)
    with torch.no_grad():
        logits = net(x, qf_for(variant, 2))
    assert logits.shape == (2, 2, *size)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    mask = net.predict(x, qf_for(variant, 2))
    assert mask.shape == (2, 1, *size) and mask.dtype == x.dtype
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    # The mask is the argmax of the two logits (channel 1 = line).
    torch.testing.assert_close(mask[:, 0], logits.argmax(dim=1).to(mask.dtype), rtol=0, atol=0)


def test_predict_needs_no_grad_bookkeeping():
    net = make("blind")
    mask = net.predict(torch.rand(1, 1, 9, 9))
    assert not mask.requires_grad


@pytest.mark.parametrize("variant", VARIANTS)
def test_batch_items_are_independent(variant):
    # No batch statistics: each image's logits do not depend on the rest of the batch.
    net = make(variant)
    x = torch.rand(3, 1, 19, 21)
    qf = qf_for(variant, 3)
    with torch.no_grad():
        together = net(x, qf)
        for i in range(3):
            alone = net(x[i : i + 1], None if qf is None else qf[i : i + 1])
            torch.testing.assert_close(together[i : i + 1], alone, rtol=1e-5, atol=1e-5)


def test_qfmap_uses_the_quality():
    net = make("qfmap")
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        low, high = net(x, torch.tensor([10.0])), net(x, torch.tensor([90.0]))
        scalar = net(x, 10)
    assert not torch.allclose(low, high)
    torch.testing.assert_close(scalar, low, rtol=0, atol=0)


def test_qfmap_without_qf_is_a_clear_error():
    net = make("qfmap")
    with pytest.raises(InvalidOptionError, match=r"qfmap.*\(qf\)"):
        net(torch.rand(1, 1, 8, 8))
    with pytest.raises(InvalidOptionError, match="qf"):
        net.predict(torch.rand(1, 1, 8, 8))


def test_blind_and_single_ignore_qf():
    for variant in ("blind", "single"):
        net = make(variant)
        x = torch.rand(1, 1, 8, 8)
        with torch.no_grad():
            torch.testing.assert_close(net(x), net(x, 50), rtol=0, atol=0)


def test_qfmap_rejects_a_qf_count_that_does_not_match_the_batch():
    with pytest.raises(InvalidOptionError, match="QF|qf"):
        make("qfmap")(torch.rand(2, 1, 8, 8), torch.tensor([10.0, 20.0, 30.0]))


@pytest.mark.parametrize("qf", [0, 101, -5])
def test_qfmap_rejects_qf_out_of_range(qf):
    with pytest.raises(InvalidOptionError, match="1..100"):
        make("qfmap")(torch.rand(1, 1, 8, 8), qf)


def test_properties():
    blind = make("blind")
    assert blind.multiple_of == 2 ** (len(MASK_PRESETS["slim"]["channels"]) - 1)
    assert not blind.needs_qf and make("qfmap").needs_qf and not make("single").needs_qf
    assert make("single").qf == 30


def test_single_variant_needs_its_training_qf():
    with pytest.raises(InvalidOptionError, match="single.*QF"):
        build_masknet("single", "slim")


def test_bad_variant_and_preset():
    with pytest.raises(InvalidOptionError, match="variant.*'unet'"):
        build_masknet("unet", "slim")
    with pytest.raises(InvalidOptionError, match="presets.*'huge'"):
        build_masknet("blind", "huge")
    with pytest.raises(InvalidOptionError, match="at least 2 levels"):
        MaskUNet("blind", channels=[8], blocks=1)


@pytest.mark.parametrize("shape", [(1, 3, 8, 8), (1, 8, 8), (8, 8), (1, 2, 8, 8)])
def test_bad_input_shapes(shape):
    with pytest.raises(InvalidImageError, match=r"\(N, 1, H, W\)"):
        make("blind")(torch.rand(*shape))


def test_rejects_non_float_input():
    # uint8 0-255 would silently be read as values 255x too bright.
    with pytest.raises(InvalidImageError, match="float"):
        make("blind")(torch.full((1, 1, 8, 8), 255, dtype=torch.uint8))


def test_rejects_empty_input():
    with pytest.raises(InvalidImageError, match="pixels|empty"):
        make("blind")(torch.rand(1, 1, 0, 8))


def conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def expected_parameters(in_ch: int, channels: list[int], blocks: int) -> int:
    """Parameter count of the documented layout: 3x3 head; per level ``blocks`` residual blocks
    (two 3x3 convs) in the encoder and the decoder, a 2x2 stride-2 conv down and a 2x2
    transposed conv up; ``2 * blocks`` residual blocks at the bottom; a 1x1 two-class tail."""
    c = channels
    total = conv(in_ch, c[0], 3) + conv(c[0], 2, 1)
    for i in range(len(c) - 1):
        total += 2 * blocks * 2 * conv(c[i], c[i], 3)  # encoder + decoder stages
        total += conv(c[i], c[i + 1], 2)  # down
        total += c[i + 1] * c[i] * 4 + c[i]  # transposed conv up
    total += 2 * blocks * 2 * conv(c[-1], c[-1], 3)
    return total


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("preset", ["slim", "full"])
def test_parameter_count(variant, preset):
    # The full preset is built on the meta device: counted, never allocated nor run.
    kwargs = {"qf": 30} if variant == "single" else {}
    with torch.device("meta"):
        net = build_masknet(variant, preset, **kwargs)
    p = MASK_PRESETS[preset]
    in_ch = 2 if variant == "qfmap" else 1
    assert sum(t.numel() for t in net.parameters()) == expected_parameters(in_ch, p["channels"], p["blocks"])


def test_full_preset_is_the_papers_width():
    assert MASK_PRESETS["full"]["channels"] == [64, 128, 256, 512]
    with torch.device("meta"):
        n_full = sum(t.numel() for t in build_masknet("blind", "full").parameters())
    n_slim = sum(t.numel() for t in make("blind").parameters())
    assert n_full == 26_453_570
    assert n_slim < n_full / 20


@pytest.mark.parametrize("variant", VARIANTS)
def test_config_rebuilds_the_same_network(variant):
    net = make(variant)
    again = masknet_from_config(net.config)
    assert again.config == net.config
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}


def test_incomplete_config_is_unsupported():
    cfg = make("blind").config
    del cfg["channels"]
    with pytest.raises(UnsupportedModelError, match="channels"):
        masknet_from_config(cfg)


def test_trainable_end_to_end():
    net = make("qfmap").train()
    x = torch.rand(2, 1, 13, 11)
    target = (x < 0.5).long()[:, 0]
    loss = torch.nn.functional.cross_entropy(net(x, torch.tensor([20.0, 70.0])), target)
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_mask_with_rim_keeps_uncertain_neighbours_of_lines_only():
    """The rim is the 8-neighbours of line pixels whose logit difference lies within the margin
    below 0; pixels as uncertain but away from every line, and neighbours below the margin, stay
    paper. Batched input gives each item what it gives alone."""
    from core.masknet import mask_with_rim

    diff = torch.full((7, 7), -10.0)
    diff[3, 3] = 2.0  # a line pixel
    diff[2, 2] = -1.0  # diagonal neighbour, within 1.5 of paper
    diff[3, 4] = -2.0  # neighbour, beyond 1.5
    diff[0, 6] = -0.5  # uncertain, but no line next to it
    mask, kept = mask_with_rim(diff, 1.5)
    assert mask.dtype == torch.bool and kept.dtype == torch.bool
    assert mask.nonzero().tolist() == [[3, 3]]
    assert kept.nonzero().tolist() == [[2, 2], [3, 3]]
    _, wider = mask_with_rim(diff, 2.5)
    assert wider.nonzero().tolist() == [[2, 2], [3, 3], [3, 4]]

    torch.manual_seed(0)
    batch = torch.randn(3, 1, 19, 23) * 3
    _, kept_b = mask_with_rim(batch, 1.5)
    for i in range(3):
        assert torch.equal(kept_b[i, 0], mask_with_rim(batch[i, 0], 1.5)[1])
