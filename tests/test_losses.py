"""Loss functions Eq. 9-15 against hand-computed values, the xnor truth table, the direction of L_att2, and a
gradient check of the WGAN-GP penalty."""

import math

import pytest
import torch

from a3gan import losses
from a3gan.attributes import xnor
from a3gan.config import LossConfig, load_config
from a3gan.nets import Discriminator, Generator


def test_xnor_truth_table():
    a_s = torch.tensor([0.0, 0.0, 1.0, 1.0])
    m = torch.tensor([0.0, 1.0, 0.0, 1.0])
    assert xnor(a_s, m).tolist() == [1.0, 0.0, 0.0, 1.0]


def test_att1_hand_value():
    # logits 0 -> p = 0.5 -> each BCE term is ln 2; N = 10 summed; batch mean
    assert losses.att1(torch.zeros(3, 10), torch.ones(3, 10)).item() == pytest.approx(
        10 * math.log(2), rel=1e-6
    )
    # p = 0.75 (logit ln 3) against target 1 and target 0
    l = losses.att1(torch.tensor([[math.log(3), math.log(3)]]), torch.tensor([[1.0, 0.0]]))
    assert l.item() == pytest.approx(-math.log(0.75) - math.log(0.25), rel=1e-6)


def test_att2_hand_value():
    # a_s = [1, 0], m = [1, 0] -> a_m = xnor = [1, 1]; p = [0.75, 0.5]
    l = losses.att2(
        torch.tensor([[math.log(3), 0.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]), 1e-8
    )
    bce = -math.log(0.75) - math.log(0.5)  # 0.980829
    assert l.item() == pytest.approx(1 / (bce + 1e-8), rel=1e-6)
    assert l.item() == pytest.approx(1.019546, abs=1e-5)


def test_att2_inverts_per_sample_then_averages():
    logits = torch.tensor([[0.0], [math.log(3)]])
    a = torch.ones(2, 1)
    l = losses.att2(logits, a, torch.ones(2, 1), eps=0.0)
    assert l.item() == pytest.approx(0.5 * (1 / math.log(2) + 1 / -math.log(0.75)), rel=1e-6)


def test_att2_eps_avoids_division_by_zero():
    logits = torch.tensor([[100.0]])  # p ~ 1 against target 1: BCE ~ 0
    l = losses.att2(logits, torch.ones(1, 1), torch.ones(1, 1), eps=1e-3)
    assert math.isfinite(l.item()) and l.item() == pytest.approx(1e3, rel=1e-3)


@pytest.mark.parametrize("a_s", [0.0, 1.0])
def test_att2_direction(a_s):
    """Minimising L_att2 pushes an attribute with m=1 AWAY from its source value and keeps one with m=0."""
    logits = torch.zeros(1, 2, requires_grad=True)  # p = 0.5 for both attributes
    src = torch.tensor([[a_s, a_s]])
    m = torch.tensor([[1.0, 0.0]])
    opt = torch.optim.SGD([logits], lr=1.0)
    for _ in range(20):
        opt.zero_grad()
        losses.att2(logits, src, m).backward()
        opt.step()
    p = torch.sigmoid(logits)[0]
    if a_s == 1.0:
        assert p[0] < 0.4  # m=1: moved away from the source value 1
        assert p[1] > 0.6  # m=0: moved toward the source value 1 (kept)
    else:
        assert p[0] > 0.6 and p[1] < 0.4


def test_deid_cosine():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    assert losses.deid(a, b).item() == pytest.approx((1 / math.sqrt(2) - 1) / 2, rel=1e-6)


def test_deid_margin_hinge_hand_values():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, 3.0]])  # cos 0.7071 and 1.0
    assert losses.deid(a, b, margin=0.8).item() == pytest.approx((0 + 0.2) / 2, rel=1e-6)
    assert losses.deid(a, b, margin=0.5).item() == pytest.approx((1 / math.sqrt(2) - 0.5 + 0.5) / 2, rel=1e-6)
    # below the margin a face gets no gradient; above it the gradient is the plain cosine's
    f = torch.tensor([[1.0, 1.0]], requires_grad=True)
    losses.deid(a[:1], f, margin=0.8).backward()
    assert torch.equal(f.grad, torch.zeros_like(f))
    f2 = torch.tensor([[1.0, 1.0]], requires_grad=True)
    losses.deid(a[:1], f2, margin=0.5).backward()
    f3 = torch.tensor([[1.0, 1.0]], requires_grad=True)
    losses.deid(a[:1], f3).backward()
    assert f2.grad.abs().sum() > 0 and torch.allclose(f2.grad, f3.grad)


