"""DRUNet (Zhang et al., TPAMI 2021): a bias-free residual U-Net told the degradation by a map.

Traps handled here: the network does not pad, so inputs go in at a multiple of 8; spandrel's own
call appends a denoising noise map of 15/255, which is wrong for JPEG deblocking weights; we build
the map from the JPEG quality instead, ``(100 - QF) / 100``, as the deblocking model was trained.
Without ``qf_map`` the same network is used blind (image, and in framework mode the mask, only).
"""

from __future__ import annotations

from spandrel.architectures.DRUNet import DRUNet

from .base import Adapter, unet_channels, widen_input_conv

PRESETS = {
    # Published deblocking model: 32.6 M parameters.
    "full": {"nc": [64, 128, 256, 512], "nb": 4},
    # CPU preset (~1 M parameters).
    "slim": {"nc": [16, 32, 64, 128], "nb": 2},
    # slim with one residual block per stage (about 70 % of its time); cut out of a slim model
    # with ``python -m training shrink`` and fine-tuned.
    "fast": {"nc": [16, 32, 64, 128], "nb": 1},
}


def _run(net, x, qf_control):
    return net(x), None


ADAPTER = Adapter(
    name="drunet",
    spandrel_id="DRUNet",
    presets=PRESETS,
    make=lambda **kw: DRUNet(**kw),
    channel_kwargs=unet_channels,
    widen_input=widen_input_conv,
    run=_run,
    multiple_of=lambda kw: 8,
    native_qf_map=True,
)
