"""AINet (Table 4, Eq. 4) and AdaIN (Eq. 8)."""

import math

import pytest
import torch

from a3gan.config import load_config
from a3gan.nets import AINet, FCNet, adain, count_params


def test_adain_hand_values():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    out = adain(f, torch.tensor([[2.0]]), torch.tensor([[1.0]]))
    sigma = math.sqrt(1.25 + 1e-5)  # population variance of 1..4 is 1.25
    expected = torch.tensor([2 * (v - 2.5) / sigma + 1 for v in (1.0, 2.0, 3.0, 4.0)]).view(1, 1, 2, 2)
    assert torch.allclose(out, expected, atol=1e-6)
    assert out[0, 0, 0, 0].item() == pytest.approx(-1.683271, abs=1e-5)


def test_adain_output_statistics_are_the_style():
    f = torch.randn(3, 5, 8, 8) * 4 + 2
    s, b = torch.rand(3, 5) + 0.5, torch.randn(3, 5)
    out = adain(f, s, b)
    assert torch.allclose(out.mean(dim=(2, 3)), b, atol=1e-5)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), s, atol=1e-3)


def test_adain_bad_shapes():
    with pytest.raises(ValueError):
        adain(torch.zeros(2, 3, 4), torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError):
        adain(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4), torch.zeros(2, 4))


def test_fcnet_table4_widths():
    net = FCNet(512, 10)
    linears = [m for m in net.net if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [
        (522, 512),
        (512, 512),
        (512, 512),
        (512, 1024),
        (1024, 1024),
        (1024, 1024),
    ]
    assert sum(isinstance(m, torch.nn.LeakyReLU) for m in net.net) == 6
    assert FCNet(512, 10, use_mask=False).net[0].in_features == 512


def test_ainet_starts_as_instance_norm_and_uses_mask():
    cfg = load_config("paper").model
    ai = AINet(cfg, 1024)
    assert count_params(ai.affnet) == 1024 * 2048 + 2048
    with torch.no_grad():
        ai.affnet.weight.zero_()  # only the bias remains: scale 1, shift 0
    f_a = ai(torch.randn(2, 512), torch.zeros(2, 10))
    F = torch.randn(2, 1024, 4, 4)
    out = ai.inject(F, f_a)
    ref = (F - F.mean((2, 3), keepdim=True)) / (F.var((2, 3), keepdim=True, unbiased=False) + 1e-5).sqrt()
    assert torch.allclose(out, ref, atol=1e-5)


def test_concat_injection_shape():
    cfg = load_config("tiny", ["inject=concat"]).model
    ai = AINet(cfg, 32)
    f = ai(torch.randn(2, cfg.z_dim), torch.ones(2, 10))
    out = ai.inject(torch.randn(2, 32, 2, 2), f)
    assert out.shape == (2, 32 + ai.fcnet.out_dim, 2, 2) and ai.out_channels == out.shape[1]
