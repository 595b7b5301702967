"""The batch command line: outputs, masks, options, per-file errors and exit status, help."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from core.backbones import build_backbone
from core.cli import collect_inputs, main
from core.imageio import read_image, write_png
from core.masknet import build_masknet
from core.weights import save_model

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def drawing(h, w, seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((h, w), 255, np.uint8)
    for _ in range(6):
        p = rng.integers(0, [w, h], size=(2, 2))
        cv2.line(img, tuple(map(int, p[0])), tuple(map(int, p[1])), 20, 2, cv2.LINE_AA)
    return img


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    return {
        "mask": str(save_model(build_masknet("blind", "slim", channels=[8, 16], blocks=1), d / "m.safetensors")),
        "fw": str(
            save_model(
                build_backbone("drunet", "slim", mode="framework", nc=[8, 16, 32, 64], nb=1), d / "fw.safetensors"
            )
        ),
        "base": str(
            save_model(build_backbone("drunet", "slim", mode="baseline", nc=[8, 16, 32, 64], nb=1), d / "b.safetensors")
        ),
    }


@pytest.fixture()
def inputs(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    g = drawing(40, 56)
    write_png(src / "gray.png", g)
    write_png(src / "layer.png", np.dstack([np.zeros_like(g), 255 - g]))  # lines on a transparent layer
    write_png(src / "deep.png", g.astype(np.uint16) * 257)
    Image.fromarray(np.dstack([g, g, g])).save(src / "photo.jpg", quality=30)
    return src


def run(args, models):
    """``restore ARGS`` with the test's mask and framework models, on the CPU, without a bar."""
    return main(["restore", *args, "--mask-model", models["mask"], "--model", models["fw"], "--device", "cpu", "-q"])


def test_restores_files_and_folders_with_masks(inputs, models, tmp_path, capsys):
    out = tmp_path / "out"
    rc = run([str(inputs), "-o", str(out), "--save-mask"], models)
    assert rc == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(
        [f"{s}.png" for s in ("gray", "layer", "deep", "photo")]
        + [f"{s}_mask.png" for s in ("gray", "layer", "deep", "photo")]
    )
    for stem in ("gray", "layer", "deep", "photo"):
        src = read_image(next(inputs.glob(stem + ".*"))).pixels
        res = read_image(out / f"{stem}.png").pixels
        assert res.shape[:2] == src.shape[:2] and res.dtype == src.dtype  # same size and depth
        assert res.shape == src.shape  # white background keeps the layout (JPEG RGB -> RGB)
        mask = read_image(out / f"{stem}_mask.png").pixels
        assert mask.shape == src.shape[:2] and set(np.unique(mask)) <= {0, 255}
        assert np.all(res[mask == 0] == (65535 if res.dtype == np.uint16 else 255))  # white background
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("restored 4 of 4 files") and "failed" not in summary


def test_bad_files_are_reported_and_the_rest_still_run(inputs, models, tmp_path, capsys):
    (inputs / "broken.png").write_text("this is not a PNG")
    missing = tmp_path / "nowhere.png"
    out = tmp_path / "out"
    rc = run(
        [str(inputs / "gray.png"), str(inputs / "broken.png"), str(missing), str(inputs / "deep.png"), "-o", str(out)],
        models,
    )
    assert rc == 1
    cap = capsys.readouterr()
    assert "broken.png" in cap.err and "nowhere.png" in cap.err and "no such file" in cap.err
    assert (out / "gray.png").is_file() and (out / "deep.png").is_file() and not (out / "broken.png").exists()
    assert "restored 2 of 4 files" in cap.out and "2 failed" in cap.out


def test_options_reach_the_pipeline(inputs, models, tmp_path):
    out = tmp_path / "out"
    rc = run(
        [
            str(inputs / "gray.png"),
            "-o",
            str(out),
            "--background",
            "transparent",
            "--mask",
            "otsu",
            "--no-threshold",
            "--tile",
            "64",
            "--overlap",
            "16",
            "--qf",
            "30",
        ],
        models,
    )
    assert rc == 0
    res = read_image(out / "gray.png").pixels
    assert res.shape == (40, 56, 2) and np.all(res[..., 0] == 0)  # gray + alpha, black lines
    # --mask none with a baseline network
    rc = main(
        [
            "restore",
            str(inputs / "gray.png"),
            "-o",
            str(tmp_path / "o2"),
            "--mask",
            "none",
            "--baseline-model",
            models["base"],
            "--device",
            "cpu",
            "-q",
        ]
    )
    assert rc == 0 and (tmp_path / "o2" / "gray.png").is_file()


