"""Experiment (not part of the pipeline): JPEG consistency on 4:2:0 chroma, after the shipped step.

A 4:2:0 JPEG stores its chroma as the 2x2 average at half resolution; the decoder upsamples it with
libjpeg's "fancy" (triangle) filter. Here, per chroma plane of the decoded RGB (with the clipping
bounds of :func:`core.colour.jpeg_chroma`): the half-resolution plane is estimated by undoing that
upsampling (projected gradient steps on the bounds), its coefficients read back with the IJG chroma
table (a block is trusted when the decoding of those coefficients lies within 2 levels of the
estimate), and the 2x2 averages of the restored layer's chroma are projected onto the trusted
boxes, each average's correction added to its four pixels (the exact projection for an average).
Prints the RGB PSNR of the restored layer (default options) and after this projection.

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.chroma420_experiment
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def _up(c: np.ndarray, axis: int) -> np.ndarray:
    """libjpeg's fancy upsampling along ``axis`` (without its rounding): ``(3 c_j + c_(j-+1)) / 4``."""
    c = np.moveaxis(c, axis, 0)
    prev, nxt = np.concatenate([c[:1], c[:-1]]), np.concatenate([c[1:], c[-1:]])
    out = np.empty((2 * c.shape[0],) + c.shape[1:])
    out[0::2], out[1::2] = (3 * c + prev) / 4, (3 * c + nxt) / 4
    return np.moveaxis(out, 0, axis)


def _up_t(o: np.ndarray, axis: int) -> np.ndarray:
    """The adjoint of :func:`_up`."""
    o = np.moveaxis(o, axis, 0)
    e, d = o[0::2], o[1::2]
    c = 0.75 * (e + d)
    c[:-1] += 0.25 * e[1:]
    c[0] += 0.25 * e[0]
    c[1:] += 0.25 * d[:-1]
    c[-1] += 0.25 * d[-1]
    return np.moveaxis(c, 0, axis)


def half_plane(decoded: np.ndarray, lower: np.ndarray, upper: np.ndarray, iterations: int = 200) -> np.ndarray:
    """The half-resolution plane whose fancy upsampling lies within ``lower``..``upper``."""
    h, w = decoded.shape
    c = decoded.reshape(h // 2, 2, w // 2, 2).mean((1, 3))
    for _ in range(iterations):
        u = _up(_up(c, 0), 1)
        res = np.where(u < lower, lower - u, np.where(u > upper, upper - u, 0.0))
        c = c + 0.45 * _up_t(_up_t(res, 1), 0)
    return c


def main() -> int:
    torch.set_num_threads(1)
    from benchmarks.compare_waifu2x import _read_gray, choose_crop, crop
    from core import colour
    from core import jpeg_consistency as jc
    from core.metrics import psnr
    from core.pipeline import RestoreOptions, Restorer
    from training.colour import coloured_crop, jpeg_rgb

    r = Restorer.default(device="cpu")
    data = Path("/work/shared/data")
    files = sorted((data / "lineart" / "val").glob("*.png"))[:6] + sorted((data / "kanji").glob("*.png"))[:2]
    gains = []
    for i, f in enumerate(files):
        full = _read_gray(f)
        clean = coloured_crop(crop(full, choose_crop(full, 256)), i if i < 6 else i - 6)
        for q in (20, 40):
            j = jpeg_rgb(clean, q, "4:2:0")
            res = r.restore(j, RestoreOptions(return_mask=True))
            out = res.image.astype(np.float64)
            y = out @ np.array([0.299, 0.587, 0.114])
            qt = torch.tensor(jc.ijg_chroma_table(q).reshape(64), dtype=torch.float32)
            planes, trusted = [], []
            for w, (_p8, (lo, hi)) in zip(colour.CHROMA_WEIGHTS, colour.jpeg_chroma(j)):
                c = half_plane(j.astype(np.float64) @ np.asarray(w) + 128, lo.astype(np.float64), hi.astype(np.float64))
                cb = jc._blocks(c.astype(np.float32), 0, 0).reshape(-1, 64)
                k = torch.round(jc.dct8(cb - 128) / qt)
                ok = (jc.idct8(k * qt) + 128 - cb).abs().amax(1) <= 2.0
                cur = out @ np.asarray(w) + 128
                a = jc._blocks(
                    cur.reshape(cur.shape[0] // 2, 2, cur.shape[1] // 2, 2).mean((1, 3)).astype(np.float32), 0, 0
                )
                a = a.reshape(-1, 64)
                proj = jc.idct8(torch.clamp(jc.dct8(a - 128), (k - 0.5) * qt, (k + 0.5) * qt)) + 128
                delta = torch.where(ok[:, None], proj - a, torch.zeros_like(a))
                d = jc._unblocks(delta.reshape(c.shape[0] // 8, c.shape[1] // 8, 64)).numpy()
                planes.append(cur + np.repeat(np.repeat(d, 2, 0), 2, 1))
                trusted.append(round(float(ok.float().mean()), 2))
            cb_, cr_ = planes[0] - 128, planes[1] - 128
            rgb = np.stack([y + 1.402 * cr_, y - 0.344136 * cb_ - 0.714136 * cr_, y + 1.772 * cb_], -1)
            rgb[res.mask == 0] = 255
            rgb = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
            a_, b_ = psnr(clean, res.image), psnr(clean, rgb)
            gains.append(b_ - a_)
            print(f"{f.stem[:20]:20s} QF {q}: {a_:.2f} -> {b_:.2f} ({b_ - a_:+.3f} dB), blocks trusted {trusted}")
    print(f"mean {np.mean(gains):+.3f} dB, min {np.min(gains):+.3f}, max {np.max(gains):+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
