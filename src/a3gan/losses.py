"""Loss functions of the paper (Sec. 4.4, Eq. 9-15, Appendix B and C).

Which loss trains which network (Eq. 13 split into the two players, as in WGAN-GP/STGAN practice):

    D (discriminator, both heads) minimises   L_D = L_cls + λ1 L_att1
        L_cls  (Eq. 14): -E[D_cls(I)] + E[D_cls(Î)] + λ_gp E[(||∇_Ĩ D_cls(Ĩ)||_2 - 1)^2]
        L_att1 (Eq. 9):  BCE of D_att on the REAL image against its source attributes a_s
    G (generator incl. SCUs and AINet) minimises   L_G = λ4 L_adv + λ2 L_att2 + λ3 L_deid
        L_adv  (Eq. 15): -E[D_cls(Î)]
        L_att2 (Eq. 11): (Σ_i BCE(D_att^i(Î), a_m^i) + ε)^-1 with a_m = xnor(a_s, m) (Eq. 10)
        L_deid (Eq. 12): cos(φ(I), φ(Î)) with a frozen identity network φ

Eq. 13 adds all five terms into one objective; its terms touch disjoint parameter sets in the gradient step of
each player (D's terms do not depend on G's parameters once Î is detached, G's terms only through Î), so
minimising L_D over D and L_G over G is Eq. 13 played as the usual two-player game.

Reductions: every term is averaged over the batch. BCE terms sum over the N attributes first (Eq. 9, 11 sum over
i); L_att2 inverts the per-sample sum and then averages ("the inverse of the summed BCE"), so each sample's own
attribute distance is inverted. Direction of L_att2: minimising 1/(BCE + ε) MAXIMISES the BCE against a_m, i.e.
pushes D_att(Î) away from a_m: for m=1 (a_m = a_s) away from the source value, for m=0 (a_m = 1 - a_s) toward the
source value (the attribute is kept).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from a3gan.attributes import xnor
from a3gan.config import LossConfig
from a3gan.filters import gaussian_blur, gaussian_kernel1d, resize_bilinear
from a3gan.spectrum import LATTICE_RINGS, luma, ring_power


def bce_sum(att_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample Σ_i -[t_i log σ(x_i) + (1 - t_i) log(1 - σ(x_i))], shape (B,)."""
    if att_logits.shape != target.shape:
        raise ValueError(f"logits {tuple(att_logits.shape)} and targets {tuple(target.shape)} differ")
    return F.binary_cross_entropy_with_logits(att_logits, target.to(att_logits.dtype), reduction="none").sum(1)


def att1(att_logits_real: torch.Tensor, a_s: torch.Tensor) -> torch.Tensor:
    """Eq. 9: L_att1(I, a_s), batch mean of the summed BCE."""
    return bce_sum(att_logits_real, a_s).mean()


def att2(
    att_logits_fake: torch.Tensor, a_s: torch.Tensor, m: torch.Tensor, eps: float = 1e-8, form: str = "inverse"
) -> torch.Tensor:
    """Eq. 10-11: L_att2(Î, a_m) = (Σ_i BCE(D_att^i(Î), a_m^i) + ε)^-1, a_m = xnor(a_s, m); batch mean.

    ``form="target"`` (not in paper, see ``LossConfig.att2_form``): mean_i BCE(D_att^i(Î), 1 - a_m^i), batch
    mean. For a binary label "away from a_m" is "toward 1 - a_m"; unlike the inverted sum, every attribute
    counts, so a kept attribute cannot pay for one that should have changed.
    """
    a_m = xnor(a_s, m)
    if form == "inverse":
        return (1.0 / (bce_sum(att_logits_fake, a_m) + eps)).mean()
    if form == "target":
        return bce_sum(att_logits_fake, 1.0 - a_m).mean() / a_m.shape[1]
    raise ValueError(f"unknown L_att2 form {form!r} (inverse, target)")


