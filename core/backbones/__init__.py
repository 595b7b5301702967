"""Published restoration backbones (FBCNN, DRUNet, SwinIR) in baseline or framework mode.

The networks themselves come from spandrel; each architecture's quirks live in its own adapter
module, listed once in :data:`ADAPTERS` (no import-time self-registration).

    >>> net = build_backbone("drunet", "slim", mode="framework")
    >>> restored, _ = net(jpeg, mask)           # (N,1,H,W) in [0,1], any H, W
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidOptionError, UnsupportedModelError
from . import drunet, fbcnn, swinir
from .base import MODES, Adapter, Backbone, qf_to_map_value

__all__ = [
    "ADAPTERS",
    "Adapter",
    "Backbone",
    "MODES",
    "build_backbone",
    "backbone_from_config",
    "backbone_from_spandrel",
    "qf_to_map_value",
]

#: Our architecture name -> adapter. The one place that lists the supported backbones.
ADAPTERS: dict[str, Adapter] = {a.name: a for a in (fbcnn.ADAPTER, drunet.ADAPTER, swinir.ADAPTER)}


def _adapter(arch: str) -> Adapter:
    try:
        return ADAPTERS[arch]
    except KeyError:
        raise UnsupportedModelError(f"unknown backbone {arch!r}; available: {', '.join(ADAPTERS)}") from None


def build_backbone(
    arch: str = "drunet", preset: str = "slim", mode: str = "framework", qf_map: bool = False, **overrides: Any
) -> Backbone:
    """Build a freshly initialised backbone.

    Args:
        arch: ``fbcnn``, ``drunet`` or ``swinir``.
        preset: ``full`` (the published size) or ``slim`` (fast on a 2-core CPU).
        mode: ``baseline`` (JPEG in) or ``framework`` (JPEG + mask in).
        qf_map: feed ``(100 - QF) / 100`` as an extra constant channel (non-blind model).
        **overrides: constructor arguments replacing the preset's (e.g. ``nb=1``).
    """
    adapter = _adapter(arch)
    if preset not in adapter.presets:
        raise InvalidOptionError(f"{arch} has presets {sorted(adapter.presets)}, not {preset!r}")
    if mode not in MODES:
        raise InvalidOptionError(f"backbone mode must be one of {MODES}, got {mode!r}")
    in_nc = 1 + int(qf_map) + int(mode == "framework")
    kwargs = {**adapter.presets[preset], **overrides, **adapter.channel_kwargs(in_nc)}
    return Backbone(adapter, kwargs, mode=mode, qf_map=qf_map, preset=preset if not overrides else "custom")


def backbone_from_config(config: dict[str, Any]) -> Backbone:
    """Rebuild (uninitialised) the backbone described by ``Backbone.config``."""
    try:
        adapter = _adapter(config["arch"])
        return Backbone(
            adapter,
            config["arch_kwargs"],
            mode=config["mode"],
            qf_map=bool(config["qf_map"]),
            preset=config.get("preset", "custom"),
        )
    except (KeyError, TypeError) as e:
        raise UnsupportedModelError(f"backbone description is incomplete or malformed: {e}") from None


def backbone_from_spandrel(descriptor: Any, mode: str = "baseline") -> Backbone:
    """Wrap a spandrel model descriptor of an official checkpoint as a :class:`Backbone`.

    In ``framework`` mode the network gains one input channel for the mask whose weights start at
    zero, so the new model computes exactly what the official one did until it is trained.
    """
    arch_id = descriptor.architecture.id
    match = [a for a in ADAPTERS.values() if a.spandrel_id == arch_id]
    if not match:
        raise UnsupportedModelError(f"checkpoint is a {arch_id} model; supported backbones are {', '.join(ADAPTERS)}")
    adapter = match[0]
    net = descriptor.model
    kwargs = dict(net.hyperparameters)
    state = net.state_dict()
    # spandrel hides DRUNet's noise-map channel in input_channels: read the first layer instead.
    official_in = int(state[adapter.first_layer].shape[1])
    if official_in != 1 + int(adapter.native_qf_map):
        raise UnsupportedModelError(
            f"{adapter.name} checkpoint takes {official_in} input channels; expected a grayscale model "
            f"({1 + int(adapter.native_qf_map)} channel(s))"
        )
    qf_map = adapter.native_qf_map
    if mode == "framework":
        state = adapter.widen_input(state, 1)
        kwargs.update(adapter.channel_kwargs(official_in + 1))
    elif mode != "baseline":
        raise InvalidOptionError(f"backbone mode must be one of {MODES}, got {mode!r}")
    model = Backbone(adapter, kwargs, mode=mode, qf_map=qf_map, preset="official")
    model.net.load_state_dict(state)
    return model
