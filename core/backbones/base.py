"""The backbone wrapper shared by every architecture.

A :class:`Backbone` owns one of spandrel's published networks and turns our calling convention into
the network's own: it assembles the input channels (image, optional QF map, optional mask), pads
to the size the network needs, runs it and crops back. Architecture-specific knowledge lives in an
:class:`Adapter` (one module per architecture, listed in :mod:`core.backbones`).

Input channel order is always ``[image, qf_map?, mask?]``: the mask channel is appended *last* so
that an official checkpoint can be widened by one zero-initialised input channel and still compute
exactly what it computed before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidImageError, InvalidOptionError
from ..tensor_checks import as_qf_tensor, check_network_input

__all__ = ["Adapter", "Backbone", "MODES", "qf_to_map_value", "widen_input_conv", "unet_channels"]

#: ``baseline``: JPEG in, image out. ``framework``: JPEG + line mask in (the paper's method).
MODES = ("baseline", "framework")


def qf_to_map_value(qf: torch.Tensor) -> torch.Tensor:
    """The constant map value that encodes a JPEG quality factor: ``(100 - QF) / 100``."""
    return (100.0 - qf.float()) / 100.0


def widen_input_conv(sd: dict[str, torch.Tensor], extra: int, key: str = "m_head.weight") -> dict[str, torch.Tensor]:
    """A copy of state dict ``sd`` whose input convolution ``key`` has ``extra`` more input
    channels, with zero weights (so they change nothing until trained)."""
    sd = dict(sd)
    w = sd[key]
    sd[key] = torch.cat([w, w.new_zeros(w.shape[0], extra, *w.shape[2:])], dim=1)
    return sd


def unet_channels(in_nc: int) -> dict[str, int]:
    """Constructor kwargs of FBCNN/DRUNet for ``in_nc`` input channels and one gray output."""
    return {"in_nc": in_nc, "out_nc": 1}


@dataclass(frozen=True)
class Adapter:
    """What we must know about one published architecture.

    Attributes:
        name: our name for it (``fbcnn``, ``drunet``, ``swinir``).
        spandrel_id: the architecture id spandrel's loader reports for official checkpoints.
        presets: preset name -> constructor keyword arguments (without channel counts).
        make: builds the network from keyword arguments and the number of input channels.
        channel_kwargs: given the number of input channels, the constructor kwargs that set them.
        widen_input: adds zero-initialised input channels to a state dict (keys -> tensors).
        run: calls the network on the assembled, padded input; returns (image, qf_pred or None).
        multiple_of: given the constructor kwargs, the spatial multiple the network needs.
        predicts_qf: whether ``run`` returns a QF prediction.
        native_qf_map: whether the published model takes a QF/noise map as an input channel.
        first_layer: state-dict key of the input convolution's weight (its dim 1 = input channels).
    """

    name: str
    spandrel_id: str
    presets: dict[str, dict[str, Any]]
    make: Callable[..., nn.Module]
    channel_kwargs: Callable[[int], dict[str, Any]]
    widen_input: Callable[[dict[str, torch.Tensor], int], dict[str, torch.Tensor]]
    run: Callable[[nn.Module, torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor | None]]
    multiple_of: Callable[[dict[str, Any]], int]
    first_layer: str = "m_head.weight"
    predicts_qf: bool = False
    native_qf_map: bool = False
    json_safe: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda kw: kw)


class Backbone(nn.Module):
    """A published restoration network in baseline or framework mode.

    Args:
        adapter: the architecture's :class:`Adapter`.
        arch_kwargs: constructor arguments of the network (channel counts included).
        mode: ``baseline`` or ``framework``.
        qf_map: append a constant ``(100 - QF) / 100`` map as an input channel (DRUNet's way of being
            told the quality; makes the model non-blind).
        preset: a label recorded in the metadata (``slim``, ``full``, ``official``, ``custom``).
    """

    def __init__(self, adapter: Adapter, arch_kwargs: dict[str, Any], *, mode: str, qf_map: bool, preset: str):
        super().__init__()
        if mode not in MODES:
            raise InvalidOptionError(f"backbone mode must be one of {MODES}, got {mode!r}")
        self.adapter = adapter
        self.arch = adapter.name
        self.mode = mode
        self.qf_map = bool(qf_map)
        self.preset = preset
        self.arch_kwargs = dict(arch_kwargs)
        self.net = adapter.make(**self.arch_kwargs)

    # -- facts --------------------------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        return 1 + int(self.qf_map) + int(self.mode == "framework")

    @property
    def needs_qf(self) -> bool:
        """True when a QF must be given (the model was trained with a QF map)."""
        return self.qf_map

    @property
    def predicts_qf(self) -> bool:
        return self.adapter.predicts_qf

    @property
    def multiple_of(self) -> int:
        return self.adapter.multiple_of(self.arch_kwargs)

    @property
    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this model (stored in the weights metadata)."""
        return {
            "kind": "backbone",
            "arch": self.arch,
            "mode": self.mode,
            "qf_map": self.qf_map,
            "preset": self.preset,
            "arch_kwargs": self.adapter.json_safe(self.arch_kwargs),
        }

    def extra_repr(self) -> str:
        return f"arch={self.arch}, mode={self.mode}, qf_map={self.qf_map}, preset={self.preset}"

    # -- forward ------------------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        qf: torch.Tensor | float | None = None,
        *,
        core: Callable | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Restore a batch.

        Args:
            x: JPEG-decoded images, ``(N, 1, H, W)`` float in ``[0, 1]`` (white = 1).
            mask: line masks ``(N, 1, H, W)`` of 0/1, required in framework mode, ignored otherwise.
            qf: JPEG quality (1-100), a number or an ``(N,)`` tensor. Required when ``needs_qf``;
                for FBCNN it optionally overrides the predicted quality.
            core: computes :meth:`forward_padded` instead of this module's own network (an
                exported copy of it, e.g. :class:`core.ort_engine.OrtCore`).

        Returns:
            ``(restored, qf_pred)``: restored ``(N, 1, H, W)`` (not clamped), and for FBCNN the
            predicted quality as ``(N,)`` values in 0-100, else ``None``.
        """
        check_network_input(x, "backbone input")
        n, _, h, w = x.shape
        parts = [x]
        qf_t = None if qf is None else as_qf_tensor(qf, n, x.device)
        if self.qf_map:
            if qf_t is None:
                raise InvalidOptionError(
                    f"this {self.arch} model was trained with a QF map: give the JPEG quality (qf)"
                )
            parts.append(qf_to_map_value(qf_t).to(x.dtype).view(n, 1, 1, 1).expand(n, 1, h, w))
        if self.mode == "framework":
            if mask is None:
                raise InvalidOptionError("framework-mode backbone needs a line mask")
            if tuple(mask.shape) != (n, 1, h, w):
                raise InvalidImageError(f"mask shape {tuple(mask.shape)} does not match image {(n, 1, h, w)}")
            parts.append(mask.to(x.dtype))
        inp = torch.cat(parts, dim=1) if len(parts) > 1 else x
        m = self.multiple_of
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            inp = F.pad(inp, (0, pw, 0, ph), mode="replicate")
        qf_control = None
        if self.adapter.predicts_qf and qf_t is not None:
            qf_control = (1.0 - qf_t / 100.0).view(n, 1).to(x.dtype)
        out, qf_pred = (core or self.forward_padded)(inp, qf_control)
        out = out[:, :1, :h, :w]
        if qf_pred is not None:
            qf_pred = 100.0 * (1.0 - qf_pred.reshape(n).float())
        return out, qf_pred

    def forward_padded(
        self, inp: torch.Tensor, qf_control: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The network alone, on input already assembled (``[image, qf_map?, mask?]``) and padded
        to a multiple of :attr:`multiple_of`; no checks. Returns the network's own outputs
        (image, and FBCNN's raw QF prediction or ``None``), uncropped."""
        return self.adapter.run(self.net, inp, qf_control)
