"""FBCNN (Jiang et al., ICCV 2021): a blind JPEG restorer that predicts the quality factor.

Traps handled here: the network pads to a multiple of 8 itself but we pad anyway (tiles stay
aligned); it returns ``(image, qf)``; its QF head is hard-wired to 512 features, so the deepest
level stays 512 wide even in the slim preset; quality control takes ``1 - QF/100`` as ``(N, 1)``.
"""

from __future__ import annotations

from spandrel.architectures.FBCNN import FBCNN

from .base import Adapter, unet_channels, widen_input_conv

PRESETS = {
    # Published gray model: 71.9 M parameters.
    "full": {"nc": [64, 128, 256, 512], "nb": 4},
    # CPU preset: thin upper levels, one block per level; the 512-wide bottom is forced by the QF head.
    "slim": {"nc": [16, 32, 64, 512], "nb": 1},
}


def _run(net, x, qf_control):
    out, qf = net(x, qf_control)
    return out, qf


ADAPTER = Adapter(
    name="fbcnn",
    spandrel_id="FBCNN",
    presets=PRESETS,
    make=lambda **kw: FBCNN(**kw),
    channel_kwargs=unet_channels,
    widen_input=widen_input_conv,
    run=_run,
    multiple_of=lambda kw: 8,
    predicts_qf=True,
)
