"""ONNX Runtime as the inference engine of the networks on CPUs without native bf16.

Where the CPU has no native bfloat16 (AVX2-only x86, as in many laptops and desktops), the
networks run in float32, and there ONNX Runtime's CPU kernels (convolutions fused with their
activation and residual add, blocked memory layouts) ran the shipped networks faster than torch
in ``channels_last`` on an AVX2-only CPU: at 1024² the backbone pass 1.68x, the whole pipeline
1.59x (``python -m benchmarks.bench_pipeline``; figures in docs/pipeline.md). On CPUs with native bf16
torch's bf16 path is kept.

:class:`OrtCore` exports one model's ``forward_padded`` (the layers alone, no checks or padding) to
ONNX in memory, with dynamic batch, height and width, opens it in an ONNX Runtime session, and
checks on a probe that it computes what torch computes. The model's own ``forward`` keeps the
input checks, padding and cropping and calls the session through its ``core`` argument::

    core = OrtCore(model, "mask")
    logits = model(x, core=core)          # same as model(x), computed by ONNX Runtime

Only networks without extra inputs or outputs, whose graph holds for any size, run here: the
mask U-Net and DRUNet. FBCNN (QF control and prediction) is not exported; SwinIR exports, but its
window reshapes are traced at one size, so the probe at another size fails and it stays on torch.
"""

from __future__ import annotations

import io
import threading
import warnings

import numpy as np
import torch
from torch import nn

from . import options as _options
from .errors import InvalidOptionError

__all__ = ["ENGINES", "EngineUnavailable", "OrtCore", "export_onnx", "ort_import_error"]

#: ``auto``: ONNX Runtime for float32 CPU inference where the model exports, torch otherwise.
ENGINES = _options.ENGINES
#: ONNX opset of the exported graphs.
OPSET = 17
#: Largest difference from torch (in [0, 1] image units or logits) accepted on the probe.
PARITY_TOLERANCE = 1e-3


class EngineUnavailable(InvalidOptionError):
    """ONNX Runtime cannot run this model here (not installed, model not exportable, mismatch)."""


_shared_arena_lock = threading.Lock()
_shared_arena: bool | None = None  # None: not tried yet; False: registration failed


def _use_shared_arena(ort, so) -> None:
    """Make the session allocate from one CPU arena shared by every session of the process.

    With an arena per session, each network keeps the memory of its largest tile after the run,
    so the mask network's and the backbone's add up: a 2048² restore peaked at 1593 MB against
    1184 MB with one shared arena (and 1103 MB with torch), at the same speed. Where this
    onnxruntime cannot register one, sessions keep their own.
    """
    global _shared_arena
    with _shared_arena_lock:
        if _shared_arena is None:
            try:
                info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
                ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))
                _shared_arena = True
            except Exception:  # an onnxruntime without the API, or one already registered elsewhere
                _shared_arena = False
        if _shared_arena:
            so.add_session_config_entry("session.use_env_allocators", "1")


def ort_import_error() -> str | None:
    """``None`` when onnxruntime and onnx import, else why not (for messages)."""
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime  # noqa: F401
    except Exception as e:  # ImportError, or a broken binary wheel
        return f"{type(e).__name__}: {e}"
    return None


class _Padded(nn.Module):
    """The module that is exported: ``forward_padded`` with one tensor in and one out."""

    def __init__(self, model: nn.Module, kind: str):
        super().__init__()
        self.model = model
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "mask":
            return self.model.forward_padded(x)
        return self.model.forward_padded(x, None)[0]


def export_onnx(model: nn.Module, kind: str, f) -> None:
    """Write ``model.forward_padded`` as ONNX to ``f`` (a path or a binary file): one input ``x``
    and one output ``y``, dynamic batch, height and width, opset :data:`OPSET`. ``kind`` is
    ``mask`` or ``backbone``. The graph every :class:`OrtCore` runs; export errors propagate."""
    m = int(getattr(model, "multiple_of", 8))
    side = max(64, m)
    example = torch.rand(1, _input_channels(model, kind), side, side)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Padded(model, kind).eval(),
            (example,),
            f,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}},
            opset_version=OPSET,
            dynamo=False,
        )


