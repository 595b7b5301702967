"""JPEG consistency: the IJG tables, the grid search on real encoders' files, the projection."""

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from core import jpeg_consistency as jc
from core.imageio import ijg_table
from core.pipeline import RestoreOptions, Restorer
from training.colour import jpeg_rgb
from training.data import jpeg_degrade  # Pillow, as the training pairs are made
from training.degrade import encode_with_table

DATA = Path(__file__).parent / "data"


def _clean() -> np.ndarray:
    return np.array(Image.open(DATA / "val_crop_empty_tomb.png").convert("L"))


def test_ijg_table_matches_what_pillow_writes():
    for qf in (5, 30, 50, 75, 90):
        buf = io.BytesIO()
        Image.fromarray(_clean()).save(buf, "JPEG", quality=qf)
        buf.seek(0)
        written = np.array(Image.open(buf).quantization[0], dtype=np.float64).reshape(8, 8)
        assert np.array_equal(ijg_table(qf).reshape(8, 8), written), qf
    with pytest.raises(ValueError):
        ijg_table(0)


def test_dct_is_the_orthonormal_jpeg_transform():
    block = np.random.default_rng(0).uniform(-128, 127, (8, 8)).astype(np.float32)
    ours = jc.dct8(torch.from_numpy(block).reshape(64)).reshape(8, 8).numpy()
    assert np.allclose(ours, cv2.dct(block), atol=1e-3)
    assert np.allclose(jc.idct8(jc.dct8(torch.from_numpy(block).reshape(64))).reshape(8, 8).numpy(), block, atol=1e-3)


@pytest.mark.parametrize("name,qf", [("gimp_lineart_gray_q35.jpg", 35), ("krita_lineart_q30.jpg", 30)])
def test_grid_found_in_files_written_by_the_editors(name, qf):
    gray = np.array(Image.open(DATA / name).convert("L"))
    grid = jc.find_jpeg_grid(gray)
    assert grid is not None and (grid.qf, grid.dy, grid.dx) == (qf, 0, 0)


@pytest.mark.parametrize("qf", [10, 40, 75])
def test_grid_found_in_pillow_jpegs_and_in_a_crop_of_one(qf):
    jpeg = jpeg_degrade(_clean(), qf)
    grid = jc.find_jpeg_grid(jpeg)
    assert grid is not None and (grid.qf, grid.dy, grid.dx) == (qf, 0, 0)
    shifted = jc.find_jpeg_grid(jpeg[3:, 5:])
    assert shifted is not None and (shifted.qf, shifted.dy, shifted.dx) == (qf, 5, 3)


@pytest.mark.parametrize("name,qf", [("val_crop_empty_tomb.png", 20), ("val_crop_eye_solid.png", 40)])
def test_grid_found_in_a_small_layer_cut_from_a_jpeg_at_any_offset(name, qf):
    # 192 px layers: before the light-paper ranking of the phases, the one phase guessed from
    # all pixel steps was wrong at every offset of the first crop at QF 20.
    jpeg = jpeg_degrade(np.array(Image.open(DATA / name).convert("L")), qf)
    for dx in range(8):  # every row and every column offset once
        dy = (5 * dx + 3) % 8
        grid = jc.find_jpeg_grid(np.ascontiguousarray(jpeg[dy:, dx:]))
        assert grid is not None and (grid.qf, grid.dy, grid.dx) == (qf, (8 - dy) % 8, (8 - dx) % 8), (dy, dx)


def test_grid_found_in_a_cut_layer_larger_than_the_step_profiles_window():
    # Above 2048 px the step profile is read on a central window; its phases must be the layer's.
    big = np.tile(_clean(), (12, 12))[:2120, :2130]
    layer = np.ascontiguousarray(jpeg_degrade(big, 30)[3:, 5:])
    grid = jc.find_jpeg_grid(layer)
    assert grid is not None and (grid.qf, grid.dy, grid.dx) == (30, 5, 3)


def test_a_cut_jpeg_fits_on_its_own_grid_only():
    layer = np.ascontiguousarray(jpeg_degrade(_clean(), 30)[6:, 1:])
    grid = jc.find_jpeg_grid(layer)
    assert grid is not None and (grid.dy, grid.dx) == (2, 7)
    away = jc._share_away(layer, grid.dy, grid.dx, grid.table, 128, np.random.default_rng(0))
    assert grid.reproduced - away >= jc.MIN_CONTRAST + 0.2


