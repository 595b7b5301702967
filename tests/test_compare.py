"""The waifu2x comparison (benchmarks/compare_waifu2x.py, waifu2x_torch.py, waifu2x_runner.py).

The table, crop and picture logic is tested on small real arrays. The waifu2x subprocess needs
the separate waifu2x venv (benchmarks/waifu2x_env.sh); that test is marked slow and skips when
the venv is absent.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from benchmarks import compare_waifu2x as cw
from benchmarks import count_macs as cm
from benchmarks import waifu2x_torch as wt

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"


def _waifu2x_python() -> str:
    """The waifu2x venv's python; the test skips (saying how to make it) where there is none."""
    cand = os.environ.get("WAIFU2X_PYTHON") or str(REPO / ".venv-waifu2x" / "bin" / "python")
    if not os.access(cand, os.X_OK):
        pytest.skip("waifu2x venv absent: run benchmarks/waifu2x_env.sh (or set WAIFU2X_PYTHON)")
    return cand


def _one_drawing_set(folder: Path, drawing_factory) -> Path:
    """``folder`` holding one small synthetic drawing, ``d.png``: a set for the benchmarks."""
    from PIL import Image

    folder.mkdir()
    Image.fromarray(drawing_factory(64, 72)[0], "L").save(folder / "d.png")
    return folder


# ---------------------------------------------------------------------------------------------
# crops and file names
# ---------------------------------------------------------------------------------------------


def test_line_detail_keeps_edges_and_thin_lines_not_fill_interiors():
    img = np.full((40, 40), 255, np.uint8)
    img[5:35, 5:35] = 0  # a filled square
    img[2, :] = 100  # a thin line
    d = cw.line_detail(img)
    assert d[2].all()  # thin line: every pixel is next to paper
    assert d[5, 10] and d[6, 10]  # within 2 px of the square's edge (paper at row 4)
    assert not d[7, 10] and not d[20, 20]  # deeper inside the fill
    assert not d[0, 0]  # paper is never detail


def test_choose_crop_prefers_lines_to_solid_fill():
    img = np.full((100, 120), 255, np.uint8)
    img[50:100, 60:120] = 0  # a solid black area
    for r in range(4, 40, 4):  # a patch of hatching
        img[r, 4:40] = 0
    t, l, h, w = cw.choose_crop(img, 32, stride=1)
    assert (h, w) == (32, 32)
    assert t + h <= 44 and l + w <= 44  # the hatching, not the fill


def test_choose_crop_counts_match_a_brute_force_search(rng):
    img = np.where(rng.random((40, 50)) < 0.2, rng.integers(0, 255, (40, 50)), 255).astype(np.uint8)
    img[20:35, 25:45] = 0  # a fill, so that detail differs from plain ink
    t, l, h, w = cw.choose_crop(img, 16, stride=1)
    d = cw.line_detail(img)
    counts = [(d[i : i + 16, j : j + 16].sum(), i, j) for i in range(40 - 15) for j in range(50 - 15)]
    best = max(c for c, _, _ in counts)
    first = min((i, j) for c, i, j in counts if c == best)
    assert d[t : t + h, l : l + w].sum() == best
    assert (t, l) == first


def test_choose_crop_clamps_to_small_images_and_reaches_the_far_edge():
    img = np.full((20, 30), 255, np.uint8)
    assert cw.choose_crop(img, 64) == (0, 0, 20, 30)
    img2 = np.full((50, 50), 255, np.uint8)
    img2[45:, 45:] = 0  # ink only in the bottom-right corner, off the stride grid
    assert cw.choose_crop(img2, 16, stride=8) == (34, 34, 16, 16)


def test_choose_crop_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D uint8"):
        cw.choose_crop(np.zeros((4, 4), np.float32), 2)
    with pytest.raises(ValueError, match="size and stride"):
        cw.choose_crop(np.zeros((4, 4), np.uint8), 0)


def test_crop_copies_the_box():
    img = np.arange(36, dtype=np.uint8).reshape(6, 6)
    c = cw.crop(img, (1, 2, 3, 2))
    assert c.tolist() == [[8, 9], [14, 15], [20, 21]]
    assert c.flags["C_CONTIGUOUS"]


