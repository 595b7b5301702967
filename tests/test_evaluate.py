"""``python -m training evaluate`` (training/evaluate.py) on tiny drawings and random slim models."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.backbones import build_backbone
from core.equations import gt_mask, threshold
from core.masknet import build_masknet
from core.metrics import boundary_fscore, miou, psnr, ssim
from core.pipeline import RestoreOptions, Restorer
from core.weights import save_model
from tests.subprocess_server import model_args
from training.data import DataError, jpeg_degrade
from training.evaluate import (
    MASK_ROWS,
    RESTORE_ROWS,
    EvalConfig,
    EvaluationError,
    add_evaluate_parser,
    evaluate,
    table1_markdown,
    table2_markdown,
)
from training.synth import light_variant, synth_drawing

QFS = (10, 40)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Random-weight slim models written with save_model: (mask, framework, baseline) paths."""
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    paths = (d / "mask.safetensors", d / "framework.safetensors", d / "baseline.safetensors")
    save_model(build_masknet("blind", "slim"), paths[0])
    save_model(build_backbone("drunet", "slim", "framework"), paths[1])
    save_model(build_backbone("drunet", "slim", "baseline"), paths[2])
    return paths


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("clean")
    for i in range(2):
        Image.fromarray(synth_drawing(np.random.default_rng(i), 48, 56)).save(d / f"d{i}.png")
    return d


@pytest.fixture(scope="module")
def restorer(models):
    return Restorer.from_files(*models, device="cpu", precision="fp32")


def _restore(restorer, img, **opts):
    # evaluate() runs the pipeline under inference_mode; do the same for the hand-made reference
    with torch.inference_mode():
        return restorer.restore(img, RestoreOptions(jpeg_consistency=False, **opts))


def _cfg(folder, models, **kw):
    return EvalConfig(
        folder=folder,
        qfs=QFS,
        mask_model=models[0],
        restore_model=models[1],
        baseline_model=models[2],
        device="cpu",
        **kw,
    )


def test_tables_have_the_papers_rows_and_right_values(folder, models, restorer):
    res = evaluate(_cfg(folder, models), restorer=restorer, log=lambda s: None)
    t1, t2 = res["table1"], res["table2"]
    assert list(t1["rows"]) == list(MASK_ROWS) == ["AGT", "Otsu", "Otsu_D", "Learnt"]
    assert t1["n_images"] == 2 and t1["qfs"] == list(QFS)
    assert [r["qf"] for r in t2["rows"]] == list(QFS)
    assert t2["columns"] == list(RESTORE_ROWS)
    for row in t1["rows"].values():
        assert set(row["per_qf"]) == {"10", "40"}
        assert 0 <= row["miou"] <= 1 and 0 <= row["fscore"] <= 1
        assert row["miou"] == pytest.approx(np.mean([v["miou"] for v in row["per_qf"].values()]))

    # recompute some cells by hand from the same parts
    cleans = [np.array(Image.open(folder / f"d{i}.png")) for i in range(2)]
    for qf_row in t2["rows"]:
        qf = qf_row["qf"]
        jpegs = [jpeg_degrade(c, qf) for c in cleans]
        want = np.mean([psnr(j, c) for j, c in zip(jpegs, cleans)])
        assert qf_row["JPEG"]["psnr"] == pytest.approx(want)
        want = np.mean([ssim(j, c) for j, c in zip(jpegs, cleans)])
        assert qf_row["JPEG"]["ssim"] == pytest.approx(want)
        base = [_restore(restorer, j, mask="none", threshold=False, qf=qf).image for j in jpegs]
        want = np.mean([psnr(threshold(b), c) for b, c in zip(base, cleans)])
        assert qf_row["Baseline + thresholding"]["psnr"] == pytest.approx(want, abs=1e-6)
        fw = [_restore(restorer, j, mask="learnt", threshold=False, qf=qf) for j in jpegs]
        want = np.mean([miou(f.mask, gt_mask(c)) for f, c in zip(fw, cleans)])
        assert t1["rows"]["Learnt"]["per_qf"][str(qf)]["miou"] == pytest.approx(want)
        want = np.mean([boundary_fscore(f.mask, gt_mask(c)) for f, c in zip(fw, cleans)])
        assert t1["rows"]["Learnt"]["per_qf"][str(qf)]["fscore"] == pytest.approx(want)

    md1, md2 = table1_markdown(t1), table2_markdown(t2)
    body1 = [ln for ln in md1.splitlines() if ln.startswith("| ") and not ln.startswith("| Method")]
    assert [ln.split(" | ")[0][2:] for ln in body1] == list(MASK_ROWS)
    body2 = [ln for ln in md2.splitlines() if ln.startswith("| ") and not ln.startswith("| QF")]
    assert [int(ln.split(" | ")[0][2:]) for ln in body2] == list(QFS)
    # every Markdown row has as many cells as the header (escaped pipes inside cells)
    for md in (md1, md2):
        rows = [ln for ln in md.splitlines() if ln.startswith("|")]
        counts = {ln.replace("\\|", "").count("|") for ln in rows}
        assert len(counts) == 1


