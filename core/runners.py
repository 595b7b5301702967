"""The networks as the pipeline runs them: weight loading, one runner per network (device,
precision, engine) and the probe that measures a network's activation memory per pixel.

A :class:`Runner` places a loaded model on its device in its precision and runs it with torch or
ONNX Runtime (:mod:`core.ort_engine`); :meth:`Runner.bytes_per_pixel` is what the tile size is
chosen from (:func:`core.tiling.choose_tile`).
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .errors import WeightsError
from .inknet import InkNet
from .ort_engine import EngineUnavailable, OrtCore

__all__ = ["load_weights", "model_kind", "Runner", "LiveBytes", "describe", "glue_threads", "is_oom"]


def load_weights(path: str | os.PathLike, role: str) -> torch.nn.Module:
    """Load one network on the CPU: our ``.safetensors`` (:func:`core.weights.load_model`) or an
    official ``.pth``/``.pt``/``.ckpt`` checkpoint as a baseline backbone.

    Raises:
        WeightsError: the file is missing (``role`` names it in the message) or unreadable.
    """
    from . import weights

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{role} weights not found: {p}")
    if p.suffix.lower() in (".pth", ".pt", ".ckpt"):
        return weights.load_official(str(p), mode="baseline")
    return weights.load_model(str(p), device="cpu")


def model_kind(model: torch.nn.Module) -> str:
    """``mask`` for a mask network, ``inks`` for the ink network, ``backbone`` for a restoration
    network."""
    if isinstance(model, InkNet):
        return "inks"
    return "mask" if hasattr(model, "variant") and hasattr(model, "predict") else "backbone"


class Runner:
    """A model placed on a device with its precision and engine, plus its measured activation cost.

    ``engine``: ``torch``; ``onnxruntime`` (CPU, fp32; the model is exported at once and
    ``EngineUnavailable`` raised when it cannot run there); ``auto``: ONNX Runtime for fp32 on the
    CPU when the model exports and agrees with torch, else torch (``engine_note`` says why),
    decided on first use (:meth:`prepare`), so a model never used costs no export.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        name: str,
        device: torch.device,
        precision: str,
        channels_last: bool = True,
        engine: str = "auto",
    ):
        self.name = name
        self.model = model.eval().requires_grad_(False)
        self.device = device
        self.precision = precision
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self._bpp: float | None = None
        self.core: OrtCore | None = None
        self.engine = "torch"
        self.engine_note: str | None = None
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model.to(device=device, memory_format=self.memory_format)
        self._pending = engine != "torch" and device.type == "cpu" and precision == "fp32"
        if engine == "onnxruntime":
            if not self._pending:
                raise EngineUnavailable(
                    f"the onnxruntime engine runs float32 on the CPU; this {name} model runs in "
                    f"{precision} on {device} (use --device cpu --precision fp32, or --engine torch)"
                )
            self.prepare(strict=True)

    def prepare(self, strict: bool = False) -> None:
        """Build the ONNX Runtime session if this runner is to use one (once; cheap afterwards).
        ``strict``: raise ``EngineUnavailable`` instead of falling back to torch."""
        if not self._pending:
            return
        self._pending = False
        try:
            core = OrtCore(self.model, model_kind(self.model))
        except EngineUnavailable as e:
            if strict:
                raise
            self.engine_note = str(e)
            return
        self.core, self.engine = core, "onnxruntime"
        # ONNX Runtime takes plain NCHW inputs; the torch model itself is left as it is (it may
        # be shared with another Restorer).
        self.memory_format = torch.contiguous_format

    def __call__(self, *args: Any) -> Any:
        """The model's forward, computed by this runner's engine."""
        self.prepare()
        return self.model(*args, core=self.core)

    @property
    def multiple_of(self) -> int:
        return int(getattr(self.model, "multiple_of", 8))

    def autocast(self):
        if self.dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.dtype)

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def bytes_per_pixel(self, call: Callable[[int], Any]) -> float:
        """Activation bytes per input pixel: the most tensor memory alive at once while the model
        runs a 64x64 probe (:class:`LiveBytes`), measured once with torch even when ONNX Runtime
        runs the model (its planned buffers stayed below torch's: a fresh process restoring one 1024²
        tile after a small warm-up grew its peak RSS by 289 bytes per pixel with ONNX Runtime, 394
        with torch, one measurement each). Where the live count cannot be taken,
        the sum of every module's output, an upper bound about four times larger."""
        if self._bpp is None:
            self.prepare()  # before the probe: exporting runs the modules too
            side = max(64, self.multiple_of)
            core, self.core = self.core, None
            try:
                try:
                    with LiveBytes() as live:
                        call(side)
                    total = live.peak
                except Exception:  # a dispatch mode this torch cannot run: count outputs instead
                    total = self._sum_of_outputs(call, side)
            finally:
                self.core = core
            self._bpp = max(total / (side * side), 64.0)
        return self._bpp

    def _sum_of_outputs(self, call: Callable[[int], Any], side: int) -> int:
        total = 0

        def hook(_m, _i, out):
            nonlocal total
            for o in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(o, torch.Tensor):
                    total += o.numel() * o.element_size()

        handles = [m.register_forward_hook(hook) for m in self.model.modules() if not list(m.children())]
        try:
            call(side)
        finally:
            for h in handles:
                h.remove()
        return total


