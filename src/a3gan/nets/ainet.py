"""AINet, the attribute-aware injective network (paper Sec. 4.3, Eq. 4 and 8, Table 4).

AINet = FCNet (six FC layers on [f_z, m] -> f_m) + AffNet (a learned affine map f_m -> f_a = (f_a,s, f_a,b), one
scale and one bias per channel of the bottleneck feature F^L) + AdaIN (Eq. 8) into F^L.

Reading between the lines:
- Table 4 says LeakyReLU after every FC layer; the text says "ReLU activations". We follow the table (slope 0.2).
- AffNet is "a learnable affine transform": one Linear(1024, 2*C_L), as StyleGAN's A-block [15]. Its bias is
  initialised to 1 for the scale half and 0 for the bias half, so that at initialisation AdaIN starts close to a
  plain instance normalisation (StyleGAN practice; Eq. 8 stays literal: f_a,s multiplies, f_a,b adds).
- "channel-wise mean and variance": μ and σ are per sample and per channel over the spatial positions (instance
  statistics, as AdaIN in [15]); σ is the standard deviation sqrt(var + 1e-5).
- For the "w/o AdaIN" ablation (Table 1) f_m is tiled spatially and concatenated to F^L instead ("concatenation").
- For the "w/o mask" ablation FCNet's first layer sees f_z only: FC(512, 512).
"""

from __future__ import annotations

import torch
from torch import nn

from a3gan.config import ModelConfig

ADAIN_EPS = 1e-5


def adain(f: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, eps: float = ADAIN_EPS) -> torch.Tensor:
    """Eq. 8: AdaIN(f_a, F) = f_a,s * (F - μ(F)) / σ(F) + f_a,b, statistics per sample and channel."""
    if f.dim() != 4:
        raise ValueError(f"adain expects a (B,C,H,W) feature, got shape {tuple(f.shape)}")
    if scale.shape != f.shape[:2] or bias.shape != f.shape[:2]:
        raise ValueError(f"adain scale/bias must be (B,C)={tuple(f.shape[:2])}, got {tuple(scale.shape)}")
    mu = f.mean(dim=(2, 3), keepdim=True)
    sigma = (f.var(dim=(2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return scale[:, :, None, None] * (f - mu) / sigma + bias[:, :, None, None]


def fcnet_dims(z_dim: int, n_attrs: int, width: float = 1.0, use_mask: bool = True) -> list[int]:
    """FCNet's layer widths, input first: [512+N, 512, 512, 512, 1024, 1024, 1024] at ``width`` 1 (Table 4)."""
    w512, w1024 = max(8, round(512 * width)), max(8, round(1024 * width))
    return [z_dim + (n_attrs if use_mask else 0), w512, w512, w512, w1024, w1024, w1024]


class FCNet(nn.Module):
    """Table 4: FC(512+N,512), FC(512,512), FC(512,512), FC(512,1024), FC(1024,1024), FC(1024,1024), LeakyReLU."""

    def __init__(self, z_dim: int, n_attrs: int, width: float = 1.0, use_mask: bool = True):
        super().__init__()
        dims = fcnet_dims(z_dim, n_attrs, width, use_mask)
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.use_mask = use_mask
        self.out_dim = dims[-1]

    def forward(self, f_z: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        x = torch.cat([f_z, m.to(f_z.dtype)], dim=1) if self.use_mask else f_z
        return self.net(x)


class AINet(nn.Module):
    """Eq. 4: f_a = AINet([f_z, m]); ``inject`` fuses f_a into the bottleneck feature F^L (Eq. 8, AdaIN)."""

    def __init__(self, cfg: ModelConfig, bottleneck_channels: int):
        super().__init__()
        self.inject_mode = cfg.inject
        self.fcnet = FCNet(cfg.z_dim, cfg.n_attrs, cfg.ainet_width, cfg.use_mask)
        self.channels = bottleneck_channels
        if cfg.inject == "adain":
            self.affnet = nn.Linear(self.fcnet.out_dim, 2 * bottleneck_channels)
            with torch.no_grad():
                self.affnet.bias[:bottleneck_channels].fill_(1.0)
                self.affnet.bias[bottleneck_channels:].zero_()
        else:
            self.affnet = None
        self.out_channels = bottleneck_channels + (self.fcnet.out_dim if cfg.inject == "concat" else 0)

    def forward(self, f_z: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """Returns f_a: (B, 2C) = [f_a,s | f_a,b] for AdaIN, or f_m (B, 1024w) for concatenation."""
        f_m = self.fcnet(f_z, m)
        return self.affnet(f_m) if self.affnet is not None else f_m

    def inject(self, f_latent: torch.Tensor, f_a: torch.Tensor) -> torch.Tensor:
        if self.affnet is not None:
            return adain(f_latent, f_a[:, : self.channels], f_a[:, self.channels :])
        b, _, h, w = f_latent.shape
        return torch.cat([f_latent, f_a[:, :, None, None].expand(b, f_a.shape[1], h, w)], dim=1)