def test_input_names_round_trip_and_reject_others():
    name = cw.input_name("val_light", "a-drawing_2", 10)
    assert name == "val_light__a-drawing_2__q010.png"
    assert cw.parse_input_name(name) == ("val_light", "a-drawing_2", 10)
    with pytest.raises(ValueError, match="not a comparison input"):
        cw.parse_input_name("plain.png")
    with pytest.raises(ValueError, match="set name"):
        cw.ImageSet("bad__name", Path("."))


def test_pick_files_spreads_over_the_listing(tmp_path):
    for i in range(10):
        (tmp_path / f"{i:02d}.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    # indices round(linspace(0, 9, 3)) = 0, 4 (4.5 rounds to even), 9
    assert [p.name for p in cw.pick_files(tmp_path, 3)] == ["00.png", "04.png", "09.png"]
    assert len(cw.pick_files(tmp_path, 50)) == 10
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no .png"):
        cw.pick_files(empty, 1)
    with pytest.raises(ValueError, match="at least one"):
        cw.pick_files(tmp_path, 0)


def test_clean_crops_light_sets_with_and_without_grain(tmp_path):
    """A light set and a smooth light set of the same folder get the same lightening (same seed);
    only the grainy one is textured, and plain sets are left as they are."""
    from PIL import Image

    img = np.full((80, 80), 255, np.uint8)
    img[10:70, 20:60] = 0
    Image.fromarray(img).save(tmp_path / "a.png")
    sets = [
        cw.ImageSet("plain", tmp_path),
        cw.ImageSet("grainy", tmp_path, light=True),
        cw.ImageSet("smooth", tmp_path, light=True, grain=False),
    ]
    crops = {s.name: c for s, _path, _box, c in cw.clean_crops(sets, images=1, size=64, seed=0)}
    plain, grainy, smooth = crops["plain"], crops["grainy"], crops["smooth"]
    ink = plain == 0
    assert ink.any() and (plain[~ink] == 255).all()
    for c in (grainy, smooth):
        assert (c[~ink] == 255).all() and (c[ink] < 255).all() and (c[ink] > 0).all()
    assert smooth[ink].min() == smooth[ink].max()  # flat
    assert grainy[ink].std() > 5
    assert abs(float(np.median(grainy[ink])) - float(smooth[ink][0])) < 10


# ---------------------------------------------------------------------------------------------
# summary and tables
# ---------------------------------------------------------------------------------------------


def _records():
    R = cw.Record
    return [
        R("val", "a", 10, "jpeg", 20.0, 0.80, 10_000),
        R("val", "b", 10, "jpeg", 22.0, 0.82, 30_000),
        R("val", "a", 10, "waifu2x/resnet10/noise3", 25.0, 0.90, 10_000, 0.5),
        R("val", "b", 10, "waifu2x/resnet10/noise3", 27.0, 0.92, 30_000, 1.5),
        R("val", "a", 10, "waifu2x/vgg7/noise3", 26.0, 0.91, 10_000, 0.3),
        R("val", "b", 10, "waifu2x/vgg7/noise3", 27.0, 0.91, 30_000, 0.9),
        R("val", "a", 10, "ours", 28.0, 0.95, 10_000, 0.01),
        R("val", "b", 10, "ours", 30.0, 0.97, 30_000, 0.03),
        R("val", "a", 10, "waifu2x-torch/vgg7", math.nan, math.nan, 10_000, 0.05),
    ]


def test_summarize_means_and_speed():
    s = cw.summarize(_records())
    cell = s["cells"]["val"][10]
    assert cell["jpeg"] == {"psnr": pytest.approx(21.0), "ssim": pytest.approx(0.81), "n": 2}
    assert cell["waifu2x/vgg7/noise3"]["psnr"] == pytest.approx(26.5)
    assert "waifu2x-torch/vgg7" not in cell  # NaN scores are timing-only
    sp = s["speed"]
    assert sp["waifu2x/resnet10/noise3"]["seconds_per_mp"] == pytest.approx(2.0 / 0.04)
    assert sp["ours"]["seconds_per_mp"] == pytest.approx(0.04 / 0.04)
    assert sp["waifu2x-torch/vgg7"]["seconds_per_mp"] == pytest.approx(0.05 / 0.01)
    assert "jpeg" not in sp


def test_best_waifu2x_picks_the_highest_mean_psnr():
    cell = cw.summarize(_records())["cells"]["val"][10]
    assert cw.best_waifu2x(cell) == "waifu2x/vgg7/noise3"  # 26.5 dB vs 26.0 dB
    assert cw.best_waifu2x({"ours": {"psnr": 1.0}}) is None


def test_markdown_table_rows_deltas_and_speed():
    md = cw.markdown_table(cw.summarize(_records()))
    lines = md.splitlines()
    row = next(x for x in lines if x.startswith("| val | 10 | 21.00"))
    assert "vgg7 n3" in row
    assert "29.00 / 0.9600" in row  # ours
    assert "+2.50 / +0.0500" in row  # ours - waifu2x best (26.5 dB, 0.91)
    assert "**26.50**" in md and "| 26.00 |" in md
    # per drawing, against the cell's best (vgg7 n3): a 28 - 26 = +2, b 30 - 27 = +3
    assert cw.per_drawing_margins(cw.summarize(_records())) == {
        ("val", "a"): {10: pytest.approx(2.0)},
        ("val", "b"): {10: pytest.approx(3.0)},
    }
    assert "| val | a | +2.00 |" in lines and "| val | b | +3.00 |" in lines
    ours_speed = next(x for x in lines if x.startswith("| ours |"))
    assert ours_speed == "| ours | 1.00 | 1.0 |"
    assert "| waifu2x/resnet10/noise3 | 50.00 | 50.0 |" in lines


# ---------------------------------------------------------------------------------------------
# the picture
# ---------------------------------------------------------------------------------------------


def test_mask_panel_draws_lines_black():
    m = np.array([[0, 1], [1, 0]], np.uint8)
    assert cw.mask_panel(m).tolist() == [[255, 0], [0, 255]]
    with pytest.raises(ValueError, match="0/1 mask"):
        cw.mask_panel(np.array([[0, 2]]))


def test_compose_grid_places_every_panel(drawing):
    img, mask = drawing  # 24 x 32
    panels = [img, 255 - img, cw.mask_panel(mask)]
    rows = [panels, [np.full_like(img, v) for v in (10, 20, 30)]]
    scale, gap, header = 2, 6, 24
    g = cw.compose_grid(rows, ["a", "b", "c"], ["row one", "row two"], scale=scale, gap=gap, header=header)
    ph, pw = 24 * scale, 32 * scale
    assert g.dtype == np.uint8
    assert g.shape == (header + 2 * (header + ph) + 3 * gap, 3 * pw + 4 * gap)
    for r, row in enumerate(rows):
        top = header + gap + r * (header + ph + gap) + header
        for c, p in enumerate(row):
            left = gap + c * (pw + gap)
            big = np.repeat(np.repeat(p, scale, 0), scale, 1)
            np.testing.assert_array_equal(g[top : top + ph, left : left + pw], big)
    # titles are drawn (dark text in the header strips), the gaps are mid-gray
    assert (g[:header] < 128).any()
    assert (g[header + gap : header + gap + header] < 128).any()
    top0 = header + gap + header
    assert (g[top0 : top0 + ph, gap + pw : 2 * gap + pw] == 160).all()


def test_compose_grid_rejects_mismatched_panels(drawing):
    img, _ = drawing
    with pytest.raises(ValueError, match="same number"):
        cw.compose_grid([[img, img], [img]], ["a", "b"], ["1", "2"])
    with pytest.raises(ValueError, match="uint8"):
        cw.compose_grid([[img, img[:10]]], ["a", "b"], ["1"])
    with pytest.raises(ValueError, match="titles"):
        cw.compose_grid([[img]], ["a", "b"], ["1"])


# ---------------------------------------------------------------------------------------------
# waifu2x's graph in torch
# ---------------------------------------------------------------------------------------------


def _fake_npz(path: Path, arch: str, rng: np.random.Generator, ch: int = 1) -> None:
    """A waifu2x-style .npz (Chainer key names) with random weights of the right shapes
    (``ch`` 1: a Y model, 3: an RGB one)."""
    model = wt.VGG7(ch) if arch == "vgg7" else wt.ResNet10(ch)
    arrays = {}
    for k, v in model.state_dict().items():
        module, leaf = k.rsplit(".", 1)
        key = module.replace(".", "/") + ("/W" if leaf == "weight" else "/b")
        arrays[key] = (rng.standard_normal(tuple(v.shape)) * 0.1).astype(np.float32)
    np.savez(path, **arrays)


@pytest.mark.parametrize("ch", [1, 3], ids=["y", "rgb"])
@pytest.mark.parametrize("arch", ["vgg7", "resnet10"])
def test_torch_graph_loads_npz_and_needs_only_offset_pixels_of_context(tmp_path, rng, arch, ch):
    import torch

    p = tmp_path / f"{arch}.npz"
    _fake_npz(p, arch, rng, ch)
    model = wt.load_npz_model(str(p), arch)
    assert model.ch == ch  # read from the first convolution's weight
    with np.load(p) as z:
        w = z["conv1/W" if arch == "vgg7" else "res2/conv1/W"]
    got = model.conv1.weight if arch == "vgg7" else model.res2.conv1.weight
    np.testing.assert_array_equal(got.detach().numpy(), w)

    img = rng.integers(0, 256, (40, 48) if ch == 1 else (40, 48, 3)).astype(np.uint8)
    out = wt.denoise(model, img)
    assert out.shape == img.shape and out.dtype == np.uint8
    # Block-wise equivalence: the left half of the output depends only on the left half of the
    # padded input plus `offset` pixels, which is what lets whole-image inference equal waifu2x's
    # overlapping blocks.
    off = model.offset
    x = torch.from_numpy(img.astype(np.float32) / 255)
    x = (x[None] if ch == 1 else x.permute(2, 0, 1))[None]
    x = torch.nn.functional.pad(x, (off,) * 4, mode="replicate")
    with torch.inference_mode():
        full = model(x)
        left = model(x[..., : 24 + 2 * off])
    torch.testing.assert_close(left, full[..., :24], rtol=1e-5, atol=1e-5)
    if ch == 3:
        # R, G, B stay in their places: the output's channels are the graph's, in order
        np.testing.assert_array_equal(out, (full[0].clamp(0, 1) * 255).permute(1, 2, 0).numpy().astype(np.uint8))


def test_torch_graph_rejects_wrong_files_and_images(tmp_path, rng):
    p = tmp_path / "vgg7.npz"
    _fake_npz(p, "vgg7", rng)
    with pytest.raises(ValueError, match="does not hold a waifu2x resnet10"):
        wt.load_npz_model(str(p), "resnet10")
    with pytest.raises(ValueError, match="unknown waifu2x architecture"):
        wt.model_path("m", "upconv7", 1)
    with pytest.raises(ValueError, match="noise level"):
        wt.model_path("m", "vgg7", 4)
    with pytest.raises(ValueError, match="colour"):
        wt.model_path("m", "vgg7", 1, "rgba")
    assert wt.model_path("m", "vgg7", 2, "rgb") == os.path.join("m", "vgg7", "anime_style_noise2_rgb.npz")
    gray = wt.load_npz_model(str(p), "vgg7")
    _fake_npz(p, "vgg7", rng, 3)
    rgb = wt.load_npz_model(str(p), "vgg7")
    with pytest.raises(ValueError, match=r"\(H, W\) gray"):
        wt.denoise(gray, np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(H, W, 3\) RGB"):
        wt.denoise(rgb, np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="RGB"):
        wt.denoise(rgb, np.zeros((8, 8, 4), np.uint8))


# ---------------------------------------------------------------------------------------------
# the real waifu2x, through its own venv
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("color", ["y", "rgb"])
def test_runner_uses_waifu2x_and_torch_graph_agrees(tmp_path, drawing_factory, color):
    py = _waifu2x_python()
    from PIL import Image

    from training.colour import coloured_crop

    img, _ = drawing_factory(40, 48)
    mode = "L" if color == "y" else "RGB"
    if color == "rgb":
        img = coloured_crop(img, 1)  # one ink per stroke
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    Image.fromarray(img, mode).save(in_dir / "d.jpg", quality=20)
    jpeg = np.asarray(Image.open(in_dir / "d.jpg").convert(mode))
    cmd = [
        py,
        str(BENCH / "waifu2x_runner.py"),
        "--input",
        str(in_dir),
        "--output",
        str(out_dir),
        "--arch",
        "vgg7",
        "resnet10",
        "--noise",
        "1",
        "--resume",
        "--color",
        color,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((out_dir / "waifu2x_run.json").read_text())
    # a second run resumes: both models are finished, so nothing is recomputed
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("reusing") == 2
    assert json.loads((out_dir / "waifu2x_run.json").read_text())["results"] == rep["results"]
    assert rep["waifu2x"] == "2024.0.1" and rep["chainer"].startswith("7.")
    assert [(r["arch"], r["noise"], r["file"]) for r in rep["results"]] == [
        ("vgg7", 1, "d.jpg"),
        ("resnet10", 1, "d.jpg"),
    ]
    models_dir = cw.waifu2x_models_dir(py)
    for r in rep["results"]:
        out = np.asarray(Image.open(r["output"]))
        assert out.shape == img.shape and out.dtype == np.uint8 and r["seconds"] > 0
        assert not np.array_equal(out, jpeg)  # the model did change the JPEG
        model = wt.load_npz_model(wt.model_path(models_dir, r["arch"], 1, color), r["arch"])
        mine = wt.denoise(model, jpeg)
        assert np.abs(mine.astype(int) - out.astype(int)).max() <= 1


def test_run_key_changes_with_pixels_names_and_settings():
    a = {"s__x__q010.png": np.zeros((4, 4), np.uint8)}
    k = cw.run_key(a, ["vgg7"], [3], 1)
    assert k == cw.run_key({"s__x__q010.png": np.zeros((4, 4), np.uint8)}, ["vgg7"], [3], 1)
    b = {"s__x__q010.png": np.zeros((4, 4), np.uint8)}
    b["s__x__q010.png"][0, 0] = 1
    assert cw.run_key(b, ["vgg7"], [3], 1) != k
    assert cw.run_key({"s__y__q010.png": a["s__x__q010.png"]}, ["vgg7"], [3], 1) != k
    assert cw.run_key(a, ["vgg7"], [2], 1) != k
    assert cw.run_key(a, ["vgg7"], [3], 2) != k
    assert cw.run_key(a, ["vgg7"], [3], 1, "y") == k  # gray keys stored before `color` still match
    assert cw.run_key(a, ["vgg7"], [3], 1, "rgb") != k


def _cell_records(set_name, qf, jpeg, w2x, ours):
    R = cw.Record
    return [
        R(set_name, "a", qf, "jpeg", jpeg, 0.9, 100),
        R(set_name, "a", qf, "waifu2x/resnet10/noise3", w2x, 0.9, 100),
        R(set_name, "a", qf, "waifu2x/vgg7/noise0", w2x - 3, 0.9, 100),
        R(set_name, "a", qf, "ours", ours, 0.9, 100),
    ]


def test_check_targets_margins_light_and_speed():
    recs = (
        _cell_records("val", 10, 25, 30, 31.5)
        + _cell_records("val", 20, 30, 35, 35.5)
        + _cell_records("light", 10, 20, 21, 24)
        + _cell_records("light", 20, 22, 23, 23.2)
    )
    R = cw.Record
    recs += [
        R("val", "a", 10, "ours", math.nan, math.nan, 1_000_000, 0.4),
        R("val", "a", 10, "waifu2x-torch/resnet10", math.nan, math.nan, 1_000_000, 5.5),
        R("val", "a", 10, "waifu2x-torch/vgg7", math.nan, math.nan, 1_000_000, 3.0),
    ]
    checks = cw.check_targets(cw.summarize(recs), ["light"])
    by = {c["target"]: c for c in checks}
    assert by["val QF 10: ours − waifu2x best (resnet10 n3) ≥ 1 dB"]["ok"]  # +1.5
    assert by["val QF 10: ours − waifu2x best (resnet10 n3) ≥ 1 dB"]["value"] == "+1.50 dB"
    assert not by["val QF 20: ours − waifu2x best (resnet10 n3) ≥ 1 dB"]["ok"]  # +0.5
    assert by["light QF 10: margin larger than on val"]["ok"]  # +3 vs +1.5
    assert not by["light QF 20: margin larger than on val"]["ok"]  # +0.2 vs +0.5
    # speed: ours is 0.4 s / 1.0 MP (plus a 100-px record without time)
    assert by["ours ≥ 10× faster than waifu2x-torch/resnet10"]["ok"]  # 13.75x
    assert not by["ours ≥ 10× faster than waifu2x-torch/vgg7"]["ok"]  # 7.5x
    md = cw.targets_markdown(checks)
    assert md.count("\n") == len(checks) + 2 and "**no**" in md and "| yes |" in md


def test_replace_between_markers():
    text = f"intro\n{cw.DOC_START}\nold table\n{cw.DOC_END}\nafter\n"
    new = cw.replace_between_markers(text, "\nnew table\n")
    assert new == f"intro\n{cw.DOC_START}\nnew table\n{cw.DOC_END}\nafter\n"
    assert cw.replace_between_markers(new, "new table") == new  # idempotent
    with pytest.raises(ValueError, match="markers"):
        cw.replace_between_markers("no markers here", "x")
    with pytest.raises(ValueError, match="markers"):
        cw.replace_between_markers(f"{cw.DOC_END} {cw.DOC_START}", "x")
    # A second, named block is written alone; the default one is left as it was.
    fast_start, fast_end = cw.doc_markers("fast")
    both = f"{new}{fast_start}\nold fast\n{fast_end}\n"
    assert cw.replace_between_markers(both, "fast table", "fast") == f"{new}{fast_start}\nfast table\n{fast_end}\n"
    with pytest.raises(ValueError):
        cw.replace_between_markers(new, "x", "fast")
    with pytest.raises(ValueError):
        cw.doc_markers("no spaces")


# ---------------------------------------------------------------------------------------------
# multiply-adds per pixel (benchmarks/count_macs.py)
# ---------------------------------------------------------------------------------------------


def test_count_macs_counts_convolutions_per_output_pixel():
    import torch
    from torch import nn

    x = torch.rand(1, 1, 16, 16)
    # 3x3 conv 1 -> 8 channels: 8 outputs x 9 taps per pixel; then 1x1 conv 8 -> 2: 16 more.
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 2, 1))
    assert cm.macs_per_pixel(net, x, out_pixels=256) == 8 * 9 + 2 * 8
    # stride-2 2x2 conv 1 -> 4 (a quarter of the pixels) and its 2x2 transposed conv back to 1
    down_up = nn.Sequential(nn.Conv2d(1, 4, 2, stride=2), nn.ConvTranspose2d(4, 1, 2, stride=2))
    assert cm.macs_per_pixel(down_up, x, out_pixels=256) == (64 * 4 * 4 + 64 * 4 * 4) / 256


def test_count_macs_command_prints_every_network(capsys):
    assert cm.main() == 0
    out = capsys.readouterr().out
    for name in ("ours: mask network", "ours: restore backbone", "ours: both", "waifu2x vgg7", "waifu2x resnet10"):
        assert name in out


def test_ensemble_sizes_are_the_pipelines():
    from core.ensemble import SIZES

    for n in SIZES:
        assert cw._parse_args(["--waifu2x-python", "py", "--out", "o", "--ensemble", str(n)]).ensemble == n
    with pytest.raises(SystemExit):
        cw._parse_args(["--waifu2x-python", "py", "--out", "o", "--ensemble", "3"])


def test_a_candidate_file_replaces_only_its_own_role(tmp_path):
    """--wild-model, --wild-mask and --colour-model swap one file for a candidate; the other roles
    stay the shipped files, as in Restorer.default (in both comparisons for --colour-model)."""
    import shutil

    from benchmarks import compare_waifu2x_colour as cc
    from core.pipeline import MODELS_DIR

    backbone, mask = tmp_path / "candidate_backbone.safetensors", tmp_path / "candidate_mask.safetensors"
    colour = tmp_path / "candidate_colour.safetensors"
    shutil.copy(MODELS_DIR / "restore_wild.safetensors", backbone)
    shutil.copy(MODELS_DIR / "mask_wild.safetensors", mask)
    shutil.copy(MODELS_DIR / "restore_colour.safetensors", colour)
    base = ["--waifu2x-python", "py", "--out", "o", "--wild"]
    shipped = cw._restorer(cw._parse_args(base)).info()["models"]
    for parse, extra, role, name in (
        (cw._parse_args, ["--wild-model", str(backbone)], "wild", backbone.name),
        (cw._parse_args, ["--wild-mask", str(mask)], "mask_wild", mask.name),
        (cw._parse_args, ["--colour", "--colour-model", str(colour)], "restore_colour", colour.name),
        (cc._parse_args, ["--colour-model", str(colour)], "restore_colour", colour.name),
    ):
        argv = base + extra if parse is cw._parse_args else base[:4] + extra
        models = cw._restorer(parse(argv)).info()["models"]
        assert models[role]["name"] == name
        assert {r: m["name"] for r, m in models.items() if r != role} == {
            r: m["name"] for r, m in shipped.items() if r != role
        }


def test_wild_families_must_be_families_of_the_degradation_model(tmp_path, capsys):
    assert cw.main(["--waifu2x-python", "/nonexistent", "--out", str(tmp_path), "--wild", "--wild-families", "x"]) == 2
    assert "unknown x; one of single, double_aligned" in capsys.readouterr().err


def test_wild_table_reports_each_family_and_checks_both_targets():
    cw.FAMILY_NAMES.update({1: "single", 2: "double_aligned"})
    R = cw.Record
    recs = []
    for f, (inp, w, ours) in {"a": (30.0, 38.0, 40.0), "b": (31.0, 39.0, 29.0)}.items():
        recs += [
            R("val", f, 1, cw.JPEG, inp, 0.9, 100),
            R("val", f, 1, "waifu2x/vgg7/noise2", w, 0.9, 100),
            R("val", f, 1, "waifu2x/vgg7/noise1", w - 1, 0.9, 100),
            R("val", f, 1, cw.OURS, ours, 0.9, 100),
        ]
    recs += [
        R("val", "a", 2, m, p, 0.9, 100) for m, p in ((cw.JPEG, 30.0), ("waifu2x/vgg7/noise2", 35.0), (cw.OURS, 37.0))
    ]
    table, checks = cw.wild_table(recs, {("val", 1): 33.0, ("val", 2): 36.0})
    row = next(line for line in table.splitlines() if "| single |" in line)
    # means: input 30.5, waifu2x best (vgg7 n2) 38.5, ours 34.5; worst drawing ours − input: 29 − 31
    assert "| 30.50 | vgg7 n2 | 38.50 | 34.50 | -4.00 | -2.00 | 33.00 |" in row
    ok = {c["target"]: c["ok"] for c in checks}
    assert ok == {
        "val single: ours − waifu2x best ≥ 1 dB": False,
        "val single: ours ≥ input on every drawing": False,
        "val double_aligned: ours − waifu2x best ≥ 1 dB": True,
        "val double_aligned: ours ≥ input on every drawing": True,
    }


def test_colour_goes_with_wild():
    with pytest.raises(SystemExit):
        cw._parse_args(["--waifu2x-python", "py", "--out", "o", "--colour"])
    assert cw._parse_args(["--waifu2x-python", "py", "--out", "o", "--wild", "--colour"]).colour


@pytest.mark.slow
def test_wild_colour_scores_rgb_and_reuses_waifu2x(tmp_path, capfd, drawing_factory):
    py = _waifu2x_python()
    from PIL import Image

    folder = _one_drawing_set(tmp_path / "set", drawing_factory)
    out = tmp_path / "out"
    argv = ["--waifu2x-python", py, "--out", str(out), "--wild", "--colour", "--set", f"s={folder}"]
    argv += ["--images", "1", "--crop", "64", "--arch", "vgg7", "--noise", "3"]
    argv += ["--wild-families", "single", "resize_png"]
    for _ in range(2):  # the second run finds waifu2x's outputs for the same inputs and keeps them
        assert cw.main(argv) == 0
    err = capfd.readouterr().err
    assert err.count("reusing") == 1
    rec = json.loads((out / "wild_colour.json").read_text())
    inputs = sorted((out / "work_colour" / "inputs").iterdir())
    assert [p.name for p in inputs] == ["s__d__q001.png", "s__d__q005.png"]
    assert all(Image.open(p).mode == "RGB" for p in inputs)
    assert rec["inputs"]["s__d__q001.png"]["qf_subsampling"] in (0, 1, 2)  # degraded as RGB
    chainer = {r["qf"]: r["psnr"] for r in rec["records"] if r["method"] == "waifu2x/vgg7/noise3"}
    ours = {f"s__d__q{r['qf']:03d}.png": r["pixels"] for r in rec["records"] if r["method"] == cw.OURS}
    assert ours == {p.name: Image.open(p).width * Image.open(p).height for p in inputs}  # pixels, not values
    table = (out / "wild_colour.md").read_text()
    assert "| s | single |" in table and "| s | resize_png |" in table and "vgg7 n3" in table
    assert not (out / "wild.md").exists()

    # waifu2x's RGB graph in torch: the same scores within rounding, Chainer run on one input
    assert cw.main([*argv, "--torch-waifu2x"]) == 0
    rec = json.loads((out / "wild_colour.json").read_text())
    torch_scores = {r["qf"]: r["psnr"] for r in rec["records"] if r["method"] == "waifu2x/vgg7/noise3"}
    assert torch_scores == pytest.approx(chainer, abs=0.05)
    assert re.search(r"within [01] level\(s\) per channel of Chainer's", rec["environment"])
    assert (out / "work_colour" / "waifu2x_torch" / "vgg7_noise3" / "s__d__q005.png").is_file()


@pytest.mark.slow
def test_colour_comparison_runs_waifu2x_in_torch_as_chainer_does(tmp_path, capfd, drawing_factory):
    py = _waifu2x_python()
    from benchmarks import compare_waifu2x_colour as cc

    folder = _one_drawing_set(tmp_path / "set", drawing_factory)
    scores = {}
    for extra in ([], ["--torch-waifu2x"]):
        out = tmp_path / ("torch" if extra else "chainer")
        argv = ["--waifu2x-python", py, "--out", str(out), "--set", f"s={folder}", "--images", "1", "--crop", "64"]
        assert cc.main([*argv, "--arch", "vgg7", "--noise", "3", "--qf", "10", "20", *extra]) == 0
        rec = json.loads((out / "results.json").read_text())
        scores[bool(extra)] = {r["qf"]: r["psnr"] for r in rec["records"] if r["method"] == "waifu2x/vgg7/noise3"}
        assert sorted(r["qf"] for r in rec["records"] if r["method"] == cw.OURS) == [10, 20]
    assert scores[True] == pytest.approx(scores[False], abs=0.05)
    assert re.search(r"within [01] level\(s\) per channel of Chainer's", rec["environment"])
    assert (out / "work" / "waifu2x_torch" / "vgg7_noise3" / "s__d__q010.png").is_file()
    assert (out / "side_by_side.png").is_file()
    assert "restore_colour restore_colour.safetensors" in rec["environment"]
