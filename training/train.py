"""The training loop for the mask network, the backbones and the ink network (one ``train(config)``).

* ``task="mask"``: cross-entropy between the mask network's logits and eq. 3's mask.
* ``task="restore"``, ``mode="baseline"``: L1 (or MSE) between the backbone output and the clean
  drawing, as the backbones' papers train.
* ``task="restore"``, ``mode="framework"``: the mask (ground truth by default, or a trained mask
  network's prediction) is an extra input; loss is eq. 4's masked MSE on line pixels only; the
  validation output is composed with eq. 2 (background forced to white).
* ``task="inks"``: the ink network (:mod:`core.inknet`) on coloured RGB JPEG patches: the RGB
  MSE of the darkness it gives each pixel at the clean drawing's strength (``max(d) u`` against
  ``d``), i.e. only the ink's colour is scored, not the line plane the backbone restores
  (:func:`ink_loss`).
* ``balance="log"`` (restore only) averages ``log(loss of each patch)`` over the batch instead of
  the pixel losses themselves. A blind model sees QF 5-95: a QF-40 patch's squared error is about
  ten times smaller than a QF-10 one's, so with a plain mean the low QFs drive nearly all of the
  gradient. The log weighs every patch by its relative (dB-like) error, which is what PSNR averages.

A run folder holds ``model.safetensors`` (our weights format, updated at every checkpoint),
``optimizer.safetensors`` + ``state.json`` (for ``--resume``; no pickle), ``log.csv`` (training
loss) and ``val.csv`` (validation against wall-clock hours). Runs stop at ``steps`` or ``hours``,
whichever comes first; hours are cumulative over resumed runs. Launched under ``torchrun`` the same
code trains with DistributedDataParallel (gloo on CPU, NCCL on CUDA).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from core.backbones import build_backbone
from core.device import cpu_has_native_bf16
from core.equations import compose, gt_mask, masked_mse, threshold
from core.errors import WeightsError
from core.imageio import quantize
from core.inknet import INK_PRESETS, build_inknet
from core.masknet import build_masknet, mask_with_rim
from core.metrics import miou, psnr, ssim
from core.weights import load_model, read_metadata, save_model

from .data import PatchDataset, jpeg_degrade, load_folder, validation_crops

__all__ = ["ResumeError", "TASKS", "TrainConfig", "ink_loss", "restore_loss", "train"]

#: What a run trains: the mask network, a backbone, or the ink network.
TASKS = ("mask", "restore", "inks")

#: How the per-pixel restore loss becomes one number (see the module docstring).
BALANCES = ("none", "log")
#: Floor inside ``log`` for ``balance="log"``: an MSE of 1e-6 is 60 dB, an L1 of 1e-4 is 0.03 gray
#: levels; patches already that good stop pulling (and an all-background patch gives no gradient).
LOG_FLOOR = {"mse": 1e-6, "l1": 1e-4}


class ResumeError(ValueError):
    """A resume folder that does not belong to the model being trained."""


@dataclass
class TrainConfig:
    """Everything a training run needs. Paths are strings so the config is JSON-friendly."""

    task: str = "restore"  # "mask", "restore" or "inks"
    out: str = "runs/run"
    train_dirs: list[str] = field(default_factory=list)
    val_dirs: list[str] = field(default_factory=list)
    # data
    crop: int = 96
    batch: int = 16
    qf: int | None = None  # fixed QF (single-QF models); None = draw from range
    qf_min: int = 5
    qf_max: int = 95
    synth_fraction: float = 0.3
    light_fraction: float = 0.15
    synth_gradients: float = 0.0  # share of synthetic drawings with grey-ramp shading
    wild_fraction: float = 0.0  # re-saved / resized / cropped JPEGs (training.degrade)
    wild_families: list[str] | None = None  # drawn from these families only (None: all)
    wild_scales: list[float] | None = None  # (low, high) scales of the resize families (None: degrade's)
    colour_fraction: float = 0.0  # coloured RGB JPEGs, as the plane the pipeline gives the networks
    colour_light: float = 0.0  # share of those in light inks only
    colour_random: float = 0.0  # share of those in inks drawn from the whole RGB cube
    # mask network
    variant: str = "blind"  # blind | qfmap | single
    # backbone
    arch: str = "drunet"
    mode: str = "framework"  # baseline | framework
    qf_map: bool = False
    loss: str = "l1"  # baseline loss: l1 | mse (framework: masked MSE)
    balance: str = "none"  # none: mean over pixels | log: mean of log(patch loss)
    train_mask: str = "gt"  # framework input mask: "gt" or a mask weights path
    loss_rim: float | None = None  # also score the train mask's uncertain rim (core.masknet.mask_with_rim)
    init: str | None = None  # our weights file (fine-tune) or an official checkpoint
    preset: str = "slim"
    # optimisation
    lr: float = 2e-4
    lr_min_factor: float = 0.05  # cosine decay to lr * this
    warmup_steps: int = 0  # linear warm-up of the learning rate over the first steps of a run
    weight_decay: float = 0.0
    steps: int | None = None
    hours: float | None = None
    # bookkeeping
    ckpt_minutes: float = 10.0
    val_minutes: float = 10.0
    val_every: int | None = None  # validate every N steps (overrides minutes)
    val_qf: int = 10
    val_crop: int = 256
    val_limit: int = 16
    seed: int = 0
    device: str = "auto"
    bf16: str = "auto"  # auto | on | off (CPU autocast)
    threads: int | None = None
    resume: bool = False
    progress: bool = True

    def validate(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.task == "inks" and self.preset not in INK_PRESETS:
            raise ValueError(f"the ink network's presets are {', '.join(INK_PRESETS)}, got {self.preset!r}")
        if not self.train_dirs:
            raise ValueError("give at least one training folder (--train DIR)")
        if self.steps is None and self.hours is None:
            raise ValueError("give a budget: --steps N and/or --hours H")
        if self.task == "mask" and self.variant == "single" and self.qf is None:
            raise ValueError("the single-QF mask network needs --qf")
        if self.loss not in ("l1", "mse"):
            raise ValueError(f"loss must be l1 or mse, got {self.loss!r}")
        if self.balance not in BALANCES:
            raise ValueError(f"balance must be one of {', '.join(BALANCES)}, got {self.balance!r}")
        if self.balance != "none" and self.task == "mask":
            raise ValueError("--balance applies to restore training only (the mask loss is cross-entropy)")
        if self.colour_fraction and self.task == "restore" and self.mode != "framework":
            raise ValueError("--colour trains a framework backbone (the colour stage needs its mask)")
        if self.task == "inks" and self.colour_fraction != 1.0:
            raise ValueError("the ink network trains on coloured patches only (colour share 1)")
        if not 0.0 <= self.colour_fraction <= 1.0:
            raise ValueError(f"--colour is a share of patches (0..1), got {self.colour_fraction}")
        if not 0.0 <= self.synth_gradients <= 1.0:
            raise ValueError(f"--gradients is a share of the synthetic drawings (0..1), got {self.synth_gradients}")
        if not 0.0 <= self.colour_random <= 1.0:
            raise ValueError(f"--colour-random is a share of the colour patches (0..1), got {self.colour_random}")
        if not 0.0 <= self.colour_light <= 1.0:
            raise ValueError(f"--colour-light is a share of the colour patches (0..1), got {self.colour_light}")
        if self.loss_rim is not None and (
            self.task != "restore" or self.mode != "framework" or self.train_mask == "gt"
        ):
            raise ValueError("--loss-rim scores a framework backbone on a --train-mask network's rim")
        if self.loss_rim is not None and not 0.0 < self.loss_rim <= 20.0:
            raise ValueError(f"--loss-rim is a logit margin (0 < MARGIN <= 20), got {self.loss_rim}")
        if self.wild_scales is not None and not (
            len(self.wild_scales) == 2 and 0.1 <= self.wild_scales[0] < self.wild_scales[1] <= 8.0
        ):
            raise ValueError(f"--wild-scales takes LOW HIGH with 0.1 <= LOW < HIGH <= 8, got {self.wild_scales}")
        if self.warmup_steps < 0:
            raise ValueError(f"--warmup is a number of steps (0: none), got {self.warmup_steps}")
        if not 5 <= self.crop:
            raise ValueError("crop must be at least 5 pixels")

    # what must match for a resume to make sense
    def identity(self) -> dict[str, Any]:
        keys = {"mask": ["task", "variant"], "inks": ["task", "preset"]}.get(
            self.task, ["task", "arch", "mode", "qf_map", "preset"]
        )
        return {k: getattr(self, k) for k in keys}


# -- helpers --------------------------------------------------------------------------------------


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def _autocast(device: torch.device, bf16: str):
    """bf16 autocast per ``--bf16``. On the CPU ``auto`` means on only where the processor has
    native bf16 (AVX512-BF16/AMX): elsewhere bf16 is emulated, and a slim-DRUNet framework step
    measured 27 s instead of 1.6 s in float32 (AVX2-only AMD EPYC, one thread)."""
    if device.type == "cpu":
        if bf16 == "off" or (bf16 == "auto" and not cpu_has_native_bf16()):
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if device.type == "cuda" and bf16 != "off":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _fresh_model(cfg: TrainConfig):
    if cfg.task == "inks":
        return build_inknet(cfg.preset)
    if cfg.task == "mask":
        kw = {"qf": cfg.qf} if cfg.variant == "single" else {}
        return build_masknet(cfg.variant, cfg.preset, qf_range=(cfg.qf_min, cfg.qf_max), **kw)
    return build_backbone(cfg.arch, cfg.preset, mode=cfg.mode, qf_map=cfg.qf_map)


def _build_model(cfg: TrainConfig):
    """A fresh network, or the ``--init`` weights to fine-tune: one of our files (any task; it must
    describe the same network the options ask for) or, for backbones, an official checkpoint.

    Returns ``(model, init_record)``; the record (None without ``--init``) goes into the weights'
    metadata: the init file's name and its own steps, hours and init, or ``official``."""
    if not cfg.init:
        return _fresh_model(cfg), None
    if not Path(cfg.init).is_file():
        raise FileNotFoundError(f"--init file not found: {cfg.init}")
    try:
        info = read_metadata(cfg.init)["training"]
    except WeightsError:  # not one of ours: an official checkpoint
        info = None
    if info is not None:
        model = load_model(cfg.init)
        want = _fresh_model(cfg).config
        if model.config != want:
            diff = sorted(k for k in set(want) | set(model.config) if want.get(k) != model.config.get(k))
            raise ValueError(
                f"--init {cfg.init} is a different network from the one asked for (differs in "
                f"{', '.join(diff)}): pass the matching --preset/--arch/--mode/--variant options"
            )
        record = {
            "file": Path(cfg.init).name,
            "steps": info.get("steps"),
            "hours": info.get("hours"),
            "init": info.get("init"),
        }
        if "shrunk_from" in info:  # a file cut out by `python -m training shrink`: keep how
            record["shrunk_from"] = info["shrunk_from"]
        return model, record
    if cfg.task == "mask":
        raise ValueError(f"--init {cfg.init}: a mask network starts only from one of our mask weights files")
    from core.weights import load_official

    return load_official(cfg.init, mode=cfg.mode), {"file": Path(cfg.init).name, "official": True}


