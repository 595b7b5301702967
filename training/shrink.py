"""``python -m training shrink``: derive a smaller network from a trained one, to fine-tune.

A smaller network trained from scratch needs hours to catch up; one cut out of a trained network
starts close to it and recovers in a short fine-tuning. Two cuts, one per network family:

* **Mask network, fewer channels** (:func:`shrink_masknet`): each level keeps the feature
  channels with the largest weights writing into them (L1 norm over every layer that adds to that
  level's residual stream), and each residual block keeps the inner channels with the largest
  ``|conv1 out| * |conv2 in|``. Every kept weight is copied as it is.
* **DRUNet, fewer residual blocks per stage** (:func:`drop_drunet_blocks`): each stage keeps
  ``nb`` of its blocks (the first ones, or the last ones); the strided and transposed
  convolutions, head and tail are copied. A residual block whose second convolution is zero is
  the identity, so dropping such blocks changes nothing (the tests check exactly that).

The result is saved with our metadata and a ``shrunk_from`` record, ready for ``--init``:

    python -m training shrink core/models/mask_default.safetensors runs/mask_fast_init.safetensors
    python -m training mask --preset fast --init runs/mask_fast_init.safetensors ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from core.backbones import Backbone, build_backbone
from core.masknet import MASK_PRESETS, MaskUNet, ResBlock, build_masknet
from core.weights import load_model, read_metadata, save_model

__all__ = ["shrink_masknet", "drop_drunet_blocks", "shrink_file", "add_shrink_parser"]


def _out_norm(w: torch.Tensor) -> torch.Tensor:
    """L1 norm of each output channel of a conv weight ``(out, in, kh, kw)``."""
    return w.detach().abs().flatten(1).sum(1)


def _top(score: torch.Tensor, k: int) -> torch.Tensor:
    return torch.sort(torch.topk(score, k).indices).values


def _copy_conv(dst: nn.Conv2d, src: nn.Conv2d, out_idx: torch.Tensor, in_idx: torch.Tensor) -> None:
    dst.weight.copy_(src.weight[out_idx][:, in_idx])
    if src.bias is not None:
        dst.bias.copy_(src.bias[out_idx])


def _copy_block(dst: ResBlock, src: ResBlock, idx: torch.Tensor, inner: int) -> None:
    score = _out_norm(src.conv1.weight) * src.conv2.weight.detach().abs().sum((0, 2, 3))
    mid = _top(score, inner)
    _copy_conv(dst.conv1, src.conv1, mid, idx)
    _copy_conv(dst.conv2, src.conv2, idx, mid)


@torch.no_grad()
def shrink_masknet(src: MaskUNet, preset: str = "fast") -> MaskUNet:
    """A mask network of ``preset`` size whose weights are cut out of ``src`` (same depth and blocks)."""
    dst = build_masknet(src.variant, preset, qf=src.qf, qf_range=src.qf_range)
    if len(dst.channels) != len(src.channels) or dst.blocks != src.blocks:
        raise ValueError(
            f"shrink keeps depth and blocks: {src.channels}x{src.blocks} -> {dst.channels}x{dst.blocks} changes them"
        )
    if any(d > s for d, s in zip(dst.channels, src.channels)):
        raise ValueError(f"shrink cannot widen {src.channels} to {dst.channels}")
    levels = len(src.channels)
    # Importance of each level's stream channels: the weights of every layer writing into it.
    score = [torch.zeros(c) for c in src.channels]
    score[0] += _out_norm(src.head.weight)
    for i in range(levels - 1):
        score[i + 1] += _out_norm(src.down[i].weight)
        score[i] += src.up[i].weight.detach().abs().sum((0, 2, 3))  # ConvTranspose: (in, out, kh, kw)
        for b in list(src.enc[i]) + list(src.dec[i]):
            score[i] += _out_norm(b.conv2.weight)
    for b in src.bottom:
        score[-1] += _out_norm(b.conv2.weight)
    idx = [_top(s, k) for s, k in zip(score, dst.channels)]

    in_all = torch.arange(src.head.weight.shape[1])
    _copy_conv(dst.head, src.head, idx[0], in_all)
    for i in range(levels - 1):
        for d, s in zip(dst.enc[i], src.enc[i]):
            _copy_block(d, s, idx[i], dst.channels[i])
        for d, s in zip(dst.dec[i], src.dec[i]):
            _copy_block(d, s, idx[i], dst.channels[i])
        _copy_conv(dst.down[i], src.down[i], idx[i + 1], idx[i])
        dst.up[i].weight.copy_(src.up[i].weight[idx[i + 1]][:, idx[i]])
        dst.up[i].bias.copy_(src.up[i].bias[idx[i]])
    for d, s in zip(dst.bottom, src.bottom):
        _copy_block(d, s, idx[-1], dst.channels[-1])
    _copy_conv(dst.tail, src.tail, torch.arange(2), idx[0])
    return dst


#: DRUNet's stages that hold residual blocks (plus, in the down and up stages, one resampling layer).
_DRUNET_STAGES = ("m_down1", "m_down2", "m_down3", "m_body", "m_up3", "m_up2", "m_up1")


def _stage_layers(sd: dict, stage: str) -> tuple[list[str], str | None]:
    """Prefixes of ``stage``'s residual blocks in order, and of its other layer (or None), in a
    DRUNet state dict. spandrel unwraps a one-layer stage, so its keys read ``m_body.res.0...``."""
    names = [k[len(stage) + 1 :] for k in sd if k.startswith(stage + ".")]
    if any(n.startswith("res.") for n in names):
        return [stage], None
    blocks, other = [], None
    for i in sorted({int(n.split(".", 1)[0]) for n in names}):
        prefix = f"{stage}.{i}"
        if any(k.startswith(prefix + ".res.") for k in sd):
            blocks.append(prefix)
        else:
            other = prefix
    return blocks, other


@torch.no_grad()
def drop_drunet_blocks(src: Backbone, preset: str = "fast", keep: str = "first") -> Backbone:
    """A DRUNet backbone of ``preset`` (same widths, fewer blocks per stage) keeping, in each stage,
    the ``first`` or the ``last`` of ``src``'s residual blocks."""
    if src.arch != "drunet":
        raise ValueError(f"dropping blocks is for DRUNet backbones, not {src.arch}")
    if keep not in ("first", "last"):
        raise ValueError(f"keep must be 'first' or 'last', not {keep!r}")
    dst = build_backbone("drunet", preset, mode=src.mode, qf_map=src.qf_map)
    kw_src, kw_dst = src.config["arch_kwargs"], dst.config["arch_kwargs"]
    if kw_src["nc"] != kw_dst["nc"]:
        raise ValueError(f"dropping blocks keeps the widths: {kw_src['nc']} -> {kw_dst['nc']} changes them")
    nb_src, nb_dst = int(kw_src["nb"]), int(kw_dst["nb"])
    if nb_dst > nb_src:
        raise ValueError(f"cannot go from {nb_src} to {nb_dst} blocks per stage by dropping")
    sd, target = src.net.state_dict(), dst.net.state_dict()
    rename = {}  # destination prefix -> source prefix
    for stage in _DRUNET_STAGES:
        src_blocks, src_other = _stage_layers(sd, stage)
        dst_blocks, dst_other = _stage_layers(target, stage)
        kept = src_blocks[:nb_dst] if keep == "first" else src_blocks[nb_src - nb_dst :]
        rename.update(zip(dst_blocks, kept))
        if dst_other is not None:
            rename[dst_other] = src_other
    out = {}
    for key in target:
        for new, old in rename.items():
            if key.startswith(new + "."):
                out[key] = sd[old + key[len(new) :]]
                break
        else:
            out[key] = sd[key]  # head and tail
    dst.net.load_state_dict(out)
    return dst


