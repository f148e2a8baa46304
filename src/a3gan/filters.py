"""Fixed (parameter-free) image filters shared by the networks and the losses."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel1d(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian taps of ``sigma`` px, radius ceil(3 sigma) (at least 1), float32."""
    if not sigma > 0:
        raise ValueError(f"a Gaussian needs sigma > 0, got {sigma}")
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def gaussian_blur(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable blur of every channel of ``img`` (B, C, H, W) with the 1-D taps ``kernel`` (odd length), reflect
    padding. Linear and shift-equivariant, so its adjoint (the gradient it passes back) has no pixel grid."""
    r = kernel.numel() // 2
    if r >= min(img.shape[-2:]):
        raise ValueError(f"a blur of radius {r} px is too large for a {tuple(img.shape[-2:])} image")
    c = img.shape[1]
    k = kernel.to(img.device, img.dtype)
    out = F.conv2d(F.pad(img, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(out, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
