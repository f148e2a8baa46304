"""Not in paper: MTCNN's O-Net (Zhang et al., "Joint face detection and alignment using multitask cascaded
convolutional networks", 2016) as a frozen feature network for the projected discriminator
(``loss.proj_net=onet``, :mod:`a3gan.nets.projected`).

Why a face *detector*: the projected D on the dlib ResNet's maps (``proj_net=dlib``) made faces score better on every
realism number, and also let identity through to the independent recognizer (docs/eval/selection.md, tenth
session). The guess was that the dlib maps, trained to tell people apart, make the input's own face the easiest fake
they accept. O-Net is trained only to tell faces from non-faces and to place five landmarks. Its maps know what a
face looks like and carry little about whose face it is. Measured (eleventh session): the O-Net critic leaks as much
as the dlib one, so the guess was wrong. Any strong realism critic pulls G toward the input.

Weights: ``a3gan/assets/mtcnn_onet.safetensors``, converted from facenet-pytorch 2.6.0's ``data/onet.pt`` (MIT) by
``scripts/convert_mtcnn_onet.py``. Layout and input convention are facenet-pytorch's: RGB, NCHW, 48 x 48,
``(x - 127.5) / 128``.

Input to :meth:`ONetFeatures.feature_maps` is a batch of a3gan face crops (the STGAN crop of
:mod:`a3gan.geometry`, any resolution) in [-1, 1]. The square O-Net would see in MTCNN's cascade is cut from it at
the fixed fractions :data:`FACE_BOX` (the median MTCNN box over CelebA images, made square as MTCNN does) and
resized to 48 x 48. Taps are the four convolution stages, after their PReLU and before pooling:
0: 32 x 46 x 46, 1: 64 x 21 x 21, 2: 64 x 8 x 8, 3: 128 x 3 x 3.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from a3gan.errors import InputError, ModelError

ONET_SIZE = 48
WEIGHTS_NAME = "mtcnn_onet.safetensors"
#: (x0, y0, x1, y1) of O-Net's square input as fractions of the a3gan face crop: the median MTCNN box of 199
#: CelebA images (x 0.265-0.757, y 0.249-0.920 of the STGAN crop), made square about its centre (side 0.67).
FACE_BOX = (0.18, 0.25, 0.85, 0.92)
TAP_CHANNELS = (32, 64, 64, 128)
DEFAULT_TAPS = (1, 2, 3)


def default_weights() -> Path:
    """The O-Net weights shipped inside the package."""
    return Path(str(resources.files("a3gan") / "assets" / WEIGHTS_NAME))


class ONet(nn.Module):
    """MTCNN's O-Net, with facenet-pytorch's parameter names (so its state dict loads as is)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)  # face / not face
        self.dense6_2 = nn.Linear(256, 4)  # box regression
        self.dense6_3 = nn.Linear(256, 10)  # 5 landmarks: x1..x5, y1..y5 in [0, 1] of the input

    def stages(self, x: torch.Tensor, last: int = 3) -> list[torch.Tensor]:
        """The four stages' maps (after PReLU, before pooling) up to ``last``; x: (B, 3, 48, 48) normalised."""
        out = [self.prelu1(self.conv1(x))]
        for conv, prelu, pool in (
            (self.conv2, self.prelu2, self.pool1),
            (self.conv3, self.prelu3, self.pool2),
            (self.conv4, self.prelu4, self.pool3),
        )[:last]:
            out.append(prelu(conv(pool(out[-1]))))
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(face probability (B,), box regression (B, 4), landmarks (B, 10)) as facenet-pytorch's O-Net."""
        f = self.stages(x)[-1]
        # facenet-pytorch flattens in (W, H, C) order: the weights came from a port that saw transposed images
        h = self.prelu5(self.dense5(f.permute(0, 3, 2, 1).flatten(1)))
        return self.dense6_1(h).softmax(1)[:, 1], self.dense6_2(h), self.dense6_3(h)


def load_onet(path: str | Path | None = None) -> ONet:
    """O-Net with the shipped (or the given) safetensors weights, in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path) if path is not None else default_weights()
    if not path.is_file():
        raise ModelError(f"{path}: O-Net weights not found (reinstall a3gan, or run scripts/convert_mtcnn_onet.py)")
    try:
        sd = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(f"{path}: not a readable safetensors file ({e})") from None
    net = ONet()
    try:
        net.load_state_dict(sd)
    except RuntimeError as e:
        raise ModelError(f"{path}: not MTCNN's O-Net weights ({str(e).splitlines()[0]})") from None
    return net.eval()


def check_taps(taps: tuple[int, ...]) -> tuple[int, ...]:
    if not taps or list(taps) != sorted(set(taps)) or min(taps) < 0 or max(taps) >= len(TAP_CHANNELS):
        raise InputError(f"O-Net taps must be increasing stage numbers in 0..{len(TAP_CHANNELS) - 1}, got {taps}")
    return taps


class ONetFeatures(nn.Module):
    """Frozen O-Net read on a3gan face crops: :meth:`feature_maps` for the projected D, :meth:`face_prob` to check."""

    name = "onet"

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__()
        self.net = load_onet(path).requires_grad_(False)

    def train(self, mode: bool = True) -> ONetFeatures:  # frozen: always in eval mode
        return super().train(False)

    def onet_input(self, x: torch.Tensor) -> torch.Tensor:
        """a3gan crops (B, 3, R, R) in [-1, 1] -> O-Net's normalised 48 x 48 input (differentiable)."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3] or x.shape[2] < 16:
            raise InputError(f"expected face crops (B, 3, R, R) with R >= 16, got {tuple(x.shape)}")
        r = x.shape[-1]
        x0, y0, x1, y1 = (round(f * r) for f in FACE_BOX)
        box = x[:, :, y0:y1, x0:x1]
        box = F.interpolate(box, size=(ONET_SIZE, ONET_SIZE), mode="bilinear", align_corners=False,
                            antialias=box.shape[-1] > ONET_SIZE)
        # [-1, 1] is (v - 127.5) / 127.5 of the 0..255 image; O-Net wants (v - 127.5) / 128
        return box * (127.5 / 128.0)

    def feature_maps(self, x: torch.Tensor, taps: tuple[int, ...]) -> list[torch.Tensor]:
        """O-Net's stage maps at ``taps`` (0-3) for crops ``x`` in [-1, 1]; differentiable w.r.t. x."""
        check_taps(taps)
        maps = self.net.stages(self.onet_input(x), last=max(taps))
        return [maps[t] for t in taps]

    @staticmethod
    def tap_count() -> int:
        return len(TAP_CHANNELS)

    @staticmethod
    def tap_channels(taps: tuple[int, ...]) -> list[int]:
        return [TAP_CHANNELS[t] for t in check_taps(taps)]

    @torch.no_grad()
    def face_prob(self, x: torch.Tensor) -> torch.Tensor:
        """O-Net's face probability (B,) for crops in [-1, 1]."""
        return self.net(self.onet_input(x))[0]
