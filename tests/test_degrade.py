"""The degradation model of training.degrade: every family made with real encoders, seeded."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import jpeg_consistency as jc
from training import degrade as dg
from training.data import PatchDataset

DATA = Path(__file__).parent / "data"


def _clean() -> np.ndarray:
    return np.array(Image.open(DATA / "val_crop_empty_tomb.png").convert("L"))


@pytest.mark.parametrize("family", dg.FAMILIES)
def test_every_family_is_made_and_is_reproducible(family):
    clean = _clean()
    a = dg.degrade(clean, np.random.default_rng(7), family)
    b = dg.degrade(clean, np.random.default_rng(7), family)
    assert a.info == b.info and np.array_equal(a.image, b.image) and np.array_equal(a.reference, b.reference)
    assert a.info["family"] == family
    assert a.image.dtype == np.uint8 and a.image.shape == a.reference.shape
    assert not np.array_equal(a.image, a.reference)  # something was degraded


def test_families_do_what_they_say():
    clean = _clean()
    rng = lambda: np.random.default_rng(3)
    single = dg.degrade(clean, rng(), "single")
    grid = jc.find_jpeg_grid(single.image)
    assert grid is not None and grid.qf == single.info["qf"] and (grid.dy, grid.dx) == (0, 0)
    # the PNG export keeps the JPEG's pixels, a crop moves the grid off 0
    assert np.array_equal(dg.degrade(clean, rng(), "png_export").image, single.image)
    crop = dg.degrade(clean, rng(), "crop")
    dy, dx = crop.info["crop"]
    assert np.array_equal(crop.image, single.image[dy:, dx:]) and np.array_equal(crop.reference, clean[dy:, dx:])
    double = dg.degrade(clean, rng(), "double_aligned")
    assert jc.find_jpeg_grid(double.image).qf == double.info["qf2"] or double.info["qf2"] > jc.MAX_QF
    shifted = dg.degrade(clean, rng(), "double_shifted")
    assert shifted.image.shape == clean[shifted.info["shift"][0] :, shifted.info["shift"][1] :].shape
    for fam in ("resize_then_jpeg", "resize_png"):
        r = dg.degrade(clean, rng(), fam)
        s = r.info["scale"]
        assert r.image.shape == (round(192 * s), round(192 * s))
        assert np.array_equal(r.reference, dg.resize(clean, s, r.info["kernel"]))
        assert ("qf2" in r.info) == (fam == "resize_then_jpeg")


def test_rgb_saves_draw_a_chroma_subsampling():
    rgb = np.repeat(_clean()[..., None], 3, axis=2)
    rgb[..., 0] = np.minimum(255, rgb[..., 0].astype(int) + 60).astype(np.uint8)  # reddish lines
    seen = set()
    for seed in range(12):
        d = dg.degrade(rgb, np.random.default_rng(seed), "single")
        assert d.image.shape == rgb.shape and d.image.dtype == np.uint8
        seen.add(d.info["qf_subsampling"])
    assert seen == set(dg.SUBSAMPLINGS)
    # 4:2:0 smears the colour more than 4:4:4 at the same quality
    e = {s: np.abs(dg.encode(rgb, 90, s).astype(int) - rgb).mean() for s in (0, 2)}
    assert e[2] > e[0]


def test_validation_pairs_are_fixed_and_cover_every_family():
    crops = [_clean(), _clean()[:128, :160]]
    a = dg.validation_pairs(crops, seed=1)
    b = dg.validation_pairs(crops, seed=1)
    assert [d.info for d in a] == [d.info for d in b]
    assert {d.info["family"] for d in a} == set(dg.FAMILIES) and len(a) == 2 * len(dg.FAMILIES)
    assert [d.info for d in dg.validation_pairs(crops, seed=2)] != [d.info for d in a]
    # a subset of families draws the same pairs as the whole set; the scales are the caller's
    sub = dg.validation_pairs(crops, ("resize_png", "crop"), seed=1)
    assert [d.info for d in sub] == [d.info for d in a if d.info["family"] in ("resize_png", "crop")]
    small = dg.validation_pairs(crops, ("resize_png",), seed=1, scale_range=(0.5, 0.9))
    assert all(0.5 <= d.info["scale"] <= 0.9 for d in small)
    with pytest.raises(ValueError, match="unknown degradation family 'fax'"):
        dg.validation_pairs(crops, ("single", "fax"))


def test_unknown_family_and_bad_image_are_refused():
    with pytest.raises(ValueError, match="unknown degradation family"):
        dg.degrade(_clean(), np.random.default_rng(0), "fax")
    with pytest.raises(ValueError, match="gray or RGB"):
        dg.encode(np.zeros((8, 8, 4), np.uint8), 50)


def test_patch_dataset_mixes_in_wild_patches():
    ds = PatchDataset([_clean()], crop=64, wild_fraction=1.0, seed=5)
    for i in range(6):
        jpeg, clean, qf = ds[i]
        assert jpeg.shape == clean.shape == (1, 64, 64) and 5 <= float(qf) <= 95
        j2, c2, _ = ds[i]
        assert np.array_equal(jpeg.numpy(), j2.numpy()) and np.array_equal(clean.numpy(), c2.numpy())


def test_patch_dataset_draws_wild_patches_from_the_families_asked(monkeypatch):
    """``--wild-families``: a backbone trained for the layers routed to it sees those families only."""
    drawn = []
    real = dg.degrade

    def spy(clean, rng, family=None, **kw):
        out = real(clean, rng, family, **kw)
        drawn.append(out.info["family"])
        return out

    monkeypatch.setattr(dg, "degrade", spy)
    ds = PatchDataset([_clean()], crop=64, wild_fraction=1.0, wild_families=("resize_png", "crop"), seed=3)
    for i in range(12):
        ds[i]
    assert set(drawn) == {"resize_png", "crop"}


def test_resize_families_draw_their_scale_from_the_range_asked(monkeypatch):
    """``--wild-scales``: the resize families draw from that range (e.g. shrunk files only)."""
    clean = _clean()
    scales = [
        dg.degrade(clean, np.random.default_rng(s), "resize_then_jpeg", scale_range=(0.6, 0.9)).info["scale"]
        for s in range(10)
    ]
    assert all(0.6 <= s <= 0.9 for s in scales) and max(scales) - min(scales) > 0.1
    drawn = []
    real = dg.degrade

    def spy(*a, **kw):
        out = real(*a, **kw)
        drawn.append(out.info["scale"])
        return out

    monkeypatch.setattr(dg, "degrade", spy)
    ds = PatchDataset([clean], crop=64, wild_fraction=1.0, wild_families=("resize_png",), wild_scales=(2.0, 2.5))
    for i in range(3):
        jpeg, ref, _ = ds[i]
        assert jpeg.shape == ref.shape == (1, 64, 64)
    assert len(drawn) == 3 and all(2.0 <= s <= 2.5 for s in drawn)
    from training.train import TrainConfig

    with pytest.raises(ValueError, match="wild-scales"):
        TrainConfig(task="restore", train_dirs=["x"], steps=1, wild_scales=[0.9, 0.5]).validate()


def test_the_training_command_checks_the_wild_families(capsys):
    from training.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["restore", "--train", "x", "--wild", "1", "--wild-families", "resized"])
    assert exc.value.code == 2 and "invalid choice: 'resized'" in capsys.readouterr().err


def test_encode_with_table_writes_that_table():
    """Gray and RGB saves carry the given luminance table (and, for RGB, chroma table) and decode
    to the input's shape; anything but gray or RGB uint8 is refused."""
    import io

    table = [min(255, 3 + i) for i in range(64)]
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (24, 40), dtype=np.uint8)
    rgb = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    for img in (gray, rgb):
        out = dg.encode_with_table(img, table)
        assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", qtables=[table] * (1 if img.ndim == 2 else 2))
        buf.seek(0)
        assert np.array_equal(out, np.asarray(Image.open(buf)))
    with pytest.raises(Exception, match="gray or RGB"):
        dg.encode_with_table(gray.astype(np.float32), table)
