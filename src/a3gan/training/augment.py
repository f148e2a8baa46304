"""Differentiable augmentation of the discriminator's inputs (not in the paper), against a D that memorises a small
training set.

Why: with 10,000 CelebA images and no augmentation (STGAN/AttGAN's recipe), the shipped model's D classifies the
attributes of its training images at 98-99% but those of the same images mirrored at 89% (attributes are left/right
symmetric), i.e. its attribute head has memorised the training set, and L_att2 then steers G with that head.
DiffAugment (Zhao et al., NeurIPS 2020, "Differentiable Augmentation for Data-Efficient GAN Training") applies the
same kind of random, differentiable transform to every image D sees, real and generated, in the D step and in the G
step, so D cannot key on exact pixels and G still gets gradients through the transform. Policies (comma-separated
in ``train.diffaug``):

- ``translation``: shift by an integer offset drawn per image from [-H/8, H/8] x [-W/8, W/8]; pixels shifted in
  are 0 (mid-grey in [-1, 1]). Moves no attribute.
- ``cutout``: a square of half the image side, at a random place per image (it may stick out of the image), set to 0.
- ``color``: per image, brightness + U(-0.5, 0.5), saturation x U(0, 2) around the pixel's channel mean,
  contrast x U(0.5, 1.5) around the image mean (DiffAugment's ranges). Changes hair colour and skin tone, so it
  also blurs Blond_Hair, Brown_Hair and Pale_Skin for the attribute head; prefer ``translation`` or
  ``translation,cutout`` for A3GAN.

``train.flip`` (:func:`random_flip`) mirrors half of every training batch the loop draws, before G and D see it.
Every draw comes from the ``torch.Generator`` given (on the CPU: the loop's per-phase generator), so a run is
reproducible and resumes bit-identically, as without augmentation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from a3gan.config import ConfigError

POLICIES = ("translation", "cutout", "color")


def parse_policy(spec: str) -> tuple[str, ...]:
    """``"translation, cutout"`` -> ``("translation", "cutout")``; ``""`` -> ``()``; unknown names raise."""
    names = tuple(s.strip() for s in str(spec).split(",") if s.strip())
    bad = [n for n in names if n not in POLICIES]
    if bad:
        raise ConfigError(
            f"train.diffaug: unknown augmentation {bad[0]!r} (choose from {', '.join(POLICIES)})"
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"train.diffaug: {spec!r} names an augmentation twice")
    return names


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Shift image i by (dy[i], dx[i]) whole pixels (down/right positive); uncovered pixels become 0."""
    n, _, h, w = x.shape
    dev = x.device
    ys = torch.arange(h, device=dev).view(1, h, 1) - dy.to(dev).view(n, 1, 1)  # source row of each output row
    xs = torch.arange(w, device=dev).view(1, 1, w) - dx.to(dev).view(n, 1, 1)
    ys = (ys + 1).clamp(0, h + 1)  # index into the image padded by one zero pixel on each side
    xs = (xs + 1).clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1))
    batch = torch.arange(n, device=dev).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, ys, xs].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, size: int) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square whose top-left corner is (cy[i] - size // 2, cx[i] - size // 2)."""
    n, _, h, w = x.shape
    dev = x.device
    top = (cy.to(dev) - size // 2).view(n, 1, 1)
    left = (cx.to(dev) - size // 2).view(n, 1, 1)
    r = torch.arange(h, device=dev).view(1, h, 1)
    c = torch.arange(w, device=dev).view(1, 1, w)
    hole = (r >= top) & (r < top + size) & (c >= left) & (c < left + size)
    return x * (~hole).unsqueeze(1).to(x.dtype)


def color(
    x: torch.Tensor, brightness: torch.Tensor, saturation: torch.Tensor, contrast: torch.Tensor
) -> torch.Tensor:
    """DiffAugment's colour transform with the given per-image factors (shapes (N,))."""
    n = x.shape[0]
    b, s, c = (t.to(x.device, x.dtype).view(n, 1, 1, 1) for t in (brightness, saturation, contrast))
    x = x + b
    mean_c = x.mean(dim=1, keepdim=True)
    x = (x - mean_c) * s + mean_c
    mean_all = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean_all) * c + mean_all


def diff_augment(
    x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Apply ``policy`` (in DiffAugment's order: color, translation, cutout) with draws from ``generator``."""
    if not policy:
        return x
    n, _, h, w = x.shape
    g = generator
    if "color" in policy:
        x = color(
            x,
            torch.rand(n, generator=g) - 0.5,
            torch.rand(n, generator=g) * 2.0,
            torch.rand(n, generator=g) + 0.5,
        )
    if "translation" in policy:
        sy, sx = int(h / 8 + 0.5), int(w / 8 + 0.5)
        dy = torch.randint(-sy, sy + 1, (n,), generator=g)
        dx = torch.randint(-sx, sx + 1, (n,), generator=g)
        x = translate(x, dy, dx)
    if "cutout" in policy:
        size = int(min(h, w) / 2 + 0.5)
        cy = torch.randint(0, h + (1 - size % 2), (n,), generator=g)
        cx = torch.randint(0, w + (1 - size % 2), (n,), generator=g)
        x = cutout(x, cy, cx, size)
    return x


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left/right with probability 1/2 (``train.flip``), drawn from ``generator``."""
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(-1), x)


HEADS = ("both", "critic")


class AugmentedD:
    """D seen through :func:`diff_augment`: ``aug_d(x)`` = D(T(x)) and ``aug_d.critic(x)`` = D.critic(T(x)), each
    call with a fresh draw from ``generator`` (set it per step). With an empty policy it is D itself. Duck-types
    what :func:`a3gan.losses.d_loss` and :func:`a3gan.losses.g_terms` call.

    ``heads="critic"`` (``train.diffaug_heads``): only the real/fake score D_cls reads T(x); the attribute logits
    D_att are read from the untransformed x (a second pass through D's trunk)."""

    def __init__(self, D, policy: tuple[str, ...], generator: torch.Generator | None = None, heads: str = "both"):
        if heads not in HEADS:
            raise ValueError(f"heads must be one of {HEADS}, got {heads!r}")
        self.D = D
        self.policy = tuple(policy)
        self.generator = generator
        self.heads = heads

    def _module(self):
        return getattr(self.D, "module", self.D)

    def __call__(self, x: torch.Tensor):
        score, att = self.D(diff_augment(x, self.policy, self.generator))
        if self.heads == "critic" and self.policy:
            att = self.D(x)[1]
        return score, att

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        return self._module().critic(diff_augment(x, self.policy, self.generator))