def _save_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    """Optimizer state as safetensors + JSON (no pickle)."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    save_file(
        tensors, str(path), metadata={"param_groups": json.dumps(sd["param_groups"]), "scalars": json.dumps(scalars)}
    )


def _load_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
    tensors = load_file(str(path))
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    for key, v in json.loads(meta["scalars"]).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})


#: Seed of the fixed wild validation pairs (:class:`_Validator`).
WILD_VAL_SEED = 0


class _Validator:
    """Fixed JPEG crops of the validation drawings at one QF, scored the way users will see them;
    with ``--colour`` their coloured variants too, and with ``--wild`` the same crops degraded by
    each family the run trains on."""

    def __init__(self, cfg: TrainConfig, device: torch.device, mask_model=None):
        self.cfg, self.device, self.mask_model = cfg, device, mask_model
        imgs = load_folder(cfg.val_dirs) if cfg.val_dirs else []
        crops = validation_crops(imgs, cfg.val_crop)[: cfg.val_limit]
        self.clean = crops
        self.jpeg = [jpeg_degrade(c, cfg.val_qf) for c in crops]
        # Training on colour: the coloured variants too (as `evaluate --colour` makes them), each
        # as the plane the pipeline gives the networks, and for a backbone the clean coloured
        # drawing's line plane, stretched alike (PatchDataset's colour_target "plane").
        self.colour_planes, self.colour_targets = [], []
        self.ink_keys: list[str] = []
        if cfg.task == "inks":
            from core import colour

            from .colour import coloured_crop, jpeg_rgb

            # in the evaluation's named inks, and in inks from the whole RGB cube (no palette to learn)
            for any_colour, key in ((False, "psnr_inks"), (True, "psnr_inks_any")):
                for i, c in enumerate(crops):
                    coloured = coloured_crop(c, i, any_colour=any_colour)
                    rgb = jpeg_rgb(coloured, cfg.val_qf)
                    cp = colour.prepare(rgb)
                    feats = torch.from_numpy(colour.ink_features(rgb, cp.gray, cp.direction))[None]
                    self.colour_planes.append(feats)
                    self.colour_targets.append(coloured)
                    self.ink_keys.append(key)
        elif cfg.colour_fraction:
            from core.pipeline import network_planes

            from .colour import coloured_crop, jpeg_rgb, line_plane

            for i, c in enumerate(crops):
                coloured = coloured_crop(c, i)
                planes = network_planes(jpeg_rgb(coloured, cfg.val_qf))
                self.colour_planes.append(planes.mask_input(colour_mask=True).clone())
                self.colour_targets.append(quantize(line_plane(coloured, planes.ink_k).numpy(), np.uint8))

        # Training on re-saved, resized or cropped JPEGs: the same crops (gray) degraded by each
        # family trained on, at fixed seeds (training.degrade.validation_pairs; first save at QF
        # 10-40, the run's --wild-scales), cut to whole 8x8 blocks and scored against each pair's
        # reference: ``psnr_wild`` / ``miou_wild`` (and ``psnr_wild_input``, the inputs' own).
        self.wild: list[tuple[np.ndarray, np.ndarray, int]] = []
        if cfg.wild_fraction:
            from .degrade import FAMILIES, SCALE_RANGE, validation_pairs

            families = tuple(dict.fromkeys(cfg.wild_families or FAMILIES))  # each family once
            scales = tuple(cfg.wild_scales) if cfg.wild_scales else SCALE_RANGE
            for d in validation_pairs(crops, families, seed=WILD_VAL_SEED, scale_range=scales):
                h, w = (n - n % 8 for n in d.image.shape[:2])
                self.wild.append((d.image[:h, :w], d.reference[:h, :w], int(d.info["qf"])))

    def __bool__(self) -> bool:
        return bool(self.clean)

    def _run_one(
        self, model, x: torch.Tensor, truth: np.ndarray, qf_in: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``model`` on one (1, 1, H, W) crop: a mask network's prediction and ``None``, or a
        backbone's output (8-bit) and the mask it is scored on (``None`` in baseline mode): the mask
        network's prediction (with ``--loss-rim``, and its rim: the backbone is given the plain
        one), or ``truth`` (the crop's eq. 3 mask) where training uses that.
        ``qf_in``: the quality non-blind networks are given (default: the validation QF)."""
        cfg = self.cfg
        qf = torch.tensor([float(cfg.val_qf if qf_in is None else qf_in)], device=self.device)
        with _autocast(self.device, cfg.bf16):
            if cfg.task == "mask":
                return model.predict(x, qf).float()[0, 0].cpu().numpy().astype(np.uint8), None
            mask = None
            if cfg.mode == "framework":
                if self.mask_model is not None:
                    mask, scored = _predicted_masks(self.mask_model, x, qf, cfg.loss_rim)
                else:
                    mask = scored = torch.from_numpy(truth).float().view_as(x).to(self.device)
            out, _ = model(x, mask, qf if model.needs_qf else None)
            if mask is not None:
                mask = scored
        y = quantize(out.float()[0, 0].cpu().numpy(), np.uint8)
        return y, None if mask is None else mask[0, 0].cpu().numpy().astype(np.uint8)

    @torch.no_grad()
    def run(self, model) -> dict[str, float]:
        cfg = self.cfg
        model.eval()
        rows: dict[str, list[float]] = {}
        if cfg.task == "inks":
            # Each coloured crop drawn at its clean strength with the network's ink colours, and
            # with the first estimate's (what the network starts from): the inks' share of the error.
            for feats, coloured, name in zip(self.colour_planes, self.colour_targets, self.ink_keys):
                with _autocast(self.device, cfg.bf16):
                    u = model(feats.to(self.device)).float()[0].cpu().numpy().transpose(1, 2, 0)
                strength = 1.0 - coloured.min(axis=2, keepdims=True) / 255.0
                for key, v in ((name, u), (f"{name}_first", feats[0, 4:].numpy().transpose(1, 2, 0))):
                    drawn = quantize(np.clip(1.0 - strength * v, 0.0, 1.0), np.uint8)
                    rows.setdefault(key, []).append(psnr(drawn, coloured))
            model.train()
            return {k: float(np.mean(v)) for k, v in rows.items()}
        for clean, jpeg in zip(self.clean, self.jpeg):
            x = torch.from_numpy(jpeg).float().div(255).view(1, 1, *jpeg.shape).to(self.device)
            y, mask = self._run_one(model, x, gt_mask(clean))
            if cfg.task == "mask":
                rows.setdefault("miou", []).append(miou(y, gt_mask(clean)))
                continue
            if mask is not None:
                y = compose(y, mask)
            rows.setdefault("psnr", []).append(psnr(y, clean))
            rows.setdefault("ssim", []).append(ssim(y, clean))
            yt = threshold(y)
            rows.setdefault("psnr_thr", []).append(psnr(yt, clean))
            rows.setdefault("ssim_thr", []).append(ssim(yt, clean))
            rows.setdefault("psnr_jpeg", []).append(psnr(jpeg, clean))
        for clean, plane, target in zip(self.clean, self.colour_planes, self.colour_targets):
            y, mask = self._run_one(model, plane.to(self.device), gt_mask(target))
            if cfg.task == "mask":
                rows.setdefault("miou_colour", []).append(miou(y, gt_mask(clean)))
                continue
            rows.setdefault("psnr_colour_plane", []).append(psnr(threshold(compose(y, mask)), target))
        for img, ref, qf_first in self.wild:
            x = torch.from_numpy(img).float().div(255).view(1, 1, *img.shape).to(self.device)
            y, mask = self._run_one(model, x, gt_mask(ref), qf_first)
            if cfg.task == "mask":
                rows.setdefault("miou_wild", []).append(miou(y, gt_mask(ref)))
                continue
            rows.setdefault("psnr_wild", []).append(psnr(threshold(y if mask is None else compose(y, mask)), ref))
            rows.setdefault("psnr_wild_input", []).append(psnr(img, ref))
        model.train()
        return {k: float(np.mean(v)) for k, v in rows.items()}


