from __future__ import annotations

import pytest
import torch
from torch import nn

from a3gan.training.schedule import ema_beta_at, ema_update, lr_at, sample_masks, step_seed


def test_lr_constant_then_linear_to_zero() -> None:
    assert lr_at(0, 2e-4, 100, 200) == 2e-4
    assert lr_at(99, 2e-4, 100, 200) == 2e-4
    assert lr_at(100, 2e-4, 100, 200) == 2e-4
    assert lr_at(150, 2e-4, 100, 200) == pytest.approx(1e-4)
    assert lr_at(175, 2e-4, 100, 200) == pytest.approx(0.5e-4)
    assert lr_at(200, 2e-4, 100, 200) == 0.0
    assert lr_at(250, 2e-4, 100, 200) == 0.0
    assert lr_at(500, 2e-4, 1000, 600) == 2e-4  # decay start after the end: no decay


def test_ema_beta_warmup() -> None:
    assert ema_beta_at(0, 0.999) == pytest.approx(0.1)
    assert ema_beta_at(10, 0.999) == pytest.approx(11 / 20)
    assert ema_beta_at(100_000, 0.999) == 0.999
    assert ema_beta_at(5, 0.0) == 0.0


def test_ema_update_hand_values() -> None:
    ema, model = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        ema.weight.copy_(torch.tensor([1.0, 2.0]))
        model.weight.copy_(torch.tensor([3.0, 6.0]))
        model.running_mean.copy_(torch.tensor([5.0, 7.0]))
    ema_update(ema, model, 0.75)
    assert torch.allclose(ema.weight, torch.tensor([1.5, 3.0]))  # 0.75*1 + 0.25*3, 0.75*2 + 0.25*6
    assert torch.equal(ema.running_mean, torch.tensor([5.0, 7.0]))  # buffers copied
    ema_update(ema, model, 0.0)
    assert torch.equal(ema.weight, model.weight)


def test_masks_bernoulli() -> None:
    g = torch.Generator().manual_seed(0)
    assert torch.equal(sample_masks(3, 10, 0.0, g), torch.zeros(3, 10))
    assert torch.equal(sample_masks(3, 10, 1.0, g), torch.ones(3, 10))
    m = sample_masks(2000, 10, 0.3, g)
    assert m.dtype == torch.float32 and set(m.unique().tolist()) == {0.0, 1.0}
    assert abs(m.mean().item() - 0.3) < 0.02
    a = sample_masks(4, 10, 0.5, torch.Generator().manual_seed(7))
    b = sample_masks(4, 10, 0.5, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="mask_p"):
        sample_masks(1, 10, -0.1, g)


def test_step_seed_stable_and_distinct() -> None:
    s = step_seed(0, 0, 5, 1)
    assert s == step_seed(0, 0, 5, 1) and 0 <= s < 2**63
    others = {step_seed(1, 0, 5, 1), step_seed(0, 1, 5, 1), step_seed(0, 0, 6, 1), step_seed(0, 0, 5, 2)}
    assert s not in others and len(others) == 4
