"""The A3GAN generator (paper Sec. 4.1-4.2, Eq. 1-7, Table 2, Fig. 3).

U-Net-like encoder/decoder. Encoder E1..E5: Conv(4,2) + BN + LeakyReLU, 64 -> 1024 channels (x ``width``).
The bottleneck F^L (E5's output) receives the AINet attribute code by AdaIN (Eq. 8). The skip connections are
Suppressive Convolutional Units (SCU, Eq. 6-7), chained coarse to fine: F̂^L = F^L, F̂^l = SCU(F^l, F̂^{l+1}) for
l = L-1 .. 1. Decoder D1..D5: DeConv(4,2) + BN + ReLU; D(k+1) takes [D(k) output, F̂^{L-k}], which gives exactly
Table 2's input widths 1024, 1536, 768, 384 and 192.

Reading between the lines of Table 2 (documented choices):
- D5 is listed as "DeConv(192,3,4,2), BN, ReLU". A ReLU output cannot produce an image in [-1, 1] and BN over 3
  output channels would fix the image statistics, so D5 is DeConv + Tanh (as in STGAN/AttGAN, whose decoders
  Table 2 otherwise copies).
- Convolutions followed by BN carry no bias (the BN shift makes it redundant); kernel 4, stride 2, padding 1 so
  every level halves/doubles the resolution.
- LeakyReLU slope 0.2 (STGAN/AttGAN).
- ``model.upsample_last`` (not in paper, "" = as ``upsample``) sets the output layer's upsampling alone.
- ``model.chroma_blur`` (not in paper, 0 = off) blurs the chroma of the output image, see :class:`ChromaBlur`.
- ``model.upsample="resize"`` (not in paper) replaces every DeConv(4,2) of the generator (decoder, SCU W_T, STU)
  by nearest x2 upsampling + Conv(3,1), ``"bilinear"`` by bilinear x2 + Conv(3,1), see :func:`upconv`. Default
  ``"deconv"`` = Table 2.
- SCU (Eq. 6-7): W_T is DeConv(C_{l+1}, C_l, 4, 2) (upsamples F̂^{l+1} to F^l's size); W_f is a 3x3 convolution
  (2 C_l -> C_l) followed by a sigmoid. Eq. 6-7 show no normalisation or activation, so none is added. With a 3x3
  gate the SCU has 57.9% of the parameters of STGAN's STU at the same widths, which matches the paper's "57.8%"
  (Sec. 4.2); ``tests/nets/test_generator.py`` checks this ratio.
- STU ablation ("A3GAN w/ STU", Table 1): STGAN's GRU-style unit. STGAN feeds the difference attribute vector into
  the STU; A3GAN has no target vector, so the STU sees the mask m (tiled) in its place.
"""

from __future__ import annotations

import torch
from torch import nn

from a3gan.colour import RGB_TO_YCBCR
from a3gan.config import ModelConfig
from a3gan.filters import Upsample2x, gaussian_blur, gaussian_kernel1d
from a3gan.nets.ainet import AINet


def _enc_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


def upconv(cin: int, cout: int, mode: str = "deconv", bias: bool = True) -> nn.Module:
    """A x2 upsampling convolution: Table 2's DeConv(cin, cout, 4, 2) (``mode="deconv"``, the paper) or, for
    ``mode="resize"`` (not in paper), nearest-neighbour x2 upsampling followed by Conv(cin, cout, 3, 1), or for
    ``mode="bilinear"`` (not in paper) the same with bilinear x2 upsampling. Both resize modes have the same
    parameters (state-dict names and shapes), so a ``resize`` checkpoint loads into a ``bilinear`` generator.

    A stride-2 transposed convolution with a 4x4 kernel adds its kernel unevenly to the output pixels, which
    gives the well-known checkerboard pattern (Odena et al., "Deconvolution and Checkerboard Artifacts", 2016);
    resize-convolution cannot produce it at initialisation. Nearest-neighbour upsampling copies each pixel into a
    2x2 block, and five of them in a row leave blocky structure at the coarse scales; bilinear interpolation
    does not."""
    if mode == "deconv":
        return nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=bias)
    if mode not in ("resize", "bilinear"):
        raise ValueError(f"unknown upsampling mode {mode!r} (deconv, resize, bilinear)")
    up = Upsample2x("nearest" if mode == "resize" else "bilinear")
    return nn.Sequential(up, nn.Conv2d(cin, cout, 3, 1, 1, bias=bias))


