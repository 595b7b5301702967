"""Training on coloured JPEGs (``python -m training mask --colour``, ``restore --colour``): the
patches are the plane the pipeline gives the networks for a colour layer, a backbone's target is the
clean drawing's line plane, and the run validates on colour too."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core import colour
from core.pipeline import DEFAULT_FILES, MODELS_DIR, RestoreOptions, Restorer
from core.weights import read_metadata
from training.colour import LIGHT_INKS
from training.data import PatchDataset, jpeg_degrade
from training.synth import synth_drawing
from training.train import TrainConfig, train

CROP = 64


@pytest.fixture(scope="module")
def drawings() -> list[np.ndarray]:
    return [synth_drawing(np.random.default_rng(300 + i), 96, 96) for i in range(3)]


def test_colour_patch_is_the_pipelines_mask_plane(drawings, monkeypatch):
    """For the same RGB JPEG, a colour patch is bit for bit the plane a real restore hands the
    colour layers' mask network (recorded at that network's call), and the target is the gray
    drawing. ``mask_default`` stands in for the colour mask network."""
    ds = PatchDataset(drawings, crop=CROP, colour_fraction=1.0, light_fraction=0.2, seed=5)
    restorer = Restorer.from_files(
        mask=MODELS_DIR / DEFAULT_FILES["mask"],
        restore=MODELS_DIR / DEFAULT_FILES["restore"],
        mask_colour=MODELS_DIR / "mask_default.safetensors",
        device="cpu",
    )
    colour_runner = restorer._runners["mask_colour"]
    seen: list[tuple[object, torch.Tensor]] = []
    real = Restorer._mask_logit_diff

    def spy(self, r, x, *a, **k):
        seen.append((r, x.clone()))
        return real(self, r, x, *a, **k)

    for warm in (ds.colour_item(0)[3], drawings[0]):  # first use: the networks' tile-cost probes
        restorer.restore(warm)
    monkeypatch.setattr(Restorer, "_mask_logit_diff", spy)
    coloured = 0
    for i in range(6):
        plane, clean, qf, rgb = ds.colour_item(i)
        assert rgb is not None and rgb.shape == (CROP, CROP, 3) and rgb.dtype == np.uint8
        again = ds[i]  # seeded: the same item every time
        assert torch.equal(again[0], plane) and torch.equal(again[1], clean) and float(again[2]) == float(qf)
        seen.clear()
        restorer.restore(rgb, RestoreOptions(qf=int(qf)))
        # one tile, through the colour mask network (a patch left without colour goes the gray way,
        # to the gray mask network, on its gray plane: the same in the dataset)
        assert len(seen) == 1 and (seen[0][0] is colour_runner) == (not colour.is_neutral(rgb))
        assert torch.equal(seen[0][1][0], plane)
        assert plane.shape == clean.shape == (1, CROP, CROP)
        # not the gray JPEG of the drawing: a plane made of the RGB JPEG
        gray8 = np.rint(clean[0].numpy() * 255).astype(np.uint8)
        assert not torch.equal(plane[0], torch.from_numpy(jpeg_degrade(gray8, int(qf)).copy()).float() / 255)
        coloured += int(not colour.is_neutral(rgb))
    assert coloured >= 4  # the patches are coloured (but one may have lost its few faint strokes)


def test_colour_share_inks_and_subsampling(drawings, monkeypatch):
    """About the asked share of patches is coloured, light inks among them, and some are 4:4:4."""
    import training.colour as tc

    subs: list[str] = []
    real = tc.jpeg_rgb
    monkeypatch.setattr(tc, "jpeg_rgb", lambda img, qf, sub="4:2:0": (subs.append(sub), real(img, qf, sub))[1])
    inks: list[np.ndarray] = []
    real_ink = tc._ink
    monkeypatch.setattr(
        tc,
        "_ink",
        lambda rng, light=None, any_colour=False: (inks.append(real_ink(rng, light, any_colour)), inks[-1])[1],
    )
    ds = PatchDataset(drawings, crop=CROP, colour_fraction=0.5, seed=11)
    n = 80
    coloured = sum(ds.colour_item(i)[3] is not None for i in range(n))
    assert 25 <= coloured <= 55, coloured
    assert len(subs) == coloured and 0 < subs.count("4:4:4") < coloured
    light = np.asarray(list(LIGHT_INKS.values()))
    assert any((np.abs(light - ink).max(axis=1) <= 8).any() for ink in inks)
    gray = PatchDataset(drawings, crop=CROP, seed=11)
    assert all(gray.colour_item(i)[3] is None for i in range(10))


def test_colour_light_draws_light_inks_only_for_that_share(drawings, monkeypatch):
    """``--colour-light``: that share of the colour patches is drawn in light inks only; without
    it no extra random number is drawn, so the patches of earlier recipes stay the same."""
    import training.colour as tc

    asked: list[bool | None] = []
    real_ink = tc._ink
    monkeypatch.setattr(
        tc, "_ink", lambda rng, light=None, any_colour=False: (asked.append(light), real_ink(rng, light, any_colour))[1]
    )
    ds = PatchDataset(drawings, crop=CROP, colour_fraction=1.0, colour_light=0.5, seed=11)
    for i in range(40):
        ds.colour_item(i)
    assert 0.25 < asked.count(True) / len(asked) < 0.9 and set(asked) == {True, None}
    light = np.asarray(list(LIGHT_INKS.values()))
    ink = real_ink(np.random.default_rng(1), True)
    assert (np.abs(light - ink).max(axis=1) <= tc.JITTER).any()
    asked.clear()
    plain = PatchDataset(drawings, crop=CROP, colour_fraction=1.0, seed=11)
    same = PatchDataset(drawings, crop=CROP, colour_fraction=1.0, colour_light=0.0, seed=11)
    for i in range(5):
        assert torch.equal(plain[i][0], same[i][0])
    assert set(asked) == {None}
    with pytest.raises(ValueError, match="colour-light"):
        TrainConfig(task="mask", train_dirs=["x"], steps=1, colour_fraction=0.5, colour_light=2.0).validate()


def test_colour_random_draws_inks_from_the_whole_cube_for_that_share(drawings, monkeypatch):
    """``--colour-random``: that share of the colour patches gets inks drawn from the whole RGB cube
    (each at least MIN_INK_DARKNESS from white); without it no extra random number is drawn."""
    import training.colour as tc

    asked: list[bool] = []
    real_ink = tc._ink
    monkeypatch.setattr(
        tc,
        "_ink",
        lambda rng, light=None, any_colour=False: (asked.append(any_colour), real_ink(rng, light, any_colour))[1],
    )
    ds = PatchDataset(drawings, crop=CROP, colour_fraction=1.0, colour_random=0.5, seed=11)
    for i in range(40):
        ds.colour_item(i)
    assert 0.2 < asked.count(True) / len(asked) < 0.9
    rng = np.random.default_rng(3)
    inks = np.stack([tc.random_ink(rng) for _ in range(300)])
    assert (255 - inks.min(axis=1) >= tc.MIN_INK_DARKNESS).all()
    named = np.asarray(list(tc.INKS.values()))
    far = [np.abs(named - ink).max(axis=1).min() > tc.JITTER for ink in inks]
    assert np.mean(far) > 0.9  # mostly colours the named inks never give
    plain = PatchDataset(drawings, crop=CROP, colour_fraction=1.0, seed=11)
    same = PatchDataset(drawings, crop=CROP, colour_fraction=1.0, colour_random=0.0, seed=11)
    for i in range(5):
        assert torch.equal(plain[i][0], same[i][0])
    with pytest.raises(ValueError, match="colour-random"):
        TrainConfig(task="mask", train_dirs=["x"], steps=1, colour_fraction=1.0, colour_random=1.5).validate()


def _two_steps(tmp_path, drawings, **config):
    """Two training steps on ``drawings`` (validating on them too): the weights' path."""
    data = tmp_path / "d"
    data.mkdir()
    for i, d in enumerate(drawings):
        Image.fromarray(d).save(data / f"d{i}.png")
    common = dict(out=str(tmp_path / "run"), train_dirs=[str(data)], val_dirs=[str(data)], val_crop=64)
    return train(TrainConfig(**common, crop=CROP, batch=2, steps=2, progress=False, bf16="off", threads=1, **config))


