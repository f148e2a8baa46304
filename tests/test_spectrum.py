"""a3gan.spectrum: ring power spectra (Parseval, axes selection, gradients)."""

import math

import torch

from a3gan.spectrum import luma, ring_power


def _windowed_energy(grey: torch.Tensor) -> torch.Tensor:
    n = grey.shape[-1]
    win = 0.5 - 0.5 * torch.cos(2 * math.pi * torch.arange(n, dtype=grey.dtype) / n)
    g = (grey - grey.mean(dim=(-2, -1), keepdim=True)) * win[:, None] * win[None, :]
    return (g**2).sum(dim=(-2, -1)).mean()


def test_rings_add_up_to_the_windowed_energy():
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(3, 24, 24, generator=g, dtype=torch.float64)
    for bins in (1, 5, 12):
        p = ring_power(grey, bins)
        assert p.shape == (bins,) and (p >= 0).all()
        assert torch.allclose(p.sum(), _windowed_energy(grey), rtol=1e-10)
    axes = ring_power(grey, 6, axes_only=True)
    assert (axes <= ring_power(grey, 6) + 1e-12).all() and axes.sum() < ring_power(grey, 6).sum()


def test_luma_weights():
    rgb = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    rgb[:, 0], rgb[:, 1], rgb[:, 2] = 1.0, 2.0, 4.0
    assert torch.allclose(luma(rgb), torch.full((1, 2, 2), 0.299 + 2 * 0.587 + 4 * 0.114, dtype=torch.float64))


def test_ring_power_gradcheck():
    g = torch.Generator().manual_seed(1)
    grey = torch.rand(2, 16, 16, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: ring_power(x, 4, axes_only=True), (grey,))
    assert torch.autograd.gradcheck(lambda x: ring_power(x, 4), (grey,))
