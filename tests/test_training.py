"""Training (training/train.py, training/data.py): real optimisation steps on tiny data.

Every test trains on a few synthetic drawings written to ``tmp_path`` (no /work/shared data).
"Loss goes down" is measured on one fixed batch that the test builds itself, before and after a
few dozen real AdamW steps of :func:`training.train.train`: the initial weights come from a
zero-step run, the trained ones from resuming that run, so resume is exercised as well.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from core.equations import masked_mse
from core.weights import load_model, read_metadata
from tests.synth_checks import ramp_share
from training.data import DataError, PatchDataset, jpeg_degrade, load_folder
from training.synth import synth_drawing
from training.train import LOG_FLOOR, ResumeError, TrainConfig, restore_loss, train

CROP = 32
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("drawings")
    for i in range(4):
        Image.fromarray(synth_drawing(np.random.default_rng(100 + i), 96, 96)).save(d / f"d{i}.png")
    return d


def test_light_patches_are_half_grainy_half_flat():
    """Light patches come with and without pencil grain: a network shown only grainy light lines
    keeps the JPEG's speckle on flat light lines (compare_waifu2x, val_light_smooth)."""
    img = np.full((128, 128), 255, np.uint8)
    img[16:112, 16:112] = 0
    ds = PatchDataset([img], crop=CROP, qf=90, light_fraction=1.0, seed=3)
    flat = grainy = 0
    for i in range(40):
        _jpeg, clean, _qf = ds[i]
        ink = clean[0][clean[0] < 1.0]
        assert ink.numel() > 0 and float(ink.mean()) > 0.2  # lightened (solid black before)
        if float(ink.max() - ink.min()) == 0.0:
            flat += 1
        elif float(ink.std()) > 0.01:
            grainy += 1
    assert flat + grainy == 40
    assert 10 <= flat <= 30, flat


def test_gradient_shading_of_synthetic_patches_from_the_command_line(tmp_path):
    """``--gradients`` reaches the synthetic patches (grey ramps in them) and is a share (0..1)."""
    from training.__main__ import build_parser

    args = build_parser().parse_args(["restore", "--train", str(tmp_path), "--synth", "1", "--gradients", "0.7"])
    assert args.synth_gradients == 0.7

    def ramps(ds: PatchDataset) -> int:
        return sum(ramp_share(ds[i][1][0].numpy() * 255) > 0.01 for i in range(24))

    paper = [np.full((160, 160), 255, np.uint8)]
    shaded = PatchDataset(paper, crop=96, qf=95, synth_fraction=1.0, synth_gradients=1.0, seed=3)
    plain = PatchDataset(paper, crop=96, qf=95, synth_fraction=1.0, seed=3)
    assert ramps(shaded) >= ramps(plain) + 4
    with pytest.raises(ValueError, match="--gradients is a share"):
        train(TrainConfig(train_dirs=[str(tmp_path)], steps=1, synth_gradients=1.5))


def _cfg(data_dir: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        out=str(out),
        train_dirs=[str(data_dir)],
        crop=CROP,
        batch=4,
        steps=0,
        progress=False,
        bf16="off",
        lr=1e-3,
        lr_min_factor=1.0,
        synth_fraction=0.25,
        light_fraction=0.1,
        ckpt_minutes=1e9,
        val_minutes=1e9,
        threads=1,
        seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)


def _fixed_batch(data_dir: Path, cfg: TrainConfig):
    """A held batch (8 patches) drawn like the training data but from a different seed."""
    ds = PatchDataset(
        load_folder([str(data_dir)]),
        crop=CROP,
        qf=cfg.qf,
        qf_range=(cfg.qf_min, cfg.qf_max),
        synth_fraction=cfg.synth_fraction,
        seed=987654,
    )
    items = [ds[i] for i in range(8)]
    return (torch.stack([b[0] for b in items]), torch.stack([b[1] for b in items]), torch.stack([b[2] for b in items]))


@torch.no_grad()
def _loss(path: Path, cfg: TrainConfig, batch) -> float:
    """The training objective of ``cfg``, recomputed here, for the weights in ``path``."""
    model = load_model(path).eval()
    x, y, qf = batch
    q = qf if model.needs_qf else None
    if cfg.task == "mask":
        return float(F.cross_entropy(model(x, q), (y < 1.0).long()[:, 0]))
    mask = (y < 1.0).float() if cfg.mode == "framework" else None
    out, _ = model(x, mask, q)
    loss = float(restore_loss(out, y, mask, loss=cfg.loss, balance=cfg.balance))
    # balance="log" is the mean log of the patch losses: its exp (their geometric mean) is > 0
    return float(np.exp(loss)) if cfg.balance == "log" else loss


