"""Would 8-bit integer networks make the pipeline faster without hurting it? A measurement.

Each shipped network is exported to ONNX as the ONNX Runtime engine exports it
(``core.ort_engine``), quantized statically with ONNX Runtime's own tool (QDQ format, uint8
activations, int8 weights per channel, the first and last convolution kept in fp32, calibrated
on synthetic JPEG-damaged drawings at QF 10-60: the backbone on the learnt mask of each), and
both versions run on the same inputs with the same threads. Printed per network: milliseconds per ``--side``² input in fp32 and int8, and how far the
int8 output lands from fp32 on inputs not used for calibration (backbone: gray levels; mask
network: share of mask pixels that flip).

With ``--pipeline``, the default pipeline (ONNX Runtime engine) is also run with both int8
networks in place of the fp32 ones on the waifu2x comparison's crops (``--data``, 3 drawings per
set, 256² windows, QF 10-40), and the mean PSNR of each is printed per set and QF.

    python -m benchmarks.bench_int8 --side 512 --threads 1 --pipeline
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import DATA_ROOT, drawing, shipped_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", type=int, default=512, help="side of the timed input (default 512)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3, help="timed runs, best reported")
    p.add_argument("--pipeline", action="store_true", help="also score the whole pipeline with int8 networks")
    p.add_argument("--data", default=DATA_ROOT, help="data root for --pipeline (lineart/val, kanji)")
    args = p.parse_args(argv)

    import onnx
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from core.ort_engine import export_onnx
    from core.weights import load_model

    torch.set_num_threads(args.threads)
    mask_net = load_model(shipped_path("mask")).eval()
    backbone = load_model(shipped_path("restore")).eval()

    def planes(seeds, side):
        return [
            drawing(side, seed=s, qf=q).astype(np.float32)[None, None] / 255 for s in seeds for q in (10, 20, 40, 60)
        ]

    def with_mask(xs):
        with torch.inference_mode():
            return [np.concatenate([x, mask_net.predict(torch.from_numpy(x)).float().numpy()], 1) for x in xs]

    calib_x, test_x = planes(range(6), 256), planes(range(100, 103), 256)
    timed_x = planes([200], args.side)[:1]
    data = {
        "mask": (mask_net, calib_x, test_x, timed_x),
        "backbone": (backbone, with_mask(calib_x), with_mask(test_x), with_mask(timed_x)),
    }

    class Reader(CalibrationDataReader):
        def __init__(self, xs):
            self._it = iter([{"x": x} for x in xs])

        def get_next(self):
            return next(self._it, None)

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.log_severity_level = 3

    def best_ms(session, x):
        session.run(None, {"x": x})
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            session.run(None, {"x": x})
            times.append(time.perf_counter() - t)
        return 1000 * min(times)

    print(f"# bench_int8  {time.strftime('%Y-%m-%d %H:%M')}  onnxruntime {ort.__version__}  threads {args.threads}")
    print(f"{'network':9} {'fp32 ms':>8} {'int8 ms':>8} {'speed-up':>8}  int8 against fp32 (held-out inputs)")
    int8_sessions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, (model, calib, test, timed) in data.items():
            f32, pre, q8 = (str(Path(tmp) / f"{kind}{s}.onnx") for s in ("", "_pre", "_int8"))
            export_onnx(model, kind, f32)
            quant_pre_process(f32, pre, skip_symbolic_shape=True)
            # the usual care: the first and the last convolution (image in, logits/image out) stay fp32
            convs = [n.name for n in onnx.load(pre).graph.node if n.op_type in ("Conv", "ConvTranspose")]
            quantize_static(
                pre,
                q8,
                Reader(calib),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=[convs[0], convs[-1]],
            )
            s32 = ort.InferenceSession(f32, so, providers=["CPUExecutionProvider"])
            s8 = ort.InferenceSession(q8, so, providers=["CPUExecutionProvider"])
            ms32, ms8 = best_ms(s32, timed[0]), best_ms(s8, timed[0])
            a = np.concatenate([s32.run(None, {"x": x})[0] for x in test])
            b = np.concatenate([s8.run(None, {"x": x})[0] for x in test])
            if kind == "mask":
                flips = float(((a[:, 1] > a[:, 0]) != (b[:, 1] > b[:, 0])).mean())
                err = f"{100 * flips:.2f} % of mask pixels flip"
            else:
                d = 255 * np.abs(np.clip(a, 0, 1) - np.clip(b, 0, 1))
                err = f"mean {d.mean():.2f}, max {d.max():.0f} gray levels"
            print(f"{kind:9} {ms32:8.0f} {ms8:8.0f} {ms32 / ms8:7.2f}x  {err}", flush=True)
            int8_sessions[kind] = s8
    if args.pipeline:
        pipeline_part(args, int8_sessions)
    return 0


def pipeline_part(args, int8_sessions) -> None:
    """Mean PSNR of the default pipeline with fp32 and with int8 networks, per set and QF."""
    from compare_waifu2x import _jpeg, _sets, clean_crops

    from core.metrics import psnr
    from core.pipeline import RestoreOptions, Restorer

    sets = _sets(argparse.Namespace(set=[], light_set=[], smooth_light_set=[], data=args.data))  # the comparison's sets
    fp32 = Restorer.default(device="cpu", precision="fp32", engine="onnxruntime")
    int8 = Restorer.default(device="cpu", precision="fp32", engine="onnxruntime")
    for role, kind in (("mask", "mask"), ("restore", "backbone")):
        int8._runners[role].core.session = int8_sessions[kind]  # the same graph, quantized
    print("\n| set | QF | fp32 PSNR | int8 PSNR | int8 - fp32 (dB) |\n|---|---:|---:|---:|---:|")
    for s in sets:
        crops = [c for _s, _p, _b, c in clean_crops([s], 3, 256, 0)]
        for qf in (10, 20, 30, 40):
            a = np.mean([psnr(fp32.restore(_jpeg(c, qf), RestoreOptions()).image, c) for c in crops])
            b = np.mean([psnr(int8.restore(_jpeg(c, qf), RestoreOptions()).image, c) for c in crops])
            print(f"| {s.name} | {qf} | {a:.2f} | {b:.2f} | {b - a:+.2f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
