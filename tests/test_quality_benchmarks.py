"""The quality diagnostics in benchmarks/: light_ceiling.py, mask_precision.py, error_split.py,
bench_int8.py and ink_normalization.py.

Both run the shipped default pipeline on a folder of clean drawings; here on the one validation
crop kept in tests/data (a 128² centre crop, one QF), so they finish in seconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench_int8, error_split, ink_normalization, light_ceiling, mask_precision
from core.metrics import psnr
from training.data import jpeg_degrade
from training.synth import light_variant

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("drawings")
    shutil.copy(REPO / "tests" / "data" / "val_crop_empty_tomb.png", d)
    return d


def _rows(text: str, qf_column: int) -> list[list[str]]:
    """The data rows of the Markdown tables in ``text``: those whose QF cell is a number."""
    cells = [
        [c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines() if line.startswith("|")
    ]
    return [row for row in cells if len(row) > qf_column and row[qf_column].isdigit()]


def test_light_ceiling_orders_the_scores(folder, capsys):
    assert light_ceiling.main([str(folder), "--qf", "10", "--crop", "128", "--threads", "1"]) == 0
    rows = _rows(capsys.readouterr().out, qf_column=0)
    assert len(rows) == 2  # the grainy and the grain-free light variant, QF 10
    for qf, jpeg, _split, perfect_bg, ours, _ours_split, base, base_bg, _ceiling, _dequantized in rows:
        assert qf == "10"
        # a perfect background only removes error, so it can never score below what it corrects
        assert float(perfect_bg) >= float(jpeg)
        assert float(base_bg) >= float(base)
        assert float(ours) > float(jpeg)
        assert float(base) > float(jpeg)
    grainy, smooth = rows
    # the oracle knows more than any restorer: ours must stay below it (else it is no ceiling)
    assert float(grainy[4]) < float(grainy[8])
    assert float(grainy[9]) < float(grainy[8])  # the JPEG's values know less than the true ones
    assert smooth[8] == smooth[9] == "—"


def test_kept_coefficient_ceiling():
    clean = np.full((64, 72), 255, np.uint8)
    clean[10:50, 20:30] = 60
    clean[30:34, 5:70] = 120
    grainy = light_variant(clean, np.random.default_rng(4))
    smooth = light_variant(clean, np.random.default_rng(4), grain=False)
    for qf in (10, 40):
        jpeg = jpeg_degrade(grainy, qf)
        oracle = light_ceiling.kept_coefficient_ceiling(grainy, smooth, jpeg, qf)
        assert oracle.shape == grainy.shape and oracle.dtype == np.uint8
        assert (oracle[grainy == 255] == 255).all()
        assert psnr(oracle, grainy) > psnr(jpeg, grainy) + 0.5
        dequantized = light_ceiling.kept_coefficient_ceiling(grainy, smooth, jpeg, qf, exact=False)
        assert psnr(jpeg, grainy) < psnr(dequantized, grainy) < psnr(oracle, grainy)
        # told the grain itself, it gives the drawing back (up to rounding)
        exact = light_ceiling.kept_coefficient_ceiling(grainy, grainy, jpeg, qf)
        assert np.abs(exact.astype(int) - grainy).max() <= 1
    with pytest.raises(ValueError, match="one \\(H, W\\) shape"):
        light_ceiling.kept_coefficient_ceiling(grainy, smooth[:32], jpeg, 10)


def test_mask_precision_reports_both_precisions(folder, capsys):
    assert mask_precision.main([str(folder), "--qf", "10", "--crop", "128", "--threads", "1"]) == 0
    rows = _rows(capsys.readouterr().out, qf_column=1)
    assert len(rows) == 1
    name, qf, miou32, miou16, psnr32, psnr16, differing = rows[0]
    assert name == folder.name and qf == "10"
    assert 0.9 < float(miou32) <= 1 and abs(float(miou32) - float(miou16)) < 0.01
    assert abs(float(psnr32) - float(psnr16)) < 0.1
    assert differing.endswith("per million")


def test_empty_folder_is_an_error(tmp_path):
    assert light_ceiling.main([str(tmp_path)]) == 2
    assert mask_precision.main([str(tmp_path)]) == 2


def test_error_split_sums_by_tone_and_by_mask():
    clean = np.array([[255, 255, 0, 128]], np.uint8)
    out = np.array([[255, 250, 3, 120]], np.uint8)  # errors 0, 5, 3, 8
    mask = np.array([[0, 1, 1, 0]], np.uint8)  # paper marked, ink marked, tone missed
    res = error_split.split(clean, out, mask)
    assert res["se paper 255"] == 25 and res["px paper 255"] == 2
    assert res["se ink 0"] == 9 and res["se tones 1-254"] == 64
    assert res["se marked line"] == 9 and res["se missed line"] == 64 and res["se marked paper"] == 25
    assert res["se total"] == 98 and res["px total"] == 4


def test_error_split_shares_add_up(folder, capsys):
    assert (
        error_split.main(["--set", f"crop={folder}", "--images", "1", "--crop", "128", "--qf", "10", "--threads", "1"])
        == 0
    )
    rows = _rows(capsys.readouterr().out, qf_column=1)
    assert len(rows) == 1 and rows[0][:2] == ["crop", "10"]
    bands = [cell.split(" / ") for cell in rows[0][2:5]]
    assert sum(float(b[0]) for b in bands) == pytest.approx(1, abs=0.002)  # pixel shares
    assert sum(float(b[1]) for b in bands) == pytest.approx(1, abs=0.002)  # error shares
    by_mask = [float(x) for x in rows[0][5].split(" / ")]
    assert sum(by_mask) <= 1.002  # the rest is on unmarked paper


def test_error_split_bad_set_is_an_error(tmp_path):
    assert error_split.main(["--set", f"x={tmp_path / 'missing'}"]) == 2


def test_bench_int8_reports_both_networks(capsys):
    assert bench_int8.main(["--side", "64", "--repeat", "1", "--threads", "1"]) == 0
    lines = [
        line.split() for line in capsys.readouterr().out.splitlines() if line.split()[:1] in (["mask"], ["backbone"])
    ]
    assert [row[0] for row in lines] == ["mask", "backbone"]
    for row in lines:
        assert float(row[1]) > 0 and float(row[2]) > 0 and row[3].endswith("x")
    # with the first and last convolutions in fp32 the int8 networks stay close (all of them in
    # int8 flipped about 90 % of the mask pixels)
    assert 0 <= float(lines[0][4]) < 1  # per cent of mask pixels
    assert 0 <= float(lines[1][5].rstrip(",")) < 1  # mean gray levels


def test_ink_normalization_stretches_flat_light_ink_and_not_dark(tmp_path, capsys):
    val = tmp_path / "lineart" / "val"
    val.mkdir(parents=True)
    shutil.copy(REPO / "tests" / "data" / "val_crop_eye_solid.png", val)
    argv = ["--data", str(tmp_path), "--qf", "30", "--crop", "192", "--sets", "val", "val light smooth"]
    assert ink_normalization.main(argv) == 0
    rows = {line.split("|")[1].strip(): line.split("|") for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["val"][6].strip() == "0/1" and rows["val"][3] == rows["val"][4]
    assert rows["val light smooth"][6].strip() == "1/1"
    assert float(rows["val light smooth"][4]) > float(rows["val light smooth"][3]) + 1.0


def test_colour_ink_ceiling_swaps_colour_and_strength():
    from benchmarks import colour_ink_ceiling as cic
    from training.colour import in_ink

    gray = np.full((24, 32), 255, np.uint8)
    gray[4:20, 6:12] = 40
    gray[10:13, 2:30] = 150  # a lighter stroke, anti-aliased edge below
    gray[13, 2:30] = 220
    clean = in_ink(gray, (185, 25, 35))  # red
    blue = in_ink(gray, (25, 45, 160))
    # the strokes in another ink: the true colours give the drawing back (strength kept)
    assert np.abs(cic.with_true_inks(blue, clean).astype(int) - clean).max() <= 2
    # the strokes at half strength: the true plane gives it back (ink kept)
    light = in_ink(gray, (220, 140, 145))
    assert np.abs(cic.with_true_plane(light, clean).astype(int) - clean).max() <= 2
    # paper stays ours in the one, the clean drawing's in the other
    noisy = clean.copy()
    noisy[0, 0] = (250, 250, 250)
    assert (cic.with_true_inks(noisy, clean)[0, 0] == 250).all()
    assert (cic.with_true_plane(noisy, clean)[0, 0] == 255).all()


def test_colour_ink_ceiling_prints_every_qf(folder, capsys):
    from benchmarks import colour_ink_ceiling as cic

    assert (
        cic.main(["--set", f"s={folder}", "--images", "1", "--crop", "96", "--qf", "10", "30", "--threads", "1"]) == 0
    )
    rows = _rows(capsys.readouterr().out, qf_column=1)
    assert [r[:2] for r in rows] == [["s", "10"], ["s", "30"]]
    for _set, _qf, jpeg, ours, true_inks, true_plane in rows:
        assert float(ours) > float(jpeg)
        assert float(true_inks) > float(jpeg) and float(true_plane) > float(jpeg)
    assert cic.main(["--set", "s=/nonexistent", "--images", "1"]) == 2


def test_colour_mask_luma_masks_three_versions(folder, capsys):
    from benchmarks import colour_mask_luma as cml
    from training.colour import in_ink

    gray = np.full((8, 8), 255, np.uint8)
    gray[2:6, 3] = 0
    yellow = cml.luminance_drawing(in_ink(gray, (250, 222, 40)))
    assert yellow[0, 0] == 255 and 200 < int(yellow[2, 3]) < 230  # a light gray, paper white
    assert cml.main([str(folder), "--crop", "96", "--qf", "10", "40"]) == 0
    rows = _rows(capsys.readouterr().out, qf_column=1)
    assert [r[1] for r in rows] == ["10", "40", "10", "40"]  # the drawing, then the means
    for row in rows:
        assert all(0.5 < float(v) <= 1.0 for v in row[2:])
    assert cml.main(["/nonexistent"]) == 2
