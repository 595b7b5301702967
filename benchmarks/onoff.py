"""The row that the on/off benchmarks of one pipeline step print (jpeg_consistency, ink_normalization)."""

from __future__ import annotations

import numpy as np


def gain_row(name: str, qf: int, off: list[float], on: list[float], *extra: str) -> str:
    """``| set | QF | mean off | mean on | mean gain / worst crop's gain | extra... |`` (PSNR dB)."""
    gain = np.subtract(on, off)
    cells = [name, str(qf), f"{np.mean(off):.2f}", f"{np.mean(on):.2f}", f"{gain.mean():+.2f} / {gain.min():+.2f}",
             *extra]
    return "| " + " | ".join(cells) + " |"
