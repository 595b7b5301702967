"""waifu2x's VGG7 and ResNet10 denoisers re-written in torch, loading the package's own .npz weights.

The issue's speed target is measured against waifu2x's graph run in torch (the Chainer port is
about 10x slower on CPU). This module rebuilds the denoising graphs of waifu2x==2024.0.1
(``waifu2x/srcnn.py``: ``VGG7`` and ``ResNet10``, both with unpadded 3x3 convolutions and leaky
ReLU slope 0.1) in torch and loads the very same files: the Y-channel models
``anime_style_noise<n>_y.npz`` (one channel in and out) and the RGB ones
``anime_style_noise<n>_rgb.npz`` (three). The .npz files are read with numpy only
(``allow_pickle=False``), so nothing from the waifu2x virtual environment is imported here; only
its model files are read.

How waifu2x feeds them (``reconstruct.image``): a Y model gets the Y of Pillow's YCbCr, which for
a gray (``L``) image is the gray value itself; an RGB model gets the image's R, G, B channels as
they are (no colour conversion, no mean subtraction), in that order. Both get uint8 / 255.

Inference (:func:`denoise`) is whole-image: the input is edge-padded by the model's ``offset``
(7 px for VGG7, 13 px for ResNet10) and run once. Because every convolution is unpadded, this
gives the same result as waifu2x's block-wise loop (``reconstruct.blockwise``), which edge-pads
and runs overlapping blocks. The float output is clipped to [0, 1], scaled by 255 and truncated to
uint8, as ``reconstruct.image`` does for both kinds of model.

Command line (agreement with Chainer outputs and timing)::

    .venv/bin/python -m benchmarks.waifu2x_torch --models-dir DIR --input IN.jpg \\
        [--chainer-output OUT.png] --arch resnet10 --noise 3 [--color rgb] [--threads 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VGG7", "ResNet10", "load_npz_model", "denoise", "model_path", "ARCH_OFFSETS", "COLORS"]

#: Pixels lost on each side by the unpadded convolutions (waifu2x's ``model.offset``).
ARCH_OFFSETS = {"vgg7": 7, "resnet10": 13}
#: waifu2x's model kinds (the suffix of its file names) and their channels in and out.
COLORS = {"y": 1, "rgb": 3}
#: The first convolution of each architecture: its weight's input channels say the model's kind.
_FIRST_CONV = {"vgg7": "conv1/W", "resnet10": "conv_pre/W"}


def _leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


class VGG7(nn.Module):
    """Seven unpadded 3x3 convolutions, ch -> 32 -> 32 -> 64 -> 64 -> 128 -> 128 -> ch channels
    (``ch`` 1 for the Y models, 3 for the RGB ones).

    Input (N, ch, H, W) float in [0, 1] (white = 1); output (N, ch, H - 14, W - 14), unclipped.
    """

    offset = ARCH_OFFSETS["vgg7"]

    def __init__(self, ch: int = 1) -> None:
        super().__init__()
        self.ch = ch
        widths = [ch, 32, 32, 64, 64, 128, 128, ch]
        for i in range(7):
            self.add_module(f"conv{i + 1}", nn.Conv2d(widths[i], widths[i + 1], 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i in range(1, 7):
            h = _leaky(getattr(self, f"conv{i}")(h))
        return self.conv7(h)


class _ResBlock(nn.Module):
    """Two unpadded 3x3 convolutions with leaky ReLU, plus the input cropped by 2 px per side."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3)
        self.conv2 = nn.Conv2d(ch, ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _leaky(self.conv2(_leaky(self.conv1(x))))
        return h + x[:, :, 2:-2, 2:-2]


class ResNet10(nn.Module):
    """waifu2x's ResNet10 (no SE, no upscaling): conv_pre, five residual blocks, conv_bridge with a
    long skip from conv_pre, conv_post; 64 channels inside, ``ch`` in and out (1: Y, 3: RGB).

    Input (N, ch, H, W) float in [0, 1] (white = 1); output (N, ch, H - 26, W - 26), unclipped.
    """

    offset = ARCH_OFFSETS["resnet10"]

    def __init__(self, ch: int = 1) -> None:
        super().__init__()
        self.ch = ch
        self.conv_pre = nn.Conv2d(ch, 64, 3)
        for i in range(1, 6):
            self.add_module(f"res{i}", _ResBlock(64))
        self.conv_bridge = nn.Conv2d(64, 64, 3)
        self.conv_post = nn.Conv2d(64, ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = bridge = _leaky(self.conv_pre(x))
        for i in range(1, 6):
            h = getattr(self, f"res{i}")(h)
        h = _leaky(self.conv_bridge(h)) + bridge[:, :, 11:-11, 11:-11]
        return self.conv_post(h)


def model_path(models_dir: str, arch: str, noise: int, color: str = "y") -> str:
    """Path of waifu2x's denoiser ``<models_dir>/<arch>/anime_style_noise<noise>_<color>.npz``
    (``color``: ``y`` for the Y-channel models, ``rgb`` for the RGB ones)."""
    if arch not in ARCH_OFFSETS:
        raise ValueError(f"unknown waifu2x architecture {arch!r}; expected one of {sorted(ARCH_OFFSETS)}")
    if noise not in (0, 1, 2, 3):
        raise ValueError(f"waifu2x noise level must be 0, 1, 2 or 3, got {noise!r}")
    if color not in COLORS:
        raise ValueError(f"waifu2x model colour must be one of {sorted(COLORS)}, got {color!r}")
    return os.path.join(models_dir, arch, f"anime_style_noise{noise}_{color}.npz")


def load_npz_model(path: str, arch: str) -> nn.Module:
    """Build ``arch`` ("vgg7" or "resnet10") and load a waifu2x .npz state (Chainer names such as
    ``res1/conv1/W`` map to ``res1.conv1.weight``). The channels (1 for a Y model, 3 for an RGB
    one) are read from the first convolution's weight. Raises ValueError when keys or shapes
    differ."""
    if arch not in ARCH_OFFSETS:
        raise ValueError(f"unknown waifu2x architecture {arch!r}; expected one of {sorted(ARCH_OFFSETS)}")
    with np.load(path, allow_pickle=False) as npz:
        first = npz[_FIRST_CONV[arch]].shape if _FIRST_CONV[arch] in npz.files else None
        ch = first[1] if first is not None and len(first) == 4 else 1
        if ch not in COLORS.values():
            raise ValueError(f"{path}: {_FIRST_CONV[arch]} takes {ch} channels; waifu2x models take 1 (Y) or 3 (RGB)")
        model = VGG7(ch) if arch == "vgg7" else ResNet10(ch)
        state = {}
        for key in npz.files:
            module, _, leaf = key.rpartition("/")
            if leaf not in ("W", "b"):
                raise ValueError(f"{path}: unexpected entry {key!r}")
            name = module.replace("/", ".") + (".weight" if leaf == "W" else ".bias")
            state[name] = torch.from_numpy(np.ascontiguousarray(npz[key], dtype=np.float32))
    own = model.state_dict()
    if set(own) != set(state):
        raise ValueError(
            f"{path} does not hold a waifu2x {arch} model: missing {sorted(set(own) - set(state))}, "
            f"unexpected {sorted(set(state) - set(own))}"
        )
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
    model.load_state_dict(state)
    return model.eval()


@torch.inference_mode()
def denoise(model: nn.Module, image: np.ndarray) -> np.ndarray:
    """Denoise a uint8 image with a model from :func:`load_npz_model`: gray (H, W) for a Y model,
    RGB (H, W, 3) for an RGB one (its channels fed as R, G, B, as waifu2x does).

    Returns uint8 of the input's shape: the output clipped to [0, 1], times 255, truncated (as
    waifu2x does).
    """
    gray = model.ch == 1
    ok = isinstance(image, np.ndarray) and image.dtype == np.uint8
    if not (ok and image.ndim == (2 if gray else 3) and (gray or image.shape[2] == 3)):
        raise ValueError(
            f"this waifu2x model takes a uint8 {'(H, W) gray' if gray else '(H, W, 3) RGB'} image, got "
            f"{getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}"
        )
    off = model.offset
    x = torch.from_numpy(image.astype(np.float32) / 255.0)
    x = (x[None] if gray else x.permute(2, 0, 1))[None]
    x = F.pad(x, (off, off, off, off), mode="replicate")
    y = model(x)[0].clamp_(0, 1).mul_(255)
    y = y[0] if gray else y.permute(1, 2, 0)
    return np.ascontiguousarray(y.numpy().astype(np.uint8))


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    p = argparse.ArgumentParser(description="Run waifu2x's denoiser in torch; compare with a Chainer output.")
    p.add_argument("--models-dir", required=True, help="waifu2x's models/ folder (inside its venv)")
    p.add_argument("--input", required=True, help="image to denoise (read as 8-bit L, or RGB with --color rgb)")
    p.add_argument("--chainer-output", help="waifu2x_runner.py's PNG for the same input and model")
    p.add_argument("--arch", default="resnet10", choices=sorted(ARCH_OFFSETS))
    p.add_argument("--noise", type=int, default=3, choices=[0, 1, 2, 3])
    p.add_argument("--color", default="y", choices=sorted(COLORS), help="y: Y-channel model (default); rgb: RGB model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3, help="timed runs after one warm-up (best is reported)")
    p.add_argument("--output", help="write the torch output PNG here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_npz_model(model_path(args.models_dir, args.arch, args.noise, args.color), args.arch)
    mode = "L" if args.color == "y" else "RGB"
    with Image.open(args.input) as im:
        src = np.asarray(im.convert(mode))
    out = denoise(model, src)
    times = []
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        denoise(model, src)
        times.append(time.perf_counter() - t0)
    mp = src.shape[0] * src.shape[1] / 1e6
    rep = {
        "arch": args.arch,
        "noise": args.noise,
        "color": args.color,
        "width": src.shape[1],
        "height": src.shape[0],
        "threads": args.threads,
        "seconds": min(times),
        "seconds_per_mp": min(times) / mp,
    }
    if args.chainer_output:
        with Image.open(args.chainer_output) as im:
            ref = np.asarray(im.convert(mode))
        diff = np.abs(ref.astype(np.int16) - out.astype(np.int16))
        rep.update(max_abs_diff=int(diff.max()), frac_differing=float((diff > 0).mean()))
    if args.output:
        Image.fromarray(out, mode).save(args.output)
    print(json.dumps(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