MODES = [
    pytest.param(dict(task="mask", variant="blind"), id="mask-blind"),
    pytest.param(dict(task="mask", variant="qfmap"), id="mask-qfmap"),
    pytest.param(dict(task="mask", variant="single", qf=20), id="mask-single"),
    pytest.param(dict(task="restore", arch="drunet", mode="baseline"), id="drunet-baseline"),
    pytest.param(dict(task="restore", arch="drunet", mode="framework"), id="drunet-framework"),
    pytest.param(dict(task="restore", arch="drunet", mode="framework", qf_map=True), id="drunet-framework-qfmap"),
    pytest.param(dict(task="restore", arch="drunet", mode="framework", balance="log"), id="drunet-framework-log"),
    pytest.param(dict(task="restore", arch="drunet", mode="baseline", balance="log"), id="drunet-baseline-log"),
    pytest.param(dict(task="restore", arch="fbcnn", mode="baseline"), id="fbcnn-baseline", marks=pytest.mark.slow),
    pytest.param(dict(task="restore", arch="swinir", mode="framework"), id="swinir-framework", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("mode", MODES)
def test_loss_goes_down_and_resume_continues(tmp_path, data_dir, mode):
    torch.manual_seed(0)
    out = tmp_path / "run"
    steps = 12 if mode.get("arch") in ("fbcnn", "swinir") else 30
    train(_cfg(data_dir, out, steps=0, **mode))  # zero steps: saves the initial weights
    assert json.loads((out / "state.json").read_text())["step"] == 0
    shutil.copy(out / "model.safetensors", tmp_path / "init.safetensors")

    cfg = _cfg(data_dir, out, steps=steps, resume=True, **mode)
    train(cfg)
    state = json.loads((out / "state.json").read_text())
    assert state["step"] == steps
    assert read_metadata(out / "model.safetensors")["training"]["steps"] == steps

    batch = _fixed_batch(data_dir, cfg)
    before, after = _loss(tmp_path / "init.safetensors", cfg, batch), _loss(out / "model.safetensors", cfg, batch)
    assert np.isfinite(after)
    assert after < 0.9 * before, f"loss {before:.5f} -> {after:.5f} after {steps} steps"


def test_resume_continues_from_saved_step(tmp_path, data_dir):
    out = tmp_path / "run"
    train(_cfg(data_dir, out, task="mask", steps=3))
    first = json.loads((out / "state.json").read_text())
    w3 = load_model(out / "model.safetensors").state_dict()
    assert first["step"] == 3

    train(_cfg(data_dir, out, task="mask", steps=5, resume=True))
    second = json.loads((out / "state.json").read_text())
    assert second["step"] == 5
    assert second["hours"] >= first["hours"]  # hours accumulate over resumed runs
    w5 = load_model(out / "model.safetensors").state_dict()
    assert any(not torch.equal(w3[k], w5[k]) for k in w3)

    # resuming a run that already reached its budget runs no further step
    train(_cfg(data_dir, out, task="mask", steps=5, resume=True))
    assert json.loads((out / "state.json").read_text())["step"] == 5
    w5b = load_model(out / "model.safetensors").state_dict()
    assert all(torch.equal(w5[k], w5b[k]) for k in w5)


def test_resume_of_another_model_is_a_clear_error(tmp_path, data_dir):
    out = tmp_path / "run"
    train(_cfg(data_dir, out, task="mask", variant="blind", steps=1))
    with pytest.raises(ResumeError, match="another --out|matching options"):
        train(_cfg(data_dir, out, task="restore", mode="framework", steps=2, resume=True))
    with pytest.raises(ResumeError):
        train(_cfg(data_dir, out, task="mask", variant="qfmap", steps=2, resume=True))


# ---------------------------------------------------------------------------------------------
# data: JPEG degradation and bad input
# ---------------------------------------------------------------------------------------------


def _pillow_roundtrip(img: np.ndarray, qf: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img, "L").save(buf, format="JPEG", quality=qf)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))


