"""Which backbone to ship? Size, CPU inference speed and CPU training speed of each preset.

    python -m benchmarks.bench_backbones [--size 512] [--threads 2] [--train-steps 5]

Prints one row per (architecture, preset) in framework mode: parameters, weights size (fp32 MB),
inference megapixels/s (bf16 autocast + channels_last, after one warm-up) and training steps/s
(batch 16 x 96^2, masked MSE). The slim mask network is timed alongside, since every restore runs it.
"""

from __future__ import annotations

import argparse
import time

import torch

from core.backbones import build_backbone
from core.equations import masked_mse
from core.masknet import build_masknet


def _infer_mps(fn, x, repeat: int = 2) -> float:
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fn(x)
        t = time.perf_counter()
        for _ in range(repeat):
            fn(x)
        dt = (time.perf_counter() - t) / repeat
    return x.shape[-1] * x.shape[-2] / 1e6 / dt


def _train_sps(model, steps: int, mask_net: bool = False) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.rand(16, 1, 96, 96).contiguous(memory_format=torch.channels_last)
    m = (x < 0.5).float()
    model.train()

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if mask_net:
                loss = torch.nn.functional.cross_entropy(model(x).float(), m[:, 0].long())
            else:
                loss = masked_mse(model(x, m)[0].float(), x, m)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512, help="inference image side (default %(default)s)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--full", action="store_true", help="also time the published (full) sizes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.rand(1, 1, args.size, args.size).contiguous(memory_format=torch.channels_last)
    mask = (x < 0.5).float()
    print(f"threads={args.threads}  inference {args.size}x{args.size}  training batch 16x96^2")
    print(f"{'model':<24}{'params':>12}{'MB fp32':>10}{'infer MP/s':>12}{'train step/s':>14}")
    rows = [("mask U-Net slim", build_masknet("blind", "slim"), True)]
    presets = ["slim", "full"] if args.full else ["slim"]
    for arch in ("drunet", "fbcnn", "swinir"):
        for preset in presets:
            rows.append((f"{arch} {preset} framework", build_backbone(arch, preset, mode="framework"), False))
    for name, model, is_mask in rows:
        model = model.eval().to(memory_format=torch.channels_last)
        n = sum(p.numel() for p in model.parameters())
        size = x if not name.startswith("swinir") else x[..., :128, :128]
        fn = (lambda t: model(t)) if is_mask else (lambda t: model(t, mask[..., : t.shape[-2], : t.shape[-1]]))
        mps = _infer_mps(fn, size.contiguous(memory_format=torch.channels_last))
        sps = _train_sps(model, args.train_steps, is_mask) if n < 5e6 or args.full else float("nan")
        print(f"{name:<24}{n:>12,}{n * 4 / 1e6:>10.1f}{mps:>12.2f}{sps:>14.2f}", flush=True)


if __name__ == "__main__":
    main()
