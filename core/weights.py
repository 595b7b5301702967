"""Saving and loading models: our ``.safetensors`` format, and official checkpoints.

Our files hold the tensors plus string metadata (safetensors allows only str -> str):

    format          "lineart-restore"
    format_version  "1"
    model           JSON: the model's ``config`` (kind, architecture, sizes, mode, variant...)
    training        JSON: how it was trained (data, steps, hours, QF range, validation figures)

``model`` alone is enough to rebuild the network. Official ``.pth`` files of the published
backbones are read only through spandrel's restricted unpickler (no arbitrary code).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .backbones import Backbone, backbone_from_config, backbone_from_spandrel
from .errors import UnsupportedModelError, WeightsError
from .inknet import InkNet, inknet_from_config
from .masknet import MaskUNet, masknet_from_config

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "save_model",
    "load_model",
    "read_metadata",
    "load_official",
    "model_from_config",
]

FORMAT = "lineart-restore"
FORMAT_VERSION = 1


def model_from_config(config: dict[str, Any]) -> MaskUNet | Backbone | InkNet:
    """Build an uninitialised model from a ``config`` dict (``kind`` picks the family)."""
    kind = config.get("kind") if isinstance(config, dict) else None
    if kind == "masknet":
        return masknet_from_config(config)
    if kind == "backbone":
        return backbone_from_config(config)
    if kind == "inknet":
        return inknet_from_config(config)
    raise UnsupportedModelError(
        f"unknown model kind {kind!r} in weights metadata (expected masknet, backbone or inknet)"
    )


def save_model(
    model: MaskUNet | Backbone | InkNet, path: str | os.PathLike, training: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` to ``path`` as safetensors with rebuild metadata; returns the path.

    The file is written to a temporary name first and renamed, so a crash never leaves a
    half-written file under the final name.
    """
    if not isinstance(model, (MaskUNet, Backbone, InkNet)):
        raise TypeError(f"save_model takes a MaskUNet, Backbone or InkNet, got {type(model).__name__}")
    path = Path(path)
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model": json.dumps(model.config),
        "training": json.dumps(training or {}),
    }
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The decoded metadata of one of our weights files: ``{format_version, model, training}``.

    Raises:
        WeightsError: missing, unreadable or truncated file, or not one of ours.
        UnsupportedModelError: written by a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            size = path.stat().st_size
            if header_len <= 0 or 8 + header_len > size:
                raise WeightsError(f"{path} is truncated or not a safetensors file")
            header = json.loads(fh.read(header_len))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise WeightsError(f"cannot read {path}: {e}") from None
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise WeightsError(
            f"{path} has no lineart-restore metadata; it is not one of our models "
            "(official .pth checkpoints load with core.weights.load_official)"
        )
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise WeightsError(f"{path}: format_version {meta.get('format_version')!r} is not a number") from None
    if version > FORMAT_VERSION:
        raise UnsupportedModelError(
            f"{path} was written by a newer lineart-restore (format {version}; this one reads up to "
            f"{FORMAT_VERSION}): upgrade lineart-restore"
        )
    try:
        model_cfg = json.loads(meta["model"])
        training = json.loads(meta.get("training", "{}"))
    except (KeyError, ValueError) as e:
        raise WeightsError(f"{path}: metadata is malformed ({e})") from None
    # Tensor extents must fit in the file, or the data part is truncated.
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + header_len + end > size:
        raise WeightsError(f"{path} is truncated: {size} bytes, {8 + header_len + end} expected")
    return {"format_version": version, "model": model_cfg, "training": training}


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> MaskUNet | Backbone | InkNet:
    """Load one of our weights files into the model it describes, in eval mode on ``device``."""
    meta = read_metadata(path)
    model = model_from_config(meta["model"])
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"cannot read tensors from {path}: {e}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"{path}: tensors do not match the described model: {e}") from None
    model.training_info = meta["training"]  # type: ignore[attr-defined]
    model.source_path = str(path)  # type: ignore[attr-defined]
    return model.to(device).eval()


def load_official(path: str | os.PathLike, mode: str = "baseline", device: str | torch.device = "cpu") -> Backbone:
    """Load an official FBCNN / DRUNet / SwinIR grayscale checkpoint as a :class:`Backbone`.

    ``.pth`` files go through spandrel's restricted unpickler. In ``framework`` mode the model
    gains a zero-initialised mask input channel (it starts equal to the official model).
    """
    from spandrel import ModelLoader
    from spandrel import UnsupportedModelError as SpandrelUnsupported

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        desc = ModelLoader().load_from_file(path)
    except SpandrelUnsupported as e:
        raise UnsupportedModelError(f"{path}: spandrel does not recognise this checkpoint ({e})") from None
    except Exception as e:  # restricted unpickler refusals, truncated zips, bad tensors...
        raise WeightsError(f"cannot load checkpoint {path}: {type(e).__name__}: {e}") from None
    if not isinstance(desc.model, nn.Module):
        raise UnsupportedModelError(f"{path} is not a restoration model")
    return backbone_from_spandrel(desc, mode=mode).to(device).eval()
