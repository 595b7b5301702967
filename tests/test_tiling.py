"""Tiling: plans, partition-of-unity blend weights, tiled == whole, progress and cancellation."""

import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from core.errors import CancelledError, InvalidOptionError
from core.tiling import auto_tile_size, axis_spans, axis_weights, plan_tiles, run_tiled

torch.set_num_threads(1)


def weight_sum(plan):
    s = torch.zeros(plan.height, plan.width)
    for t in plan.tiles:
        s[t.y0 : t.y1, t.x0 : t.x1] += t.wy[:, None] * t.wx[None, :]
    return s


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(1, 3000),
    tile=st.integers(16, 600),
    overlap=st.integers(0, 128),
    align=st.sampled_from([1, 4, 8, 16]),
)
def test_axis_spans_cover_aligned_and_weights_sum_to_one(length, tile, overlap, align):
    tile = (tile // align) * align
    overlap = -(-overlap // align) * align
    if tile < 2 * overlap + align:
        return
    spans = axis_spans(length, tile, overlap, align)
    assert spans[0][0] == 0 and spans[-1][1] == length
    for (_s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert s1 % align == 0
        assert e0 - s1 == overlap  # neighbours share exactly `overlap` pixels
        assert e1 > e0
    assert all(e - s <= tile for s, e in spans)
    # as few spans as tiles of `tile` pixels would need, and no span larger than needed
    fewest = 1 if length <= tile else 1 + -(-(length - tile) // (tile - overlap))
    assert len(spans) == fewest
    sides = [e - s for s, e in spans]
    assert max(sides) == sides[0] and (
        len(spans) == 1 or sides[0] - align < -(-(length + (fewest - 1) * overlap) // fewest)
    )
    total = torch.zeros(length)
    for (s, e), w in zip(spans, axis_weights(spans)):
        assert w.min() >= 0 and w.max() <= 1
        total[s:e] += w
    assert torch.allclose(total, torch.ones(length), atol=1e-6)


def test_weights_ignore_the_outer_quarter_of_each_overlap():
    spans = axis_spans(300, 128, 64, 8)
    w = axis_weights(spans)
    s1, e0 = spans[1][0], spans[0][1]
    # tile 1 gets nothing from the first 16 overlap pixels, tile 0 nothing from its last 16
    assert torch.all(w[1][:16] == 0) and torch.all(w[0][-16:] == 0)
    assert torch.all(w[1][e0 - s1 - 16 : e0 - s1] == 1)


def test_plan_2d_partition_of_unity_and_alignment():
    plan = plan_tiles(333, 517, 128, 32, align=8)
    assert len(plan) == len(axis_spans(333, 128, 32)) * len(axis_spans(517, 128, 32))
    assert torch.allclose(weight_sum(plan), torch.ones(333, 517), atol=1e-6)
    assert all(t.y0 % 8 == 0 and t.x0 % 8 == 0 for t in plan.tiles)


def test_plan_rounds_and_validates():
    plan = plan_tiles(100, 100, 130, 20, align=8)  # tile -> 128, overlap -> 24
    assert plan.tile == 128 and plan.overlap == 24 and len(plan) == 1
    with pytest.raises(InvalidOptionError, match="too small"):
        plan_tiles(500, 500, 64, 32, align=8)
    with pytest.raises(InvalidOptionError):
        plan_tiles(0, 10, 64, 8)
    with pytest.raises(InvalidOptionError):
        plan_tiles(10, 10, 64, -1)


def conv_stack(seed=0, layers=3):
    torch.manual_seed(seed)
    mods = []
    ch = 1
    for i in range(layers):
        out = 1 if i == layers - 1 else 6
        mods.append(nn.Conv2d(ch, out, 3, padding=1))
        if i < layers - 1:
            mods.append(nn.Tanh())
        ch = out
    return nn.Sequential(*mods).eval()


@torch.no_grad()
def test_tiled_equals_whole_when_overlap_covers_receptive_field():
    net = conv_stack(layers=3)  # receptive radius 3 px < overlap // 4 = 4
    x = torch.rand(1, 1, 150, 410)
    whole = net(x)
    plan = plan_tiles(150, 410, 64, 16, align=8)
    assert len(plan) > 10
    tiled = run_tiled(lambda _t, c: net(c), [x], plan, 1)
    assert (tiled - whole).abs().max() < 1e-5


@torch.no_grad()
def test_tiled_sees_several_inputs_and_identity_is_exact():
    x = torch.rand(2, 1, 90, 130)
    m = torch.rand(2, 3, 90, 130)
    plan = plan_tiles(90, 130, 48, 8, align=8)
    got = run_tiled(lambda _t, a, b: torch.cat([a, b[:, :1]], 1), [x, m], plan, 2)
    assert torch.allclose(got, torch.cat([x, m[:, :1]], 1), atol=1e-6)


def test_progress_and_cancellation_between_tiles():
    x = torch.rand(1, 1, 100, 100)
    plan = plan_tiles(100, 100, 48, 8, align=8)
    seen = []
    run_tiled(lambda _t, c: c, [x], plan, 1, progress=seen.append)
    assert seen == list(range(1, len(plan) + 1))

    ev = threading.Event()
    calls = []

    def fn(_t, c):
        calls.append(1)
        ev.set()  # cancel after the first tile: the second must not run
        return c

    with pytest.raises(CancelledError):
        run_tiled(fn, [x], plan, 1, cancel=ev)
    assert len(calls) == 1
    with pytest.raises(CancelledError):
        run_tiled(fn, [x], plan, 1, cancel=lambda: True)


def test_run_tiled_rejects_mismatched_inputs_and_outputs():
    plan = plan_tiles(64, 64, 64, 0, align=8)
    with pytest.raises(InvalidOptionError):
        run_tiled(lambda _t, c: c, [torch.rand(1, 1, 32, 64)], plan, 1)
    with pytest.raises(InvalidOptionError, match="returned shape"):
        run_tiled(lambda _t, c: c[:, :, :10], [torch.rand(1, 1, 64, 64)], plan, 1)


def test_auto_tile_size():
    assert auto_tile_size(1000, 2**30, align=8) == 1032 // 8 * 8  # sqrt(2^30/1000) = 1036
    assert auto_tile_size(1e9, 1, align=8) == 256
    assert auto_tile_size(1, 1e12, align=8, maximum=2048) == 2048
    assert auto_tile_size(1000, 2**30, align=24) % 24 == 0
    with pytest.raises(InvalidOptionError):
        auto_tile_size(0, 1)


def test_densest_window_finds_the_densest_corner_and_clips_to_the_layer():
    import numpy as np

    from core.tiling import densest_window

    mask = np.zeros((300, 500), bool)
    mask[200:240, 330:380] = True  # the only dense part, smaller than the window
    rows, cols = densest_window(mask, 64, 8)
    assert mask[rows, cols].sum() == mask.sum() and rows.start % 8 == 0 and cols.start % 8 == 0
    assert (rows.stop - rows.start, cols.stop - cols.start) == (64, 64)
    assert densest_window(mask, 1000, 8) == (slice(0, 300), slice(0, 500))  # larger than the layer
