"""The ONNX Runtime engine: same numbers as torch, chosen only where it applies, clear refusals."""

import dataclasses
import sys

import numpy as np
import pytest
import torch
from test_pipeline import drawing, tiny_models

from core.backbones import build_backbone
from core.errors import InvalidOptionError
from core.masknet import build_masknet
from core.ort_engine import EngineUnavailable, OrtCore, _is_alloc_failure
from core.pipeline import RestoreOptions, Restorer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def models():
    return tiny_models(seed=3)


def test_mask_network_through_onnxruntime_matches_torch():
    torch.manual_seed(0)
    net = build_masknet("blind", "slim", channels=[8, 16, 32], blocks=1).eval()
    core = OrtCore(net, "mask")
    assert core.parity <= 1e-4
    x = torch.rand(2, 1, 45, 70)  # odd size: the model pads, ONNX Runtime sees the padded input
    with torch.no_grad():
        want = net(x)
        got = net(x, core=core)
    assert got.shape == want.shape == (2, 2, 45, 70)
    assert float((got - want).abs().max()) < 1e-4


def test_qfmap_mask_network_gets_its_two_channels():
    torch.manual_seed(0)
    net = build_masknet("qfmap", "slim", channels=[8, 16], blocks=1).eval()
    core = OrtCore(net, "mask")
    x = torch.rand(1, 1, 40, 24)
    with torch.no_grad():
        assert float((net(x, 30, core=core) - net(x, 30)).abs().max()) < 1e-4
        # the QF really reaches the exported graph
        assert float((net(x, 90, core=core) - net(x, 30, core=core)).abs().max()) > 0


@pytest.mark.parametrize("mode", ["framework", "baseline"])
def test_drunet_backbone_through_onnxruntime_matches_torch(mode):
    torch.manual_seed(1)
    net = build_backbone("drunet", "slim", mode=mode, nc=[8, 16, 32, 64], nb=1).eval()
    core = OrtCore(net, "backbone")
    x = torch.rand(1, 1, 50, 37)
    m = (torch.rand(1, 1, 50, 37) > 0.5).float() if mode == "framework" else None
    with torch.no_grad():
        want, _ = net(x, m)
        got, qf = net(x, m, core=core)
    assert qf is None
    assert float((got - want).abs().max()) < 1e-4


def test_fbcnn_stays_on_torch():
    net = build_backbone("fbcnn", "slim", mode="framework").eval()
    with pytest.raises(EngineUnavailable, match="JPEG quality"):
        OrtCore(net, "backbone")


def test_restorer_auto_uses_onnxruntime_for_fp32_cpu_and_matches_torch(models):
    mask, fw, base = models
    img = drawing(120, 136, seed=5)
    ort_r = Restorer(mask, fw, base, device="cpu", precision="fp32")
    info = ort_r.info()
    assert info["engine"] == "auto"
    assert {m["engine"] for m in info["models"].values()} == {"onnxruntime"}
    torch_r = Restorer(mask, fw, base, device="cpu", precision="fp32", engine="torch")
    assert {m["engine"] for m in torch_r.info()["models"].values()} == {"torch"}
    for base_opts in (RestoreOptions(tile=64, overlap=16), RestoreOptions(mask="none")):
        for threshold in (False, True):
            opts = dataclasses.replace(base_opts, threshold=threshold)
            a = ort_r.restore(img, opts)
            b = torch_r.restore(img, opts)
            if a.mask is not None:
                # Only pixels whose two logits are equal to within float noise could flip.
                assert (a.mask != b.mask).mean() < 1e-3
            agree = a.mask is None or (a.mask == b.mask).all()
            diff = np.abs(a.image.astype(int) - b.image.astype(int))
            if threshold:
                # A pixel at theta in one engine and one level above in the other: only that
                # one turns white (eq. 1), a jump of up to 255 - theta that is not a disagreement.
                lo = np.minimum(a.image, b.image)
                jump = (np.maximum(a.image, b.image) == 255) & (lo >= opts.theta)
                diff[jump] = 0
            assert diff.max() <= (1 if agree else 255)
            assert (diff > 1).mean() < 1e-3


def test_onnxruntime_is_not_used_for_bf16(models):
    mask, fw, base = models
    r = Restorer(mask, fw, base, device="cpu", precision="bf16")
    assert {m["engine"] for m in r.info()["models"].values()} == {"torch"}


def test_explicit_onnxruntime_means_fp32_and_refuses_what_it_cannot_run(models):
    mask, fw, base = models
    r = Restorer(mask, fw, None, device="cpu", engine="onnxruntime")
    assert r.precision == r.mask_precision == "fp32"
    with pytest.raises(InvalidOptionError, match="float32 on the CPU"):
        Restorer(mask, fw, None, device="cpu", precision="bf16", engine="onnxruntime")
    fb = build_backbone("fbcnn", "slim", mode="framework")
    with pytest.raises(InvalidOptionError, match="JPEG quality"):
        Restorer(None, fb, None, device="cpu", engine="onnxruntime")
    with pytest.raises(InvalidOptionError, match="engine must be one of"):
        Restorer(mask, fw, None, device="cpu", engine="tensorrt")