def test_mask_training_on_colour_validates_on_colour(tmp_path, drawings):
    path = _two_steps(tmp_path, drawings, task="mask", colour_fraction=0.5)
    meta = read_metadata(path)["training"]
    assert meta["colour_fraction"] == 0.5
    assert 0.0 <= meta["validation"]["miou_colour"] <= 1.0 and "miou" in meta["validation"]
    header = (tmp_path / "run" / "val.csv").read_text().splitlines()[0]
    assert header.split(",") == ["step", "hours", "miou", "miou_colour"]


def test_backbone_colour_patches_target_the_clean_line_plane(drawings, monkeypatch):
    """For a backbone (``colour_target="plane"``) a colour patch has the same input as for the mask
    network, and its target is the clean coloured drawing's darkest channel (the line plane the
    colour stage turns back into ink colours), stretched by the same light-ink factor as the input."""
    import training.colour as tc
    from core import ink, pipeline

    made: list[np.ndarray] = []
    real = tc.colourize
    monkeypatch.setattr(tc, "colourize", lambda *a, **k: (made.append(real(*a, **k)), made[-1])[1])
    for_mask = PatchDataset(drawings, crop=CROP, colour_fraction=1.0, light_fraction=0.3, seed=7)
    for_backbone = PatchDataset(
        drawings, crop=CROP, colour_fraction=1.0, light_fraction=0.3, seed=7, colour_target="plane"
    )
    stretched = 0
    for i in range(12):
        plane_m, drawing, _, rgb_m = for_mask.colour_item(i)
        made.clear()
        plane, target, _, rgb = for_backbone.colour_item(i)
        assert np.array_equal(rgb, rgb_m) and torch.equal(plane, plane_m)
        assert target.shape == (1, CROP, CROP) and not torch.equal(target, drawing)
        k = pipeline.network_planes(rgb).ink_k
        stretched += int(k != 1.0)
        darkest = made[0].min(axis=2)
        hits = []
        for dy in range(8):
            for dx in range(8):
                want = torch.from_numpy(darkest[dy : dy + CROP, dx : dx + CROP].copy()).float().div(255)[None]
                want = ink.stretch(want, k) if k != 1.0 else want
                hits.append(torch.allclose(target, want, atol=1e-6))
        assert sum(hits) >= 1
    with pytest.raises(ValueError, match="colour_target"):
        PatchDataset(drawings, colour_target="rgb")