def test_init_fine_tunes_our_weights_and_records_them(tmp_path, data_dir):
    first = tmp_path / "first"
    train(_cfg(data_dir, first, task="mask", steps=4))
    start = load_model(first / "model.safetensors").state_dict()

    tuned = tmp_path / "tuned"
    train(_cfg(data_dir, tuned, task="mask", steps=0, init=str(first / "model.safetensors")))
    same = load_model(tuned / "model.safetensors").state_dict()
    assert all(torch.equal(start[k], same[k]) for k in start)  # starts exactly from the init weights

    train(
        _cfg(
            data_dir,
            tuned,
            task="mask",
            steps=3,
            resume=True,
            init=str(first / "model.safetensors"),
            synth_gradients=0.5,
        )
    )
    meta = read_metadata(tuned / "model.safetensors")["training"]
    assert meta["steps"] == 3
    assert meta["synth_gradients"] == 0.5
    assert meta["init"] == {"file": "model.safetensors", "steps": 4, "hours": meta["init"]["hours"], "init": None}
    after = load_model(tuned / "model.safetensors").state_dict()
    assert any(not torch.equal(start[k], after[k]) for k in start)


@pytest.mark.parametrize("task", ["mask", "restore"])
def test_training_on_wild_degradations_validates_on_them(tmp_path, data_dir, task):
    """With --wild, the run also scores fixed-seed degraded crops of the validation drawings: each
    family trained on once (a family listed twice for weight is scored once), in the run's scales,
    cut to whole blocks; ``psnr_wild_input`` is the inputs' own PSNR against their references."""
    from core.metrics import psnr
    from training.degrade import validation_pairs
    from training.train import WILD_VAL_SEED, _Validator

    families = ["resize_then_jpeg", "resize_then_jpeg", "crop"]
    cfg = _cfg(
        data_dir, tmp_path / "run", task=task, steps=1, val_dirs=[str(data_dir)], val_crop=64, val_limit=2,
        wild_fraction=1.0, wild_families=families, wild_scales=[0.6, 0.9], train_mask="gt",
    )  # fmt: skip
    meta = read_metadata(train(cfg))["training"]["validation"]
    key = "miou_wild" if task == "mask" else "psnr_wild"
    assert key in meta and (0.0 <= meta[key] <= 1.0 if task == "mask" else 10.0 < meta[key] < 100.0)
    header = (tmp_path / "run" / "val.csv").read_text().splitlines()[0].split(",")
    assert key in header

    validator = _Validator(cfg, torch.device("cpu"))
    assert len(validator.wild) == 2 * 2  # two crops, two families
    crops = validator.clean
    pairs = validation_pairs(crops, ("resize_then_jpeg", "crop"), seed=WILD_VAL_SEED, scale_range=(0.6, 0.9))
    for (img, ref, qf), d in zip(validator.wild, pairs):
        assert img.shape == ref.shape and img.shape[0] % 8 == 0 and img.shape[1] % 8 == 0
        assert qf == d.info["qf"] and np.array_equal(img, d.image[: img.shape[0], : img.shape[1]])
    if task == "restore":
        expected = np.mean([psnr(img, ref) for img, ref, _ in validator.wild])
        assert meta["psnr_wild_input"] == pytest.approx(expected, abs=1e-4)


def test_init_of_another_network_is_a_clear_error(tmp_path, data_dir):
    mask = tmp_path / "mask"
    train(_cfg(data_dir, mask, task="mask", steps=1))
    with pytest.raises(ValueError, match="different network.*kind"):
        train(
            _cfg(
                data_dir,
                tmp_path / "r",
                task="restore",
                mode="framework",
                steps=1,
                init=str(mask / "model.safetensors"),
            )
        )
    with pytest.raises(ValueError, match="different network.*variant"):
        train(
            _cfg(data_dir, tmp_path / "q", task="mask", variant="qfmap", steps=1, init=str(mask / "model.safetensors"))
        )
    with pytest.raises(FileNotFoundError, match="--init file not found"):
        train(_cfg(data_dir, tmp_path / "m", task="mask", steps=1, init=str(tmp_path / "nope.safetensors")))