@pytest.mark.parametrize("name", ["val_crop_empty_tomb.png", "val_crop_eye_solid.png"])
def test_no_grid_in_small_layers_that_are_no_jpeg_at_their_size(name):
    clean = np.array(Image.open(DATA / name).convert("L"))
    assert jc.find_jpeg_grid(clean) is None
    h, w = clean.shape
    for qf in (10, 20, 40):
        jpeg = jpeg_degrade(clean, qf)
        for s in (0.75, 1.5):
            for kernel in (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4):
                resized = cv2.resize(jpeg, (round(w * s), round(h * s)), interpolation=kernel)
                assert jc.find_jpeg_grid(resized) is None, (qf, s, kernel)


def test_no_grid_in_what_is_not_an_unedited_jpeg():
    clean = _clean()
    assert jc.find_jpeg_grid(clean) is None  # a PNG
    assert jc.find_jpeg_grid(jpeg_degrade(clean, 97)) is None  # above MAX_QF
    jpeg = jpeg_degrade(clean, 30)
    half = cv2.resize(jpeg, (96, 96), interpolation=cv2.INTER_AREA)
    assert jc.find_jpeg_grid(half) is None  # rescaled
    noise = np.random.default_rng(1).integers(0, 256, (128, 128), dtype=np.uint8)
    assert jc.find_jpeg_grid(noise) is None
    assert jc.find_jpeg_grid(np.full((64, 64), 255, np.uint8)) is None  # no texture to judge by
    assert jc.find_jpeg_grid(jpeg.astype(np.uint16)) is None


def test_projection_brings_a_rough_restoration_closer_to_the_truth():
    clean = _clean()
    jpeg = jpeg_degrade(clean, 20)
    grid = jc.find_jpeg_grid(jpeg)
    # A stand-in restoration: the clean drawing with noise, paper exactly white.
    noisy = clean.astype(np.float32) + np.random.default_rng(2).normal(0, 6, clean.shape).astype(np.float32)
    paper = clean == 255
    noisy[paper] = 255
    rough = torch.from_numpy(np.clip(noisy, 0, 255) / 255.0)
    before = float(((rough.numpy() * 255 - clean) ** 2).mean())
    out, share = jc.make_consistent(rough.clone(), jpeg, grid, paper)
    after = float(((out.numpy() * 255 - clean) ** 2).mean())
    assert share > 0.5
    assert after < 0.95 * before
    assert np.all(out.numpy()[paper] == 1.0)


def test_projection_leaves_untrusted_and_all_paper_blocks_alone():
    jpeg = jpeg_degrade(_clean(), 20)
    grid = jc.find_jpeg_grid(jpeg)
    restored = torch.rand(jpeg.shape)
    paper = np.ones(jpeg.shape, bool)
    paper[:64, :64] = False  # lines only in the top-left corner
    out, _ = jc.make_consistent(restored.clone(), jpeg, grid, paper)
    assert torch.equal(out[64:], restored[64:]) and torch.equal(out[:, 64:], restored[:, 64:])
    # a block edited after decoding no longer matches the JPEG and is not projected
    edited = jpeg.copy()
    edited[8:16, 8:16] = np.random.default_rng(3).integers(0, 256, (8, 8))
    out2, _ = jc.make_consistent(restored.clone(), edited, grid, None)
    assert torch.equal(out2[8:16, 8:16], restored[8:16, 8:16])