def test_g_loss_logs_the_cosine_beside_the_hinge():
    cfg = load_config("tiny", ["loss.deid_margin=0.9", "loss.lambda_deid=2"]).loss
    D = Discriminator(load_config("tiny").model)
    fake = torch.rand(2, 3, 32, 32)
    a_s = m = torch.zeros(2, 10)
    e_real = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    e_fake = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # cos 1 and 0
    base, _ = losses.g_loss(D, fake, a_s, m, None, None, cfg)
    total, logs = losses.g_loss(D, fake, a_s, m, e_real, e_fake, cfg)
    assert logs["g/deid"] == pytest.approx(0.05, rel=1e-6)
    assert logs["g/deid_cos"] == pytest.approx(0.5, rel=1e-6)
    assert total.item() - base.item() == pytest.approx(0.1, rel=1e-4)


def test_g_loss_guard_term_hand_values():
    """The guard is L_deid's hinge in the guard's space: margin 0.38, cos 1 and 0.6 -> (0.62 + 0.22) / 2 = 0.42,
    weighted by lambda_guard 3; it leaves the dlib term alone, logs its cosine, and is off at lambda_guard 0."""
    cfg = load_config("tiny", ["loss.lambda_guard=3"]).loss
    assert cfg.guard_margin == pytest.approx(0.38)
    D = Discriminator(load_config("tiny").model)
    fake = torch.rand(2, 3, 32, 32)
    a_s = m = torch.zeros(2, 10)
    g_real = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    g_fake = torch.tensor([[1.0, 0.0], [0.6, 0.8]]).requires_grad_(True)
    base, _ = losses.g_loss(D, fake, a_s, m, None, None, cfg)
    total, logs = losses.g_loss(D, fake, a_s, m, None, None, cfg, guard=(g_real, g_fake))
    assert "g/deid" not in logs
    assert logs["g/guard"] == pytest.approx(0.42, rel=1e-5)
    assert logs["g/guard_cos"] == pytest.approx(0.8, rel=1e-6)
    assert total.item() - base.item() == pytest.approx(1.26, rel=1e-4)
    total.backward()
    assert g_fake.grad.abs().sum() > 0
    cfg.lambda_guard = 0.0
    off = losses.g_terms(D, fake, a_s, m, None, None, cfg, guard=(g_real, g_fake))
    assert "guard" not in off


def test_cls_and_adv_hand_values():
    l = losses.cls(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0]), torch.tensor(0.5), lambda_gp=10.0)
    assert l.item() == pytest.approx(-2 + 1 + 5)
    assert losses.adv(torch.tensor([0.0, 2.0])).item() == pytest.approx(-1.0)


def test_gradient_penalty_of_linear_critic():
    """For D(x) = <w, x> the input gradient is w everywhere, so GP = (||w|| - 1)^2."""
    w = torch.full((1, 3, 2, 2), 0.1)

    def critic(x):
        return (x * w).flatten(1).sum(1)

    gp = losses.gradient_penalty(critic, torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2))
    assert gp.item() == pytest.approx((0.1 * math.sqrt(12) - 1) ** 2, rel=1e-5)  # 0.427180


def test_gradient_penalty_gradcheck():
    """Double-precision gradcheck of the GP w.r.t. the critic's parameters (needs create_graph=True)."""
    torch.manual_seed(0)
    real = torch.randn(2, 1, 2, 2, dtype=torch.float64)
    fake = torch.randn(2, 1, 2, 2, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    alpha_state = g.get_state()

    def gp_of(w):
        def critic(x):
            return torch.tanh(x.flatten(1) @ w).sum(1)

        g.set_state(alpha_state)
        return losses.gradient_penalty(critic, real, fake, generator=g)

    w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gp_of, (w,), eps=1e-6, atol=1e-5)