def test_backbone_training_on_colour_validates_on_colour(tmp_path, drawings):
    mask = str(MODELS_DIR / DEFAULT_FILES["mask"])
    path = _two_steps(tmp_path, drawings, task="restore", preset="fast", colour_fraction=1.0, train_mask=mask)
    meta = read_metadata(path)["training"]
    assert meta["colour_fraction"] == 1.0
    assert 10.0 < meta["validation"]["psnr_colour_plane"] < 100.0 and "psnr" in meta["validation"]
    header = (tmp_path / "run" / "val.csv").read_text().splitlines()[0]
    assert header.split(",")[-1] == "psnr_colour_plane"


def test_colour_training_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(ValueError, match="framework backbone"):
        train(TrainConfig(task="restore", mode="baseline", train_dirs=[str(tmp_path)], steps=1, colour_fraction=0.5))
    with pytest.raises(ValueError, match="share of patches"):
        train(TrainConfig(task="mask", train_dirs=[str(tmp_path)], steps=1, colour_fraction=1.5))


@pytest.mark.parametrize("target", ["plane", "drawing"])
def test_wild_colour_patches_are_degraded_as_rgb(drawings, monkeypatch, target):
    """``--wild`` with ``--colour``: that share of the wild patches is a coloured drawing degraded
    as RGB (training.degrade); the input is the pipeline's plane of the degraded layer, the target
    the clean coloured drawing put through the same geometry (its line plane, or for a mask network
    its distance from white as a gray drawing)."""
    from training import degrade as degrade_module
    from training.colour import line_plane

    made = []
    real = degrade_module.degrade

    def recording(img, rng, family=None, **kw):
        d = real(img, rng, family, **kw)
        made.append((img, d))
        return d

    monkeypatch.setattr(degrade_module, "degrade", recording)
    ds = PatchDataset(
        drawings,
        crop=CROP,
        wild_fraction=1.0,
        wild_families=("resize_png",),
        colour_fraction=1.0,
        colour_target=target,
        seed=9,
    )
    from core.pipeline import network_planes

    for i in range(4):
        made.clear()
        plane, want, qf, rgb = ds.colour_item(i)
        ((src, d),) = made
        assert src.ndim == 3 and d.image.ndim == 3 and d.info["family"] == "resize_png"  # degraded in colour
        assert rgb.shape == (CROP, CROP, 3) and float(qf) == d.info["qf"]
        # the crop of the degraded layer that the patch shows, and of its reference
        hits = [
            (y, x)
            for y in range(d.image.shape[0] - CROP + 1)
            for x in range(d.image.shape[1] - CROP + 1)
            if np.array_equal(d.image[y : y + CROP, x : x + CROP], rgb)
        ]
        assert hits
        y, x = hits[0]
        ref = d.reference[y : y + CROP, x : x + CROP]
        planes = network_planes(rgb)
        assert torch.equal(plane, planes.mask_input(colour_mask=True)[0])
        if target == "plane":
            assert torch.equal(want, line_plane(ref, planes.ink_k)[None])
        else:
            assert torch.equal(want, torch.from_numpy(ref.min(axis=2) / np.float32(255.0))[None])