def test_projection_in_bands_equals_one_pass(monkeypatch):
    """The projection runs in bands of block rows (memory); blocks are independent, so any band
    height gives the same pixels (up to float rounding in the batched DCTs, a ten-thousandth of a
    gray level here) and the same share, here on a crop whose grid is off the origin."""
    clean = _clean()
    jpeg = jpeg_degrade(clean, 10)[3:, 5:]  # QF 10: the shifted grid is still found here
    grid = jc.find_jpeg_grid(jpeg)
    assert (grid.dy, grid.dx) == (5, 3)
    rough = torch.from_numpy(
        np.clip(clean[3:, 5:] + np.random.default_rng(4).normal(0, 6, jpeg.shape), 0, 255).astype(np.float32) / 255.0
    )
    paper = clean[3:, 5:] == 255
    for mask in (paper, None):
        monkeypatch.setattr(jc, "_BAND_BLOCK_ROWS", 10**6)
        whole, share_whole = jc.make_consistent(rough.clone(), jpeg, grid, mask)
        monkeypatch.setattr(jc, "_BAND_BLOCK_ROWS", 3)
        banded, share_banded = jc.make_consistent(rough.clone(), jpeg, grid, mask)
        assert not torch.equal(whole, rough)
        assert float((banded - whole).abs().max()) * 255 < 1e-3 and share_banded == share_whole
    # a 0/1 paper mask of another dtype means the same as the bool one
    as_u8, _ = jc.make_consistent(rough.clone(), jpeg, grid, paper.astype(np.uint8))
    assert torch.equal(as_u8, jc.make_consistent(rough.clone(), jpeg, grid, paper)[0])


@pytest.fixture(scope="module")
def restorer():
    return Restorer.default()


def test_pipeline_makes_a_jpeg_layer_consistent_and_keeps_paper_white(restorer):
    clean = _clean()
    jpeg = jpeg_degrade(clean, 30)
    off = restorer.restore(jpeg, RestoreOptions(jpeg_consistency=False))
    on = restorer.restore(jpeg, RestoreOptions())
    assert off.jpeg_quality is None and on.jpeg_quality == 30
    assert "consistency" in on.timings and any("quality 30" in n for n in on.notes)
    assert np.all(on.image[on.mask == 0] == 255)
    assert np.all((on.image > 251) <= (on.image == 255))  # eq. 1 still holds
    err = lambda a: float(((a.astype(np.float64) - clean) ** 2).mean())
    assert err(on.image) < err(off.image)


def test_pipeline_leaves_a_png_layer_as_the_networks_made_it(restorer):
    clean = _clean()
    on = restorer.restore(clean, RestoreOptions())
    off = restorer.restore(clean, RestoreOptions(jpeg_consistency=False))
    assert on.jpeg_quality is None and np.array_equal(on.image, off.image)
    # Nothing about the consistency step; the one note says which network restored a layer with
    # no JPEG noise to go by (the wild pair, core.resample.resize_evidence).
    assert [n for n in on.notes if "JPEG" in n] == [
        "no JPEG noise to go by at the layer's size (a clean drawing, or a JPEG shrunk after compression?): "
        "restored with the network trained on resized and re-saved JPEGs"
    ]
    with pytest.raises(Exception, match="jpeg_consistency"):
        RestoreOptions(jpeg_consistency="yes")


# An encoder's own table (not IJG's): asymmetric, so that a transposed layer needs its transpose.
OWN_TABLE = [min(255, 4 + 3 * i + 6 * j) for i in range(8) for j in range(8)]


def _own_table_jpeg(tmp_path, img: np.ndarray) -> Path:
    path = tmp_path / "own_tables.jpg"
    Image.fromarray(img).save(path, "JPEG", qtables=[OWN_TABLE])
    return path


def test_a_files_own_table_is_read_and_used_where_the_search_finds_nothing(tmp_path):
    from core.imageio import read_image

    f = read_image(_own_table_jpeg(tmp_path, _clean()))
    assert f.jpeg_table == tuple(OWN_TABLE)
    assert jc.find_jpeg_grid(f.pixels) is None  # not an IJG table
    grid = jc.find_jpeg_grid(f.pixels, table=f.jpeg_table)
    assert grid is not None and (grid.dy, grid.dx) == (0, 0) and not grid.standard
    assert np.array_equal(grid.table.reshape(-1), OWN_TABLE)
    cut = jc.find_jpeg_grid(np.ascontiguousarray(f.pixels[6:, 3:]), table=f.jpeg_table)  # a cropped layer
    assert cut is not None and (cut.dy, cut.dx) == (2, 5) and np.array_equal(cut.table.reshape(-1), OWN_TABLE)
    # turned by 90 degrees (an EXIF orientation): the transposed table fits
    turned = jc.find_jpeg_grid(np.ascontiguousarray(f.pixels.T), table=f.jpeg_table)
    assert turned is not None and np.array_equal(turned.table, grid.table.T)
    # the IJG table of a file is recognised as standard
    ijg = jc.find_jpeg_grid(jpeg_degrade(_clean(), 30), table=ijg_table(30))
    assert ijg is not None and ijg.standard and ijg.qf == 30