class LiveBytes(TorchDispatchMode):
    """Counts the bytes of tensor storage that torch operators create while the mode is on and
    keeps the largest total alive at once (``peak``). A storage counts from the operator that
    returned it until it is freed; views share their base's storage and count once. Workspaces
    that stay inside one kernel are not seen: for the shipped backbone the count (393 bytes per
    pixel) came within a few percent of torch's peak RSS growth on a 1024² tile (394)."""

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._alive: dict[int, int] = {}

    def _freed(self, key: int, nbytes: int) -> None:
        if self._alive.pop(key, None) is not None:
            self.current -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key, nbytes = storage.data_ptr(), storage.nbytes()
            if key and key not in self._alive:
                self._alive[key] = nbytes
                self.current += nbytes
                self.peak = max(self.peak, self.current)
                weakref.finalize(storage, self._freed, key, nbytes)
        return out


def describe(model: torch.nn.Module) -> dict[str, Any]:
    """What ``Restorer.info`` reports of a model: its kind, size and architecture attributes."""
    d: dict[str, Any] = {"kind": model_kind(model), "parameters": sum(p.numel() for p in model.parameters())}
    for key in ("arch", "mode", "preset", "variant", "needs_qf", "predicts_qf", "multiple_of"):
        if hasattr(model, key):
            d[key] = getattr(model, key)
    return d


@contextlib.contextmanager
def glue_threads(runners: list[Runner]):
    """When ONNX Runtime runs every network of this job, torch's own work between the network
    calls (cropping, blending tiles, eq. 1-2) runs on one thread: torch's OpenMP workers keep
    spinning for a while after each multi-threaded op and took the cores ONNX Runtime's threads
    needed (an 808² DRUNet tile: 1.47 s inside the pipeline against 0.92 s alone, 2 cores). Those
    ops are elementwise and cheap on one thread. A job with a torch network too (e.g. FBCNN, or a
    bf16 backbone beside an fp32 mask network) keeps torch's threads for it. The thread count is
    restored afterwards."""
    for r in runners:
        r.prepare()
    if not all(r.engine == "onnxruntime" for r in runners) or torch.get_num_threads() == 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def is_oom(e: BaseException) -> bool:
    """True for the RuntimeErrors torch raises when an allocation fails (CPU or GPU)."""
    if isinstance(e, (torch.OutOfMemoryError, MemoryError)):
        return True
    msg = str(e).lower()
    return "out of memory" in msg or "can't allocate memory" in msg or "not enough memory" in msg
