"""Discriminator (Table 3): trunk, two heads, flattened size derived from the resolution."""

import pytest
import torch

from a3gan.config import load_config
from a3gan.nets import Discriminator, count_params


def test_paper_discriminator_table3():
    D = Discriminator(load_config("paper").model)
    assert D.flat_dim == 16384  # Table 3: FC(16384, 1024)
    ch = [3, 64, 128, 256, 512, 1024]
    trunk = sum(ch[i] * ch[i + 1] * 16 + ch[i + 1] + 2 * ch[i + 1] for i in range(5))  # conv+bias, IN(affine)
    heads = (16384 * 1024 + 1024 + 1024 + 1) + (16384 * 1024 + 1024 + 1024 * 10 + 10)
    assert count_params(D) == trunk + heads == 44_717_899  # the earlier probe's "about 44.7 M"


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
