"""The projected discriminator (not in paper, ``loss.lambda_proj``): shapes, fixed CCM, gradients, bad arguments."""

import pytest
import torch

from a3gan.nets.projected import ProjectedD, build_projected, parse_taps


def maps(b: int = 2):
    return [torch.randn(b, 32, 35, 35), torch.randn(b, 64, 17, 17)]


def test_shapes_and_logits_per_position():
    Dp = ProjectedD([32, 64], proj=16, hidden=8)
    out = Dp(maps(3))
    # head i: Conv(4, 2, 1) halves (35 -> 17, 17 -> 8), Conv(3, 1, 1) keeps: 17 * 17 + 8 * 8 logits
    assert out.shape == (3, 17 * 17 + 8 * 8)


def test_ccm_is_fixed_seeded_and_not_trained():
    a, b, c = ProjectedD([32, 64], seed=0), ProjectedD([32, 64], seed=0), ProjectedD([32, 64], seed=1)
    assert torch.equal(a.ccm0, b.ccm0) and not torch.equal(a.ccm0, c.ccm0)
    torch.rand(7)  # the global RNG moved: the same seed still builds the same Dp, heads included
    d = ProjectedD([32, 64], seed=0)
    assert all(torch.equal(v, d.state_dict()[k]) for k, v in a.state_dict().items())
    assert all("ccm" not in name for name, _ in a.named_parameters())
    assert {"ccm0", "ccm1"} <= set(a.state_dict())
    # He init: the projection keeps the input's scale (std of w ~ sqrt(2 / c))
    assert a.ccm1.std().item() == pytest.approx((2 / 64) ** 0.5, rel=0.1)


def test_gradients_reach_heads_and_input_not_ccm():
    Dp = ProjectedD([32, 64], proj=16, hidden=8)
    m = [f.requires_grad_(True) for f in maps()]
    Dp(m).mean().backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in m)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in Dp.parameters())


def test_spectral_norm_bounds_the_heads():
    Dp = ProjectedD([32], proj=8, hidden=4)
    w = Dp.heads[0][0].parametrizations.weight.original
    with torch.no_grad():
        w.mul_(100.0)
    for _ in range(20):  # power iteration converges in training mode
        Dp(maps()[:1])
    s = torch.linalg.matrix_norm(Dp.heads[0][0].weight.flatten(1), ord=2).item()
    assert s == pytest.approx(1.0, rel=0.05)


def test_bad_arguments():
    with pytest.raises(ValueError, match="expects 2 feature maps"):
        ProjectedD([32, 64])(maps()[:1])
    with pytest.raises(ValueError, match=r"expected \(B, 64"):
        ProjectedD([32, 64])([torch.randn(1, 32, 9, 9), torch.randn(1, 32, 9, 9)])
    with pytest.raises(ValueError, match="sizes"):
        ProjectedD([])
    assert parse_taps("2, 6") == (2, 6) and parse_taps([1, 3]) == (1, 3)
    for bad in ("6,2", "2,2", "", "a", "-1"):
        with pytest.raises(ValueError, match="taps"):
            parse_taps(bad)


def test_build_needs_feature_maps_and_valid_taps():
    class NoMaps:
        name = "arcface"

    with pytest.raises(ValueError, match="train.identity=dlib"):
        build_projected(NoMaps(), (2, 6))

    class Fake:
        class net:
            units = [None] * 14

            @staticmethod
            def tap_channels(taps):
                return [32] * len(taps)

        def feature_maps(self, x, taps):  # pragma: no cover - not called
            raise AssertionError

    assert build_projected(Fake(), (2, 6)).channels == (32, 32)
    with pytest.raises(ValueError, match="units 0..13"):
        build_projected(Fake(), (2, 14))
