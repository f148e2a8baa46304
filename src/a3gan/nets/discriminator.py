"""The A3GAN discriminator (paper Sec. 4.4, Table 3).

A shared trunk of five Conv(4,2) + InstanceNorm + LeakyReLU layers (64 -> 1024 channels, x ``width``), then two
heads on the flattened feature: D_cls, the WGAN-GP critic FC(F,1024)-LeakyReLU-FC(1024,1), and D_att,
FC(F,1024)-LeakyReLU-FC(1024,N) whose sigmoid gives the N attribute probabilities. F = C_5 (R/32)^2, which is
Table 3's 16384 = 1024 * 4 * 4 at 128 px; it is derived from the resolution so smaller nets build too.

Deviation (config ``model.d_norm_last``, default false): no IN after the fifth conv. IN over the last feature
map (4x4 at 128 px, 2x2 at 64 px) normalises 16 or 4 values per channel and leaves the WGAN-GP critic nearly blind;
see the comment in ``config.py`` for the measurement. ``d_norm_last=true`` builds Table 3 literally.

Choices: InstanceNorm with learnable affine parameters (STGAN's instance_norm has scale and offset); LeakyReLU
slope 0.2; the head returns logits and the sigmoid lives in the loss (numerically stable BCE).
"""

from __future__ import annotations

import torch
from torch import nn

from a3gan.config import ModelConfig


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        ch = [cfg.ch(64 * 2**i) for i in range(cfg.n_layers)]
        layers: list[nn.Module] = []
        for i, c in enumerate(ch):
            last = i == len(ch) - 1
            norm = nn.InstanceNorm2d(c, affine=True) if (not last or cfg.d_norm_last) else nn.Identity()
            layers += [nn.Conv2d(3 if i == 0 else ch[i - 1], c, 4, 2, 1), norm, nn.LeakyReLU(0.2)]
        self.trunk = nn.Sequential(*layers)
        side = cfg.resolution // 2**cfg.n_layers
        self.flat_dim = ch[-1] * side * side
        fc = max(8, round(cfg.d_fc))
        self.cls_head = nn.Sequential(nn.Linear(self.flat_dim, fc), nn.LeakyReLU(0.2), nn.Linear(fc, 1))
        self.att_head = nn.Sequential(nn.Linear(self.flat_dim, fc), nn.LeakyReLU(0.2), nn.Linear(fc, cfg.n_attrs))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).flatten(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (D_cls(x) of shape (B,), D_att logits of shape (B, N))."""
        h = self.features(x)
        return self.cls_head(h).squeeze(1), self.att_head(h)

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """D_cls only (used by the gradient penalty)."""
        return self.cls_head(self.features(x)).squeeze(1)
