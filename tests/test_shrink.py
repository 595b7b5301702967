"""training/shrink.py: smaller networks cut out of trained ones keep what those computed.

The checks build a large network that provably computes the same function as a small one (the
small one's weights embedded, every other weight zero, or residual blocks made the identity) and
require the cut to find exactly the small one again.
"""

from __future__ import annotations

import pytest
import torch

from core.backbones import build_backbone
from core.masknet import build_masknet
from core.weights import load_model, read_metadata, save_model
from training.__main__ import main as training_main
from training.shrink import drop_drunet_blocks, shrink_file, shrink_masknet
from training.train import TrainConfig, _build_model


def _spread(small: int, big: int, gen: torch.Generator) -> torch.Tensor:
    return torch.sort(torch.randperm(big, generator=gen)[:small]).values


@torch.no_grad()
def _embed_masknet(small, big, gen):
    """Zero ``big`` and write ``small``'s weights into randomly placed channels of it."""
    for p in big.parameters():
        p.zero_()
    idx = [_spread(s, b, gen) for s, b in zip(small.channels, big.channels)]

    def conv(d, s, out_idx, in_idx):
        d.weight[out_idx[:, None], in_idx] = s.weight
        if s.bias is not None:
            d.bias[out_idx] = s.bias

    def block(d, s, i):
        mid = _spread(small.channels[i], big.channels[i], gen)
        conv(d.conv1, s.conv1, mid, idx[i])
        conv(d.conv2, s.conv2, idx[i], mid)

    conv(big.head, small.head, idx[0], torch.arange(1))
    for i in range(len(idx) - 1):
        for d, s in zip(list(big.enc[i]) + list(big.dec[i]), list(small.enc[i]) + list(small.dec[i])):
            block(d, s, i)
        conv(big.down[i], small.down[i], idx[i + 1], idx[i])
        big.up[i].weight[idx[i + 1][:, None], idx[i]] = small.up[i].weight
        big.up[i].bias[idx[i]] = small.up[i].bias
    for d, s in zip(big.bottom, small.bottom):
        block(d, s, len(idx) - 1)
    conv(big.tail, small.tail, torch.arange(2), idx[0])


def test_shrunk_mask_network_finds_the_embedded_small_one():
    gen = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    small, big = build_masknet("blind", "fast"), build_masknet("blind", "slim")
    _embed_masknet(small, big, gen)
    x = torch.rand(2, 1, 40, 48, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(big(x), small(x), rtol=1e-4, atol=1e-5)  # the embedding is exact
        cut = shrink_masknet(big, "fast")
        assert cut.channels == small.channels and cut.preset == "fast"
        torch.testing.assert_close(cut(x), small(x), rtol=1e-4, atol=1e-5)


def test_shrinking_a_trained_mask_network_keeps_its_heaviest_channels():
    torch.manual_seed(0)
    big = build_masknet("blind", "slim")
    with torch.no_grad():
        big.head.weight[5] *= 100  # one head channel dominates level 0
    cut = shrink_masknet(big, "fast")
    assert any(torch.equal(cut.head.weight[j], big.head.weight[5]) for j in range(cut.channels[0]))


@pytest.mark.parametrize("keep", ["first", "last"])
def test_dropping_identity_blocks_changes_nothing(keep):
    torch.manual_seed(1)
    big = build_backbone("drunet", "slim", "framework")
    sd = big.net.state_dict()
    # Make the blocks that will be dropped the identity: their second convolution outputs zero.
    drop = 1 if keep == "first" else 0  # nb 2 -> 1: block index (within its stage) that goes
    with torch.no_grad():
        for stage, first in (
            ("m_down1", 0),
            ("m_down2", 0),
            ("m_down3", 0),
            ("m_body", 0),
            ("m_up3", 1),
            ("m_up2", 1),
            ("m_up1", 1),
        ):
            sd[f"{stage}.{first + drop}.res.2.weight"].zero_()
    big.net.load_state_dict(sd)
    small = drop_drunet_blocks(big, "fast", keep)
    assert small.config["arch_kwargs"]["nb"] == 1 and small.config["preset"] == "fast"
    x = torch.rand(1, 1, 32, 40)
    mask = (x < 0.3).float()
    with torch.no_grad():
        torch.testing.assert_close(small(x, mask)[0], big(x, mask)[0], rtol=1e-4, atol=1e-5)
    # Without the identity trick the two differ: the check above is not vacuous.
    other = drop_drunet_blocks(big, "fast", "last" if keep == "first" else "first")
    with torch.no_grad():
        assert (other(x, mask)[0] - big(x, mask)[0]).abs().max() > 1e-3


def test_bad_cuts_are_refused():
    with pytest.raises(ValueError, match="DRUNet"):
        drop_drunet_blocks(build_backbone("fbcnn", "slim", "framework"))
    with pytest.raises(ValueError, match="keep"):
        drop_drunet_blocks(build_backbone("drunet", "slim", "framework"), keep="middle")
    with pytest.raises(ValueError, match="widen"):
        shrink_masknet(build_masknet("blind", "fast"), "slim")


def test_shrunk_file_records_its_origin_and_starts_a_fine_tuning(tmp_path, capsys):
    torch.manual_seed(2)
    src = save_model(build_masknet("blind", "slim"), tmp_path / "mask.safetensors", training={"steps": 7})
    dst = tmp_path / "mask_fast.safetensors"
    assert training_main(["shrink", str(src), str(dst)]) == 0
    assert "fast masknet" in capsys.readouterr().out
    meta = read_metadata(dst)["training"]
    assert meta["steps"] == 7 and meta["shrunk_from"]["file"] == "mask.safetensors"
    assert load_model(dst).channels == [8, 16, 32, 64]
    # --init takes it for a fast mask network and refuses it for a slim one.
    model, record = _build_model(TrainConfig(task="mask", preset="fast", init=str(dst)))
    assert model.channels == [8, 16, 32, 64] and record["file"] == "mask_fast.safetensors"
    assert record["shrunk_from"]["file"] == "mask.safetensors"  # the fine-tuned file will say how it began
    with pytest.raises(ValueError, match="different network"):
        _build_model(TrainConfig(task="mask", preset="slim", init=str(dst)))

    bb = save_model(build_backbone("drunet", "slim", "framework"), tmp_path / "fw.safetensors", training={})
    shrink_file(bb, tmp_path / "fw_fast.safetensors", keep="last")
    assert read_metadata(tmp_path / "fw_fast.safetensors")["training"]["shrunk_from"]["cut"] == "blocks (kept the last)"
    model, _ = _build_model(
        TrainConfig(task="restore", preset="fast", mode="framework", init=str(tmp_path / "fw_fast.safetensors"))
    )
    assert model.config["arch_kwargs"]["nb"] == 1
