"""Command line: ``python -m core restore INPUT... -o OUTDIR`` (also installed as ``lineart-restore``).

Parses arguments into :class:`~core.pipeline.RestoreOptions`, loads the models once, and restores
each file with :meth:`~core.pipeline.Restorer.restore`. A file that cannot be read or restored is
reported on stderr and the others still run; the exit status is then 1.

Exit status: 0 all files restored, 1 some failed, 2 bad arguments or models, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from .equations import DEFAULT_THETA
from .errors import InvalidOptionError, RestoreError, WeightsError
from .imageio import BACKGROUNDS, IMAGE_EXTENSIONS

__all__ = ["main", "build_parser", "collect_inputs"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_MASK_HELP = (
    "line mask given to the restoration network: learnt (the mask U-Net, default), otsu "
    "(Otsu's global threshold), otsu_d (Otsu dilated by 3x3), agt (adaptive Gaussian threshold), "
    "none (no mask: the plain baseline network, no background forcing)"
)

_OVERVIEW = """\
Restore JPEG-damaged line art (dark lines on a light background).

Each INPUT is an image file (PNG, JPEG, TIFF, WebP, BMP; 8 or 16 bits; gray, gray+alpha, RGB,
RGBA) or a folder of them. Every image is restored to OUTDIR/<stem>.png, a lossless PNG of the
same size and bit depth; --save-mask also writes OUTDIR/<stem>_mask.png (255 on lines, 0 elsewhere).

How it works: a mask network marks the line pixels, a restoration network repairs the image given
that mask, the background (mask 0) is forced to white and, unless --no-threshold, pixels brighter
than --theta become white. Transparent pixels are composited on white first; colour images are
restored on their luminance (the output is gray). Large images run in overlapping tiles that are
blended without seams, in bounded memory.

commands:
  restore   restore image files (see the options below)
  info      print the models, device and precision that would be used, as JSON

examples:
  python -m core restore scan.jpg -o out/
  python -m core restore pages/ extra.png -o out/ --save-mask --mask otsu_d
  python -m core restore layer.png -o out/ --background transparent   # lines become alpha
  python -m core restore big.jpg -o out/ --tile 512 --device cpu