def shrink_file(src: str | Path, dst: str | Path, preset: str = "fast", keep: str = "first") -> Path:
    """Shrink our weights file ``src`` (a mask network or a DRUNet backbone) to ``preset`` and save
    it as ``dst`` with its training metadata and a ``shrunk_from`` record."""
    meta = read_metadata(src)
    model = load_model(src).float()
    if isinstance(model, MaskUNet):
        if preset not in MASK_PRESETS:
            raise ValueError(f"mask network presets are {sorted(MASK_PRESETS)}, not {preset!r}")
        small = shrink_masknet(model, preset)
        how = "channels"
    else:
        small = drop_drunet_blocks(model, preset, keep)
        how = f"blocks (kept the {keep})"
    training = {**meta["training"], "shrunk_from": {"file": Path(src).name, "preset": preset, "cut": how}}
    return save_model(small, dst, training=training)


def add_shrink_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "shrink",
        help="cut a smaller network out of a trained one (to fine-tune)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", help="one of our .safetensors files: a mask network or a DRUNet backbone")
    p.add_argument("dst", help="output .safetensors (use it with --init)")
    p.add_argument("--preset", default="fast", help="size to cut down to (default %(default)s)")
    p.add_argument(
        "--keep",
        default="first",
        choices=["first", "last"],
        help="DRUNet: which residual blocks of each stage to keep (default %(default)s)",
    )
    p.set_defaults(func=run_shrink)
    return p


def run_shrink(args: argparse.Namespace) -> int:
    path = shrink_file(args.src, args.dst, args.preset, args.keep)
    model = load_model(path)
    n = sum(t.numel() for t in model.state_dict().values())
    print(f"{path}: {model.config.get('preset')} {model.config.get('kind')}, {n} parameters")
    return 0