def test_total_eq13():
    cfg = LossConfig(lambda_att1=2, lambda_att2=3, lambda_deid=4, lambda_adv=5)
    t = losses.total(
        torch.tensor(1.0), torch.tensor(1.0), torch.tensor(1.0), torch.tensor(1.0), torch.tensor(1.0), cfg
    )
    assert t.item() == 2 + 3 + 4 + 5 + 1


def test_which_loss_trains_which_net():
    """L_D reaches no G parameter; L_G reaches G (and D only through Î, which the G step does not update)."""
    cfg = load_config("tiny")
    G, D = Generator(cfg.model), Discriminator(cfg.model)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    a_s = torch.tensor([[1.0] * 10, [0.0] * 10])
    m = torch.bernoulli(torch.full((2, 10), 0.5))
    fake = G(x, m)
    ld, logs = losses.d_loss(D, x, fake, a_s, cfg.loss)
    ld.backward()
    assert all(p.grad is None for p in G.parameters())
    assert set(logs) >= {"d/cls", "d/gp", "d/att1", "d/wdist"}
    D.zero_grad()
    lg, logs = losses.g_loss(D, G(x, m), a_s, m, torch.randn(2, 8), torch.randn(2, 8), cfg.loss)
    lg.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())
    assert set(logs) >= {"g/adv", "g/att2", "g/deid"}


def test_one_combined_step_updates_and_stays_finite():
    torch.manual_seed(0)
    cfg = load_config("tiny")
    G, D = Generator(cfg.model), Discriminator(cfg.model)
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    g0 = [p.detach().clone() for p in G.parameters()]
    d0 = [p.detach().clone() for p in D.parameters()]
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    a_s = torch.bernoulli(torch.full((4, 10), 0.5))
    m = torch.bernoulli(torch.full((4, 10), 0.5))
    ld, _ = losses.d_loss(D, x, G(x, m), a_s, cfg.loss)
    opt_d.zero_grad()
    ld.backward()
    opt_d.step()
    fake = G(x, m)
    lg, _ = losses.g_loss(D, fake, a_s, m, None, None, cfg.loss)
    opt_g.zero_grad()
    lg.backward()
    opt_g.step()
    assert torch.isfinite(ld) and torch.isfinite(lg)
    assert all(torch.isfinite(p).all() for p in list(G.parameters()) + list(D.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, D.parameters(), strict=True))


def test_att2_target_form_hand_value():
    # a_s = [1, 0], m = [1, 0] -> a_m = [1, 1] -> target 1 - a_m = [0, 0]; p = [0.75, 0.5]
    l = losses.att2(
        torch.tensor([[math.log(3), 0.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]), form="target"
    )
    assert l.item() == pytest.approx((-math.log(0.25) - math.log(0.5)) / 2, rel=1e-6)  # = 1.5 ln 2
    with pytest.raises(ValueError, match="unknown L_att2 form"):
        losses.att2(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), form="sum")


def test_inverse_form_is_satisfied_by_a_kept_attribute_target_form_is_not():
    """Why ``att2_form=target`` exists: with one attribute to change (m=1) and one to keep (m=0), an output that
    changes NOTHING already gets a small Eq. 11 loss (the kept bit's BCE against a_m = 1 - a_s is large), while
    the target form charges the unchanged m=1 bit."""
    a_s = torch.tensor([[1.0, 1.0]])
    m = torch.tensor([[1.0, 0.0]])
    unchanged = torch.tensor([[6.0, 6.0]])  # D_att: both attributes still clearly present
    edited = torch.tensor([[-6.0, 6.0]])  # the m=1 attribute flipped, the m=0 one kept
    inv_u, inv_e = losses.att2(unchanged, a_s, m), losses.att2(edited, a_s, m)
    tgt_u, tgt_e = losses.att2(unchanged, a_s, m, form="target"), losses.att2(edited, a_s, m, form="target")
    assert inv_u.item() < 0.2 and inv_u.item() / inv_e.item() < 2.1  # ~1/6 vs ~1/12: hardly any pressure
    assert tgt_u.item() > 2.9 and tgt_e.item() < 0.01  # (6 + 0) / 2 vs ~0