def _input_channels(model: nn.Module, kind: str) -> int:
    if kind == "mask":
        return 2 if getattr(model, "variant", "blind") == "qfmap" else 1
    return int(model.in_channels)


def _is_alloc_failure(e: BaseException) -> bool:
    msg = str(e).lower()
    return any(s in msg for s in ("failed to allocate", "bad allocation", "bad_alloc", "out of memory"))


class OrtCore:
    """An ONNX Runtime session computing ``model.forward_padded``.

    Args:
        model: a ``MaskUNet`` (``kind="mask"``) or a ``Backbone`` (``kind="backbone"``), on the CPU.
        kind: ``mask`` or ``backbone``.

    The session's intra-op threads are torch's count when it is built (``torch.get_num_threads()``).
    Raises:
        EngineUnavailable: onnxruntime/onnx are missing, the model has inputs or outputs this
            engine does not carry (FBCNN), export failed, or the session disagrees with torch.
    """

    def __init__(self, model: nn.Module, kind: str):
        if kind not in ("mask", "backbone"):
            raise ValueError(f"kind must be 'mask' or 'backbone', got {kind!r}")
        why = ort_import_error()
        if why is not None:
            raise EngineUnavailable(f"onnxruntime is not usable here ({why}); install onnxruntime and onnx")
        if kind == "backbone" and getattr(model, "predicts_qf", False):
            raise EngineUnavailable(
                f"the {getattr(model, 'arch', '?')} backbone predicts and takes a JPEG quality, "
                "which the onnxruntime engine does not carry; it runs on torch"
            )
        import onnxruntime as ort

        self.kind = kind
        self.threads = torch.get_num_threads()
        channels = _input_channels(model, kind)
        m = int(getattr(model, "multiple_of", 8))
        wrapper = _Padded(model, kind).eval()
        buf = io.BytesIO()
        try:
            export_onnx(model, kind, buf)
        except Exception as e:  # export raises many types; none of them is the caller's fault
            raise EngineUnavailable(f"could not export the {kind} network to ONNX: {type(e).__name__}: {e}") from e
        self.graph_bytes = len(buf.getvalue())

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3  # errors only: no warnings on the server's console
        # Tiles come in several shapes; without memory patterns a 2048² restore peaked 220 MB
        # lower at the same speed.
        so.enable_mem_pattern = False
        _use_shared_arena(ort, so)
        try:
            self.session = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise EngineUnavailable(f"onnxruntime could not open the exported {kind} network: {e}") from e

        # Parity on a probe of another shape than the export's, so dynamic sizes are exercised.
        ph, pw = -(-72 // m) * m, -(-104 // m) * m
        probe = torch.rand(1, channels, ph, pw, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            want = wrapper(probe).float()
        try:
            got = self(probe)
        except (RuntimeError, MemoryError) as e:
            # e.g. SwinIR: its window reshapes are traced at the export's size.
            raise EngineUnavailable(
                f"the exported {kind} network does not run at other sizes ({str(e)[:200]}); using torch"
            ) from e
        got = got[0] if isinstance(got, tuple) else got
        diff = float((got - want).abs().max()) if got.shape == want.shape else float("inf")
        if not diff <= PARITY_TOLERANCE:
            raise EngineUnavailable(
                f"onnxruntime's {kind} network differs from torch by {diff:.3g} on a probe "
                f"(tolerance {PARITY_TOLERANCE}); using torch"
            )
        self.parity = diff

    def __call__(self, x: torch.Tensor, *_qf_control):
        """Run the session on a padded input; backbones get ``(image, None)`` like
        ``Backbone.forward_padded``, mask networks the logits tensor."""
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        try:
            (y,) = self.session.run(None, {"x": arr})
        except Exception as e:
            if _is_alloc_failure(e):
                raise MemoryError(f"onnxruntime: {e}") from e
            raise RuntimeError(f"onnxruntime failed on a {tuple(arr.shape)} input: {e}") from e
        out = torch.from_numpy(y)
        return out if self.kind == "mask" else (out, None)

    def __repr__(self) -> str:
        return f"OrtCore(kind={self.kind!r}, threads={self.threads}, graph={self.graph_bytes} bytes)"
