"""The projected discriminator (not in paper, ``loss.lambda_proj``): shapes, fixed CCM, gradients, bad arguments."""

import pytest
import torch

from a3gan.nets.projected import ProjectedD, build_projected, parse_taps, proj_taps_for, projection_net


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

    with pytest.raises(ValueError, match="arcface network has no feature maps"):
        build_projected(NoMaps(), (2, 6))

    class Fake:
        name = "fake"

        @staticmethod
        def tap_count():
            return 14

        @staticmethod
        def tap_channels(taps):
            return [32] * len(taps)

        def feature_maps(self, x, taps):  # pragma: no cover - not called
            raise AssertionError

    assert build_projected(Fake(), (2, 6)).channels == (32, 32)
    with pytest.raises(ValueError, match="fake network has taps 0..13"):
        build_projected(Fake(), (2, 14))


def test_proj_taps_for_defaults_and_bad_net():
    assert proj_taps_for("dlib", "") == (2, 6) and proj_taps_for("onet", " ") == (1, 2, 3)
    assert proj_taps_for("onet", "0,3") == (0, 3) and proj_taps_for("dlib", "2, 6") == (2, 6)
    with pytest.raises(ValueError, match="proj_net must be one of dlib, onet"):
        proj_taps_for("vgg", "")
    with pytest.raises(ValueError, match="taps"):
        proj_taps_for("onet", "3,1")


def test_projection_net_choice():
    class NoMaps:
        name = "arcface"

    with pytest.raises(ValueError, match="proj_net=dlib needs train.identity=dlib"):
        projection_net("dlib", NoMaps())
    with pytest.raises(ValueError, match="proj_net must be one of"):
        projection_net("vgg", None)
    onet = projection_net("onet", None)  # needs no identity network: O-Net ships with the package
    assert onet.name == "onet"
    Dp = build_projected(onet, (1, 2, 3))
    assert Dp.channels == (64, 64, 128)
    with pytest.raises(ValueError, match="taps 0..3"):
        build_projected(onet, (1, 4))
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    # heads: 21 -> 10, 8 -> 4, 3 -> 1 positions per side
    assert Dp(onet.feature_maps(x, (1, 2, 3))).shape == (2, 10 * 10 + 4 * 4 + 1)


def test_tap_ranges_are_checked_per_network():
    """A config's taps are checked against the chosen network's tap count before anything is built."""
    assert proj_taps_for("onet", "3") == (3,) and proj_taps_for("dlib", "13") == (13,)
    with pytest.raises(ValueError, match="onet network has taps 0..3"):
        proj_taps_for("onet", "2,4")
    with pytest.raises(ValueError, match="dlib network has taps 0..13"):
        proj_taps_for("dlib", "2,14")