def diversity(
    fake1: torch.Tensor, fake2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor, tau: float, pool: int = 1
):
    """Not in paper (DSGAN, Yang et al. 2019): -min(mean|Î1 - Î2| / mean|z1 - z2|, τ), minimised by G.

    Î1, Î2 are G(x, m, z1), G(x, m, z2) for the same x and m; the ratio is per sample, then averaged. The clamp
    at τ stops G from buying diversity with noise once two draws differ enough. ``pool`` > 1 compares the
    images after pool x pool average pooling (structure, not texture).
    """
    if pool > 1:
        fake1, fake2 = F.avg_pool2d(fake1, pool), F.avg_pool2d(fake2, pool)
    num = (fake1 - fake2).abs().flatten(1).mean(1)
    den = (z1 - z2).abs().flatten(1).mean(1).clamp_min(1e-8)
    return -torch.clamp(num / den, max=tau).mean()


def jitter_pair(
    a: torch.Tensor, b: torch.Tensor, px: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Not in paper (``loss.deid_jitter``): warp ``a`` and ``b`` (B, C, H, W) by the same random similarity
    transform per sample - shift up to ``px`` pixels in x and y, scale 1 +- px/32, rotation +- 2*px degrees
    (uniform draws; bilinear, border padding). ``px`` = 0 returns the inputs unchanged."""
    if px < 0:
        raise ValueError(f"jitter must be >= 0 px, got {px}")
    if px == 0:
        return a, b
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"jitter_pair needs two (B,C,H,W) tensors of one shape, got {tuple(a.shape)}, {tuple(b.shape)}")
    n, _, h, w = a.shape
    u = torch.rand(n, 4, generator=generator).to(device=a.device, dtype=a.dtype) * 2 - 1  # uniform in [-1, 1]
    scale = 1 + u[:, 0] * (px / 32.0)
    ang = u[:, 1] * math.radians(2 * px)
    tx, ty = u[:, 2] * (2 * px / w), u[:, 3] * (2 * px / h)  # pixels -> normalised [-1, 1] coordinates
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(a.shape), align_corners=False)
    warp = lambda t: F.grid_sample(t, grid, mode="bilinear", padding_mode="border", align_corners=False)  # noqa: E731
    return warp(a), warp(b)


def lowpass(img: torch.Tensor, k: int) -> torch.Tensor:
    """k x k average pooling, then bilinear upsampling back to the input size (identity for k = 1)."""
    if k <= 1:
        return img
    return resize_bilinear(F.avg_pool2d(img, k), size=tuple(img.shape[-2:]))


def id_lowpass(img: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """What φ sees in L_deid (not in paper): ``img`` Gaussian-blurred by ``cfg.deid_blur`` px if set, else
    low-passed by ``cfg.deid_lowpass`` pooling (1 = unchanged)."""
    if cfg.deid_blur > 0:
        return gaussian_blur(img, gaussian_kernel1d(float(cfg.deid_blur)))
    return lowpass(img, cfg.deid_lowpass)


def deid(emb_real: torch.Tensor, emb_fake: torch.Tensor, margin: float | None = None) -> torch.Tensor:
    """Eq. 12: L_deid = Sim(φ(I), φ(Î)), the mean cosine similarity (lower = less similar identity).

    ``margin`` (not in paper, see ``LossConfig.deid_margin``): mean(max(Sim - margin, 0)) per sample."""
    sim = F.cosine_similarity(emb_real, emb_fake, dim=1)
    if margin is None:
        return sim.mean()
    return (sim - margin).clamp_min(0).mean()


def axis_ring_power(img: torch.Tensor, n_bins: int = LATTICE_RINGS) -> torch.Tensor:
    """Batch-mean luma power on the u/v axes per ring of radial frequency, for RGB images (B, 3, N, N):
    :func:`a3gan.spectrum.ring_power` with ``axes_only``, what the report's Lattice column measures. (n_bins,)."""
    if img.ndim != 4 or img.shape[1] != 3 or img.shape[2] != img.shape[3]:
        raise ValueError(f"expected square RGB images (B, 3, N, N), got {tuple(img.shape)}")
    return ring_power(luma(img), n_bins, axes_only=True)


def spectral_excess(
    fake: torch.Tensor, real: torch.Tensor, from_freq: float = 0.375, eps: float = 1e-8
) -> torch.Tensor:
    """Not in paper (``loss.lambda_spectral``): mean over the rings at or above ``from_freq`` cycles/px of
    max(log P_fake - log P_real, 0), P from :func:`axis_ring_power`; ``real`` is a constant (no gradient).
    0 when the fake images have no more horizontal/vertical line power there than the real ones. Computed in at
    least float32 (under mixed precision too: the FFT has no bfloat16 kernel and half precision loses small
    powers)."""
    def full(t: torch.Tensor) -> torch.Tensor:
        return t if t.dtype in (torch.float32, torch.float64) else t.float()

    p_fake = axis_ring_power(full(fake))
    with torch.no_grad():
        p_real = axis_ring_power(full(real.detach()))
    first = int(from_freq / 0.5 * LATTICE_RINGS + 1e-9)
    excess = torch.log(p_fake[first:] + eps) - torch.log(p_real[first:] + eps)
    return F.relu(excess).mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None):
    """WGAN-GP term of Eq. 14: E[(||∇_Ĩ D_cls(Ĩ)||_2 - 1)^2], Ĩ = α I + (1 - α) Î, α ~ U(0, 1) per sample."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, generator=generator, device="cpu").to(real.device, real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(mixed)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def proj_d(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Not in paper (``loss.lambda_proj``): hinge loss of the projected discriminator (Projected GAN),
    E[max(0, 1 - D_p(I))] + E[max(0, 1 + D_p(Î))], means over samples and patch positions."""
    return F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean()


