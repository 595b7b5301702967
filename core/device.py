"""Device and precision choice: which torch device runs the networks, and in which precision."""

from __future__ import annotations

from functools import lru_cache

import torch

from .errors import InvalidOptionError
from .options import PRECISIONS

__all__ = ["PRECISIONS", "resolve_device", "cpu_has_native_bf16", "resolve_precision", "available_ram"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; other names are checked for availability."""
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise InvalidOptionError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidOptionError("CUDA was requested but no CUDA device is available; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidOptionError(f"no CUDA device {dev.index}; there are {torch.cuda.device_count()}")
    elif dev.type != "cpu":
        raise InvalidOptionError(f"device type {dev.type!r} is not supported; use cpu or cuda")
    return dev


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX), where bf16 autocast
    measured several times faster than float32; elsewhere bf16 is emulated and slower."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            flags = f.read()
    except OSError:
        return False
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and torch.backends.mkldnn.is_available()


def resolve_precision(precision: str, device: torch.device) -> str:
    """Map ``auto`` to ``fp32``/``bf16``/``fp16`` for ``device`` and validate the others."""
    if precision not in PRECISIONS:
        raise InvalidOptionError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise InvalidOptionError("fp16 is for CUDA; on CPU use bf16 or fp32")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def available_ram() -> float:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``; else 4 GiB)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 4.0 * 2**30
