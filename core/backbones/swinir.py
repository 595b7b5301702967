"""SwinIR (Liang et al., ICCVW 2021), the gray JPEG artefact-reduction configuration.

Traps handled here: the network ties its output channels to its input channels, so a framework
model (image + mask in) also returns two channels: we keep the first and, when widening an
official checkpoint, give the extra output row zero weights; the global residual then adds the
image to channel 0 exactly as before. It pads to a multiple of its window (reflect) internally;
we pad to the window ourselves so tiles stay aligned. One official model exists per QF.
"""

from __future__ import annotations

import torch
from spandrel.architectures.SwinIR import SwinIR

from .base import Adapter, widen_input_conv

_COMMON = {"upscale": 1, "img_range": 255.0, "upsampler": "", "resi_connection": "1conv", "mlp_ratio": 2}

PRESETS = {
    # Published gray CAR model (one per QF): 11.5 M parameters.
    "full": {**_COMMON, "img_size": 126, "window_size": 7, "depths": [6] * 6, "embed_dim": 180, "num_heads": [6] * 6},
    # CPU preset: a few thin stages.
    "slim": {**_COMMON, "img_size": 64, "window_size": 8, "depths": [2] * 4, "embed_dim": 48, "num_heads": [6] * 4},
}


def _channels(in_nc: int) -> dict:
    return {"in_chans": in_nc}


def _widen(sd: dict[str, torch.Tensor], extra: int) -> dict[str, torch.Tensor]:
    sd = widen_input_conv(sd, extra, "conv_first.weight")
    lw, lb = sd["conv_last.weight"], sd["conv_last.bias"]
    sd["conv_last.weight"] = torch.cat([lw, lw.new_zeros(extra, *lw.shape[1:])], dim=0)
    sd["conv_last.bias"] = torch.cat([lb, lb.new_zeros(extra)], dim=0)
    return sd


def _run(net, x, qf_control):
    return net(x), None


def _json_safe(kw: dict) -> dict:
    # spandrel records norm_layer as a class; our presets never set it, so drop non-JSON values.
    return {k: v for k, v in kw.items() if isinstance(v, (int, float, str, bool, list, type(None)))}


_KEEP = {
    "img_size",
    "patch_size",
    "in_chans",
    "embed_dim",
    "depths",
    "num_heads",
    "window_size",
    "mlp_ratio",
    "qkv_bias",
    "qk_scale",
    "ape",
    "patch_norm",
    "upscale",
    "img_range",
    "upsampler",
    "resi_connection",
}


def _make(**kw):
    return SwinIR(**{k: v for k, v in kw.items() if k in _KEEP})


ADAPTER = Adapter(
    name="swinir",
    spandrel_id="SwinIR",
    presets=PRESETS,
    make=_make,
    channel_kwargs=_channels,
    widen_input=_widen,
    run=_run,
    multiple_of=lambda kw: int(kw["window_size"]),
    first_layer="conv_first.weight",
    json_safe=lambda kw: {k: v for k, v in _json_safe(kw).items() if k in _KEEP},
)
