"""Multiply-adds per output pixel of our networks and of waifu2x's denoisers.

Speed per pixel is roughly work per pixel over work per second; this prints the first factor,
counted over every convolution and transposed convolution of each graph on a 256 x 256 input
(waifu2x's unpadded graphs get their edge padding, so every count is per *output* pixel). The
counts depend on the architectures only, not on weights: ours are built at the shipped files'
sizes (the default and the fast pair), waifu2x's from ``benchmarks/waifu2x_torch.py``.

    python -m benchmarks.count_macs
"""

from __future__ import annotations

import sys

import torch
from torch import nn


def macs_per_pixel(model: nn.Module, x: torch.Tensor, *args, out_pixels: int) -> float:
    """Sum over the model's (transposed) convolutions of output elements x kernel taps x input
    channels per group, divided by ``out_pixels``."""
    total = 0

    def hook(m, inputs, out):
        nonlocal total
        kh, kw = m.kernel_size
        if isinstance(m, nn.ConvTranspose2d):
            total += inputs[0].numel() * m.out_channels * kh * kw // m.groups
        else:
            total += out.numel() * kh * kw * (m.in_channels // m.groups)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            model(x, *args)
    finally:
        for h in handles:
            h.remove()
    return total / out_pixels


def main() -> int:
    from benchmarks.common import shipped_path
    from benchmarks.waifu2x_torch import ARCH_OFFSETS, VGG7, ResNet10
    from core.weights import load_model

    side = 256
    x = torch.rand(1, 1, side, side)
    rows = []
    for label, fast in (("ours", False), ("ours fast", True)):
        mask = load_model(shipped_path("mask", fast)).float()
        restore = load_model(shipped_path("restore", fast)).float()
        m = macs_per_pixel(mask, x, out_pixels=side * side)
        r = macs_per_pixel(restore, x, torch.ones_like(x), out_pixels=side * side)
        rows += [(f"{label}: mask network", m), (f"{label}: restore backbone", r), (f"{label}: both", m + r)]
    from core.pipeline import colour_inks_path

    inks = colour_inks_path(None)  # the ink network of coloured layers, where it is shipped
    if inks is not None:
        rows.append(
            (
                "ours: ink network (colour)",
                macs_per_pixel(load_model(inks).float(), torch.rand(1, 7, side, side), out_pixels=side * side),
            )
        )
    for name, cls in (("vgg7", VGG7), ("resnet10", ResNet10)):
        pad = ARCH_OFFSETS[name]
        xp = torch.rand(1, 1, side + 2 * pad, side + 2 * pad)
        rows.append((f"waifu2x {name}", macs_per_pixel(cls().eval(), xp, out_pixels=side * side)))
    for name, v in rows:
        print(f"{name:28} {v / 1000:8.1f} k multiply-adds per pixel")
    return 0


if __name__ == "__main__":
    sys.exit(main())
