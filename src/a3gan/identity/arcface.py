"""ArcFace backends: insightface's IResNet (arcface_torch ``iresnet50``/``iresnet100``/...) and the IR / IR-SE
backbone of TreB1eN/InsightFace_Pytorch (``model_ir_se50.pth``, used by pSp, e4e, HyperStyle and other face-GAN
repositories). The paper's L_deid (Eq. 12) uses a pretrained ArcFace; no weights ship with a3gan, the user
passes a path (``.pth``/``.pt`` read with ``torch.load(weights_only=True)``, or ``.safetensors``).

Both take 112x112 RGB chips in [-1, 1] aligned to the ArcFace 5-point template and return 512-D embeddings.
The architecture is detected from the state-dict keys:

- IResNet: ``conv1.weight``, ``bn1.*``, ``prelu.weight``, ``layer{1..4}.N.{bn1,conv1,bn2,prelu,conv2,bn3}``,
  ``layerK.0.downsample.{0,1}``, ``bn2.*``, ``fc.weight``, ``features.*``; depth from the block counts.
- IR / IR-SE: ``input_layer.{0,1,2}``, ``body.N.res_layer.{0..4}`` (``.5.fc1/fc2`` for SE),
  ``body.N.shortcut_layer``, ``output_layer.{0,3,4}``; 24 body units = 50 layers, 49 = 100, 50 = 152.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from a3gan.errors import ModelError
from a3gan.identity.align import CROP_ARCFACE5_MEAN, CropAligner, arcface_template
from a3gan.identity.base import IdentityNet

ARCFACE_SIZE = 112
#: Not derived here (no ArcFace weights can be had offline): a common operating point of insightface ArcFace
#: models on cosine similarity of normalised 512-D embeddings. Override with ``threshold_cos=`` after calibrating.
ARCFACE_THRESHOLD_COS = 0.3

IRESNET_LAYERS = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
    200: (6, 26, 60, 6),
}
IR_UNITS = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}


# ----------------------------------------------------------------------------------------- insightface IResNet
class IBasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (self.downsample(x) if self.downsample is not None else x)


class IResNet(nn.Module):
    """insightface ``arcface_torch/backbones/iresnet.py`` (inference path; dropout is a no-op in eval)."""

    def __init__(self, layers: tuple[int, int, int, int], num_features: int = 512) -> None:
        super().__init__()
        self.layers_cfg = tuple(layers)
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1])
        self.layer3 = self._make_layer(256, layers[2])
        self.layer4 = self._make_layer(512, layers[3])
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)

    def _make_layer(self, planes: int, blocks: int) -> nn.Sequential:
        downsample = nn.Sequential(
            nn.Conv2d(self.inplanes, planes, 1, 2, bias=False), nn.BatchNorm2d(planes, eps=1e-5)
        )
        layers = [IBasicBlock(self.inplanes, planes, 2, downsample)]
        self.inplanes = planes
        layers += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.bn2(x), 1)
        return self.features(self.fc(x))


# ------------------------------------------------------------------------------ TreB1eN IR / IR-SE backbone
class SEModule(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


class BottleneckIR(nn.Module):
    def __init__(self, cin: int, depth: int, stride: int, se: bool) -> None:
        super().__init__()
        if cin == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(cin, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)
            )
        mods: list[nn.Module] = [
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
        ]
        if se:
            mods.append(SEModule(depth, 16))
        self.res_layer = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class IRBackbone(nn.Module):
    """TreB1eN ``Backbone(num_layers, drop_ratio, mode='ir'|'ir_se')``; ``model_ir_se50.pth`` is 50/ir_se."""

    def __init__(self, num_layers: int = 50, se: bool = True, num_features: int = 512) -> None:
        super().__init__()
        if num_layers not in IR_UNITS:
            raise ModelError(f"IR backbone depth must be one of {sorted(IR_UNITS)}, got {num_layers}")
        self.num_layers, self.se = num_layers, se
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64)
        )
        units, cin = [], 64
        for depth, n in zip((64, 128, 256, 512), IR_UNITS[num_layers], strict=True):
            units.append(BottleneckIR(cin, depth, 2, se))
            units += [BottleneckIR(depth, depth, 1, se) for _ in range(n - 1)]
            cin = depth
        self.body = nn.Sequential(*units)
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(512),
            nn.Dropout(0.0),
            nn.Flatten(),
            nn.Linear(512 * 7 * 7, num_features),
            nn.BatchNorm1d(num_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.body(self.input_layer(x)))


# ------------------------------------------------------------------------------------------------- loading
def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a ``torch.save``d state dict (``weights_only=True``: no code runs).
    Unwraps ``{"state_dict": ...}``/``{"model": ...}`` and a DataParallel ``module.`` prefix."""
    from a3gan.checkpoint import load_weights_file

    obj = load_weights_file(path, "ArcFace")
    for key in ("state_dict", "model", "backbone"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"{path}: not a state dict of tensors")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def _count(keys: set[str], pattern: str) -> int:
    idx = {int(m.group(1)) for k in keys if (m := re.match(pattern, k))}
    return max(idx) + 1 if idx else 0


