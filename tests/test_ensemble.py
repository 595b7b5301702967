"""core.ensemble: the flips and turns of the self-ensemble, and the averaging."""

import pytest
import torch

from core import ensemble


def test_every_transform_is_undone_and_all_eight_differ():
    t = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(1, 2, 3, 5)  # not square
    seen = set()
    for tr in ensemble.TRANSFORMS:
        f = ensemble.forward(t, tr)
        assert torch.equal(ensemble.inverse(f, tr), t)
        seen.add(tuple(f[0, 0].flatten().tolist()) + tuple(f.shape))
    assert len(seen) == 8
    # the first four keep the orientation of rows and columns (8x8 JPEG blocks stay as they were)
    assert all(ensemble.forward(t, tr).shape == t.shape for tr in ensemble.TRANSFORMS[:4])


def test_mean_over_averages_in_the_original_orientation():
    x = torch.rand(1, 1, 6, 4)
    ramp = torch.arange(4, dtype=torch.float32)  # a network that is not mirror-symmetric

    def run(xt):
        return xt + ramp[: xt.shape[-1]], torch.tensor(float(xt[0, 0, 0, 0]))

    out, extra = ensemble.mean_over(run, [x], 2)
    # identity adds the ramp, the mirror adds it reversed (seen from the original side)
    torch.testing.assert_close(out, x + (ramp + ramp.flip(0)) / 2)
    assert extra == pytest.approx((float(x[0, 0, 0, 0]) + float(x[0, 0, 0, -1])) / 2)
    same, none = ensemble.mean_over(lambda xt: (xt * 2, None), [x], 8)  # equivariant: unchanged
    torch.testing.assert_close(same, x * 2)
    assert none is None
    one, _ = ensemble.mean_over(run, [x], 1)
    torch.testing.assert_close(one, x + ramp)


def test_inputs_turn_together_and_none_passes_through():
    x, m = torch.rand(1, 1, 4, 6), torch.rand(1, 1, 4, 6)
    got, _ = ensemble.mean_over(lambda a, b: (a * b if b is not None else a, None), [x, m], 8)
    torch.testing.assert_close(got, x * m)
    got, _ = ensemble.mean_over(lambda a, b: (a if b is None else a * 0, None), [x, None], 4)
    torch.testing.assert_close(got, x)


@pytest.mark.parametrize("n", [0, 3, 16])
def test_other_sizes_are_refused(n):
    with pytest.raises(ValueError, match="ensemble size"):
        ensemble.mean_over(lambda t: (t, None), [torch.zeros(1, 1, 2, 2)], n)


def test_the_protocol_the_plugins_and_the_cli_offer_the_sizes_the_pipeline_takes():
    """The protocol and the Krita plug-in keep their own copy of the sizes (neither imports core),
    and so does the command line (which does not import torch before it needs to)."""
    from core.cli import build_parser
    from krita_plugin.lineart_restore import settings as krita_settings
    from server import protocol

    assert protocol.ENSEMBLE_SIZES == krita_settings.ENSEMBLE_SIZES == ensemble.SIZES
    assert protocol.options_schema()["ensemble"]["choices"] == list(ensemble.SIZES)
    _, restore_parser = build_parser()
    assert next(a.choices for a in restore_parser._actions if a.dest == "ensemble") == ensemble.SIZES
