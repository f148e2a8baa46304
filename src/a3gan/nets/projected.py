"""Not in paper: a projected discriminator (Sauer et al., "Projected GANs converge faster", NeurIPS 2021) on the
frozen identity network's intermediate maps (``loss.lambda_proj``).

Why: the paper's D (Table 3) is trained from scratch on 10,000 faces, and on this data it let G lower the identity
similarity with smeared, ghosted features that no real face has (model card, "Limits"). A discriminator that looks
at the faces through a pretrained face network's early layers sees those textures as features it already knows,
and gives G a second realism signal next to Eq. 15.

The maps come from a frozen network chosen by ``loss.proj_net`` (:func:`projection_net`):

- ``dlib``: :meth:`a3gan.identity.dlib_resnet.DlibIdentity.feature_maps`, the same frozen dlib ResNet as φ in
  L_deid; default taps: unit 2, 32 x 35 x 35, and unit 6, 64 x 17 x 17, the parts of the network below its
  identity-specific layers. It lets identity through to other recognizers (docs/eval/selection.md).
- ``onet``: MTCNN's O-Net (:mod:`a3gan.nets.onet`), a face detector: default taps 1-3, 64 x 21 x 21, 64 x 8 x 8
  and 128 x 3 x 3.

This module holds only what is trained or drawn on top of them:

- per tap a fixed random 1x1 convolution to ``proj`` channels (cross-channel mixing, CCM in the Projected GAN
  paper; not trained, drawn from ``seed``, kept in the state dict so a checkpoint reproduces it), then
- a small patch head with spectral normalisation: Conv(4, 2) -> LeakyReLU(0.2) -> Conv(3, 1) -> one logit per
  position.

``forward(maps)`` returns all heads' logits, flattened and concatenated, (B, P). The hinge losses are
:func:`a3gan.losses.proj_d` and :func:`a3gan.losses.proj_g`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from a3gan.identity import dlib_resnet
from a3gan.nets import onet

DEFAULT_TAPS = (2, 6)


def parse_taps(spec: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """``"2,6"`` (or a sequence) -> (2, 6); increasing, distinct, non-negative unit numbers."""
    if isinstance(spec, str):
        try:
            taps = tuple(int(t) for t in spec.split(",") if t.strip())
        except ValueError:
            raise ValueError(f"proj taps must be comma-separated integers, got {spec!r}") from None
    else:
        taps = tuple(int(t) for t in spec)
    if not taps or min(taps) < 0 or list(taps) != sorted(set(taps)):
        raise ValueError(f"proj taps must be increasing, distinct unit numbers >= 0, got {spec!r}")
    return taps


class ProjectedD(nn.Module):
    """Patch heads on fixed random projections of frozen feature maps with ``channels`` channels each."""

    def __init__(self, channels: list[int] | tuple[int, ...], proj: int = 64, hidden: int = 64, seed: int = 0):
        super().__init__()
        if not channels or min(channels) < 1 or proj < 1 or hidden < 1:
            raise ValueError(f"bad ProjectedD sizes: channels {channels}, proj {proj}, hidden {hidden}")
        self.channels = tuple(int(c) for c in channels)
        # every initial value (CCM, heads, spectral norm's power-iteration vectors) is a function of ``seed`` alone,
        # not of the global RNG's state: the same run builds the same Dp wherever in the process it is constructed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for i, c in enumerate(self.channels):
                # CCM: He-initialised random 1x1 conv, fixed (a buffer, not a parameter)
                self.register_buffer(f"ccm{i}", torch.randn(proj, c, 1, 1) * (2.0 / c) ** 0.5)
            self.heads = nn.ModuleList(
                nn.Sequential(
                    spectral_norm(nn.Conv2d(proj, hidden, 4, 2, 1)),
                    nn.LeakyReLU(0.2),
                    spectral_norm(nn.Conv2d(hidden, 1, 3, 1, 1)),
                )
                for _ in self.channels
            )

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        if len(maps) != len(self.channels):
            raise ValueError(f"ProjectedD expects {len(self.channels)} feature maps, got {len(maps)}")
        out = []
        for i, (f, head) in enumerate(zip(maps, self.heads, strict=True)):
            if f.ndim != 4 or f.shape[1] != self.channels[i]:
                raise ValueError(f"map {i}: expected (B, {self.channels[i]}, H, W), got {tuple(f.shape)}")
            w = getattr(self, f"ccm{i}").to(f.dtype)
            out.append(head(torch.nn.functional.conv2d(f, w)).flatten(1))
        return torch.cat(out, 1)


#: the frozen feature networks ``loss.proj_net`` names: (default taps when ``loss.proj_taps`` is empty, how many
#: taps the network has: the dlib ResNet's 14 residual units, O-Net's 4 convolution stages)
PROJ_NETS = {"dlib": (DEFAULT_TAPS, len(dlib_resnet.UNITS)), "onet": (onet.DEFAULT_TAPS, len(onet.TAP_CHANNELS))}


def proj_taps_for(net: str, spec: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """``loss.proj_taps`` for the network ``net``: the parsed spec, or the net's default taps when it is empty."""
    if net not in PROJ_NETS:
        raise ValueError(f"loss.proj_net must be one of {', '.join(PROJ_NETS)}, got {net!r}")
    default, count = PROJ_NETS[net]
    if isinstance(spec, str) and not spec.strip():
        return default
    taps = parse_taps(spec)
    if max(taps) >= count:
        raise ValueError(f"the {net} network has taps 0..{count - 1}, got {spec!r}")
    return taps


def projection_net(net: str, identity, device: torch.device | str = "cpu"):
    """The frozen network Dp reads: the identity network φ itself (``dlib``, shared with L_deid) or MTCNN's O-Net
    (``onet``, :mod:`a3gan.nets.onet`, loaded from the package's weights)."""
    if net == "dlib":
        if not hasattr(identity, "feature_maps"):
            name = getattr(identity, "name", type(identity).__name__)
            raise ValueError(f"loss.proj_net=dlib needs train.identity=dlib (the {name} network has no feature maps)")
        return identity
    if net == "onet":
        return onet.ONetFeatures().to(device)
    raise ValueError(f"loss.proj_net must be one of {', '.join(PROJ_NETS)}, got {net!r}")


def build_projected(backbone, taps: tuple[int, ...], seed: int = 0) -> ProjectedD:
    """A :class:`ProjectedD` for ``backbone``'s maps at ``taps``; the backbone (:func:`projection_net`) must expose
    ``feature_maps``, ``tap_count`` and ``tap_channels``."""
    if not all(hasattr(backbone, a) for a in ("feature_maps", "tap_count", "tap_channels")):
        name = getattr(backbone, "name", type(backbone).__name__)
        raise ValueError(f"the {name} network has no feature maps for the projected discriminator")
    n = backbone.tap_count()
    if max(taps) >= n:
        raise ValueError(f"loss.proj_taps: the {getattr(backbone, 'name', 'feature')} network has taps 0..{n - 1}, "
                         f"got {taps}")
    return ProjectedD(backbone.tap_channels(taps), seed=seed)