@pytest.mark.parametrize("form", ["inverse", "target"])
@pytest.mark.parametrize("a_s", [0.0, 1.0])
def test_att2_direction_both_forms(a_s, form):
    logits = torch.zeros(1, 2, requires_grad=True)
    src = torch.tensor([[a_s, a_s]])
    m = torch.tensor([[1.0, 0.0]])
    opt = torch.optim.SGD([logits], lr=1.0)
    for _ in range(20):
        opt.zero_grad()
        losses.att2(logits, src, m, form=form).backward()
        opt.step()
    p = torch.sigmoid(logits)[0]
    changed, kept = (p[0], p[1]) if a_s == 1.0 else (1 - p[0], 1 - p[1])
    assert changed < 0.4 and kept > 0.6


def test_diversity_hand_values_and_clamp():
    f1 = torch.zeros(2, 3, 4, 4)
    f2 = torch.full((2, 3, 4, 4), 0.2)
    f2[1] = 0.6
    z1, z2 = torch.zeros(2, 8), torch.full((2, 8), 2.0)
    # ratios 0.2 / 2 = 0.1 and 0.6 / 2 = 0.3
    assert losses.diversity(f1, f2, z1, z2, tau=1.0).item() == pytest.approx(-0.2, rel=1e-6)
    assert losses.diversity(f1, f2, z1, z2, tau=0.15).item() == pytest.approx(-(0.1 + 0.15) / 2, rel=1e-6)
    # clamped samples give no gradient; unclamped ones push the two draws apart
    f2g = f2.clone().requires_grad_(True)
    losses.diversity(f1, f2g, z1, z2, tau=0.15).backward()
    assert f2g.grad[1].abs().sum() == 0 and (f2g.grad[0] < 0).all()


def test_g_loss_adds_weighted_diversity():
    torch.manual_seed(0)
    cfg = load_config("tiny", ["loss.lambda_div=3", "loss.div_tau=10"]).loss
    D = Discriminator(load_config("tiny").model)
    fake, fake2 = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    z1, z2 = torch.randn(2, 16), torch.randn(2, 16)
    a_s = m = torch.zeros(2, 10)
    base, _ = losses.g_loss(D, fake, a_s, m, None, None, cfg)
    with_div, logs = losses.g_loss(D, fake, a_s, m, None, None, cfg, (fake2, z1, z2))
    expect = losses.diversity(fake, fake2, z1, z2, 10.0).item()
    assert logs["g/div"] == pytest.approx(expect, rel=1e-6)
    assert with_div.item() - base.item() == pytest.approx(3 * expect, rel=1e-5)


def test_diversity_pool_ignores_texture():
    """A 2x2 checkerboard difference is per-pixel diversity 1 but vanishes under 2x2 pooling; a flat offset
    survives pooling unchanged."""
    z1, z2 = torch.zeros(1, 4), torch.ones(1, 4)
    f1 = torch.zeros(1, 3, 8, 8)
    checker = (torch.arange(8).view(8, 1) + torch.arange(8).view(1, 8)) % 2 * 2.0 - 1.0  # +-1
    f2 = checker.expand(1, 3, 8, 8).clone()
    assert losses.diversity(f1, f2, z1, z2, tau=10.0).item() == pytest.approx(-1.0)
    assert losses.diversity(f1, f2, z1, z2, tau=10.0, pool=2).item() == pytest.approx(0.0, abs=1e-7)
    flat = torch.full((1, 3, 8, 8), 0.5)
    assert losses.diversity(f1, flat, z1, z2, tau=10.0, pool=4).item() == pytest.approx(-0.5)


def test_lowpass_removes_checkerboard_keeps_smooth_content():
    checker = ((torch.arange(8).view(8, 1) + torch.arange(8).view(1, 8)) % 2 * 2.0 - 1.0).expand(1, 3, 8, 8)
    assert losses.lowpass(checker, 2).abs().max().item() < 1e-6  # each 2x2 block averages to 0
    flat = torch.full((2, 3, 8, 8), 0.3)
    torch.testing.assert_close(losses.lowpass(flat, 4), flat)
    x = torch.rand(1, 3, 8, 8)
    assert losses.lowpass(x, 1) is x
    assert losses.lowpass(x, 2).shape == x.shape