@pytest.mark.parametrize(
    "bad", [["--theta", "300"], ["--qf", "abc"], ["--qf", "0"], ["--tile", "8"], ["--device", "cuda:7"]]
)
def test_bad_options_exit_2(inputs, models, tmp_path, bad, capsys):
    rc = main(
        [
            "restore",
            str(inputs / "gray.png"),
            "-o",
            str(tmp_path / "o"),
            "--mask-model",
            models["mask"],
            "--model",
            models["fw"],
            "-q",
        ]
        + bad
    )
    assert rc == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "o" / "gray.png").exists()


def test_missing_default_weights_exit_2(inputs, tmp_path, monkeypatch, capsys):
    import core.pipeline as pipeline

    monkeypatch.setattr(pipeline, "MODELS_DIR", tmp_path / "empty")
    rc = main(["restore", str(inputs / "gray.png"), "-o", str(tmp_path / "o"), "-q"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "mask_fast.safetensors" in err and "python -m training" in err


def test_name_clashes_and_overwriting_inputs_are_refused(inputs, models, tmp_path, capsys):
    write_png(inputs / "photo.png", drawing(20, 20))  # photo.jpg and photo.png -> same output name
    rc = run([str(inputs / "photo.jpg"), str(inputs / "photo.png"), "-o", str(tmp_path / "o")], models)
    assert rc == 1 and "would overwrite the result" in capsys.readouterr().err
    rc = run([str(inputs / "gray.png"), "-o", str(inputs)], models)
    assert rc == 1 and "would overwrite the input" in capsys.readouterr().err
    assert read_image(inputs / "gray.png").pixels.shape == (40, 56)


def test_collect_inputs_recursive(tmp_path):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    for p in ("a/x.png", "a/sub/y.JPG", "a/notes.txt"):
        (tmp_path / p).write_bytes(b"")
    flat = collect_inputs([str(tmp_path / "a")])
    assert [str(r) for _, r in flat] == ["x"]
    deep = collect_inputs([str(tmp_path / "a")], recursive=True)
    assert sorted(str(r) for _, r in deep) == ["sub/y", "x"]


def test_info_prints_json(models, capsys):
    rc = main(["info", "--mask-model", models["mask"], "--baseline-model", models["base"], "--device", "cpu"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert info["device"] == "cpu" and info["models"]["mask"]["kind"] == "mask"


def test_help_explains_everything():
    r = subprocess.run([sys.executable, "-m", "core", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    for word in (
        "restore",
        "OUTDIR/<stem>.png",
        "_mask.png",
        "--mask",
        "--threshold",
        "--qf",
        "--background",
        "--model",
        "--device",
        "--tile",
        "--save-mask",
        "exit status",
        "transparent",
    ):
        assert word in r.stdout, word
    r = subprocess.run([sys.executable, "-m", "core"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2


def test_a_jpeg_files_own_quantization_table_reaches_the_pipeline(models, tmp_path, monkeypatch):
    """The command line has the file, so the JPEG-consistency step gets the file's own table
    (any encoder's) instead of searching the IJG ones in the pixels."""
    from core import jpeg_consistency

    # These untrained test networks restore so badly that the check of docs/wild.md would skip
    # the projection; this test is about the table reaching it, so the check is taken out.
    monkeypatch.setattr(jpeg_consistency, "max_outside", lambda _grid: float("inf"))
    from core.pipeline import Restorer

    table = [min(255, 4 + 3 * i + 6 * j) for i in range(8) for j in range(8)]  # not an IJG table
    src = tmp_path / "own.jpg"
    Image.fromarray(drawing(64, 64)).save(src, "JPEG", qtables=[table])
    seen = []
    real = Restorer.restore

    def spy(self, image, options=None, **kw):
        res = real(self, image, options, **kw)
        seen.append((options, res))
        return res

    monkeypatch.setattr(Restorer, "restore", spy)
    assert run([str(src), str(tmp_path / "gray.png"), "-o", str(tmp_path / "out")], models) == 1  # 2nd is missing
    ((opts, res),) = seen
    assert opts.jpeg_table == tuple(table) and opts.jpeg_consistency
    assert res.jpeg_quality is not None and not any("does not reproduce" in n for n in res.notes)


def test_ink_normalization_is_on_by_default_and_can_be_turned_off(inputs, models, tmp_path, monkeypatch):
    from core.pipeline import Restorer

    seen = []
    real = Restorer.restore

    def spy(self, image, options=None, **kw):
        seen.append(options)
        return real(self, image, options, **kw)

    monkeypatch.setattr(Restorer, "restore", spy)
    assert run([str(inputs / "gray.png"), "-o", str(tmp_path / "a")], models) == 0
    assert run([str(inputs / "gray.png"), "-o", str(tmp_path / "b"), "--no-normalize-ink"], models) == 0
    assert [o.normalize_ink for o in seen] == [True, False]