@pytest.mark.parametrize("qf", [5, 10, 30, 75, 95])
def test_jpeg_degrade_is_a_real_jpeg_at_the_asked_quality(qf):
    img = synth_drawing(np.random.default_rng(qf), 64, 72)
    out = jpeg_degrade(img, qf)
    assert out.dtype == np.uint8 and out.shape == img.shape
    # exactly the pixels a JPEG file at this quality decodes to
    assert np.array_equal(out, _pillow_roundtrip(img, qf))
    # and an independent encoder (OpenCV's libjpeg) at the same quality agrees to within 1 level
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, qf])
    assert ok
    ref = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    # a neighbouring quality gives other pixels: the QF really is the asked one
    other = 2 * qf if qf <= 40 else qf - 20
    assert not np.array_equal(out, _pillow_roundtrip(img, other))


def test_jpeg_degrade_grid_offset_and_strength():
    img = synth_drawing(np.random.default_rng(1), 64, 64)
    padded = np.pad(img, ((3, 0), (5, 0)), constant_values=255)
    assert np.array_equal(jpeg_degrade(img, 20, offset=(3, 5)), _pillow_roundtrip(padded, 20)[3:, 5:])
    err = [np.abs(jpeg_degrade(img, q).astype(int) - img).mean() for q in (10, 40, 90)]
    assert err[0] > err[1] > err[2] > 0
    with pytest.raises(DataError, match="1..100"):
        jpeg_degrade(img, 0)


def test_missing_or_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        train(_cfg(tmp_path / "missing", tmp_path / "run", task="mask", steps=1))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        train(_cfg(tmp_path / "empty", tmp_path / "run", task="mask", steps=1))