def _predicted_masks(mask_model, x: torch.Tensor, qf: torch.Tensor, rim: float | None):
    """A framework backbone's input mask from a --train-mask network (its prediction), and the
    mask the backbone is scored on: the same, or with ``rim`` (``--loss-rim``) the prediction with
    its uncertain rim, the pixels eq. 2 keeps on a layer taken for resized
    (:func:`core.masknet.mask_with_rim`)."""
    if rim is None:
        mask = mask_model.predict(x, qf).float()
        return mask, mask
    with torch.no_grad():
        logits = mask_model(x, qf).float()
    line, kept = mask_with_rim(logits[:, 1:2] - logits[:, 0:1], rim)
    return line.float(), kept.float()


def restore_loss(
    out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, *, loss: str = "l1", balance: str = "none"
) -> torch.Tensor:
    """The restore training loss of a batch ``(N, 1, H, W)``.

    ``mask`` given (framework): eq. 4's masked MSE on line pixels. ``mask`` None (baseline): ``loss``
    (``l1`` or ``mse``) over all pixels. ``balance="none"`` averages over the batch's pixels (eq. 4
    over the whole batch); ``"log"`` takes each patch's loss, then the mean of their logs.
    """
    if balance not in BALANCES:
        raise ValueError(f"balance must be one of {', '.join(BALANCES)}, got {balance!r}")
    kind = "mse" if mask is not None else loss
    if balance == "none":
        if mask is not None:
            return masked_mse(out, target, mask)
        diff = out - target
        return diff.abs().mean() if kind == "l1" else diff.pow(2).mean()
    if mask is not None:
        per = torch.stack([masked_mse(o, t, m) for o, t, m in zip(out, target, mask)])
    else:
        diff = (out - target).flatten(1)
        per = diff.abs().mean(1) if kind == "l1" else diff.pow(2).mean(1)
    return torch.log(per + LOG_FLOOR[kind]).mean()


