"""Discriminator (Table 3): trunk, two heads, flattened size derived from the resolution."""

import pytest
import torch

from a3gan.config import load_config
from a3gan.nets import Discriminator, count_params


def test_paper_discriminator_table3():
    D = Discriminator(load_config("paper", ["d_norm_last=true"]).model)  # Table 3 literally
    assert D.flat_dim == 16384  # Table 3: FC(16384, 1024)
    ch = [3, 64, 128, 256, 512, 1024]
    trunk = sum(ch[i] * ch[i + 1] * 16 + ch[i + 1] + 2 * ch[i + 1] for i in range(5))  # conv+bias, IN(affine)
    heads = (16384 * 1024 + 1024 + 1024 + 1) + (16384 * 1024 + 1024 + 1024 * 10 + 10)
    assert count_params(D) == trunk + heads == 44_717_899  # the earlier probe's "about 44.7 M"
    # default: no IN (2 x 1024 affine parameters) after the fifth conv
    assert count_params(Discriminator(load_config("paper").model)) == 44_717_899 - 2 * 1024
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in D.trunk) == 5


@pytest.mark.parametrize(
    "preset,res,flat", [("paper", 128, 16384), ("small", 64, 256 * 2 * 2), ("tiny", 32, 32 * 2 * 2)]
)
def test_shapes(preset, res, flat):
    D = Discriminator(load_config(preset).model)
    adv, att = D(torch.randn(3, 3, res, res))
    assert adv.shape == (3,) and att.shape == (3, 10) and D.flat_dim == flat
    assert torch.allclose(D.critic(torch.zeros(1, 3, res, res)), D(torch.zeros(1, 3, res, res))[0])


def test_gradients_flow_to_input():
    D = Discriminator(load_config("tiny").model)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    adv, att = D(x)
    (adv.sum() + att.sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def _wdist_after(steps: int, overrides: list[str]) -> float:
    from a3gan import losses

    torch.manual_seed(0)
    cfg = load_config("small", overrides)
    D = Discriminator(cfg.model)
    opt = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    real = (1 - (xx**2 + yy**2)).clamp(-1, 1).expand(8, 3, 64, 64) * torch.rand(8, 3, 1, 1)
    for _ in range(steps):
        fake = torch.rand(8, 3, 64, 64) * 2 - 1
        loss, logs = losses.d_loss(D, real, fake, torch.zeros(8, 10), cfg.loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return logs["d/wdist"]


def test_critic_separates_real_from_noise_quickly():
    """Why d_norm_last defaults to false: with IN on the 2x2 last map the critic stays nearly blind."""
    ours, literal = _wdist_after(40, []), _wdist_after(40, ["d_norm_last=true"])
    assert ours > 3.0 and ours > 4 * literal
