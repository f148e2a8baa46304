"""a3gan.filters: the fixed Gaussian blur shared by ChromaBlur and L_deid's low-pass (loss.deid_blur)."""

from __future__ import annotations

import math

import pytest
import torch

from a3gan import losses
from a3gan.filters import Upsample2x, gaussian_blur, gaussian_kernel1d, resize_bilinear, upsample_nearest2x


def test_kernel_hand_values():
    k = gaussian_kernel1d(1.0)
    assert k.shape == (7,)  # radius ceil(3 sigma) = 3
    w = [math.exp(-(t**2) / 2) for t in range(-3, 4)]
    torch.testing.assert_close(k, torch.tensor([v / sum(w) for v in w]))
    assert gaussian_kernel1d(0.1).shape == (3,)  # radius at least 1
    assert k.sum().item() == pytest.approx(1.0)


def test_blur_impulse_is_outer_product_and_constant_is_kept():
    k = gaussian_kernel1d(1.0)
    img = torch.zeros(1, 1, 15, 15)
    img[0, 0, 7, 7] = 1.0
    out = gaussian_blur(img, k)
    torch.testing.assert_close(out[0, 0, 4:11, 4:11], torch.outer(k, k))
    assert out[0, 0, 7, 7].item() == pytest.approx(k[3].item() ** 2)  # hand value: (1/2.5066...)^2 ~ 0.1621
    flat = torch.full((2, 3, 9, 9), 0.4)
    torch.testing.assert_close(gaussian_blur(flat, k), flat)


def test_blur_is_shift_equivariant_and_channelwise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 20, 20, generator=g)
    k = gaussian_kernel1d(1.0)
    a = gaussian_blur(torch.roll(x, 1, dims=-1), k)
    b = torch.roll(gaussian_blur(x, k), 1, dims=-1)
    torch.testing.assert_close(a[..., 4:-4, 4:-4], b[..., 4:-4, 4:-4])  # away from the reflect border
    one = gaussian_blur(x[:, 1:2], k)
    torch.testing.assert_close(gaussian_blur(x, k)[:, 1:2], one)


def test_gradient_has_no_pixel_grid_unlike_pooling():
    """Why loss.deid_blur exists: the gradient through deid_lowpass's 2x2 pooling is constant on every 2x2 block
    of a fixed grid (it taught G a 2-px lattice); through the Gaussian it is not."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(1, 3, 16, 16, generator=g)
    x = torch.zeros(1, 3, 16, 16, requires_grad=True)
    (grad_pool,) = torch.autograd.grad((losses.lowpass(x, 2) * w).sum(), x)
    (grad_blur,) = torch.autograd.grad((gaussian_blur(x, gaussian_kernel1d(1.0)) * w).sum(), x)

    def within_block(grad):  # mean |difference| between the two columns of each 2x2 block
        return (grad[..., 0::2] - grad[..., 1::2]).abs().mean().item()

    assert within_block(grad_pool) < 1e-6
    assert within_block(grad_blur) > 0.05


def test_bad_arguments():
    with pytest.raises(ValueError, match="sigma > 0"):
        gaussian_kernel1d(0.0)
    with pytest.raises(ValueError, match="too large"):
        gaussian_blur(torch.zeros(1, 1, 6, 6), gaussian_kernel1d(2.0))


def test_bilinear_x2_hand_values():
    # align_corners=False, x2: an output pixel sits a quarter pixel from its nearest input pixel, so it is
    # 3/4 of that one + 1/4 of the next (clamped at the border)
    x = torch.tensor([[[[0.0, 4.0]]]])  # (1, 1, 1, 2)
    y = resize_bilinear(x, scale=2.0)
    assert torch.allclose(y, torch.tensor([[[[0.0, 1.0, 3.0, 4.0], [0.0, 1.0, 3.0, 4.0]]]]))
    assert torch.equal(Upsample2x("bilinear")(x), y)
    assert torch.equal(Upsample2x("nearest")(x), torch.tensor([[[[0.0, 0.0, 4.0, 4.0]] * 2]]))


@pytest.mark.parametrize("channels", [3, 5, 24])  # the plain path (< 16 channels on CPU) and the channels-last one
def test_resize_bilinear_matches_interpolate_and_passes_gradients(channels):
    torch.manual_seed(0)
    x = torch.randn(3, channels, 7, 9, requires_grad=True)
    for kw in ({"size": (11, 4)}, {"scale": 2.0}):
        ref = torch.nn.functional.interpolate(
            x, size=kw.get("size"), scale_factor=kw.get("scale"), mode="bilinear", align_corners=False
        )
        y = resize_bilinear(x, **kw)
        assert torch.allclose(y, ref, atol=1e-6) and y.is_contiguous()
        (g,) = torch.autograd.grad(y.square().sum(), x)
        (g_ref,) = torch.autograd.grad(ref.square().sum(), x)
        assert torch.allclose(g, g_ref, atol=1e-5) and g.abs().sum() > 0


def test_upsample_nearest2x_matches_interpolate_and_passes_gradients():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 5, 3, requires_grad=True)
    ref = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
    y = upsample_nearest2x(x)
    assert torch.equal(y, ref) and y.shape == (2, 6, 10, 6)
    (g,) = torch.autograd.grad((y * torch.arange(y.numel()).view_as(y)).sum(), x)
    # each input pixel receives the sum of its 2x2 block of output weights
    w = torch.arange(y.numel(), dtype=torch.float32).view_as(y)
    assert torch.equal(g, torch.nn.functional.avg_pool2d(w, 2) * 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_resize_bilinear_cuda_channels_last_path_same_values():
    x = torch.randn(64, 8, 16, 16, device="cuda")
    ref = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    y = resize_bilinear(x, scale=2.0)
    assert y.is_contiguous() and torch.allclose(y, ref, atol=1e-6)


def test_upsample2x_bad_mode():
    with pytest.raises(ValueError, match="bilinear or nearest"):
        Upsample2x("bicubic")
