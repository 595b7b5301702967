"""The restore pipeline: input modes and depths, outputs, mask methods, tiling, precision, cancel."""

import sys
import threading

import cv2
import numpy as np
import pytest
import torch

from core.backbones import build_backbone
from core.errors import CancelledError, InvalidImageError, InvalidOptionError, WeightsError
from core.masknet import build_masknet
from core.pipeline import DEFAULT_FILES, RestoreOptions, Restorer
from core.weights import save_model

torch.set_num_threads(1)

#: Stated tolerance of tiled vs whole-image output (uint8 gray levels) at the default overlap.
TILE_TOLERANCE = 1


def drawing(h, w, seed=0, qf=20):
    """Random anti-aliased strokes on white, JPEG-compressed: a small stand-in for damaged line art."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w), 255, np.uint8)
    for _ in range(max(4, h * w // 3000)):
        p = rng.integers(0, [w, h], size=(2, 2))
        cv2.line(
            img,
            tuple(map(int, p[0])),
            tuple(map(int, p[1])),
            int(rng.integers(0, 120)),
            int(rng.integers(1, 4)),
            cv2.LINE_AA,
        )
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, qf])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def fit_mask_net(net, steps=60, seed=0):
    """About 1.5 s of training on random strokes, so that the tiny mask net marks lines (a random
    one marks all or nothing, which would make the mask tests vacuous)."""
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        clean = np.stack([drawing(64, 64, seed=int(rng.integers(1 << 30)), qf=100) for _ in range(4)])
        clean = np.where(clean > 250, 255, clean).astype(np.uint8)
        jpeg = np.stack([cv2.imdecode(cv2.imencode(".jpg", c, [cv2.IMWRITE_JPEG_QUALITY, 20])[1], 0) for c in clean])
        x = torch.from_numpy(jpeg).float().div(255)[:, None]
        loss = torch.nn.functional.cross_entropy(net(x), torch.from_numpy((clean < 255).astype(np.int64)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def tiny_models(seed=0):
    torch.manual_seed(seed)
    mask = fit_mask_net(build_masknet("blind", "slim", channels=[8, 16, 32], blocks=1))
    fw = build_backbone("drunet", "slim", mode="framework", nc=[8, 16, 32, 64], nb=1)
    base = build_backbone("drunet", "slim", mode="baseline", nc=[8, 16, 32, 64], nb=1)
    return mask, fw, base


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    mask, fw, base = tiny_models()
    return {
        "mask": save_model(mask, d / "mask.safetensors"),
        "restore": save_model(fw, d / "fw.safetensors"),
        "baseline": save_model(base, d / "base.safetensors"),
    }


@pytest.fixture(scope="module")
def restorer(model_files):
    return Restorer.from_files(**model_files, device="cpu", precision="fp32")


IMG = drawing(72, 88)


# ------------------------------------------------------------------ input modes and bit depths


def layers_of(gray8: np.ndarray, dtype):
    g = gray8.astype(dtype) * (257 if dtype == np.uint16 else 1)
    white = np.iinfo(dtype).max
    opaque = np.full_like(g, white)
    return {
        "L": g,
        "LA": np.dstack([g, opaque]),
        "RGB": np.dstack([g, g, g]),
        "RGBA": np.dstack([g, g, g, opaque]),
    }


def test_learnt_mask_marks_the_lines(restorer):
    res = restorer.restore(IMG)
    assert res.mask[IMG < 128].mean() > 0.9 and res.mask[IMG > 250].mean() < 0.05
    assert np.any(res.image < 128)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_every_layout_and_depth_restores_like_gray(restorer, dtype):
    # JPEG consistency only runs on 8-bit layers (a 16-bit one is no JPEG decoding): off here,
    # so that both depths go through the same steps.
    opts = RestoreOptions(jpeg_consistency=False)
    ref = restorer.restore(IMG, opts)
    for layout, img in layers_of(IMG, dtype).items():
        res = restorer.restore(img, opts)
        assert res.image.dtype == dtype and res.image.shape == img.shape, layout
        gray = res.image if res.image.ndim == 2 else res.image[..., 0]
        scale = 257 if dtype == np.uint16 else 1
        # 16-bit runs on the same values (g * 257 / 65535 == g / 255) so it matches within rounding
        assert np.abs(gray.astype(np.int64) - ref.image.astype(np.int64) * scale).max() <= scale, layout
        np.testing.assert_array_equal(res.mask, ref.mask)
        if layout in ("RGB", "RGBA"):
            assert np.all(res.image[..., 0] == res.image[..., 1]) and np.all(res.image[..., 1] == res.image[..., 2])
            assert any("luminance" in n for n in res.notes)
        if layout.endswith("A"):
            assert np.all(res.image[..., -1] == np.iinfo(dtype).max)  # white background: opaque


def test_sixteen_bit_is_not_quantised_to_eight(restorer):
    g16 = (IMG.astype(np.float64) * 257 + np.random.default_rng(1).integers(-100, 100, IMG.shape)).clip(0, 65535)
    res = restorer.restore(g16.astype(np.uint16), RestoreOptions(threshold=False))
    assert res.image.dtype == np.uint16
    values = res.image[res.mask == 1]
    assert values.size > 100 and np.mean(values % 257 != 0) > 0.5  # not 8-bit values scaled up


def test_transparent_layer_is_composited_on_white(restorer):
    # Lines drawn only as alpha (colour channels random): the layer shows the drawing on white.
    rng = np.random.default_rng(3)
    la = np.dstack([np.zeros_like(IMG), 255 - IMG])
    rgba = np.dstack([rng.integers(0, 256, IMG.shape + (3,), dtype=np.uint8) * 0, 255 - IMG])
    ref = restorer.restore(IMG)
    for img in (la, rgba):
        res = restorer.restore(img)
        gray = res.image[..., 0]
        assert np.abs(gray.astype(int) - ref.image).max() <= 1
        assert any("composited on white" in n for n in res.notes)


def test_an_opaque_alpha_channel_gets_no_compositing_note(restorer):
    """Editors send every layer with alpha; only a layer with a transparent pixel gets the note, on
    the gray path and on the colour path alike."""
    brown = np.dstack([255 - (255 - IMG) * 0.6, 255 - (255 - IMG) * 0.8, 255 - (255 - IMG) * 0.95]).astype(np.uint8)
    for rgb in (np.dstack([IMG] * 3), brown):
        opaque = np.dstack([rgb, np.full(IMG.shape, 255, np.uint8)])
        assert not any("composited" in n for n in restorer.restore(opaque).notes)
        holes = opaque.copy()
        holes[0, 0, 3] = 0
        assert any("composited" in n for n in restorer.restore(holes).notes)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_transparent_output(restorer, dtype):
    layers = layers_of(IMG, dtype)
    white = np.iinfo(dtype).max
    ref = restorer.restore(layers["L"])
    for layout, img in layers.items():
        res = restorer.restore(img, RestoreOptions(background="transparent"))
        channels = 2 if layout in ("L", "LA") else 4
        assert res.image.shape == IMG.shape + (channels,) and res.image.dtype == dtype
        assert np.all(res.image[..., :-1] == 0)  # black lines
        np.testing.assert_array_equal(res.image[..., -1], white - ref.image)  # alpha = white - gray
    # background forced to white -> fully transparent where the mask is 0
    assert np.all(res.image[..., -1][ref.mask == 0] == 0)


# ------------------------------------------------------------------ methods and options


@pytest.mark.parametrize("method", ["learnt", "otsu", "otsu_d", "agt", "none"])
def test_mask_methods(restorer, method):
    res = restorer.restore(IMG, RestoreOptions(mask=method, threshold=False))
    assert res.image.shape == IMG.shape and res.image.dtype == np.uint8
    if method == "none":
        assert res.mask is None
    else:
        assert res.mask.shape == IMG.shape and res.mask.dtype == np.uint8 and set(np.unique(res.mask)) <= {0, 1}
        assert np.all(res.image[res.mask == 0] == 255)  # eq. 2: background forced to white
    if method in ("otsu", "otsu_d", "agt"):
        from core.masks import DIRECT_MASKS

        np.testing.assert_array_equal(res.mask, DIRECT_MASKS[method](IMG))
    assert set(res.timings) >= {"prepare", "mask", "restore", "finish", "total"}


def test_threshold_post_process(restorer):
    # eq. 1 alone (JPEG consistency, which runs before the final eq. 1, would start from other values)
    off = restorer.restore(IMG, RestoreOptions(threshold=False, mask="none", jpeg_consistency=False))
    on = restorer.restore(IMG, RestoreOptions(threshold=True, theta=200, mask="none", jpeg_consistency=False))
    assert np.all(on.image[off.image > 200] == 255)
    keep = off.image <= 200
    np.testing.assert_array_equal(on.image[keep], off.image[keep])
    no_mask = restorer.restore(IMG, RestoreOptions(return_mask=False))
    assert no_mask.mask is None


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(mask="magic"),
        dict(theta=300),
        dict(theta=2.5),
        dict(qf=0),
        dict(qf=101),
        dict(background="black"),
        dict(tile=16),
        dict(overlap=-1),
        dict(threshold="yes"),
        dict(ensemble=3),
        dict(ensemble=True),
        dict(ensemble=2.0),
    ],
)
def test_invalid_options(kwargs):
    with pytest.raises(InvalidOptionError):
        RestoreOptions(**kwargs)


@pytest.mark.parametrize("mask", ["learnt", "otsu", "none"])
def test_self_ensemble_runs_every_network_on_each_turn(restorer, mask, monkeypatch):
    """ensemble=8 on a non-square layer: each network is called once per transform (quarter turns
    swap height and width), the result keeps the layer's shape and differs from ensemble=1 (the
    random test networks are far from symmetric), and the notes say so."""
    from core.runners import Runner

    img = drawing(56, 88, seed=7)
    one = restorer.restore(img, RestoreOptions(mask=mask, jpeg_consistency=False))  # networks prepared
    calls = []
    real_call = Runner.__call__

    def counting(self, x, *rest):
        calls.append(tuple(x.shape[-2:]))
        return real_call(self, x, *rest)

    monkeypatch.setattr(Runner, "__call__", counting)
    eight = restorer.restore(img, RestoreOptions(mask=mask, jpeg_consistency=False, ensemble=8))
    assert eight.image.shape == one.image.shape == img.shape and eight.image.dtype == np.uint8
    networks = 2 if mask == "learnt" else 1
    assert len(calls) == 8 * networks
    assert sorted(set(calls)) == sorted({(56, 88), (88, 56)})
    assert not np.array_equal(eight.image, one.image)
    assert any("self-ensemble" in n and "8" in n for n in eight.notes)
    assert not any("self-ensemble" in n for n in one.notes)


def test_a_step_hook_sees_every_part_of_the_work_and_can_stop_it(restorer):
    """core.steps: tiles, ensemble passes and row chunks up to the last finishing band reach the
    calling thread's hook, with the Restorer's lock released meanwhile; raising there stops it."""
    from core.steps import step_hook

    img = drawing(1100, 96, seed=4, qf=20)  # more rows than one finishing band (512)
    seen = []

    def hook(kind, done, total):
        assert not restorer._lock.locked()  # another job could run meanwhile
        caller = sys._getframe(2).f_code.co_name  # hook <- core.steps.step <- the step's place
        seen.append((kind, done, total, caller))

    with step_hook(hook):
        ref = restorer.restore(img, RestoreOptions(tile=256, overlap=32, ensemble=2))
    kinds = {s[0] for s in seen}
    assert {"tile", "pass", "rows"} <= kinds
    assert [s[:3] for s in seen if s[3] == "_backbone_pass"] == [
        ("rows", 0, 1100),
        ("rows", 512, 1100),
        ("rows", 1024, 1100),
    ]
    assert ref.tiles > 1 and sum(s[0] == "tile" for s in seen) == 2 * ref.tiles  # mask and backbone

    tiles_done = []

    def stop(kind, done, total):
        tiles_done.append(kind == "tile")
        if kind == "rows" and any(tiles_done):  # a band after the networks
            raise CancelledError("stopped while finishing")

    with step_hook(stop), pytest.raises(CancelledError):
        restorer.restore(img, RestoreOptions(tile=256, overlap=32))
    np.testing.assert_array_equal(
        restorer.restore(img, RestoreOptions(tile=256, overlap=32, ensemble=2)).image, ref.image
    )


def test_options_from_dict():
    assert RestoreOptions.from_dict({"mask": "otsu", "qf": 30}).qf == 30
    with pytest.raises(InvalidOptionError, match="unknown option"):
        RestoreOptions.from_dict({"maks": "otsu"})


def test_invalid_images(restorer):
    for bad in (IMG.astype(np.float32), np.zeros((4, 4, 5), np.uint8), "img"):
        with pytest.raises(InvalidImageError):
            restorer.restore(bad)


def test_qf_for_non_blind_and_blind_models(tmp_path):
    torch.manual_seed(0)
    qf_net = build_backbone("drunet", "slim", mode="framework", qf_map=True, nc=[8, 16, 32, 64], nb=1)
    mask = tiny_models()[0]
    r = Restorer(mask, qf_net, device="cpu", precision="fp32")
    guessed = r.restore(IMG)
    assert any("assumed QF" in n for n in guessed.notes) and guessed.qf_estimate is None
    given = r.restore(IMG, RestoreOptions(qf=20))
    assert not any("assumed QF" in n for n in given.notes)
    assert not np.array_equal(given.image, r.restore(IMG, RestoreOptions(qf=90)).image)

    fb = build_backbone("fbcnn", "slim", mode="framework", nc=[8, 16, 32, 512], nb=1)
    rb = Restorer(mask, fb, device="cpu", precision="fp32")
    res = rb.restore(IMG)
    assert res.qf_estimate is not None and 0 <= res.qf_estimate <= 100
    # tiled: one QF is estimated and used for every tile
    big = drawing(64, 200)
    tiled = rb.restore(big, RestoreOptions(tile=96, overlap=32))
    assert tiled.tiles > 1 and tiled.qf_estimate is not None
    assert any("estimated on one tile" in n for n in tiled.notes)


def test_model_option_and_roles(model_files, restorer):
    res = restorer.restore(IMG, RestoreOptions(mask="none", model=str(model_files["baseline"])))
    ref = restorer.restore(IMG, RestoreOptions(mask="none"))
    np.testing.assert_array_equal(res.image, ref.image)
    with pytest.raises(InvalidOptionError, match="baseline-mode"):
        restorer.restore(IMG, RestoreOptions(mask="otsu", model=str(model_files["baseline"])))
    with pytest.raises(InvalidOptionError, match="mask network"):
        restorer.restore(IMG, RestoreOptions(model=str(model_files["mask"])))
    with pytest.raises(WeightsError):
        Restorer.from_files(mask=model_files["restore"], device="cpu")
    only_mask = Restorer.from_files(mask=model_files["mask"], device="cpu")
    with pytest.raises(InvalidOptionError, match="framework-mode backbone"):
        only_mask.restore(IMG)
    info = restorer.info()
    assert info["device"] == "cpu" and set(info["models"]) == {"mask", "restore", "baseline"}
    assert info["models"]["restore"]["mode"] == "framework" and "none" in info["mask_methods"]


def test_default_weights_missing_is_a_clear_error(tmp_path, monkeypatch):
    import core.pipeline as pipeline

    monkeypatch.setattr(pipeline, "MODELS_DIR", tmp_path)
    with pytest.raises(WeightsError) as e:
        Restorer.default(device="cpu")
    assert DEFAULT_FILES["mask"] in str(e.value) and "python -m training" in str(e.value)


# ------------------------------------------------------------------ tiling, precision, cancel


def test_tiled_equals_whole_several_tiles_wide(restorer):
    img = drawing(320, 720, seed=5)
    whole = restorer.restore(img, RestoreOptions(tile=1024))
    assert whole.tiles == 1
    tiled = restorer.restore(img, RestoreOptions(tile=288, overlap=128))  # default overlap, small tiles
    assert tiled.tiles == 8 and tiled.tile == 288  # 2 x 4 tiles
    np.testing.assert_array_equal(tiled.mask, whole.mask)  # logits blended, then argmax
    assert np.abs(tiled.image.astype(int) - whole.image).max() <= TILE_TOLERANCE
    # without the threshold and with the baseline network too
    for opts in (dict(threshold=False), dict(mask="none", threshold=False)):
        w = restorer.restore(img, RestoreOptions(tile=1024, **opts))
        t = restorer.restore(img, RestoreOptions(tile=288, overlap=128, **opts))
        assert np.abs(t.image.astype(int) - w.image).max() <= TILE_TOLERANCE


def test_tiles_without_lines_skip_the_network(restorer, monkeypatch):
    """Framework tiles whose mask is empty are not run (eq. 2 whitens them): same output, fewer calls."""
    img = np.full((256, 384), 255, np.uint8)
    img[:96, :128] = drawing(96, 128, seed=5)  # lines in one corner, empty paper elsewhere
    whole = restorer.restore(img, RestoreOptions(tile=1024))
    calls = []
    original = Restorer._backbone_call
    monkeypatch.setattr(Restorer, "_backbone_call", lambda self, *a: calls.append(1) or original(self, *a))
    tiled = restorer.restore(img, RestoreOptions(tile=128, overlap=32))
    assert tiled.tiles > 4 and 0 < len(calls) < tiled.tiles
    assert any("no line pixel" in n for n in tiled.notes)
    np.testing.assert_array_equal(tiled.mask, whole.mask)
    assert np.abs(tiled.image.astype(int) - whole.image).max() <= TILE_TOLERANCE
    assert (tiled.image[whole.mask == 0] == 255).all()
    # the plain baseline (mask none) has no mask to go by and runs every tile
    calls.clear()
    res = restorer.restore(img, RestoreOptions(mask="none", tile=128, overlap=32))
    assert len(calls) == res.tiles


def test_auto_tile_size_is_aligned(restorer):
    res = restorer.restore(IMG)
    assert res.tile % 8 == 0 and 256 <= res.tile <= 2048 and res.tiles == 1


def test_bf16_matches_fp32(model_files):
    """bf16 autocast (used on CPUs with native bf16) against fp32 eager: with the mask net kept in
    fp32 the masks are identical and images within 2 gray levels, mean within 0.1 level."""
    img = drawing(96, 160, seed=2)
    fp32 = Restorer.from_files(**model_files, device="cpu", precision="fp32")
    bf16 = Restorer.from_files(**model_files, device="cpu", precision="bf16", mask_precision="fp32")
    assert bf16.info()["models"]["restore"]["precision"] == "bf16"
    assert bf16.info()["models"]["mask"]["precision"] == "fp32"
    for method in ("learnt", "none"):
        a = fp32.restore(img, RestoreOptions(mask=method, threshold=False))
        b = bf16.restore(img, RestoreOptions(mask=method, threshold=False))
        d = np.abs(a.image.astype(int) - b.image)
        assert d.max() <= 2 and d.mean() <= 0.1, (method, d.max(), d.mean())
        if method == "learnt":
            np.testing.assert_array_equal(a.mask, b.mask)


def test_mask_precision_follows_precision_unless_given(model_files):
    """By default the mask net runs in the backbone's precision; in bf16 only pixels the fp32 net
    is nearly undecided about may flip."""
    img = drawing(96, 160, seed=2)
    fp32 = Restorer.from_files(**model_files, device="cpu", precision="fp32")
    assert fp32.mask_precision == "fp32"
    both = Restorer.from_files(**model_files, device="cpu", precision="bf16")
    assert both.mask_precision == "bf16" and both.info()["models"]["mask"]["precision"] == "bf16"
    a = fp32.restore(img, RestoreOptions())
    b = both.restore(img, RestoreOptions())
    flipped = a.mask != b.mask
    assert flipped.mean() < 0.01
    if flipped.any():  # flips happen only where the fp32 logits are close
        mask_net = fp32._runners["mask"]
        x = torch.from_numpy(img).float().div(255)[None, None]
        diff = fp32._mask_logit_diff(mask_net, x, None)[0, 0].numpy()
        assert np.abs(diff[flipped]).max() < 0.5 * np.abs(diff).max()


def test_progress_and_cancellation(restorer):
    img = drawing(100, 300)
    seen = []
    res = restorer.restore(img, RestoreOptions(tile=96, overlap=32), progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) == 2 * res.tiles + 1

    ev = threading.Event()
    calls = []

    def progress(frac):
        calls.append(frac)
        ev.set()  # cancel as soon as the first tile is done

    with pytest.raises(CancelledError):
        restorer.restore(img, RestoreOptions(tile=96, overlap=32), progress=progress, cancel=ev)
    assert len(calls) == 1
    with pytest.raises(CancelledError):
        restorer.restore(img, cancel=lambda: True)
    # the Restorer still works after a cancelled job
    assert restorer.restore(IMG).image.shape == IMG.shape


def test_out_of_memory_halves_the_tile_then_gives_up(restorer, monkeypatch):
    from core.errors import OutOfMemoryError

    img = drawing(140, 300, seed=4)
    expected = restorer.restore(img, RestoreOptions(tile=256))
    real = Restorer._backbone_call
    limit = [256]

    def call(self, r, x, mask_u8, qf, n=1):
        if max(x.shape[-2:]) > limit[0]:
            raise torch.OutOfMemoryError("simulated: tile too large for this device")
        return real(self, r, x, mask_u8, qf, n)

    monkeypatch.setattr(Restorer, "_backbone_call", call)
    res = restorer.restore(img, RestoreOptions(tile=512))
    assert res.tile == 256 and any("retried with 256" in n for n in res.notes)
    np.testing.assert_array_equal(res.image, expected.image)
    limit[0] = 100
    with pytest.raises(OutOfMemoryError):
        restorer.restore(img, RestoreOptions(tile=512))


def test_live_bytes_counts_storage_alive_at_once():
    from core.runners import LiveBytes

    with LiveBytes() as live:
        a = torch.ones(1000) * 2  # the ones (4000 B) and a (4000 B) are alive together
        b = a + 1
        del a
        view = b.view(10, 100)  # shares b's storage: not counted again
        c = b * 3
    assert live.peak == 8000
    assert live.current == 8000  # b (with its view) and c
    del b, view, c
    assert live.current == 0


def test_tile_memory_is_the_peak_alive_not_the_sum_of_outputs(model_files, monkeypatch):
    """The auto tile is sized by the activations alive at once; that count lies between the
    largest single activation (16 fp32 channels at full resolution, 64 B/px, for these models)
    and the sum of every layer's output, which is what is used where the count cannot be taken."""
    import core.runners as runners

    live = Restorer.from_files(**model_files, device="cpu", precision="fp32", engine="torch")
    peak = live.activation_bytes_per_pixel()["restore"]
    r = live._runners["restore"]
    bound = (
        r._sum_of_outputs(
            lambda s: live._backbone_call(r, torch.ones(1, 1, s, s), torch.zeros(1, 1, s, s, dtype=torch.uint8), None),
            64,
        )
        / 64**2
    )
    assert 64 < peak < 0.6 * bound

    class Broken(runners.LiveBytes):
        def __enter__(self):
            raise RuntimeError("no dispatch modes here")

    monkeypatch.setattr(runners, "LiveBytes", Broken)
    fallback = Restorer.from_files(**model_files, device="cpu", precision="fp32", engine="torch")
    assert fallback.activation_bytes_per_pixel()["restore"] == pytest.approx(bound)
