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
from collections.abc import Sequence
from pathlib import Path

from . import options as option_table
from .errors import InvalidOptionError, RestoreError, WeightsError
from .imageio import IMAGE_EXTENSIONS

__all__ = ["main", "build_parser", "collect_inputs"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

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
    g.add_argument(
        "--model",
        metavar="FILE",
        help="restoration network to use instead of the shipped one: one of our .safetensors files "
        "(framework mode for the mask methods, baseline mode for --mask none) or an official "
        "FBCNN/DRUNet/SwinIR .pth checkpoint (baseline, so with --mask none)",
    )
    g.add_argument("--fast", action="store_true", help=option_table.FAST_HELP)
    g.add_argument("--mask-model", metavar="FILE", help="mask network weights instead of the shipped one")
    g.add_argument("--mask-colour-model", metavar="FILE|none", help=option_table.MASK_COLOUR_HELP)
    g.add_argument("--colour-model", metavar="FILE|none", help=option_table.COLOUR_MODEL_HELP)
    g.add_argument("--inks-model", metavar="FILE|none", help=option_table.INKS_MODEL_HELP)
    g.add_argument(
        "--baseline-model", metavar="FILE", help="baseline network for --mask none instead of the shipped one"
    )
    g.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU; default), cpu, cuda or cuda:N")
    g.add_argument("--precision", default="auto", choices=option_table.PRECISIONS, help=option_table.PRECISION_HELP)
    g.add_argument(
        "--mask-precision",
        default=None,
        choices=option_table.PRECISIONS,
        help="precision of the mask network (default: as --precision); fp32 keeps the "
        "few line/background decisions that bf16 rounding flips (tens to hundreds per million)",
    )
    g.add_argument("--engine", default="auto", choices=option_table.ENGINES, help=option_table.ENGINE_HELP)
    g.add_argument(
        "--threads", type=int, metavar="N", help="CPU threads for torch and ONNX Runtime (default: torch's choice)"
    )

    restore = sub.add_parser(
        "restore",
        parents=[models],
        prog="python -m core restore",
        help="restore image files",
        description="Restore image files or folders into OUTDIR.",
    )
    restore.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    restore.add_argument(
        "-o", "--output", required=True, metavar="OUTDIR", help="folder for the restored PNGs (created)"
    )
    _add_restore_options(restore.add_argument_group("restoration"))
    f = restore.add_argument_group("files")
    f.add_argument("--save-mask", action="store_true", help="also write OUTDIR/<stem>_mask.png (255 on lines)")
    f.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="descend into sub-folders of folder inputs (their structure is kept under OUTDIR)",
    )
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    sub.add_parser(
        "info",
        parents=[models],
        prog="python -m core info",
        help="print the models, device and precision as JSON",
        description="Print the models, device and precision that restore would use, as JSON.",
    )
    return parser, restore


def _add_restore_options(group) -> None:
    """One argument per option of :data:`core.options.OPTIONS` that has a command-line flag."""
    for opt in option_table.OPTIONS:
        if opt.flag is None:
            continue
        if opt.type == "bool":
            group.add_argument(opt.flag, action=argparse.BooleanOptionalAction, default=opt.default, help=opt.help)
        elif opt.name == "qf":  # "auto": each JPEG file's own quality (read per file below)
            group.add_argument(opt.flag, default="auto", metavar=opt.metavar, help=opt.help)
        elif opt.choices:
            kind = int if opt.type == "int" else str
            group.add_argument(opt.flag, type=kind, default=opt.default, choices=opt.choices, help=opt.help)
        else:
            group.add_argument(opt.flag, type=int, default=opt.default, metavar=opt.metavar, help=opt.help)


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
    from .pipeline import (
        DEFAULT_FILES,
        FAST_FILES,
        MODELS_DIR,
        Restorer,
        colour_files,
        wild_files,
    )

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
            "the shipped model weights are missing: "
            + ", ".join(missing)
            + ". They are trained with `python -m training` and installed into core/models/ (see "
            "docs/models.md); reinstall the package, or give your own with --model/--mask-model/--baseline-model"
        )
    if not any(roles.values()) and args.model is None:
        raise WeightsError("no model weights found: " + ", ".join(missing))
    if not any(roles.values()):
        # Only --model: load it into the role its mode suits, so that info() describes it.
        return Restorer.from_files(
            device=args.device,
            precision=args.precision,
            mask_precision=args.mask_precision,
            engine=args.engine,
            **_role_of_model(args.model),
        )
    colour = colour_files(
        args.mask_colour_model,
        args.colour_model,
        args.inks_model,
        mask_given=args.mask_model is not None,
        restore_given=getattr(args, "fast", False),
    )
    if mask_method not in (None, "learnt"):
        colour["mask_colour"] = None
    if not roles["restore"]:
        colour["restore_colour"] = None
    return Restorer.from_files(
        mask=roles["mask"],
        restore=roles["restore"],
        baseline=roles["baseline"],
        # The wild networks go with the shipped default backbone (the wild_network option).
        **(wild_files(getattr(args, "fast", False)) if roles["restore"] else {}),
        device=args.device,
        precision=args.precision,
        mask_precision=args.mask_precision,
        engine=args.engine,
        **colour,
    )


def _role_of_model(path: str) -> dict[str, str]:
    from .runners import load_weights, model_kind

    model = load_weights(path, "restore")
    if model_kind(model) == "mask":
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
    base = {o.name: getattr(args, o.name) for o in option_table.OPTIONS if o.flag and o.name != "qf"}
    base.update(return_mask=args.save_mask, model=args.model)
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
    bar = tqdm(
        total=len(jobs),
        unit="file",
        disable=args.quiet,
        dynamic_ncols=True,
        bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} [{elapsed}<{remaining}]",
    )
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
