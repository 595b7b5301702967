"""The mask-predicting network: a residual U-Net that labels each pixel *line* or *background*.

Our own network (the paper's Fig. 4 shape): an encoder of residual blocks with strided-conv
downsampling, a residual bottleneck, a decoder with transposed-conv upsampling and additive skip
connections, and a 1x1 head giving 2-class logits (index 0 background, 1 line). Trained with
cross-entropy against eq. 3's mask; at inference the mask is the argmax.

Three conditioning variants, as in the paper:

* ``blind``  - the JPEG only; trained over a range of qualities (pairs with FBCNN-style blind use).
* ``qfmap``  - the JPEG plus a constant ``(100 - QF) / 100`` map (pairs with DRUNet).
* ``single`` - the JPEG only, trained at one QF (pairs with per-QF SwinIR models).

Layout follows timm's model files: blocks, model, presets/factory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InvalidOptionError
from .tensor_checks import as_qf_tensor, check_network_input

__all__ = [
    "ResBlock",
    "MaskUNet",
    "MASK_PRESETS",
    "VARIANTS",
    "build_masknet",
    "masknet_from_config",
    "mask_with_rim",
]

VARIANTS = ("blind", "qfmap", "single")

#: ``full``: the paper's scale (64-512 channels, two residual blocks per level).
#: ``slim``: fast on a 2-core CPU.
MASK_PRESETS: dict[str, dict[str, Any]] = {
    "full": {"channels": [64, 128, 256, 512], "blocks": 2},
    "slim": {"channels": [16, 32, 64, 96], "blocks": 1},
    #: ``fast``: half the width of ``slim`` (about a third of its time); cut out of a slim model
    #: with ``python -m training shrink`` and fine-tuned.
    "fast": {"channels": [8, 16, 32, 64], "blocks": 1},
}


class ResBlock(nn.Module):
    """conv3x3 -> ReLU -> conv3x3, added to the input.

    Args:
        channels: feature channels in and out.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


def _stage(channels: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])