def proj_g(logits_fake: torch.Tensor) -> torch.Tensor:
    """Not in paper (``loss.lambda_proj``): G's hinge-GAN term against the projected discriminator, -E[D_p(Î)]."""
    return -logits_fake.mean()


def cls(adv_real: torch.Tensor, adv_fake: torch.Tensor, gp: torch.Tensor, lambda_gp: float = 10.0) -> torch.Tensor:
    """Eq. 14: L_cls = -E[D_cls(I)] + E[D_cls(Î)] + λ GP."""
    return -adv_real.mean() + adv_fake.mean() + lambda_gp * gp


def adv(adv_fake: torch.Tensor) -> torch.Tensor:
    """Eq. 15: L_adv = -E[D_cls(Î)]."""
    return -adv_fake.mean()


def total(l_att1, l_att2, l_deid, l_adv, l_cls, cfg: LossConfig) -> torch.Tensor:
    """Eq. 13: L = λ1 L_att1 + λ2 L_att2 + λ3 L_deid + λ4 L_adv + L_cls (for logging; training splits it)."""
    return (
        cfg.lambda_att1 * l_att1
        + cfg.lambda_att2 * l_att2
        + cfg.lambda_deid * l_deid
        + cfg.lambda_adv * l_adv
        + l_cls
    )