def test_bad_image_is_skipped_with_a_warning(tmp_path, data_dir):
    d = tmp_path / "mixed"
    shutil.copytree(data_dir, d)
    (d / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.fromarray(np.zeros((96, 96), np.uint8)).save(d / "zz_black.png")  # no 255 background
    with pytest.warns(UserWarning) as rec:
        train(_cfg(d, tmp_path / "run", task="mask", steps=1))
    text = " ".join(str(w.message) for w in rec)
    assert "zz_broken.png" in text and "zz_black.png" in text
    assert json.loads((tmp_path / "run" / "state.json").read_text())["step"] == 1


def test_drawings_smaller_than_the_crop(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    Image.fromarray(synth_drawing(np.random.default_rng(0), 24, 24)).save(d / "tiny.png")
    with pytest.warns(UserWarning, match="smaller"), pytest.raises(DataError, match="no usable"):
        train(_cfg(d, tmp_path / "run", task="mask", steps=1))


# ---------------------------------------------------------------------------------------------
# DistributedDataParallel on CPU (gloo), two processes
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ddp_two_processes(tmp_path, data_dir):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "training",
        "mask",
        "--train",
        str(data_dir),
        "--steps",
        "2",
        "--batch",
        "2",
        "--crop",
        str(CROP),
        "--device",
        "cpu",
        "--bf16",
        "off",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    t0 = time.time()
    # own process group, so that a hang kills the workers too, not only the launcher
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("torchrun with 2 CPU processes did not finish within 240 s")
    assert proc.returncode == 0, stdout[-2000:] + stderr[-4000:]
    state = json.loads((out / "state.json").read_text())
    assert state["step"] == 2
    meta = read_metadata(out / "model.safetensors")
    assert meta["training"]["batch"] == 4  # 2 per process x 2 processes
    print(f"DDP run took {time.time() - t0:.1f} s")


# -- the restore loss and its per-patch log balance ---------------------------------------------


def _loss_batch():
    g = torch.Generator().manual_seed(3)
    y = (torch.rand(4, 1, 16, 16, generator=g) > 0.7).float() * 0.5 + 0.5  # lines at 0.5, paper 1.0
    y[2] = 1.0  # one patch without any line pixel
    out = y + 0.05 * torch.randn(4, 1, 16, 16, generator=g)
    return out, y, (y < 1.0).float()


def test_restore_loss_none_is_eq4_over_the_batch_and_plain_l1_mse():
    out, y, mask = _loss_batch()
    assert torch.allclose(restore_loss(out, y, mask), masked_mse(out, y, mask))
    assert torch.allclose(restore_loss(out, y, None, loss="l1"), (out - y).abs().mean())
    assert torch.allclose(restore_loss(out, y, None, loss="mse"), (out - y).pow(2).mean())


def test_restore_loss_log_is_the_mean_log_of_each_patch_loss():
    out, y, mask = _loss_batch()
    per = torch.stack([masked_mse(out[i], y[i], mask[i]) for i in range(4)])
    assert per[2] == 0  # the all-paper patch: eq. 4 defines its loss as 0
    want = torch.log(per + LOG_FLOOR["mse"]).mean()
    assert torch.allclose(restore_loss(out, y, mask, balance="log"), want)
    per_l1 = (out - y).abs().flatten(1).mean(1)
    assert torch.allclose(
        restore_loss(out, y, None, loss="l1", balance="log"), torch.log(per_l1 + LOG_FLOOR["l1"]).mean()
    )


def test_restore_loss_log_weighs_patches_by_relative_error():
    """Ten times the error on one patch adds the same to the log loss whatever that patch's error
    was, while the plain mean is dominated by the patch with the larger error."""
    out, y, mask = _loss_batch()
    base = restore_loss(out, y, mask, balance="log")
    for i in (0, 3):
        worse = out.clone()
        worse[i] = y[i] + (out[i] - y[i]) * 10**0.5  # squared error x10 on patch i
        step = restore_loss(worse, y, mask, balance="log") - base
        assert abs(float(step) - np.log(10) / 4) < 0.01  # log(10) over 4 patches, floor aside
    # gradient per unit of error: the same for every pixel under "none"; under "log" the patch
    # whose squared error is 100x smaller gets about a 100x larger pull (pixel counts differ a bit)
    small = out.clone()
    small[3] = y[3] + (out[3] - y[3]) * 0.1
    for balance, ratio_range in (("none", (0.99, 1.01)), ("log", (30, 300))):
        p = small.clone().requires_grad_(True)
        restore_loss(p, y, mask, balance=balance).backward()
        g0 = p.grad[0][mask[0].bool()].abs().mean() / (small[0] - y[0])[mask[0].bool()].abs().mean()
        g3 = p.grad[3][mask[3].bool()].abs().mean() / (small[3] - y[3])[mask[3].bool()].abs().mean()
        ratio = float(g3 / g0)
        assert ratio_range[0] < ratio < ratio_range[1], (balance, ratio)


def test_balance_is_checked():
    out, y, mask = _loss_batch()
    with pytest.raises(ValueError, match="balance"):
        restore_loss(out, y, mask, balance="sqrt")
    with pytest.raises(ValueError, match="balance"):
        TrainConfig(task="restore", train_dirs=["x"], steps=1, balance="sqrt").validate()
    with pytest.raises(ValueError, match="restore training only"):
        TrainConfig(task="mask", train_dirs=["x"], steps=1, balance="log").validate()


@pytest.mark.parametrize("native", [True, False])
def test_bf16_auto_follows_the_cpus_native_bf16(monkeypatch, native):
    # Emulated bf16 is ~17x slower than float32 on an AVX2-only CPU: "auto" must not pick it there.
    from training import train as train_mod

    monkeypatch.setattr(train_mod, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    with train_mod._autocast(cpu, "auto"):
        assert torch.is_autocast_enabled("cpu") is native
    with train_mod._autocast(cpu, "on"):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    with train_mod._autocast(cpu, "off"):
        assert not torch.is_autocast_enabled("cpu")


def test_warmup_ramps_the_learning_rate_then_hands_over_to_the_schedule(tmp_path, data_dir):
    """--warmup N: the learning rate rises linearly over the first N steps (step s at (s + 1) / N of
    the schedule's), then follows the cosine schedule alone; the run records N; misuse is refused."""
    run = tmp_path / "run"
    meta = read_metadata(train(_cfg(data_dir, run, steps=100, warmup_steps=80, lr=1e-3)))["training"]
    with open(run / "log.csv") as f:
        lr = {int(r["step"]): float(r["lr"]) for r in csv.DictReader(f)}
    assert lr[50] == pytest.approx(1e-3 * 50 / 80)  # the 50th step (s = 49) ran at 50/80
    assert lr[100] == pytest.approx(1e-3)  # lr_min_factor 1: a flat schedule after the ramp
    assert meta["warmup_steps"] == 80
    assert "warmup_steps" not in read_metadata(train(_cfg(data_dir, tmp_path / "plain", steps=1)))["training"]
    with pytest.raises(ValueError, match="--warmup"):
        _cfg(data_dir, tmp_path / "bad", steps=1, warmup_steps=-1).validate()


def test_loss_rim_scores_the_mask_networks_rim_and_is_recorded(tmp_path, data_dir, monkeypatch):
    """--loss-rim: the backbone is given the mask network's plain mask and scored on that mask
    with its uncertain rim (core.masknet.mask_with_rim, as eq. 2 keeps it on resized layers);
    validation composes with the same; the margin is recorded; misuse is refused."""
    from core.masknet import mask_with_rim
    from training.train import _predicted_masks, _Validator

    mask_run = tmp_path / "mask"
    train(_cfg(data_dir, mask_run, task="mask", steps=30))
    mask_file = str(mask_run / "model.safetensors")
    mask_model = load_model(mask_file).eval()
    drawings = [jpeg_degrade(synth_drawing(np.random.default_rng(7 + i), 64, 64), 30) for i in range(2)]
    x = torch.from_numpy(np.stack(drawings)[:, None]).float().div(255)
    qf = torch.tensor([30.0, 30.0])
    plain, scored = _predicted_masks(mask_model, x, qf, None)
    assert torch.equal(plain, scored) and torch.equal(plain, mask_model.predict(x, qf))
    line, kept = _predicted_masks(mask_model, x, qf, 20.0)
    with torch.no_grad():
        logits = mask_model(x, qf)
    want_line, want_kept = mask_with_rim(logits[:, 1:2] - logits[:, 0:1], 20.0)
    assert torch.equal(line, plain) and torch.equal(line.bool(), want_line) and torch.equal(kept.bool(), want_kept)
    assert bool((kept >= line).all()) and bool((kept > line).any())  # a rim, and only more

    cfg = _cfg(
        data_dir, tmp_path / "run", steps=2, train_mask=mask_file, loss_rim=20.0,
        val_dirs=[str(data_dir)], val_crop=64, val_limit=1, val_qf=30,
    )  # fmt: skip
    import training.train as train_module

    given, scored = [], []
    real_masks, real_loss = train_module._predicted_masks, train_module.restore_loss

    def masks_spy(*a):
        out = real_masks(*a)
        given.append(out)
        return out

    def loss_spy(out, target, mask, **kw):
        scored.append(mask)
        return real_loss(out, target, mask, **kw)

    monkeypatch.setattr(train_module, "_predicted_masks", masks_spy)
    monkeypatch.setattr(train_module, "restore_loss", loss_spy)
    meta = read_metadata(train(cfg))["training"]
    monkeypatch.undo()
    assert meta["loss_rim"] == 20.0 and meta["train_mask"] == mask_file
    training_steps = [g for g in given if g[0].shape[0] == cfg.batch]  # validation's crops come one by one
    assert len(scored) == 2 and all(torch.equal(m, k) for m, (_, k) in zip(scored, training_steps))
    validator = _Validator(cfg, torch.device("cpu"), mask_model)
    jpeg = validator.jpeg[0]
    xv = torch.from_numpy(jpeg.copy()).float().div(255).view(1, 1, *jpeg.shape)
    with torch.no_grad():  # a network this short-trained marks no line on the crop: raise its line logit
        lv = mask_model(xv, torch.tensor([float(cfg.val_qf)]))
        mask_model.tail.bias[1] -= float(torch.quantile(lv[:, 1] - lv[:, 0], 0.9))
    model = load_model(tmp_path / "run" / "model.safetensors").eval()
    with torch.no_grad():
        _, used = validator._run_one(model, xv, np.zeros_like(jpeg))
        lv = mask_model(xv, torch.tensor([float(cfg.val_qf)]))
    line_v, kept_v = mask_with_rim(lv[:, 1:2] - lv[:, 0:1], 20.0)
    assert bool((kept_v > line_v).any())
    assert np.array_equal(used, kept_v[0, 0].numpy().astype(np.uint8))

    for bad in (
        dict(loss_rim=1.5),  # scored on a mask network's rim: needs --train-mask
        dict(loss_rim=1.5, train_mask=mask_file, mode="baseline"),
        dict(loss_rim=0.0, train_mask=mask_file),
    ):
        with pytest.raises(ValueError, match="--loss-rim"):
            _cfg(data_dir, tmp_path / "bad", steps=1, **bad).validate()