def test_id_lowpass_picks_the_configured_low_pass():
    from a3gan.config import LossConfig
    from a3gan.filters import gaussian_blur, gaussian_kernel1d

    x = torch.rand(2, 3, 16, 16)
    assert losses.id_lowpass(x, LossConfig()) is x  # both off: φ sees the image itself
    torch.testing.assert_close(losses.id_lowpass(x, LossConfig(deid_lowpass=2)), losses.lowpass(x, 2))
    torch.testing.assert_close(
        losses.id_lowpass(x, LossConfig(deid_blur=1.5)), gaussian_blur(x, gaussian_kernel1d(1.5))
    )


def test_jitter_pair_off_same_transform_and_hand_shift():
    a, b = torch.randn(3, 3, 16, 16), torch.randn(3, 3, 16, 16)
    assert losses.jitter_pair(a, b, 0.0) == (a, b)  # off: the very same tensors
    g = torch.Generator().manual_seed(0)
    ja, jb = losses.jitter_pair(a, a.clone(), 2.0, g)
    torch.testing.assert_close(ja, jb)  # one transform per sample, applied to both images
    assert not torch.allclose(ja, a)
    # a constant image stays constant under any similarity transform (border padding)
    c = torch.full((2, 3, 16, 16), 0.3)
    torch.testing.assert_close(losses.jitter_pair(c, c, 3.0, g)[0], c)


def test_jitter_pair_hand_values(monkeypatch):
    """With the draws fixed to u = (0, 0, 1, 0) the transform is a pure shift by +px in x: the output pixel at
    column j samples the input at column j + px (theta's tx = 2 px / W in normalised coordinates)."""
    monkeypatch.setattr(torch, "rand", lambda n, k, generator=None: torch.tensor([[0.5, 0.5, 1.0, 0.5]]).expand(n, k))
    ramp = torch.arange(16.0).view(1, 1, 1, 16).expand(1, 1, 8, 16).contiguous()
    out, _ = losses.jitter_pair(ramp, ramp, 2.0)
    torch.testing.assert_close(out[0, 0, :, :12], ramp[0, 0, :, 2:14])
    assert (out[0, 0, :, 14:] == 15.0).all()  # border padding past the edge


def test_jitter_pair_gradients_and_bad_arguments():
    a = torch.randn(2, 3, 16, 16)
    b = torch.randn(2, 3, 16, 16, requires_grad=True)
    _, jb = losses.jitter_pair(a, b, 1.5, torch.Generator().manual_seed(1))
    jb.sum().backward()
    assert b.grad is not None and torch.isfinite(b.grad).all() and b.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=">= 0"):
        losses.jitter_pair(a, a, -1.0)
    with pytest.raises(ValueError, match="one shape"):
        losses.jitter_pair(a, a[:1], 1.0)
    from a3gan.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="deid_jitter"):
        load_config("tiny", ["loss.deid_jitter=20"])


def test_axis_ring_power_matches_the_numpy_metric():
    """The loss's torch spectrum is the metric's (``radial_power_spectrum(..., axes_only=True)``) on the same
    images (luma of RGB in [-1, 1] or [0, 255] alike: the metric is scale-covariant, P scales with the square)."""
    from a3gan.metrics.quality import radial_power_spectrum

    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 3, 32, 32, generator=g, dtype=torch.float64) * 2 - 1
    got = losses.axis_ring_power(img).numpy()
    ref = radial_power_spectrum(img.permute(0, 2, 3, 1).numpy(), n_bins=8, axes_only=True)["power"]
    assert got == pytest.approx(ref, rel=1e-9)