def d_loss(
    D: nn.Module, real: torch.Tensor, fake: torch.Tensor, a_s: torch.Tensor, cfg: LossConfig,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The discriminator's objective L_D = L_cls + λ1 L_att1. ``fake`` is detached here."""
    fake = fake.detach()
    adv_real, att_real = D(real)
    adv_fake, _ = D(fake)
    critic = D.critic if hasattr(D, "critic") else getattr(D, "module", D).critic
    gp = gradient_penalty(critic, real, fake, generator)
    l_cls = cls(adv_real, adv_fake, gp, cfg.lambda_gp)
    l_att1 = att1(att_real, a_s)
    loss = l_cls + cfg.lambda_att1 * l_att1
    logs = {
        "d/loss": loss.item(),
        "d/cls": l_cls.item(),
        "d/wdist": (adv_real.mean() - adv_fake.mean()).item(),
        "d/gp": gp.item(),
        "d/att1": l_att1.item(),
    }
    return loss, logs


def deid_embeddings(
    identity: nn.Module, real: torch.Tensor, fake: torch.Tensor, cfg: LossConfig,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """φ(I) (no gradient) and φ(Î) for L_deid: both images moved by the same :func:`jitter_pair` draw and low-passed
    by :func:`id_lowpass` before the frozen identity network, as the training loop's G step uses them."""
    real_id, fake_id = jitter_pair(real, fake, cfg.deid_jitter, generator)
    with torch.no_grad():
        emb_real = identity(id_lowpass(real_id, cfg))
    return emb_real, identity(id_lowpass(fake_id, cfg))


def g_terms(
    D: nn.Module, fake: torch.Tensor, a_s: torch.Tensor, m: torch.Tensor,
    emb_real: torch.Tensor | None, emb_fake: torch.Tensor | None, cfg: LossConfig,
    second: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    real: torch.Tensor | None = None,
    proj_logits: torch.Tensor | None = None,
    guard: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, tuple[float, torch.Tensor]]:
    """The terms of L_G, unweighted, with their weights: ``{name: (λ, L)}`` for "adv", "att2" and, when active,
    "div", "spectral", "proj", "deid" and "guard" (see :func:`g_loss` for when each is active)."""
    adv_fake, att_fake = D(fake)
    terms = {
        "adv": (cfg.lambda_adv, adv(adv_fake)),
        "att2": (cfg.lambda_att2, att2(att_fake, a_s, m, cfg.eps, cfg.att2_form)),
    }
    if proj_logits is not None and cfg.lambda_proj > 0:
        terms["proj"] = (cfg.lambda_proj, proj_g(proj_logits))
    if second is not None and cfg.lambda_div > 0:
        fake2, z1, z2 = second
        terms["div"] = (cfg.lambda_div, diversity(fake, fake2, z1, z2, cfg.div_tau, cfg.div_pool))
    if real is not None and cfg.lambda_spectral > 0:
        terms["spectral"] = (cfg.lambda_spectral, spectral_excess(fake, real, cfg.spectral_from))
    if emb_real is not None and emb_fake is not None:
        terms["deid"] = (cfg.lambda_deid, deid(emb_real.detach(), emb_fake, cfg.deid_margin))
    if guard is not None and cfg.lambda_guard > 0:
        terms["guard"] = (cfg.lambda_guard, deid(guard[0].detach(), guard[1], cfg.guard_margin))
    return terms


def g_loss(
    D: nn.Module, fake: torch.Tensor, a_s: torch.Tensor, m: torch.Tensor,
    emb_real: torch.Tensor | None, emb_fake: torch.Tensor | None, cfg: LossConfig,
    second: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    real: torch.Tensor | None = None,
    proj_logits: torch.Tensor | None = None,
    guard: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The generator's objective L_G = λ4 L_adv + λ2 L_att2 + λ3 L_deid (L_deid skipped without embeddings).

    ``second`` = (Î2, z1, z2), a second draw for the same x and m, adds ``cfg.lambda_div`` x :func:`diversity`;
    ``real`` = the batch's real images x adds ``cfg.lambda_spectral`` x :func:`spectral_excess`;
    ``proj_logits`` = the projected discriminator's logits of Î adds ``cfg.lambda_proj`` x :func:`proj_g`;
    ``guard`` = (φ_g(I), φ_g(Î)) of the guard recognizer adds ``cfg.lambda_guard`` x :func:`deid` with
    ``cfg.guard_margin``.
    """
    terms = g_terms(D, fake, a_s, m, emb_real, emb_fake, cfg, second, real, proj_logits, guard)
    loss = sum(w * v for w, v in terms.values())
    logs = {f"g/{name}": v.item() for name, (_, v) in terms.items()}
    if "deid" in terms and cfg.deid_margin is not None:
        logs["g/deid_cos"] = F.cosine_similarity(emb_real.detach(), emb_fake.detach(), dim=1).mean().item()
    if guard is not None:
        logs["g/guard_cos"] = F.cosine_similarity(guard[0].detach(), guard[1].detach(), dim=1).mean().item()
    logs["g/loss"] = loss.item()
    return loss, logs