def build_arcface_backbone(sd: dict[str, torch.Tensor], source: str = "weights") -> tuple[nn.Module, str]:
    """Detect the architecture from state-dict keys, build it and load the weights. Returns (model, arch)."""
    keys = set(sd)
    expected = (
        "expected an insightface IResNet state dict (conv1.weight, layer1.0.bn1.weight, fc.weight, "
        "features.weight, ...) or a TreB1eN IR/IR-SE one (input_layer.0.weight, body.0.res_layer.0.weight, "
        "output_layer.3.weight, ...)"
    )
    if {"conv1.weight", "layer1.0.bn1.weight", "fc.weight", "features.weight"} <= keys:
        layers = tuple(_count(keys, rf"layer{i}\.(\d+)\.") for i in range(1, 5))
        depth = next((d for d, spec in IRESNET_LAYERS.items() if spec == layers), None)
        model: nn.Module = IResNet(layers, num_features=int(sd["fc.weight"].shape[0]))
        arch = f"iresnet{depth}" if depth else f"iresnet{layers}"
    elif {"input_layer.0.weight", "body.0.res_layer.0.weight", "output_layer.3.weight"} <= keys:
        n_units = _count(keys, r"body\.(\d+)\.")
        depth = next((d for d, spec in IR_UNITS.items() if sum(spec) == n_units), None)
        if depth is None:
            raise ModelError(
                f"{source}: IR backbone with {n_units} units matches no known depth (24, 49, 50)"
            )
        se = "body.0.res_layer.5.fc1.weight" in keys
        model = IRBackbone(depth, se=se, num_features=int(sd["output_layer.3.weight"].shape[0]))
        arch = f"ir{'_se' if se else ''}{depth}"
    else:
        raise ModelError(f"{source}: unknown face-recognition weights; {expected}")
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise ModelError(f"{source}: weights do not fit {arch}: {' '.join(lines[1:3])[:300]}") from None
    return model.eval(), arch


class ArcFaceIdentity(IdentityNet):
    """ArcFace behind :class:`~a3gan.identity.base.IdentityNet`: 112x112 chips aligned to the ArcFace
    template, [-1, 1] RGB input (as arcface_torch and InsightFace_Pytorch normalise), 512-D embeddings."""

    name = "arcface"
    chip_size = ARCFACE_SIZE

    def __init__(
        self,
        weights: str | Path,
        device: str | torch.device = "cpu",
        threshold_cos: float = ARCFACE_THRESHOLD_COS,
    ) -> None:
        aligner = CropAligner(CROP_ARCFACE5_MEAN, arcface_template(ARCFACE_SIZE), ARCFACE_SIZE)
        super().__init__(aligner, arcface_template(ARCFACE_SIZE), weights)
        sd = read_state_dict(weights)
        self.net, self.arch = build_arcface_backbone(sd, str(weights))
        self.dim = int(sd["fc.weight" if "fc.weight" in sd else "output_layer.3.weight"].shape[0])
        self.threshold_cos = float(threshold_cos)
        self.to(device)
        self.freeze()

    def embed_chips(self, chips: torch.Tensor) -> torch.Tensor:
        return self.net(chips)

    def describe(self) -> dict:
        return {**super().describe(), "arch": self.arch}


def random_arcface_state_dict(arch: str = "iresnet50", seed: int = 0) -> dict[str, torch.Tensor]:
    """A randomly initialised state dict in the released key layout (for tests and smoke runs)."""
    torch.manual_seed(seed)
    m = re.fullmatch(r"(iresnet|ir_se|ir)(\d+)", arch)
    if m is None:
        raise ModelError(f"unknown ArcFace arch {arch!r} (iresnetN, irN or ir_seN)")
    kind, depth = m.group(1), int(m.group(2))
    if kind == "iresnet":
        if depth not in IRESNET_LAYERS:
            raise ModelError(f"iresnet depth must be one of {sorted(IRESNET_LAYERS)}")
        model: nn.Module = IResNet(IRESNET_LAYERS[depth])
    else:
        model = IRBackbone(depth, se=kind == "ir_se")
    with torch.no_grad():  # non-trivial BN statistics so that a wrong key mapping changes the output
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d | nn.BatchNorm1d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.1, 0.1)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


__all__ = [
    "ArcFaceIdentity",
    "IResNet",
    "IRBackbone",
    "build_arcface_backbone",
    "read_state_dict",
    "random_arcface_state_dict",
]