def test_auto_falls_back_to_torch_with_a_reason(models, monkeypatch):
    mask, fw, _ = models
    # onnxruntime missing: every model runs on torch, and info says why.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    r = Restorer(mask, fw, None, device="cpu", precision="fp32")
    info = r.info()["models"]
    assert {m["engine"] for m in info.values()} == {"torch"}
    assert all("onnxruntime is not usable" in m["engine_note"] for m in info.values())
    out = r.restore(drawing(40, 48))
    assert out.image.shape == (40, 48)
    monkeypatch.undo()
    # FBCNN: the mask network still gets ONNX Runtime, the backbone stays on torch.
    fb = build_backbone("fbcnn", "slim", mode="framework")
    info = Restorer(mask, fb, None, device="cpu", precision="fp32").info()["models"]
    assert info["mask"]["engine"] == "onnxruntime"
    assert info["restore"]["engine"] == "torch" and "JPEG quality" in info["restore"]["engine_note"]


def test_tile_size_estimate_is_the_same_for_both_engines(models):
    # The activation estimate hooks torch's modules; it must not read 0 when ONNX Runtime runs them.
    mask, fw, base = models
    a = Restorer(mask, fw, base, device="cpu", precision="fp32")
    b = Restorer(mask, fw, base, device="cpu", precision="fp32", engine="torch")
    for role in ("mask", "restore"):
        ra, rb = a._runners[role], b._runners[role]

        def call(r):
            if role == "mask":
                return lambda s: a._mask_logit_diff(r, torch.ones(1, 1, s, s), None)
            return lambda s: a._backbone_call(
                r, torch.ones(1, 1, s, s), torch.zeros(1, 1, s, s, dtype=torch.uint8), None
            )

        assert ra.bytes_per_pixel(call(ra)) == pytest.approx(rb.bytes_per_pixel(call(rb)))
        assert ra.bytes_per_pixel(call(ra)) > 64  # more than the floor
        assert ra.engine == "onnxruntime"  # the probe did not drop the session


def test_allocation_failures_are_recognised():
    assert _is_alloc_failure(RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory"))
    assert _is_alloc_failure(Exception("std::bad_alloc"))
    assert not _is_alloc_failure(Exception("Invalid rank for input: x"))


def test_torch_work_between_onnxruntime_calls_runs_on_one_thread(models):
    # torch's spinning OpenMP workers would take the cores ONNX Runtime needs; the count is restored.
    mask, fw, base = models
    img = drawing(96, 96, seed=2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for engine, during in (("auto", 1), ("torch", 2)):
            r = Restorer(mask, fw, base, device="cpu", precision="fp32", engine=engine)
            seen = []
            r.restore(
                img, RestoreOptions(tile=64, overlap=16), progress=lambda _f: seen.append(torch.get_num_threads())
            )
            assert set(seen[:-1]) == {during}, engine
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_job_with_a_torch_network_keeps_torchs_threads(models):
    mask, _, _ = models
    fb = build_backbone("fbcnn", "slim", mode="framework", nc=[8, 16, 32, 512], nb=1)
    r = Restorer(mask, fb, None, device="cpu", precision="fp32")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []
        r.restore(drawing(64, 64), progress=lambda _f: seen.append(torch.get_num_threads()))
        assert set(seen) == {2}
        assert r.info()["models"]["mask"]["engine"] == "onnxruntime"
    finally:
        torch.set_num_threads(before)


def test_sessions_share_one_arena():
    # One arena for every session: the mask network's and the backbone's largest tiles would
    # otherwise both stay allocated (2048²: 1593 MB peak against 1184 MB shared).
    from core import ort_engine

    torch.manual_seed(0)
    a = OrtCore(build_masknet("blind", "slim", channels=[8, 16], blocks=1).eval(), "mask")
    b = OrtCore(build_backbone("drunet", "slim", mode="baseline", nc=[8, 16, 32, 64], nb=1).eval(), "backbone")
    assert ort_engine._shared_arena is True
    for core in (a, b):
        assert core.session.get_session_options().get_session_config_entry("session.use_env_allocators") == "1"


def test_swinir_whose_graph_is_traced_at_one_size_stays_on_torch():
    # Two blocks, so that the second shifts its windows: its attention mask and reshapes are traced
    # at the export size, and the probe runs at another size.
    net = build_backbone("swinir", "slim", mode="framework", embed_dim=12, depths=[2], num_heads=[2]).eval()
    with pytest.raises(EngineUnavailable, match="other sizes"):
        OrtCore(net, "backbone")
    r = Restorer(None, net, None, device="cpu", precision="fp32")
    info = r.info()["models"]["restore"]
    assert info["engine"] == "torch" and "other sizes" in info["engine_note"]
    out = r.restore(drawing(40, 52), RestoreOptions(mask="otsu"))
    assert out.image.shape == (40, 52)