def _dec_block(cin: int, cout: int, mode: str = "deconv") -> nn.Sequential:
    return nn.Sequential(upconv(cin, cout, mode, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class SCU(nn.Module):
    """Suppressive Convolutional Unit, Eq. 6-7.

    F̂^{l+1}_T = W_T ⊗_T F̂^{l+1}                       (Eq. 6, transposed convolution)
    F̂^l       = σ(W_f ⊗ [F^l, F̂^{l+1}_T]) ⊙ F^l        (Eq. 7, gated convolution)
    """

    def __init__(self, c_l: int, c_next: int, kernel: int = 3, upsample: str = "deconv"):
        super().__init__()
        self.w_t = upconv(c_next, c_l, upsample)
        self.w_f = nn.Conv2d(2 * c_l, c_l, kernel, 1, kernel // 2)

    def gate(self, f_l: torch.Tensor, f_hat_next: torch.Tensor) -> torch.Tensor:
        """The suppression map σ(W_f ⊗ [F^l, W_T ⊗_T F̂^{l+1}]) in (0, 1)."""
        return torch.sigmoid(self.w_f(torch.cat([f_l, self.w_t(f_hat_next)], dim=1)))

    def forward(self, f_l: torch.Tensor, f_hat_next: torch.Tensor, m: torch.Tensor | None = None):
        f_hat = self.gate(f_l, f_hat_next) * f_l
        return f_hat, f_hat  # (to the decoder, to the next finer SCU)


class STU(nn.Module):
    """STGAN's selective transfer unit (Liu et al. 2019), for the "A3GAN w/ STU" ablation.

    ŝ = DeConv([s^{l+1}, m]); r = σ(W_r ⊗ [F^l, ŝ]); z = σ(W_z ⊗ [F^l, ŝ]); s^l = r ⊙ ŝ;
    h = tanh(W_h ⊗ [F^l, s^l]); output f̂^l = (1 - z) ⊙ ŝ + z ⊙ h. The state s^l goes to the next finer STU.
    """

    def __init__(self, c_l: int, c_next: int, n_attrs: int, kernel: int = 3, upsample: str = "deconv"):
        super().__init__()
        self.deconv = upconv(c_next + n_attrs, c_l, upsample)
        self.w_r = nn.Conv2d(2 * c_l, c_l, kernel, 1, kernel // 2)
        self.w_z = nn.Conv2d(2 * c_l, c_l, kernel, 1, kernel // 2)
        self.w_h = nn.Conv2d(2 * c_l, c_l, kernel, 1, kernel // 2)

    def forward(self, f_l: torch.Tensor, state: torch.Tensor, m: torch.Tensor | None = None):
        b, _, h, w = state.shape
        mt = m.to(state.dtype)[:, :, None, None].expand(b, m.shape[1], h, w)
        s_hat = self.deconv(torch.cat([state, mt], dim=1))
        x = torch.cat([f_l, s_hat], dim=1)
        r, z = torch.sigmoid(self.w_r(x)), torch.sigmoid(self.w_z(x))
        new_state = r * s_hat
        hidden = torch.tanh(self.w_h(torch.cat([f_l, new_state], dim=1)))
        return (1 - z) * s_hat + z * hidden, new_state


class ChromaBlur(nn.Module):
    """Not in paper (``model.chroma_blur``): blur the chroma of an RGB image with a fixed separable Gaussian of
    ``sigma`` px (reflect padding), leaving its luma as it is. No parameters; differentiable."""

    def __init__(self, sigma: float):
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"ChromaBlur needs sigma > 0, got {sigma}")
        self.sigma = float(sigma)
        self.register_buffer("kernel", gaussian_kernel1d(self.sigma), persistent=False)
        m = torch.tensor(RGB_TO_YCBCR, dtype=torch.float64)
        self.register_buffer("to_ycc", m.float(), persistent=False)
        self.register_buffer("to_rgb", torch.linalg.inv(m).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ycc = torch.einsum("ij,bjhw->bihw", self.to_ycc.to(x.dtype), x)
        try:
            c = gaussian_blur(ycc[:, 1:], self.kernel)
        except ValueError:
            raise ValueError(f"chroma_blur sigma {self.sigma} is too large for a {tuple(x.shape[-2:])} image") from None
        return torch.einsum("ij,bjhw->bihw", self.to_rgb.to(x.dtype), torch.cat([ycc[:, :1], c], dim=1))


class PlainSkip(nn.Module):
    """"A3GAN w/o SCU": the encoder feature goes to the decoder unchanged (a U-Net skip)."""

    def forward(self, f_l: torch.Tensor, f_hat_next: torch.Tensor, m: torch.Tensor | None = None):
        return f_l, f_l


class Generator(nn.Module):
    """Î = φ⁻¹({F̂^l}, f_a) (Eq. 5), with F̂ from SCUs (Eq. 3) and f_a = AINet([f_z, m]) (Eq. 4)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        L = cfg.n_layers
        enc_ch = [cfg.ch(64 * 2**i) for i in range(L)]  # 64, 128, 256, 512, 1024
        self.enc_channels = enc_ch
        self.encoder = nn.ModuleList(_enc_block(3 if i == 0 else enc_ch[i - 1], enc_ch[i]) for i in range(L))
        skips: list[nn.Module] = []
        for l in range(L - 1):  # levels 1..L-1 (0-based l), each fed by level l+1
            if cfg.skip == "scu":
                skips.append(SCU(enc_ch[l], enc_ch[l + 1], cfg.scu_kernel, cfg.upsample))
            elif cfg.skip == "stu":
                skips.append(STU(enc_ch[l], enc_ch[l + 1], cfg.n_attrs, cfg.scu_kernel, cfg.upsample))
            else:
                skips.append(PlainSkip())
        self.skips = nn.ModuleList(skips)
        self.ainet = AINet(cfg, enc_ch[-1])
        # Decoder: D1 maps the injected bottleneck to C_{L} channels, D(k+1) takes [D(k), F̂^{L-k}].
        dec: list[nn.Module] = [_dec_block(self.ainet.out_channels, enc_ch[-1], cfg.upsample)]
        c_prev = enc_ch[-1]
        for k in range(1, L):
            skip_c = enc_ch[L - 1 - k]
            cout = enc_ch[L - 1 - k] if k < L - 1 else None
            if cout is None:  # D5: output layer
                dec.append(nn.Sequential(upconv(c_prev + skip_c, 3, cfg.upsample_last or cfg.upsample), nn.Tanh()))
            else:
                dec.append(_dec_block(c_prev + skip_c, cout, cfg.upsample))
                c_prev = cout
        self.decoder = nn.ModuleList(dec)
        self.chroma = ChromaBlur(cfg.chroma_blur) if cfg.chroma_blur > 0 else None

    @property
    def z_dim(self) -> int:
        return self.cfg.z_dim

    def sample_z(
        self, batch: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """f_z ~ N(0, I) (Sec. 4.1: "randomly sampled from the latent space of attributes")."""
        dev = device if device is not None else next(self.parameters()).device
        z = torch.randn(batch, self.cfg.z_dim, generator=generator, device="cpu" if generator is not None else dev)
        return z.to(dev)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Eq. 1: the encoder features F^1..F^L."""
        feats = []
        for block in self.encoder:
            x = block(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor, m: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-1] != self.cfg.resolution or x.shape[-2] != x.shape[-1]:
            raise ValueError(
                f"Generator expects (B,3,{self.cfg.resolution},{self.cfg.resolution}) images, got {tuple(x.shape)}"
            )
        if m.shape != (x.shape[0], self.cfg.n_attrs):
            raise ValueError(f"mask must be (B,N)=({x.shape[0]},{self.cfg.n_attrs}), got {tuple(m.shape)}")
        if z is None:
            z = self.sample_z(x.shape[0], device=x.device)
        m = m.to(x.dtype)
        feats = self.encode(x)
        # SCU chain, coarse to fine (Eq. 3): F̂^L = F^L.
        state = feats[-1]
        f_hat: list[torch.Tensor] = [feats[-1]] * len(feats)
        for l in range(len(feats) - 2, -1, -1):
            f_hat[l], state = self.skips[l](feats[l], state, m)
        # AINet (Eq. 4) and injection into the bottleneck (Eq. 8).
        h = self.ainet.inject(feats[-1], self.ainet(z.to(x.dtype), m))
        # Decoder (Eq. 5).
        h = self.decoder[0](h)
        for k in range(1, len(self.decoder)):
            h = self.decoder[k](torch.cat([h, f_hat[len(feats) - 1 - k]], dim=1))
        if self.chroma is not None:
            h = self.chroma(h)
        return h
