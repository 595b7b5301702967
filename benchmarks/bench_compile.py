"""Would ``torch.compile`` make the shipped networks faster? Why the pipeline does not use it.

Times the shipped mask network and framework backbone on square inputs, eager (bf16 autocast,
``channels_last``, as the pipeline runs them) and through ``torch.compile`` with inductor's weight
freezing, at a fixed shape (``dynamic=False``). Prints, per size, seconds per megapixel of each
network both ways (the fastest of ``--repeat`` runs after a warm-up call) and how long the first,
compiling call of each new shape took. The pipeline's tiles take every size up to the tile, so a
compiled pipeline would pay that first-call cost for every new layer size.

    python -m benchmarks.bench_compile --sizes 256 512 768 1024 --threads 1

Needs a C++ compiler (inductor generates C++ on CPU).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from benchmarks.common import shipped_path
from core.weights import load_model


def _best_seconds(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 768, 1024])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import torch._inductor.config as inductor_config

    nets = {}
    for role in ("mask", "restore"):
        model = load_model(shipped_path(role)).eval().requires_grad_(False)
        model = model.to(memory_format=torch.channels_last)
        nets[role] = (model, torch.compile(model, dynamic=False))
    print(
        f"# torch {torch.__version__}, {args.threads} thread(s), bf16 autocast, channels_last; "
        "s/MP = seconds per megapixel, first call = the compiling call of that shape"
    )
    print(
        "| size | mask eager | mask compiled | mask first call | backbone eager | backbone compiled "
        "| backbone first call |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16), inductor_config.patch(freezing=True):
        for s in args.sizes:
            x = torch.rand(1, 1, s, s).contiguous(memory_format=torch.channels_last)
            mask = (x < 0.5).float().contiguous(memory_format=torch.channels_last)
            mp = s * s / 1e6
            cells = []
            for role, call in (("mask", lambda m: m(x, None)), ("restore", lambda m: m(x, mask, None))):
                eager, compiled = nets[role]
                call(eager)
                t_eager = _best_seconds(lambda: call(eager), args.repeat) / mp
                t = time.perf_counter()
                call(compiled)
                first = time.perf_counter() - t
                t_comp = _best_seconds(lambda: call(compiled), args.repeat) / mp
                cells += [f"{t_eager:.3f}", f"{t_comp:.3f} ({100 * (t_comp / t_eager - 1):+.0f} %)", f"{first:.1f} s"]
            print(f"| {s}² | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
