"""The ink network: a learnt estimate of each pixel's ink colour on a coloured layer.

The colour stage (:mod:`core.colour`) restores a coloured drawing as a line plane ``v'`` (the
networks' work) times a per-pixel ink direction ``u`` (darkness per unit of the plane's
darkness): ``d' = (1 - v') u``. Its hand-made ``u`` is a ratio of local sums of the JPEG's
darkness, which cannot undo what a 4:2:0 JPEG does to a thin stroke's chroma: averaged over 2x2
pixels with the paper beside it (diluted towards grey), then clipped by the decoder where it
spills onto paper. This network looks at the JPEG's darkness, the line plane and that first
estimate, and corrects the estimate.

Shape: the seven full-resolution input planes (:func:`core.colour.ink_features`) are folded 2x2
into channels (4:2:0 chroma lives at half resolution anyway, and every layer costs a quarter),
then a 3x3 convolution, residual blocks, a 3x3 convolution to 12 channels and the unfold back:
a correction added to the first estimate, kept non-negative. The last convolution starts at zero,
so a fresh network returns the hand-made estimate unchanged. (The colour stage then scales each
pixel to the first estimate's strength: :func:`core.colour.refine_directions`.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InvalidOptionError, UnsupportedModelError
from .masknet import ResBlock

__all__ = ["INK_FEATURES", "INK_PRESETS", "InkNet", "build_inknet", "inknet_from_config"]

#: Input planes: the layer's darkness (R, G, B), the line plane's darkness, the first ``u`` (3).
INK_FEATURES = 7
#: ``small``: about 10 k multiply-adds per pixel, as much as the colour layers' mask network.
INK_PRESETS: dict[str, dict[str, Any]] = {
    "small": {"channels": 24, "blocks": 3},
    "medium": {"channels": 32, "blocks": 4},
}


class InkNet(nn.Module):
    """Corrects the colour stage's ink directions ``u``.

    Args:
        channels: feature width (at half resolution).
        blocks: residual blocks.
        preset: label recorded in the metadata.
    """

    def __init__(self, channels: int = 24, blocks: int = 3, preset: str = "custom"):
        super().__init__()
        if channels < 1 or blocks < 1:
            raise InvalidOptionError("the ink network needs at least 1 channel and 1 block")
        self.channels, self.blocks, self.preset = int(channels), int(blocks), preset
        self.head = nn.Conv2d(4 * INK_FEATURES, self.channels, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(self.channels) for _ in range(self.blocks)])
        self.tail = nn.Conv2d(self.channels, 4 * 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    #: Input sides are padded to a multiple of this.
    multiple_of = 2
    needs_qf = False

    @property
    def config(self) -> dict[str, Any]:
        return {"kind": "inknet", "channels": self.channels, "blocks": self.blocks, "preset": self.preset}

    def extra_repr(self) -> str:
        return f"channels={self.channels}, blocks={self.blocks}"

    def forward(self, features: torch.Tensor, *, core: Callable | None = None) -> torch.Tensor:
        """``(N, 7, H, W)`` features (:func:`core.colour.ink_features`) -> ``(N, 3, H, W)`` ink
        directions, non-negative; any H, W. ``core`` computes :meth:`forward_padded` instead of
        this module's own layers (an exported copy of them)."""
        if features.ndim != 4 or features.shape[1] != INK_FEATURES:
            raise InvalidOptionError(
                f"the ink network takes (N, {INK_FEATURES}, H, W) features, got {tuple(features.shape)}"
            )
        h, w = features.shape[-2:]
        x = features
        if h % 2 or w % 2:
            x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        delta = (core or self.forward_padded)(x)[:, :, :h, :w]
        return F.relu(features[:, 4:7] + delta.to(features.dtype))

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The layers alone on features of even sides: ``(N, 7, H, W)`` -> the ``(N, 3, H, W)``
        correction of the first estimate."""
        f = F.relu(self.head(F.pixel_unshuffle(x, 2)), inplace=True)
        return F.pixel_shuffle(self.tail(self.body(f)), 2)


def build_inknet(preset: str = "small") -> InkNet:
    """A fresh ink network at a preset size (its corrections start at zero)."""
    if preset not in INK_PRESETS:
        raise InvalidOptionError(f"ink network presets are {sorted(INK_PRESETS)}, not {preset!r}")
    return InkNet(**INK_PRESETS[preset], preset=preset)


def inknet_from_config(config: dict[str, Any]) -> InkNet:
    """Rebuild (uninitialised) the ink network described by ``InkNet.config``."""
    try:
        return InkNet(channels=config["channels"], blocks=config["blocks"], preset=config.get("preset", "custom"))
    except (KeyError, TypeError) as e:
        raise UnsupportedModelError(f"ink network description is incomplete or malformed: {e}") from None