class MaskUNet(nn.Module):
    """Residual U-Net predicting 2-class line/background logits.

    Args:
        variant: ``blind``, ``qfmap`` or ``single`` (see module docstring).
        channels: feature width per level, top to bottom (its length sets the depth).
        blocks: residual blocks per stage.
        qf: for the ``single`` variant, the JPEG quality it was trained at (metadata only).
        qf_range: the quality range it was trained over (metadata only).
        preset: label recorded in the metadata.
    """

    def __init__(
        self,
        variant: str = "blind",
        channels: Sequence[int] = (16, 32, 64, 96),
        blocks: int = 1,
        qf: int | None = None,
        qf_range: Sequence[int] = (5, 95),
        preset: str = "custom",
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise InvalidOptionError(f"mask network variant must be one of {VARIANTS}, got {variant!r}")
        if len(channels) < 2 or blocks < 1:
            raise InvalidOptionError("mask network needs at least 2 levels and 1 block per stage")
        if variant == "single" and qf is None:
            raise InvalidOptionError("the 'single' mask network variant needs the QF it is trained for")
        self.variant = variant
        self.channels = [int(c) for c in channels]
        self.blocks = int(blocks)
        self.qf = None if qf is None else int(qf)
        self.qf_range = [int(q) for q in qf_range]
        self.preset = preset
        in_ch = 2 if variant == "qfmap" else 1
        c = self.channels
        self.head = nn.Conv2d(in_ch, c[0], 3, padding=1)
        self.enc = nn.ModuleList([_stage(c[i], blocks) for i in range(len(c) - 1)])
        self.down = nn.ModuleList([nn.Conv2d(c[i], c[i + 1], 2, stride=2) for i in range(len(c) - 1)])
        self.bottom = _stage(c[-1], 2 * blocks)
        self.up = nn.ModuleList([nn.ConvTranspose2d(c[i + 1], c[i], 2, stride=2) for i in range(len(c) - 1)])
        self.dec = nn.ModuleList([_stage(c[i], blocks) for i in range(len(c) - 1)])
        self.tail = nn.Conv2d(c[0], 2, 1)

    @property
    def multiple_of(self) -> int:
        return 2 ** (len(self.channels) - 1)

    @property
    def needs_qf(self) -> bool:
        return self.variant == "qfmap"

    @property
    def config(self) -> dict[str, Any]:
        return {
            "kind": "masknet",
            "variant": self.variant,
            "channels": self.channels,
            "blocks": self.blocks,
            "qf": self.qf,
            "qf_range": self.qf_range,
            "preset": self.preset,
        }

    def extra_repr(self) -> str:
        return f"variant={self.variant}, channels={self.channels}, blocks={self.blocks}"

    def forward(
        self, x: torch.Tensor, qf: torch.Tensor | float | None = None, *, core: Callable | None = None
    ) -> torch.Tensor:
        """Logits for each pixel.

        Args:
            x: JPEG-decoded images ``(N, 1, H, W)``, float in ``[0, 1]`` (white = 1), any H, W.
            qf: JPEG quality 1-100 (number or ``(N,)``), required by the ``qfmap`` variant.
            core: computes :meth:`forward_padded` instead of this module's own layers (an
                exported copy of them, e.g. :class:`core.ort_engine.OrtCore`).

        Returns:
            ``(N, 2, H, W)`` logits; channel 1 is *line*.
        """
        check_network_input(x, "mask network input")
        n, _, h, w = x.shape
        if self.variant == "qfmap":
            if qf is None:
                raise InvalidOptionError("the 'qfmap' mask network needs the JPEG quality (qf)")
            q = as_qf_tensor(qf, n, x.device).to(x.dtype)
            x = torch.cat([x, ((100.0 - q) / 100.0).view(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)
        m = self.multiple_of
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return (core or self.forward_padded)(x)[:, :, :h, :w]

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The layers alone, on input already assembled (image, QF map for ``qfmap``) and padded
        to a multiple of :attr:`multiple_of`; no checks. ``(N, C, H, W)`` -> ``(N, 2, H, W)``."""
        # Centre the input around 0: white (1.0) background becomes 0.5, lines go negative.
        f = self.head(x - 0.5)
        skips = []
        for enc, down in zip(self.enc, self.down):
            f = enc(f)
            skips.append(f)
            f = down(f)
        f = self.bottom(f)
        for up, dec, skip in zip(reversed(self.up), reversed(self.dec), reversed(skips)):
            f = dec(up(f) + skip)
        return self.tail(f)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, qf: torch.Tensor | float | None = None) -> torch.Tensor:
        """The binary line mask ``(N, 1, H, W)`` (float 0/1): argmax of the logits."""
        logits = self.forward(x, qf)
        return (logits[:, 1:2] > logits[:, 0:1]).to(x.dtype)


def mask_with_rim(diff: torch.Tensor, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The line mask of a logit difference ``diff`` (line minus paper logit, ``(..., H, W)``) and
    that mask with its uncertain rim: the 8-neighbours of line pixels whose line logit falls short
    of the paper logit by less than ``margin``. Both bool, ``diff``'s shape. What eq. 2 keeps of a
    layer taken for resized (``core.pipeline.RIM_MARGIN``), and what a backbone trained for such
    layers is scored on (``python -m training restore --loss-rim``)."""
    mask = diff > 0
    flat = mask.reshape(-1, 1, *mask.shape[-2:]).to(torch.float32)
    near = F.max_pool2d(flat, 3, stride=1, padding=1).reshape(mask.shape) > 0
    return mask, mask | (near & (diff > -margin))


def build_masknet(variant: str = "blind", preset: str = "slim", **kwargs: Any) -> MaskUNet:
    """A freshly initialised mask network at a preset size (``full`` or ``slim``)."""
    if preset not in MASK_PRESETS:
        raise InvalidOptionError(f"mask network presets are {sorted(MASK_PRESETS)}, not {preset!r}")
    return MaskUNet(variant=variant, **{**MASK_PRESETS[preset], **kwargs}, preset=preset)


def masknet_from_config(config: dict[str, Any]) -> MaskUNet:
    """Rebuild (uninitialised) the mask network described by ``MaskUNet.config``."""
    from .errors import UnsupportedModelError

    try:
        return MaskUNet(
            variant=config["variant"],
            channels=config["channels"],
            blocks=config["blocks"],
            qf=config.get("qf"),
            qf_range=config.get("qf_range", (5, 95)),
            preset=config.get("preset", "custom"),
        )
    except (KeyError, TypeError) as e:
        raise UnsupportedModelError(f"mask network description is incomplete or malformed: {e}") from None
