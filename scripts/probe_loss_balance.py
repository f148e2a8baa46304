"""Which term of L_G steers the generator? Per-term gradient on the generated image, for training checkpoints.

For one batch of CelebA crops, the checkpoint's G makes Î (and a second draw for the diversity term) exactly as the
training loop's G step does, with the checkpoint's own D, loss settings and training mask probability, and the
identity network named in its config. For every active term λ·L of L_G (``losses.g_terms``: adv, att2, div,
spectral, proj, deid) it prints λ, L and the norm of ∂(λ·L)/∂Î over the batch - what that term asks of the pixels - and
that norm over L_adv's, the term of the paper that asks for realism (proj, the projected discriminator's, is
counted when the checkpoint holds one and its config sets loss.lambda_proj). (Gradients are taken on Î itself, so the diversity
term's share through the second draw is not counted.)

    python scripts/probe_loss_balance.py --data ../shared/data/celeba runs/RUN/checkpoints/step_005000.safetensors
"""

from __future__ import annotations

import argparse
import sys

import torch

from a3gan import losses
from a3gan.checkpoint import module_state, read_checkpoint
from a3gan.data.celeba import CelebA
from a3gan.errors import ModelError, report_errors
from a3gan.nets import Generator
from a3gan.nets.discriminator import Discriminator


def term_gradients(terms: dict, fake: torch.Tensor) -> dict[str, tuple[float, float, float]]:
    """``{name: (λ, L, ||∂(λ·L)/∂Î||)}`` for the terms of :func:`a3gan.losses.g_terms`, each on its own."""
    if not fake.requires_grad:
        raise ValueError("fake must require grad (make it a leaf with .detach().requires_grad_())")
    out = {}
    for name, (w, v) in terms.items():
        (g,) = torch.autograd.grad(w * v, fake, retain_graph=True, allow_unused=True)
        out[name] = (float(w), float(v.detach()), 0.0 if g is None else float(g.norm()))
    return out


def probe(G, D, identity, cfg, x: torch.Tensor, a_s: torch.Tensor, seed: int = 0, Dp=None, proj_net=None) -> dict:
    """Draw m, f_z (and a second f_z) as the training loop does and return :func:`term_gradients`. ``Dp`` reads
    ``proj_net``'s maps (:func:`a3gan.nets.projected.projection_net`)."""
    g = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    m = (torch.rand(n, a_s.shape[1], generator=g) < cfg.train.mask_p).float()
    z1, z2 = G.sample_z(n, generator=g), G.sample_z(n, generator=g)
    with torch.no_grad():
        fake = G(x, m, z1)
        fake2 = G(x, m, z2) if cfg.loss.lambda_div > 0 else None
    fake = fake.detach().requires_grad_(True)
    emb_real = emb_fake = None
    if identity is not None:
        emb_real, emb_fake = losses.deid_embeddings(identity, x, fake, cfg.loss, g)
    second = None if fake2 is None else (fake2, z1, z2)
    proj = None
    if Dp is not None and proj_net is not None:
        from a3gan.nets.projected import proj_taps_for

        proj = Dp(proj_net.feature_maps(fake, proj_taps_for(cfg.loss.proj_net, cfg.loss.proj_taps)))
    terms = losses.g_terms(D, fake, a_s, m, emb_real, emb_fake, cfg.loss, second, real=x, proj_logits=proj)
    return term_gradients(terms, fake)


def main(argv: list[str] | None = None) -> int:
    return report_errors(_run, argv)  # bad checkpoint or data folder: one line, no traceback


def _run(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="training checkpoints (they hold G and D)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=32, help="images (the last n of the training partition)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ema", action="store_true", help="probe the EMA generator instead of the trained G")
    a = ap.parse_args(argv)
    ds = None
    identities: dict[str, object] = {}
    for path in a.checkpoints:
        tensors, cfg, _ = read_checkpoint(path)
        name = "G_ema" if a.ema else "G"
        if not any(k.startswith("D.") for k in tensors) or not any(k.startswith(name + ".") for k in tensors):
            raise ModelError(f"{path} holds no D or no {name}: use a training checkpoint")
        G = Generator(cfg.model)
        G.load_state_dict(module_state(tensors, name))
        D = Discriminator(cfg.model).eval().requires_grad_(False)
        D.load_state_dict(module_state(tensors, "D"))
        G.requires_grad_(False)
        identity = None
        if cfg.train.identity != "none":
            key = f"{cfg.train.identity}:{cfg.train.identity_weights}"
            if key not in identities:
                from a3gan.identity import build_identity

                identities[key] = build_identity(cfg.train.identity, cfg.train.identity_weights)
            identity = identities[key]
        if ds is None or ds.resolution != cfg.model.resolution:
            ds = CelebA(a.data, cfg.model.resolution, "train", progress=False)
        idx = range(len(ds) - a.n, len(ds))
        x = torch.stack([ds[i][0] for i in idx])
        a_s = torch.stack([ds[i][1] for i in idx])
        Dp = proj_net = None
        if cfg.loss.lambda_proj > 0 and module_state(tensors, "Dp") and (identity is not None or cfg.loss.proj_net != "dlib"):
            from a3gan.nets.projected import build_projected, proj_taps_for, projection_net

            proj_net = projection_net(cfg.loss.proj_net, identity)
            taps = proj_taps_for(cfg.loss.proj_net, cfg.loss.proj_taps)
            Dp = build_projected(proj_net, taps).eval().requires_grad_(False)
            Dp.load_state_dict(module_state(tensors, "Dp"))
        r = probe(G.train(), D, identity, cfg, x, a_s, a.seed, Dp, proj_net)
        adv = r["adv"][2]
        print(f"{path} ({name}, {a.n} images)")
        print(f"  {'term':9s} {'lambda':>7s} {'L':>9s} {'|d(lambda L)/dI|':>17s} {'x adv':>7s}")
        for term, (w, v, gn) in r.items():
            ratio = f"{gn / adv:7.2f}" if adv > 0 else "      -"
            print(f"  {term:9s} {w:7.3g} {v:9.4f} {gn:17.3e} {ratio}")


if __name__ == "__main__":
    sys.exit(main())
