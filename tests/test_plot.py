"""``python -m training plot`` (training/plot.py): reading val.csv logs and drawing the PNG."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image

from training.plot import PlotError, add_plot_parser, moving_average, plot_runs, read_val_log

HEADER = "step,hours,psnr,ssim,psnr_thr,ssim_thr,psnr_jpeg\n"


def _run(folder, rows, header=HEADER):
    folder.mkdir(parents=True)
    (folder / "val.csv").write_text(header + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return folder


def _parser():
    p = argparse.ArgumentParser()
    add_plot_parser(p.add_subparsers())
    return p


def test_read_val_log_sorts_and_parses(tmp_path):
    run = _run(
        tmp_path / "base",
        [
            (200, 0.2, 31.0, 0.97, 31.5, 0.975, 27.0),
            (0, 0.0, 20.0, 0.5, 21.0, 0.6, 27.0),
            (100, 0.1, 30.0, "", 30.5, 0.97, 27.0),
        ],
    )
    log = read_val_log(run)
    assert log.label == "base"
    assert log.hours.tolist() == [0.0, 0.1, 0.2]
    assert log.columns["psnr"].tolist() == [20.0, 30.0, 31.0]
    assert np.isnan(log.columns["ssim"][1])  # empty cell -> NaN
    assert read_val_log(run / "val.csv", "named").label == "named"


def test_moving_average():
    y = np.array([1.0, 3.0, np.nan, 5.0, 7.0])
    assert moving_average(y, 1) is y
    out = moving_average(y, 2)
    assert out[0] == 1.0 and out[1] == 2.0 and np.isnan(out[2]) and out[3] == 5.0 and out[4] == 6.0


def test_cli_draws_png_with_two_runs(tmp_path):
    a = _run(tmp_path / "a", [(i, i / 10, 25 + i, 0.9 + i / 100, 25.5 + i, 0.91 + i / 100, 24) for i in range(6)])
    b = _run(tmp_path / "b", [(i, i / 10, 26 + i, 0.92 + i / 100, 26.5 + i, 0.93 + i / 100, 24) for i in range(4)])
    out = tmp_path / "fig" / "curves.png"
    args = _parser().parse_args(
        [
            "plot",
            str(a),
            str(b / "val.csv"),
            "--label",
            "Baseline",
            "--label",
            "Framework",
            "--threshold",
            "--smooth",
            "2",
            "--shift",
            "0",
            "0.5",
            "--out",
            str(out),
        ]
    )
    assert args.func(args) == 0
    im = Image.open(out)
    assert im.format == "PNG" and im.size[0] > 2 * im.size[1]  # two panels side by side
    # not a blank canvas: several colours drawn
    assert len(np.unique(np.asarray(im.convert("L")))) > 10


def test_panels_follow_available_metrics(tmp_path):
    mask = _run(tmp_path / "mask", [(0, 0.0, 0.5), (10, 0.1, 0.7)], header="step,hours,miou\n")
    back = _run(tmp_path / "back", [(0, 0.0, 20, 0.5, 21, 0.6, 19)])
    assert plot_runs([read_val_log(mask)], tmp_path / "m.png") == ["miou"]
    assert plot_runs([read_val_log(back), read_val_log(mask)], tmp_path / "both.png") == ["psnr", "ssim", "miou"]
    wild = _run(tmp_path / "wild", [(0, 0.0, 0.9, 0.8), (10, 0.1, 0.95, 0.85)], header="step,hours,miou,miou_wild\n")
    assert plot_runs([read_val_log(wild)], tmp_path / "w.png") == ["miou", "miou_wild"]
    assert Image.open(tmp_path / "w.png").size[0] > Image.open(tmp_path / "m.png").size[0]  # two panels


def test_errors(tmp_path, capsys):
    with pytest.raises(PlotError, match="does not exist"):
        read_val_log(tmp_path / "nope.csv")
    (tmp_path / "emptyrun").mkdir()
    with pytest.raises(PlotError, match="no val.csv"):
        read_val_log(tmp_path / "emptyrun")
    _run(tmp_path / "header_only", [])
    with pytest.raises(PlotError, match="no validation rows"):
        read_val_log(tmp_path / "header_only")
    odd = _run(tmp_path / "odd", [(0, 1.0)], header="step,loss\n")
    with pytest.raises(PlotError, match="hours"):
        read_val_log(odd)
    good = _run(tmp_path / "good", [(0, 0.0, 20, 0.5, 21, 0.6, 19)])
    with pytest.raises(PlotError, match="one value per run"):
        plot_runs([read_val_log(good)], tmp_path / "x.png", shifts=[1.0, 2.0])
    args = _parser().parse_args(["plot", str(good), "--label", "a", "--label", "b", "--out", str(tmp_path / "y.png")])
    assert args.func(args) == 2
    assert "once per run" in capsys.readouterr().err
    assert not (tmp_path / "y.png").exists()