def test_spectral_excess_hand_values():
    """Real: a vertical-line cosine of amplitude a at k = 30 of 64 (0.469 cycles/px, ring 7 of 8). Fake: the same
    at amplitude 2a -> 4x the power -> log 4 in ring 7, nothing in ring 6 (both empty): mean (0 + log 4) / 2.
    Less power than real costs nothing (one-sided); so does power off the axes (a diagonal pattern)."""
    n, k, a = 64, 30, 0.1
    jj = torch.arange(n, dtype=torch.float64).view(1, 1, 1, n).expand(2, 3, n, n)
    ii = torch.arange(n, dtype=torch.float64).view(1, 1, n, 1).expand(2, 3, n, n)
    real = a * torch.cos(2 * math.pi * k * jj / n)
    assert losses.spectral_excess(2 * real, real).item() == pytest.approx(math.log(4) / 2, rel=1e-6)
    assert losses.spectral_excess(real, real).item() == pytest.approx(0.0, abs=1e-9)
    assert losses.spectral_excess(0.5 * real, real).item() == pytest.approx(0.0, abs=1e-9)
    diag = a * torch.cos(2 * math.pi * 21 * (ii + jj) / n)  # radius 0.464, off the axes
    assert losses.spectral_excess(real + diag, real).item() == pytest.approx(0.0, abs=1e-6)
    # from_freq 0.4375 keeps ring 7 only: log 4
    assert losses.spectral_excess(2 * real, real, from_freq=0.4375).item() == pytest.approx(math.log(4), rel=1e-6)
    # mixed precision: bfloat16 images (what autocast hands over) are measured in float32, close to float64
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(2, 3, n, n, generator=g, dtype=torch.float64) * 0.2  # power in every ring
    ref = losses.spectral_excess(noise + 2 * real, noise + real)
    low = losses.spectral_excess((noise + 2 * real).bfloat16(), (noise + real).bfloat16())
    assert low.dtype == torch.float32 and ref.item() > 0.1 and low.item() == pytest.approx(ref.item(), rel=0.05)


def test_spectral_excess_gradient_removes_the_lattice_not_the_face():
    g = torch.Generator().manual_seed(0)
    real = torch.nn.functional.avg_pool2d(torch.rand(4, 3, 32, 32, generator=g) * 2 - 1, 3, 1, 1)
    lines = torch.where(torch.arange(32) % 2 == 0, 0.2, -0.2).view(1, 1, 32, 1)  # 1-px horizontal lines
    fake = (real + lines).clone().requires_grad_(True)
    loss = losses.spectral_excess(fake, real)
    assert loss.item() > 1.0
    loss.backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
    # the gradient is the lattice itself: it correlates with the lines, not with the image content
    gl = fake.grad.mean(1)
    assert torch.corrcoef(torch.stack([gl.flatten(), lines.view(1, 32, 1).expand(4, 32, 32).flatten()]))[0, 1] > 0.5
    with torch.no_grad():
        stepped = fake - 0.5 * fake.grad / fake.grad.abs().max() * 0.2
    assert losses.spectral_excess(stepped, real).item() < loss.item()
    with pytest.raises(ValueError, match="square RGB"):
        losses.axis_ring_power(torch.zeros(2, 1, 32, 32))


def test_g_loss_adds_weighted_spectral_term():
    from a3gan.config import LossConfig

    class Critic(torch.nn.Module):
        def forward(self, x):
            return x.mean((1, 2, 3)), torch.zeros(x.shape[0], 10)

    g = torch.Generator().manual_seed(1)
    real = torch.rand(2, 3, 32, 32, generator=g) * 0.1
    lines = torch.where(torch.arange(32) % 2 == 0, 0.3, -0.3).view(1, 1, 32, 1)
    fake = real + lines
    a_s = torch.zeros(2, 10)
    m = torch.zeros(2, 10)
    off, logs_off = losses.g_loss(Critic(), fake, a_s, m, None, None, LossConfig(), real=real)
    on, logs_on = losses.g_loss(Critic(), fake, a_s, m, None, None, LossConfig(lambda_spectral=2.0), real=real)
    assert "g/spectral" not in logs_off and logs_on["g/spectral"] > 0
    assert (on - off).item() == pytest.approx(2.0 * logs_on["g/spectral"], rel=1e-5)
    # without the real batch the term is skipped
    skip, _ = losses.g_loss(Critic(), fake, a_s, m, None, None, LossConfig(lambda_spectral=2.0))
    assert skip.item() == pytest.approx(off.item())