exit status: 0 all restored, 1 some files failed (each is reported), 2 bad arguments or missing
models, 130 interrupted.
"""


def build_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The top-level parser and its ``restore`` sub-parser."""
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description=_OVERVIEW,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    parser.add_argument("-h", "--help", action="store_true", help="show this help (all commands and options)")
    sub = parser.add_subparsers(dest="command", metavar="{restore,info}")

    models = argparse.ArgumentParser(add_help=False)
    g = models.add_argument_group("models and device")
    g.add_argument("--model", metavar="FILE",
                   help="restoration network to use instead of the shipped one: one of our .safetensors files "
                        "(framework mode for the mask methods, baseline mode for --mask none) or an official "
                        "FBCNN/DRUNet/SwinIR .pth checkpoint (baseline, so with --mask none)")
    g.add_argument("--fast", action="store_true",
                   help="the shipped fast pair (the thinner backbone restore_fast with the default mask "
                        "network): about 1.35x faster on a CPU, 0.5-0.8 dB less exact")
    g.add_argument("--mask-model", metavar="FILE", help="mask network weights instead of the shipped one")
    g.add_argument("--baseline-model", metavar="FILE",
                   help="baseline network for --mask none instead of the shipped one")
    g.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU; default), cpu, cuda or cuda:N")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="inference precision (default: auto); auto = bf16 on CPUs with native bf16 and on CUDA, else fp32")
    g.add_argument("--mask-precision", default=None, choices=["auto", "fp32", "bf16", "fp16"],
                   help="precision of the mask network (default: as --precision); fp32 keeps the "
                        "few line/background decisions that bf16 rounding flips (tens to hundreds per million)")
    g.add_argument("--engine", default="auto", choices=["auto", "torch", "onnxruntime"],
                   help="inference engine (default: auto = ONNX Runtime for networks that run in fp32 on "
                        "the CPU, where it is faster, else torch)")
    g.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch and ONNX Runtime (default: torch's choice)")

    restore = sub.add_parser(
        "restore",
        parents=[models],
        prog="python -m core restore",
        help="restore image files",
        description="Restore image files or folders into OUTDIR.",
    )
    restore.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    restore.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the restored PNGs (created)")
    o = restore.add_argument_group("restoration")
    o.add_argument("--mask", default="learnt", choices=["learnt", "otsu", "otsu_d", "agt", "none"], help=_MASK_HELP)
    o.add_argument("--threshold", action=argparse.BooleanOptionalAction, default=True,
                   help="post-process: pixels brighter than --theta become white (default: on)")
    o.add_argument("--jpeg-consistency", action=argparse.BooleanOptionalAction, default=True,
                   help="project the result onto what the input's JPEG allows: JPEG files with their own "
                        "quantisation table (any encoder), other 8-bit files when their pixels are an "
                        "unedited JPEG with standard tables (default: on)")
    o.add_argument("--normalize-ink", action=argparse.BooleanOptionalAction, default=True,
                   help="restore a drawing in flat light ink (light pen, faded scan) stretched to full "
                        "contrast and scale it back; drawings with darker lines or grainy pencil are left "
                        "as they are (default: on)")
    # choices: core.ensemble.SIZES, not imported here (it brings torch in at start-up)
    o.add_argument("--ensemble", type=int, default=1, choices=(1, 2, 4, 8),
                   help="self-ensemble: run the networks on this many flips and turns of the image and "
                        "average them; up to that many times slower, more exact (default: 1, off)")
    o.add_argument("--theta", type=int, default=DEFAULT_THETA, metavar="0-255", help=f"threshold level, on the 8-bit scale (default: {DEFAULT_THETA})")
    o.add_argument("--qf", default="auto", metavar="1-100|auto",
                   help="JPEG quality hint for non-blind models; auto reads it from each JPEG's quantisation "
                        "table (other files: the model's default; default: auto). Blind models estimate it themselves")
    o.add_argument("--background", default="white", choices=list(BACKGROUNDS),
                   help="white (default): the restored drawing on white; transparent: black lines with alpha = 1 - gray "
                        "(gray input gains an alpha channel, colour input becomes RGBA)")
    o.add_argument("--tile", type=int, metavar="PX", help="tile side in pixels (default: chosen from the device's memory)")
    o.add_argument("--overlap", type=int, metavar="PX", help="overlap between tiles (default: 128, at most a quarter tile)")
    f = restore.add_argument_group("files")
    f.add_argument("--save-mask", action="store_true", help="also write OUTDIR/<stem>_mask.png (255 on lines)")
    f.add_argument("-r", "--recursive", action="store_true",
                   help="descend into sub-folders of folder inputs (their structure is kept under OUTDIR)")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    sub.add_parser("info", parents=[models], prog="python -m core info",
                   help="print the models, device and precision as JSON",
                   description="Print the models, device and precision that restore would use, as JSON.")
    return parser, restore


def collect_inputs(inputs: Sequence[str], recursive: bool = False) -> list[tuple[Path, Path]]:
    """Expand files and folders into ``(path, relative output stem)`` pairs, in a stable order.

    A file gives its own stem; files found in a folder give their path relative to that folder
    without the extension (so sub-folders are kept with ``recursive``). Missing paths are kept so
    that they are reported as failures with the others.
    """
    out: list[tuple[Path, Path]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = p.rglob("*") if recursive else p.iterdir()
            files = sorted(q for q in found if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
            out.extend((q, q.relative_to(p).with_suffix("")) for q in files)
        else:
            out.append((p, Path(p.stem)))
    return out


def _print_help(parser: argparse.ArgumentParser, restore: argparse.ArgumentParser) -> None:
    sys.stdout.write(parser.format_help())
    sys.stdout.write("\n" + "=" * 78 + "\n")
    sys.stdout.write(restore.format_help())


def _load_restorer(args: argparse.Namespace, mask_method: str | None):
    """Load the models ``mask_method`` needs (all shipped ones for ``None``)."""
    from .pipeline import DEFAULT_FILES, FAST_FILES, MODELS_DIR, Restorer

    shipped = FAST_FILES if getattr(args, "fast", False) else DEFAULT_FILES
    roles: dict[str, str | None] = {
        "mask": args.mask_model,
        "restore": None,
        "baseline": args.baseline_model,
    }
    needed = {"mask", "restore", "baseline"} if mask_method is None else set()
    if mask_method == "learnt":
        needed.add("mask")
    if mask_method not in (None, "none") and not args.model:
        needed.add("restore")
    if mask_method == "none" and not args.model:
        needed.add("baseline")
    missing = []
    for role in ("mask", "restore", "baseline"):
        if roles[role] is None and role in needed:
            default = MODELS_DIR / shipped[role]
            if default.is_file():
                roles[role] = str(default)
            else:
                missing.append(str(default))
    if missing and mask_method is not None:
        raise WeightsError(
            "the shipped model weights are missing: " + ", ".join(missing)
            + ". They are trained with `python -m training` and installed into core/models/ (see README, "
            "'Training'); reinstall the package, or give your own with --model/--mask-model/--baseline-model"
        )
    if not any(roles.values()) and args.model is None:
        raise WeightsError("no model weights found: " + ", ".join(missing))
    if not any(roles.values()):
        # Only --model: load it into the role its mode suits, so that info() describes it.
        return Restorer.from_files(
            device=args.device, precision=args.precision, mask_precision=args.mask_precision,
            engine=args.engine,
            **_role_of_model(args.model),
        )
    return Restorer.from_files(
        mask=roles["mask"], restore=roles["restore"], baseline=roles["baseline"],
        device=args.device, precision=args.precision, mask_precision=args.mask_precision,
        engine=args.engine,
    )


def _role_of_model(path: str) -> dict[str, str]:
    from .pipeline import _kind, _load  # noqa: PLC2701 (same package)

    model = _load(path, "restore")
    if _kind(model) == "mask":
        return {"mask": path}
    return {"baseline" if getattr(model, "mode", "") == "baseline" else "restore": path}


def _qf_hint(args: argparse.Namespace) -> int | None | str:
    if args.qf == "auto":
        return "auto"
    try:
        return int(args.qf)
    except ValueError:
        raise InvalidOptionError(f"--qf must be a number 1-100 or 'auto', got {args.qf!r}") from None


def _cmd_info(args: argparse.Namespace) -> int:
    r = _load_restorer(args, None)
    print(json.dumps(r.info(), indent=2, default=str))
    return EXIT_OK


def _cmd_restore(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from .imageio import read_image, write_png
    from .pipeline import RestoreOptions

    qf = _qf_hint(args)
    base = dict(
        mask=args.mask, threshold=args.threshold, theta=args.theta, background=args.background,
        return_mask=args.save_mask, tile=args.tile, overlap=args.overlap, model=args.model,
        jpeg_consistency=args.jpeg_consistency, normalize_ink=args.normalize_ink, ensemble=args.ensemble,
    )
    RestoreOptions(**base, qf=None if qf == "auto" else qf)  # validate before loading models
    restorer = _load_restorer(args, args.mask)
    info = restorer.info()
    non_blind = any(m.get("needs_qf") for m in info["models"].values())

    jobs = collect_inputs(args.inputs, args.recursive)
    if not jobs:
        print("error: no image files found in the inputs", file=sys.stderr)
        return EXIT_USAGE
    outdir = Path(args.output)
    outdir.mkdir(parents=True, exist_ok=True)

    failures: list[tuple[Path, str]] = []
    claimed: dict[Path, Path] = {}
    done_mp = 0.0
    ok = 0
    t0 = time.perf_counter()
    bar = tqdm(total=len(jobs), unit="file", disable=args.quiet, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} [{elapsed}<{remaining}]")
    try:
        for i, (src, rel) in enumerate(jobs):
            bar.set_description(src.name[-30:])
            dst = outdir / rel.with_suffix(".png")
            try:
                key = dst.resolve()
                if key in claimed:
                    raise RestoreError(f"output {dst} would overwrite the result of {claimed[key]}; rename one of them")
                if src.exists() and key == src.resolve():
                    raise RestoreError(f"output {dst} would overwrite the input; choose another OUTDIR")
                claimed[key] = src
                f = read_image(src)
                hint = qf if qf != "auto" else (f.jpeg_quality if non_blind else None)
                # The file's own quantization table serves the JPEG-consistency step (any encoder).
                opts = RestoreOptions(**base, qf=hint, jpeg_table=f.jpeg_table)

                def progress(frac: float, i: int = i) -> None:
                    bar.n = i + frac
                    bar.refresh()

                res = restorer.restore(f.pixels, opts, progress=progress)
                write_png(dst, res.image)
                if args.save_mask and res.mask is not None:
                    write_png(dst.with_name(dst.stem + "_mask.png"), (res.mask * np.uint8(255)).astype(np.uint8))
                ok += 1
                done_mp += f.pixels.shape[0] * f.pixels.shape[1] / 1e6
            except (RestoreError, OSError) as e:
                msg = str(e) if str(src) in str(e) else f"{src}: {e}"
                failures.append((src, msg))
                tqdm.write(f"error: {msg}", file=sys.stderr)
            bar.n = i + 1
            bar.refresh()
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted after {ok} of {len(jobs)} files", file=sys.stderr)
        return EXIT_INTERRUPTED
    bar.close()
    dt = time.perf_counter() - t0
    rate = f", {done_mp / dt:.2f} MP/s" if dt > 0 and done_mp else ""
    summary = f"restored {ok} of {len(jobs)} files ({done_mp:.1f} MP) into {outdir} in {dt:.1f} s{rate}"
    if failures:
        summary += f"; {len(failures)} failed"
    print(summary)
    return EXIT_FAILED if failures else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser, restore = build_parser()
    args = parser.parse_args(argv)
    if args.help or args.command is None:
        _print_help(parser, restore)
        return EXIT_OK if args.help else EXIT_USAGE
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(max(1, args.threads))
    try:
        if args.command == "info":
            return _cmd_info(args)
        return _cmd_restore(args)
    except RestoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
