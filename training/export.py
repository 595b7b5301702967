"""``python -m training export``: turn a run's weights into a shippable file.

The run's ``model.safetensors`` is rewritten with half-precision tensors (the networks are run in
float32 or bf16 after loading; fp16 storage halves the download and changes outputs by far less
than one gray level) and with its training metadata kept, plus any ``--note KEY=VALUE`` facts.

    python -m training export runs/fw/model.safetensors core/models/restore_default.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.weights import load_model, read_metadata, save_model

__all__ = ["export_weights", "add_export_parser"]


def export_weights(src: str | Path, dst: str | Path, half: bool = True, notes: dict | None = None) -> Path:
    """Copy our weights file ``src`` to ``dst`` (fp16 tensors when ``half``), keeping its metadata."""
    meta = read_metadata(src)
    model = load_model(src)
    if half:
        model = model.half()
    training = {**meta["training"], **(notes or {}), "stored_as": "float16" if half else "float32"}
    path = save_model(model, dst, training=training)
    return path


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="write a run's weights as a shippable (fp16) file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", help="a run's model.safetensors")
    p.add_argument("dst", help="output .safetensors")
    p.add_argument("--fp32", dest="half", action="store_false", help="keep float32 tensors")
    p.add_argument(
        "--note",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra training fact to record (value parsed as JSON when possible)",
    )
    p.set_defaults(func=run_export)
    return p


def run_export(args: argparse.Namespace) -> int:
    notes = {}
    for item in args.note:
        key, _, value = item.partition("=")
        try:
            notes[key] = json.loads(value)
        except ValueError:
            notes[key] = value
    path = export_weights(args.src, args.dst, half=args.half, notes=notes)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