def test_pipeline_uses_the_given_table_and_says_when_it_does_not_fit(tmp_path, restorer):
    from core.imageio import read_image

    clean = _clean()
    f = read_image(_own_table_jpeg(tmp_path, clean))
    searched = restorer.restore(f.pixels, RestoreOptions())
    given = restorer.restore(f.pixels, RestoreOptions(jpeg_table=list(f.jpeg_table)))
    assert searched.jpeg_quality is None and given.jpeg_quality is not None
    assert any("own quantization table" in n for n in given.notes)
    err = lambda a: float(((a.astype(np.float64) - clean) ** 2).mean())
    assert err(given.image) < err(searched.image)
    assert np.all(given.image[given.mask == 0] == 255)
    # a layer edited after decoding (softened): the table no longer reproduces it, nothing changes
    edited = cv2.GaussianBlur(f.pixels, (3, 3), 0.8)
    off = restorer.restore(edited, RestoreOptions(jpeg_consistency=False))
    on = restorer.restore(edited, RestoreOptions(jpeg_table=f.jpeg_table))
    assert on.jpeg_quality is None and np.array_equal(on.image, off.image)
    assert any("does not reproduce" in n for n in on.notes)


@pytest.mark.parametrize(
    ("name", "quality"),
    [("mozjpeg's default table", 30), ("mozjpeg's MS-SSIM table", 60), ("a flat table", 25), ("web_low", 0)],
)
def test_other_encoders_tables_are_found_in_the_pixels(name, quality):
    """mozjpeg's tables, flat ones and Photoshop-like presets: no IJG table fits, theirs is found
    (on a cropped layer too), and nothing is found with the search of other tables turned off."""
    from PIL import JpegPresets

    if quality:
        table = jc.scaled_table(jc.OTHER_BASE_TABLES[name], quality)
    else:
        table = np.asarray(JpegPresets.presets[name]["quantization"][0])
    layer = encode_with_table(_clean(), table)
    assert jc.find_jpeg_grid(layer, other_tables=False) is None
    grid = jc.find_jpeg_grid(layer)
    assert grid is not None and not grid.standard and (grid.dy, grid.dx) == (0, 0)
    assert np.array_equal(grid.table.reshape(-1), table) and name in grid.encoder
    cut = jc.find_jpeg_grid(np.ascontiguousarray(layer[5:, 2:]))
    assert cut is not None and (cut.dy, cut.dx) == (3, 6) and np.array_equal(cut.table.reshape(-1), table)


def test_other_encoders_tables_are_not_found_where_there_is_no_jpeg():
    """Clean and resized layers (kept as pixels) fit none of the other tables either; the list
    holds no IJG table and nothing finer than the IJG tables searched."""
    clean = np.array(Image.open(DATA / "val_crop_eye_solid.png").convert("L"))
    h, w = clean.shape
    assert jc.find_jpeg_grid(clean) is None
    for qf in (15, 40):
        jpeg = jpeg_degrade(clean, qf)
        for s in (0.75, 1.5):
            assert jc.find_jpeg_grid(cv2.resize(jpeg, (round(w * s), round(h * s)), cv2.INTER_CUBIC)) is None
    tables = jc._other_tables()
    ijg = {ijg_table(q).astype(np.int64).tobytes() for q in range(1, 101)}
    assert len(tables) > 300 and not any(t.tobytes() in ijg for t in tables.values())
    assert max(jc.estimate_jpeg_quality(t.reshape(-1)) for t in tables.values()) <= jc.MAX_QF


def test_pipeline_keeps_a_mozjpeg_layer_to_its_table_and_says_so(restorer):
    clean = _clean()
    layer = encode_with_table(clean, jc.scaled_table(jc.OTHER_BASE_TABLES["mozjpeg's default table"], 40))
    on = restorer.restore(layer, RestoreOptions())
    off = restorer.restore(layer, RestoreOptions(jpeg_consistency=False))
    assert on.jpeg_quality is not None and off.jpeg_quality is None
    assert any("mozjpeg's default table at quality 40, found in its pixels" in n for n in on.notes), on.notes
    err = lambda a: float(((a.astype(np.float64) - clean) ** 2).mean())
    assert err(on.image) < 0.97 * err(off.image)
    assert np.all(on.image[on.mask == 0] == 255)


