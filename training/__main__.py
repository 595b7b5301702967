"""``python -m training``: train and evaluate the models of the method.

    python -m training mask    --train DIR [--val DIR] --hours 1 --out runs/mask
    python -m training restore --train DIR [--val DIR] --mode framework --hours 1 --out runs/fw
    python -m training inks    --train DIR [--val DIR] --hours 1 --out runs/inks
    python -m training evaluate ...      (tables 1 and 2)
    python -m training plot ...          (PSNR/SSIM against training hours)
    python -m training synth ...         (synthetic drawings / contact sheet)
    python -m training figure DRAWING --qf 10 --out fig.png  (side-by-side picture)
    python -m training export RUN/model.safetensors core/models/NAME.safetensors  (ship weights)
    python -m training shrink SRC.safetensors DST.safetensors --preset fast  (cut a smaller network out)

Under ``torchrun --standalone --nproc_per_node N -m training ...`` training uses DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import os
import sys

from .degrade import FAMILIES, SCALE_RANGE
from .train import TrainConfig, train


def _common(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument(
        "--train",
        dest="train_dirs",
        action="append",
        required=True,
        metavar="DIR",
        help="folder of clean drawings (background exactly 255); repeat for several",
    )
    p.add_argument(
        "--val",
        dest="val_dirs",
        action="append",
        default=[],
        metavar="DIR",
        help="folder of clean validation drawings; repeat for several",
    )
    p.add_argument("--out", default=None, help="run folder (weights, logs, resume state)")
    p.add_argument(
        "--preset",
        default=d.preset,
        choices=["slim", "full", "fast", "small", "medium"],
        help="network size (default %(default)s; fast: DRUNet and the mask network only; small, medium: "
        "the ink network only)",
    )
    p.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--hours", type=float, default=None, help="stop after this many hours (cumulative over resumes)")
    p.add_argument("--batch", type=int, default=d.batch, help="patches per step (default %(default)s)")
    p.add_argument("--crop", type=int, default=d.crop, help="patch side (default %(default)s)")
    p.add_argument("--qf", type=int, default=None, help="train at this one JPEG quality")
    p.add_argument("--qf-min", type=int, default=d.qf_min, help="lowest quality drawn (default %(default)s)")
    p.add_argument("--qf-max", type=int, default=d.qf_max, help="highest quality drawn (default %(default)s)")
    p.add_argument(
        "--synth",
        dest="synth_fraction",
        type=float,
        default=d.synth_fraction,
        help="share of synthetic drawings (default %(default)s)",
    )
    p.add_argument(
        "--light",
        dest="light_fraction",
        type=float,
        default=d.light_fraction,
        help="share of patches with lightened lines, half of them grainy (default %(default)s)",
    )
    p.add_argument(
        "--gradients",
        dest="synth_gradients",
        type=float,
        default=d.synth_gradients,
        metavar="FRACTION",
        help="share of the synthetic drawings with one or two shapes shaded by a grey ramp, linear or "
        "radial, as gradient tools and airbrushes leave them (default %(default)s)",
    )
    p.add_argument(
        "--wild",
        dest="wild_fraction",
        type=float,
        default=d.wild_fraction,
        help="share of patches re-saved, resized, cropped or exported (training.degrade; default %(default)s); "
        "with --colour, that share of them is coloured and degraded as RGB",
    )
    p.add_argument(
        "--wild-families",
        nargs="+",
        choices=FAMILIES,
        metavar="FAMILY",
        help="with --wild: draw those patches from these families of training.degrade only (default: all of "
        + ", ".join(FAMILIES)
        + ")",
    )
    p.add_argument(
        "--wild-scales",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        help="with --wild: the scale factors the resize families draw from, log-uniformly (default: "
        f"{SCALE_RANGE[0]} {SCALE_RANGE[1]}; below 1 shrinks)",
    )
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate, cosine-decayed (default %(default)s)")
    p.add_argument(
        "--warmup",
        dest="warmup_steps",
        type=int,
        default=d.warmup_steps,
        metavar="STEPS",
        help="raise the learning rate linearly over the run's first STEPS steps (default %(default)s: none)",
    )
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--ckpt-minutes", type=float, default=d.ckpt_minutes, help="checkpoint period (default %(default)s)")
    p.add_argument("--val-minutes", type=float, default=d.val_minutes, help="validation period (default %(default)s)")
    p.add_argument("--val-every", type=int, default=None, help="validate every N steps instead")
    p.add_argument("--val-qf", type=int, default=d.val_qf, help="validation JPEG quality (default %(default)s)")
    p.add_argument("--val-crop", type=int, default=d.val_crop)
    p.add_argument("--val-limit", type=int, default=d.val_limit, help="validation crops used (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:1, mps (default %(default)s)")
    p.add_argument(
        "--bf16", default=d.bf16, choices=["auto", "on", "off"], help="bfloat16 autocast (default %(default)s)"
    )
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--init",
        default=None,
        help="start from these weights (fine-tune): one of our .safetensors files of the same "
        "network, or for restore an official FBCNN/DRUNet/SwinIR checkpoint",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    pm = sub.add_parser("mask", help="train the mask-predicting network (cross-entropy vs eq. 3)")
    _common(pm)
    pm.add_argument(
        "--variant",
        default="blind",
        choices=["blind", "qfmap", "single"],
        help="blind: JPEG only; qfmap: + (100-QF)/100 map; single: one QF (--qf)",
    )
    pm.add_argument(
        "--colour",
        dest="colour_fraction",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="share of patches drawn in coloured inks (per stroke or per drawing, light inks too), saved "
        "as RGB JPEGs (4:2:0, a quarter 4:4:4) and given as the plane the pipeline gives the mask "
        "network for a colour layer; validation adds their mIoU (default 0)",
    )
    pm.add_argument(
        "--colour-light",
        dest="colour_light",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="with --colour: share of the coloured patches drawn in light inks only (yellow, light blue, "
        "pink); the others draw from every ink, a third of them light (default 0)",
    )
    pm.set_defaults(task="mask")

    pr = sub.add_parser("restore", help="train a backbone in baseline or framework mode")
    _common(pr)
    pr.add_argument("--arch", default="drunet", choices=["drunet", "fbcnn", "swinir"])
    pr.add_argument("--mode", default="framework", choices=["baseline", "framework"])
    pr.add_argument("--qf-map", action="store_true", help="non-blind: feed (100-QF)/100 as a channel")
    pr.add_argument("--loss", default="l1", choices=["l1", "mse"], help="baseline loss (default %(default)s)")
    pr.add_argument(
        "--balance",
        default="none",
        choices=["none", "log"],
        help="none: the loss averaged over the batch's pixels (eq. 4); log: the mean of "
        "log(each patch's loss), so high-QF patches count as much as low-QF ones "
        "(default %(default)s)",
    )
    pr.add_argument(
        "--train-mask",
        default="gt",
        help="framework input mask while training: 'gt' (eq. 3, the paper) or a mask weights file",
    )
    pr.add_argument(
        "--loss-rim",
        type=float,
        default=None,
        metavar="MARGIN",
        help="with a --train-mask network: score the loss on the mask's rim too (the 8-neighbours of "
        "line pixels whose line logit is within MARGIN of the paper logit), the pixels eq. 2 keeps "
        "on layers taken for resized (core.pipeline.RIM_MARGIN, 1.5); the backbone is still given "
        "the plain mask, and validation composes with the mask and rim (default: off)",
    )
    pr.add_argument(
        "--colour",
        dest="colour_fraction",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="share of patches drawn in coloured inks, saved as RGB JPEGs (4:2:0, a quarter 4:4:4) and "
        "given as the line plane the pipeline makes of a colour layer; the target is the clean coloured "
        "drawing's line plane (its darkest channel); validation adds its PSNR (default 0). The "
        "--train-mask network is given that plane too: use the colour layers' mask network",
    )
    pr.set_defaults(task="restore")

    pi = sub.add_parser(
        "inks",
        help="train the ink network (each pixel's ink colour on coloured layers; RGB MSE at the true strength)",
    )
    _common(pi)
    pi.add_argument(
        "--colour-light",
        dest="colour_light",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="share of the patches drawn in light inks only (yellow, light blue, pink); the others draw "
        "from every ink, a third of them light (default 0)",
    )
    pi.add_argument(
        "--colour-random",
        dest="colour_random",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="share of the patches whose inks are drawn from the whole RGB cube instead of the named inks "
        "(sepia, brown, blue... yellow, light blue, pink), so that the network does not learn their palette "
        "(default 0)",
    )
    pi.set_defaults(task="inks", preset="medium")  # the shipped size

    # Each module adds its own sub-command. An import error here is a bug or a missing dependency
    # and must show, not make the sub-command disappear from --help.
    from . import evaluate, export, figures, plot, shrink, synth

    for add in (
        synth.add_synth_parser,
        evaluate.add_evaluate_parser,
        plot.add_plot_parser,
        export.add_export_parser,
        figures.add_figure_parser,
        shrink.add_shrink_parser,
    ):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in ("mask", "restore", "inks"):
        return int(args.func(args) or 0)
    fields = TrainConfig.__dataclass_fields__
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    if cfg.out is None:
        cfg.out = f"runs/{args.command}"
    try:
        path = train(cfg)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":
        print(f"weights: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