def ink_loss(u: torch.Tensor, darkness: torch.Tensor) -> torch.Tensor:
    """The ink network's loss on a batch: ``u`` its ``(N, 3, H, W)`` ink directions, ``darkness``
    the clean coloured patches' ``1 - c`` (same shape). Each pixel is drawn at its clean strength
    (the darkest channel's darkness, what the backbone restores) in the predicted colour, and scored
    by the RGB MSE: paper (strength 0) costs nothing, a stroke's core most."""
    strength = darkness.amax(dim=1, keepdim=True)
    return (strength * u - darkness).pow(2).mean()


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


# -- the loop -------------------------------------------------------------------------------------


def train(cfg: TrainConfig) -> Path:
    """Train one model as ``cfg`` says; returns the path of the final weights file."""
    if cfg.task == "inks" and not cfg.colour_fraction:
        cfg = replace(cfg, colour_fraction=1.0)  # every patch is coloured (recorded so in the metadata)
    cfg.validate()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = _pick_device(cfg.device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    main = rank == 0
    out = Path(cfg.out)
    if main:
        out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed + rank)

    model, init_record = _build_model(cfg)
    model = model.to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    step, hours_done = 0, 0.0
    state_path = out / "state.json"
    if cfg.resume and state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("identity") != cfg.identity():
            raise ResumeError(
                f"{out} holds a run of {state.get('identity')}, not {cfg.identity()}: "
                "use another --out folder or the matching options"
            )
        loaded = load_model(out / "model.safetensors")
        model.load_state_dict(loaded.state_dict())
        _load_optimizer(opt, out / "optimizer.safetensors")
        step, hours_done = int(state["step"]), float(state["hours"])
    elif cfg.resume and main:
        print(f"nothing to resume in {out}; starting fresh")

    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(model)

    images = load_folder(cfg.train_dirs, min_size=min(cfg.crop + 8, 64))
    ds = PatchDataset(
        images,
        crop=cfg.crop,
        qf=cfg.qf,
        qf_range=(cfg.qf_min, cfg.qf_max),
        synth_fraction=cfg.synth_fraction,
        light_fraction=cfg.light_fraction,
        synth_gradients=cfg.synth_gradients,
        wild_fraction=cfg.wild_fraction,
        wild_families=tuple(cfg.wild_families) if cfg.wild_families else None,
        wild_scales=tuple(cfg.wild_scales) if cfg.wild_scales else None,
        colour_fraction=cfg.colour_fraction,
        colour_light=cfg.colour_light,
        colour_random=cfg.colour_random,
        colour_target={"mask": "drawing", "restore": "plane", "inks": "inks"}[cfg.task],
        seed=cfg.seed * 1000 + rank,
    )
    mask_model = None
    if cfg.task == "restore" and cfg.mode == "framework" and cfg.train_mask != "gt":
        mask_model = load_model(cfg.train_mask, device=device)
        mask_model.requires_grad_(False)
    validator = _Validator(cfg, device, mask_model) if main else None

    total_steps = cfg.steps
    budget_h = cfg.hours

    def lr_at(progress: float, step: int) -> float:
        """Cosine decay over the run's budget, ramped up linearly over its first ``warmup_steps``
        steps (a fine-tune's fresh Adam moments make its first steps the largest)."""
        progress = min(max(progress, 0.0), 1.0)
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        return warm * cfg.lr * (cfg.lr_min_factor + (1 - cfg.lr_min_factor) * 0.5 * (1 + math.cos(math.pi * progress)))

    def progress_now() -> float:
        parts = []
        if total_steps:
            parts.append(step / total_steps)
        if budget_h:
            parts.append(hours_now() / budget_h)
        return max(parts)

    t0 = time.time()
    hours_now = lambda: hours_done + (time.time() - t0) / 3600.0
    last_ckpt = last_val = time.time()
    bar = tqdm(
        total=total_steps,
        initial=step,
        disable=not (main and cfg.progress),
        unit="step",
        desc=f"{cfg.task}:" + {"mask": cfg.variant, "inks": cfg.preset}.get(cfg.task, f"{cfg.arch}/{cfg.mode}"),
    )
    losses: list[float] = []
    best: dict[str, float] = {}

    def checkpoint(final: bool = False) -> None:
        info = {"config": asdict(cfg), "step": step, "hours": hours_now(), "identity": cfg.identity()}
        if best:
            info["validation"] = best
        save_model(
            model,
            out / "model.safetensors",
            training={
                "task": cfg.task,
                "steps": step,
                "hours": round(hours_now(), 4),
                "train_dirs": cfg.train_dirs,
                "synth_fraction": cfg.synth_fraction,
                "light_fraction": cfg.light_fraction,
                "synth_gradients": cfg.synth_gradients,
                "wild_fraction": cfg.wild_fraction,
                "wild_families": cfg.wild_families,
                "wild_scales": cfg.wild_scales,
                "colour_fraction": cfg.colour_fraction,
                "colour_light": cfg.colour_light,
                **({"colour_random": cfg.colour_random} if cfg.colour_random else {}),
                "qf_range": [cfg.qf_min, cfg.qf_max],
                "qf": cfg.qf,
                "crop": cfg.crop,
                "batch": cfg.batch * world,
                "lr": cfg.lr,
                "loss": {"mask": "cross_entropy", "inks": "ink_mse"}.get(
                    cfg.task, "masked_mse" if cfg.mode == "framework" else cfg.loss
                ),
                "balance": cfg.balance if cfg.task == "restore" else None,
                "train_mask": cfg.train_mask if cfg.task == "restore" else None,
                **({"loss_rim": cfg.loss_rim} if cfg.loss_rim is not None else {}),
                **({"warmup_steps": cfg.warmup_steps} if cfg.warmup_steps else {}),
                "init": init_record,
                "validation": best,
                "final": final,
            },
        )
        _save_optimizer(opt, out / "optimizer.safetensors")
        state_path.write_text(json.dumps(info, indent=1))

    def validate() -> None:
        nonlocal best
        if not validator or best.get("step") == step:
            return
        res = validator.run(model)
        best = {
            "qf": cfg.val_qf,
            "step": step,
            "hours": round(hours_now(), 4),
            **{k: round(v, 5) for k, v in res.items()},
        }
        _append_csv(out / "val.csv", {"step": step, "hours": round(hours_now(), 5), **res})
        bar.write(f"step {step} val@QF{cfg.val_qf}: " + ", ".join(f"{k} {v:.4f}" for k, v in res.items()))

    if main and step == 0:
        validate()
    model.train()
    rng_index = step * cfg.batch
    while True:
        if total_steps is not None and step >= total_steps:
            break
        if budget_h is not None and hours_now() >= budget_h:
            break
        batch = [ds[rng_index + i] for i in range(cfg.batch)]
        rng_index += cfg.batch
        x = torch.stack([b[0] for b in batch]).to(device)
        y = torch.stack([b[1] for b in batch]).to(device)
        qf = torch.stack([b[2] for b in batch]).to(device)
        if device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        for g in opt.param_groups:
            g["lr"] = lr_at(progress_now(), step)
        with _autocast(device, cfg.bf16):
            if cfg.task == "inks":
                loss = ink_loss(train_model(x).float(), y)
            elif cfg.task == "mask":
                target = (y < 1.0).long()[:, 0]
                logits = train_model(x, qf if model.needs_qf else None)
                loss = F.cross_entropy(logits.float(), target)
            else:
                if cfg.mode == "framework":
                    if mask_model is None:
                        mask = scored = (y < 1.0).float()
                    else:
                        mask, scored = _predicted_masks(mask_model, x, qf, cfg.loss_rim)
                    out_img, _ = train_model(x, mask, qf if model.needs_qf else None)
                    mask = scored
                else:
                    mask = None
                    out_img, _ = train_model(x, None, qf if model.needs_qf else None)
                loss = restore_loss(out_img.float(), y, mask, loss=cfg.loss, balance=cfg.balance)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        if main:
            bar.update(1)
            if step % 50 == 0:
                avg = float(np.mean(losses[-50:]))
                bar.set_postfix(loss=f"{avg:.5f}", lr=f"{opt.param_groups[0]['lr']:.2e}")
                _append_csv(
                    out / "log.csv",
                    {"step": step, "hours": round(hours_now(), 5), "loss": avg, "lr": opt.param_groups[0]["lr"]},
                )
            now = time.time()
            due_val = (step % cfg.val_every == 0) if cfg.val_every else (now - last_val) / 60 >= cfg.val_minutes
            if due_val:
                validate()
                last_val = time.time()
            if (time.time() - last_ckpt) / 60 >= cfg.ckpt_minutes:
                checkpoint()
                last_ckpt = time.time()
    bar.close()
    if main:
        validate()
        checkpoint(final=True)
    if world > 1:
        dist.barrier()
    return out / "model.safetensors"