def _sepia() -> np.ndarray:
    from training.colour import in_ink

    return in_ink(_clean(), (112, 66, 20))


@pytest.mark.parametrize("subsampling", [2, 0])
def test_other_encoders_tables_are_found_in_a_colour_layers_luminance(subsampling):
    """A coloured JPEG written with mozjpeg's table: its luminance (known within bounds) fits no IJG
    table, mozjpeg's at its quality is found; coloured layers that are no JPEG fit none."""
    from core import colour

    sepia = _sepia()
    table = jc.scaled_table(jc.OTHER_BASE_TABLES["mozjpeg's default table"], 30)
    y8, bounds = colour.jpeg_luma(encode_with_table(sepia, table, subsampling))
    assert jc.find_jpeg_grid(y8, bounds=bounds, other_tables=False) is None
    grid = jc.find_jpeg_grid(y8, bounds=bounds)
    assert grid is not None and not grid.standard and (grid.dy, grid.dx) == (0, 0)
    assert np.array_equal(grid.table.reshape(-1), table) and "mozjpeg" in grid.encoder
    h, w = sepia.shape[:2]
    ijg = jpeg_rgb(sepia, 30)
    for layer in (sepia, cv2.resize(ijg, (round(w * 0.75), round(h * 0.75)), interpolation=cv2.INTER_AREA)):
        y8, bounds = colour.jpeg_luma(layer)
        assert jc.find_jpeg_grid(y8, bounds=bounds) is None


def test_pipeline_keeps_a_colour_mozjpeg_layer_to_its_table_and_says_so(restorer, monkeypatch):
    """Found, the table sends the layer to the colour backbone of JPEGs at their size and to the
    consistency step on its luminance (ink colours kept, paper white); without the search the layer
    holds no grid and gets neither."""
    clean = _sepia()
    layer = encode_with_table(clean, jc.scaled_table(jc.OTHER_BASE_TABLES["mozjpeg's default table"], 30))
    on = restorer.restore(layer, RestoreOptions())
    assert on.jpeg_quality is not None and on.image.shape == clean.shape
    assert any(
        "colour JPEG" in n and "mozjpeg's default table at quality 30, found in its pixels" in n for n in on.notes
    )
    monkeypatch.setattr(jc, "_other_tables_where_grid", lambda *a, **k: None)
    off = restorer.restore(layer, RestoreOptions())
    assert off.jpeg_quality is None
    err = lambda a: float(((a.astype(np.float64) - clean) ** 2).mean())
    assert err(on.image) < 0.97 * err(off.image)
    assert np.all(on.image[on.mask == 0] == 255)


def test_a_table_that_is_not_ijgs_gets_wider_boxes_for_encoders_that_do_not_round(restorer, monkeypatch):
    """mozjpeg's trellis quantization takes smaller coefficients than rounding where that saves
    bits; rounding with a dead zone stands in for it. With exact boxes the step pulls the result
    back towards the damage; with the boxes OTHER_SLACK wider away from zero it does not."""
    from training.degrade import dead_zone_jpeg

    clean = np.array(Image.open(DATA / "val_crop_eye_solid.png").convert("L"))
    layer = dead_zone_jpeg(clean, jc.scaled_table(jc.OTHER_BASE_TABLES["mozjpeg's default table"], 30), 0.3)
    assert jc.find_jpeg_grid(layer).encoder is not None
    clean = clean[: layer.shape[0], : layer.shape[1]]
    err = lambda a: float(((a.astype(np.float64) - clean) ** 2).mean())
    off = err(restorer.restore(layer, RestoreOptions(jpeg_consistency=False)).image)
    assert err(restorer.restore(layer, RestoreOptions()).image) <= off * 1.05
    monkeypatch.setattr(jc, "OTHER_SLACK", 0.0)
    assert err(restorer.restore(layer, RestoreOptions()).image) > off * 1.3


@pytest.mark.parametrize("bad", [[1] * 63, [0] * 64, [1.5] * 64, "x" * 64, [True] * 64, [70000] * 64])
def test_a_bad_jpeg_table_is_refused(bad):
    with pytest.raises(Exception, match="jpeg_table"):
        RestoreOptions(jpeg_table=bad)
