"""Ring power spectra of image batches, shared by the line-lattice score (``metrics.quality``) and the
spectral loss (``losses.spectral_excess``), so the metric and the loss measure exactly the same thing."""

from __future__ import annotations

import math

import torch

from a3gan.colour import RGB_TO_YCBCR

#: Rings from 0 to Nyquist used by the line-lattice score (evaluation report) and the spectral loss alike; the
#: last ring, 0.4375-0.5 cycles/px, is where the lattice of a nearest-x2 output layer shows.
LATTICE_RINGS = 8


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """Y of RGB images (B, 3, H, W) -> (B, H, W) (ITU-R BT.601 weights, as ``a3gan.colour``)."""
    w = rgb.new_tensor(RGB_TO_YCBCR[0]).view(1, 3, 1, 1)
    return (rgb * w).sum(1)


def ring_power(grey: torch.Tensor, n_bins: int, axes_only: bool = False) -> torch.Tensor:
    """Batch-mean power spectrum of grey images (B, N, N), summed in ``n_bins`` equal rings of radial frequency
    from 0 to 0.5 cycles/pixel (the corners beyond Nyquist go to the last ring). Each image's mean is removed and
    a periodic Hann window applied; a ring holds sum |F|^2 / N^2 (Parseval: the rings add up to the windowed
    image's energy). ``axes_only``: only the frequencies within one FFT bin of the u or v axis (horizontal and
    vertical lines). Differentiable. Returns (n_bins,)."""
    n = grey.shape[-1]
    grey = grey - grey.mean(dim=(-2, -1), keepdim=True)
    win = 0.5 - 0.5 * torch.cos(2 * math.pi * torch.arange(n, device=grey.device, dtype=grey.dtype) / n)
    spec = torch.fft.fft2(grey * win[:, None] * win[None, :])
    power = (spec.real**2 + spec.imag**2).mean(0) / (n * n)
    f = torch.fft.fftfreq(n, device=grey.device, dtype=grey.dtype)
    radius = torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    ring = torch.clamp((radius / 0.5 * n_bins).long(), max=n_bins - 1)
    if axes_only:
        near = f.abs() <= 1.0 / n + 1e-6
        keep = near[:, None] | near[None, :]
        ring, power = ring[keep], power[keep]
    return torch.zeros(n_bins, device=grey.device, dtype=grey.dtype).index_add(0, ring.flatten(), power.flatten())