def test_cli_writes_markdown_and_json_and_skips_bad_image(tmp_path, folder, models):
    data = tmp_path / "data"
    data.mkdir()
    for p in folder.iterdir():
        (data / p.name).write_bytes(p.read_bytes())
    (data / "broken.png").write_bytes(b"\x89PNG not really")
    parser = argparse.ArgumentParser()
    add_evaluate_parser(parser.add_subparsers())
    out = tmp_path / "out"
    args = parser.parse_args(
        [
            "evaluate",
            str(data),
            "--qf",
            "20",
            *model_args(models),
            "--device",
            "cpu",
            "--crop",
            "32",
            "--out",
            str(out),
        ]
    )
    with pytest.warns(UserWarning, match="broken.png"):
        evaluate(_cfg(data, models, crop=32), log=lambda s: None)
    assert args.func(args) == 0  # the CLI prints the same warning as "warning: ..." and goes on
    t1 = json.loads((out / "table1.json").read_text())
    t2 = json.loads((out / "table2.json").read_text())
    assert t1["setup"]["images"] == ["d0.png", "d1.png"]
    assert t1["setup"]["crop"] == 32
    assert [r["qf"] for r in t2["rows"]] == [20]
    assert "| Learnt |" in (out / "table1.md").read_text()
    assert "| 20 |" in (out / "table2.md").read_text()


def test_light_variant_option(folder, models, restorer):
    res = evaluate(_cfg(folder, models, light=True, limit=1), restorer=restorer, log=lambda s: None)
    clean = np.array(Image.open(folder / "d0.png"))
    light = light_variant(clean, np.random.default_rng(res["table1"]["setup"]["light_seed"]))
    jpeg = jpeg_degrade(light, 10)
    assert res["table2"]["rows"][0]["JPEG"]["psnr"] == pytest.approx(psnr(jpeg, light))
    assert res["table1"]["setup"]["images"] == ["d0.png"]
    assert res["table1"]["setup"]["grain"] is True
    flat = evaluate(_cfg(folder, models, light=True, grain=False, limit=1), restorer=restorer, log=lambda s: None)
    smooth = light_variant(clean, np.random.default_rng(res["table1"]["setup"]["light_seed"]), grain=False)
    assert not np.array_equal(smooth, light)
    assert flat["table2"]["rows"][0]["JPEG"]["psnr"] == pytest.approx(psnr(jpeg_degrade(smooth, 10), smooth))
    assert flat["table1"]["setup"]["grain"] is False


def test_colour_option_scores_the_coloured_rgb_jpegs(folder, models, restorer):
    """--colour: the seeded coloured variant as an RGB JPEG, RGB PSNR / SSIM, masks against the gray
    drawing's, and the gray JPEG's learnt mask as an extra Table 1 row."""
    from training.colour import coloured_crop, jpeg_rgb, rgb_ssim
    from training.evaluate import GRAY_LEARNT

    res = evaluate(_cfg(folder, models, colour=True, limit=1), restorer=restorer, log=lambda s: None)
    clean = coloured_crop(np.array(Image.open(folder / "d0.png")), 0)
    assert clean.ndim == 3
    jpeg = jpeg_rgb(clean, QFS[0])
    row = res["table2"]["rows"][0]
    assert row["JPEG"]["psnr"] == pytest.approx(psnr(jpeg, clean))
    assert row["JPEG"]["ssim"] == pytest.approx(rgb_ssim(jpeg, clean))
    assert GRAY_LEARNT in res["table1"]["rows"] and "Learnt" in res["table1"]["rows"]
    assert res["table1"]["setup"]["colour"] is True and res["table1"]["setup"]["subsampling"] == "4:2:0"
    assert GRAY_LEARNT in table1_markdown(res["table1"])


def test_bad_input_errors(tmp_path, folder, models, restorer):
    with pytest.raises(DataError, match="does not exist"):
        evaluate(_cfg(tmp_path / "nope", models), restorer=restorer)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        evaluate(_cfg(tmp_path / "empty", models), restorer=restorer)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_bytes(b"junk")
    with pytest.warns(UserWarning, match="a.png"), pytest.raises(EvaluationError, match="could be read"):
        evaluate(_cfg(junk, models), restorer=restorer)
    with pytest.raises(EvaluationError, match="1..100"):
        evaluate(EvalConfig(folder=folder, qfs=(0,)), restorer=restorer)
    with pytest.raises(EvaluationError, match="model file"):
        evaluate(EvalConfig(folder=folder, mask_model=tmp_path / "missing.safetensors", device="cpu"))


def test_cli_clear_error_exit_code(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_evaluate_parser(parser.add_subparsers())
    args = parser.parse_args(["evaluate", str(tmp_path / "missing")])
    assert args.func(args) == 2
    assert "does not exist" in capsys.readouterr().err
    args = parser.parse_args(["evaluate", str(tmp_path), "--no-grain"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "--no-grain" in err and "with --light" in err