def test_deid_embeddings_jitters_both_images_alike_and_detaches_the_real_one():
    torch.manual_seed(0)
    phi = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.Flatten())
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    fake = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    cfg = LossConfig(deid_lowpass=2)
    er, ef = losses.deid_embeddings(phi, x, fake, cfg)
    assert not er.requires_grad and ef.requires_grad
    assert torch.allclose(er, phi(losses.lowpass(x, 2)))
    assert torch.allclose(ef, phi(losses.lowpass(fake, 2)))
    # with jitter, the same warp for both: passing the same image twice gives the same embedding twice
    cfg = LossConfig(deid_jitter=2.0)
    er, ef = losses.deid_embeddings(phi, x, x.clone().requires_grad_(True), cfg, torch.Generator().manual_seed(1))
    assert torch.allclose(er, ef) and not torch.allclose(er, phi(x))


def test_g_terms_weights_and_sum_match_g_loss():
    torch.manual_seed(0)
    cfg = load_config("tiny", ["loss.lambda_div=1", "loss.lambda_spectral=0.5"])
    G, D = Generator(cfg.model), Discriminator(cfg.model)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    a_s, m = torch.tensor([[1.0] * 5 + [0.0] * 5] * 2), torch.ones(2, 10)
    z1, z2 = G.sample_z(2), G.sample_z(2)
    fake, fake2 = G(x, m, z1), G(x, m, z2)
    er, ef = torch.randn(2, 8), torch.randn(2, 8)
    terms = losses.g_terms(D, fake, a_s, m, er, ef, cfg.loss, (fake2, z1, z2), real=x)
    assert {k: w for k, (w, _) in terms.items()} == {
        "adv": cfg.loss.lambda_adv, "att2": cfg.loss.lambda_att2, "div": 1.0, "spectral": 0.5,
        "deid": cfg.loss.lambda_deid,
    }  # fmt: skip
    loss, logs = losses.g_loss(D, fake, a_s, m, er, ef, cfg.loss, (fake2, z1, z2), real=x)
    assert loss.item() == pytest.approx(sum(w * v.item() for w, v in terms.values()), rel=1e-6)
    assert logs["g/att2"] == pytest.approx(terms["att2"][1].item())
    assert set(losses.g_terms(D, fake, a_s, m, None, None, cfg.loss)) == {"adv", "att2"}


def test_proj_hinge_hand_values():
    """Projected GAN hinge: D: mean relu(1 - real) + mean relu(1 + fake); G: -mean(fake)."""
    real = torch.tensor([[2.0, 0.5], [-1.0, 1.0]])  # relu(1 - r): 0, 0.5, 2, 0 -> mean 0.625
    fake = torch.tensor([[-3.0, 0.0], [0.5, -0.5]])  # relu(1 + f): 0, 1, 1.5, 0.5 -> mean 0.75
    assert losses.proj_d(real, fake).item() == pytest.approx(0.625 + 0.75)
    assert losses.proj_g(fake).item() == pytest.approx(0.75)  # -mean(-3, 0, 0.5, -0.5) = 0.75
    f = fake.clone().requires_grad_(True)
    losses.proj_g(f).backward()
    torch.testing.assert_close(f.grad, torch.full_like(fake, -0.25))


def test_g_loss_adds_weighted_proj_term():
    cfg = load_config("tiny", ["loss.lambda_proj=2", "train.identity=dlib"]).loss
    model = load_config("tiny").model
    torch.manual_seed(0)
    D, G = Discriminator(model), Generator(model)
    x, a_s = torch.rand(2, 3, 32, 32) * 2 - 1, (torch.rand(2, 10) < 0.5).float()
    m = torch.zeros(2, 10)
    fake = G(x, m, G.sample_z(2))
    logits = torch.tensor([[0.5, -1.5], [1.0, 2.0]])
    base, logs0 = losses.g_loss(D, fake, a_s, m, None, None, cfg)
    with_p, logs = losses.g_loss(D, fake, a_s, m, None, None, cfg, proj_logits=logits)
    assert logs["g/proj"] == pytest.approx(-0.5) and "g/proj" not in logs0
    assert with_p.item() == pytest.approx(base.item() + 2 * -0.5, abs=1e-5)
    off = load_config("tiny").loss  # lambda_proj 0: the logits are ignored
    assert "g/proj" not in losses.g_loss(D, fake, a_s, m, None, None, off, proj_logits=logits)[1]
