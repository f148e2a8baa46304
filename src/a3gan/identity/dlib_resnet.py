"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) re-implemented in PyTorch.

The network is dlib's ``anet_type`` of ``dnn_face_recognition_ex.cpp``: a 7x7/2 conv stem and 3x3/2 max pool,
then 14 residual units (widths 32x3, 64x4, 128x3, 256x3, 256x1; the first unit of every width after 32 is a
"down" unit: its first conv has stride 2 and no padding and its shortcut is a 2x2/2 average pool), global average
pooling and a 128x256 fully connected layer without bias. 29 conv layers, 5.6M parameters, affine layers
(frozen batch-norm) after every conv, which we fold into the convs at load time. The input is a 150x150 RGB chip
(``input_rgb_image_sized<150>``: ``(pixel - mean) / 256`` with the per-channel means stored in the file).

dlib's ``add_prev`` adds tensors of different shapes as if the smaller one were zero-padded at the end of every
dimension: a down unit's shortcut has fewer channels, and at 8x8 -> 3x3 (conv) vs 4x4 (pool) fewer rows and
columns on the conv side. :func:`_pad_add` does the same.

The first use parses the .dat (about 0.1 s) and caches the folded weights as safetensors in the user cache
(``$A3GAN_CACHE`` or ``~/.cache/a3gan``), keyed by the file's size and mtime.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from a3gan.errors import InputError, ModelError
from a3gan.identity.align import (
    CROP_DLIB5_MEAN,
    DLIB_CHIP_ARCFACE5,
    CropAligner,
    check_image,
    check_landmarks,
    dlib_chip_template,
    warp_face,
)
from a3gan.identity.base import IdentityNet
from a3gan.identity.dlib_format import DlibNet, read_dlib_net

#: (width, down) of the 14 residual units, input side first (alevel4 .. alevel0 of anet_type).
UNITS: tuple[tuple[int, bool], ...] = (
    ((32, False),) * 3
    + ((64, True),)
    + ((64, False),) * 3
    + ((128, True),)
    + ((128, False),) * 2
    + ((256, True),)
    + ((256, False),) * 2
    + ((256, True),)
)
#: input_rgb_image_sized<150> means (avg_red, avg_green, avg_blue), also read from the file and checked.
DLIB_MEAN = (122.782, 117.001, 104.298)
CHIP_SIZE = 150
EMBED_DIM = 128
RECOGNITION_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
#: metadata ``format`` of converted-weights files (the cache, :func:`export_converted`).
CONVERTED_FORMAT = "a3gan-dlib-resnet-v1"
SHAPE_MODEL_5 = "shape_predictor_5_face_landmarks.dat"
SHAPE_MODEL_68 = "shape_predictor_68_face_landmarks.dat"
#: dlib's match rule: Euclidean distance of raw descriptors < 0.6 (``dist_thresh`` in the .dat).
DLIB_DIST_THRESHOLD = 0.6
#: mean norm of dlib's raw descriptors on real faces: 1.47 +- 0.08 on 96 CelebA faces, 1.52 +- 0.07 on the 61
#: photos of ../shared/data/pairs (they are NOT unit vectors). With 1.5 the cosine rule below agrees with dlib's
#: distance rule on 299 of the 300 labelled pairs and on CelebA (3,000 images) lies at FAR 0.6%, FRR 16%.
DLIB_MEAN_NORM = 1.5
#: the same rule for normalised embeddings: 1 - 0.6^2 / (2 n^2), see DlibIdentity
DLIB_THRESHOLD_COS = 1.0 - DLIB_DIST_THRESHOLD**2 / (2.0 * DLIB_MEAN_NORM**2)


def dlib_models_dir() -> Path:
    """The ``models/`` folder of the ``face_recognition_models`` package, found without importing it (its
    ``__init__`` imports ``pkg_resources``, which setuptools>=81 no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise ModelError(
            "the dlib identity network needs the 'face_recognition_models' package "
            "(pip install face_recognition_models), or pass weights=PATH to the .dat file"
        )
    return Path(spec.origin).parent / "models"


def default_dlib_weights() -> Path:
    path = dlib_models_dir() / RECOGNITION_MODEL
    if not path.is_file():
        raise ModelError(f"dlib recognition model not found at {path}")
    return path


def cache_dir() -> Path:
    """Where converted weights are cached: ``$A3GAN_CACHE`` or ``~/.cache/a3gan``."""
    env = os.environ.get("A3GAN_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "a3gan"


def _pad_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: element-wise sum, the smaller tensor zero-padded at the end of C, H and W."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class _Unit(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        s = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_pad_add(y, s))


class DlibResNet(nn.Module):
    """The bare network: 150x150 RGB chip with values 0..255 -> raw 128-D dlib descriptor (not normalised).

    Affine layers are folded into the preceding convs, so the state dict has only conv/fc tensors.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(DLIB_MEAN, dtype=torch.float32).view(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        units, cin = [], 32
        for width, down in UNITS:
            units.append(_Unit(cin, width, down))
            cin = width
        self.units = nn.ModuleList(units)
        self.fc = nn.Linear(256, EMBED_DIM, bias=False)

    def forward(self, chip_255: torch.Tensor) -> torch.Tensor:
        x = (chip_255 - self.mean) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        for unit in self.units:
            x = unit(x)
        return self.fc(x.mean(dim=(2, 3)))

    def feature_maps(self, chip_255: torch.Tensor, taps: tuple[int, ...]) -> list[torch.Tensor]:
        """The outputs of the residual units numbered ``taps`` (0-13, input side first), in that order; runs the
        network only as far as the last tap. E.g. taps (2, 6): the 32-channel 35x35 and 64-channel 17x17 maps."""
        if not taps or min(taps) < 0 or max(taps) >= len(self.units) or list(taps) != sorted(set(taps)):
            raise InputError(f"taps must be increasing unit numbers in 0..{len(self.units) - 1}, got {taps}")
        x = (chip_255 - self.mean) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        out = []
        for i, unit in enumerate(self.units[: max(taps) + 1]):
            x = unit(x)
            if i in taps:
                out.append(x)
        return out

    @staticmethod
    def tap_channels(taps: tuple[int, ...]) -> list[int]:
        """Channels of the maps :meth:`feature_maps` returns for ``taps``."""
        return [UNITS[i][0] for i in taps]


def _expected_kinds() -> list[str]:
    kinds = ["con", "affine", "relu", "max_pool"]
    for _, down in UNITS:
        kinds += (
            ["con", "affine", "relu", "con", "affine"] + (["avg_pool"] if down else []) + ["add_prev", "relu"]
        )
    return kinds + ["avg_pool", "fc"]


def convert_dlib_net(net: DlibNet, source: str = "dlib model") -> dict[str, torch.Tensor]:
    """State dict of :class:`DlibResNet` from a parsed dlib network (affine layers folded into the convs)."""
    if net.kinds() != _expected_kinds():
        raise ModelError(f"{source}: layer sequence is not dlib's face-recognition ResNet (anet_type)")
    if net.input_size != (CHIP_SIZE, CHIP_SIZE) or not np.allclose(net.input_mean, DLIB_MEAN, atol=1e-3):
        raise ModelError(f"{source}: unexpected input layer {net.input_size} mean {net.input_mean}")
    model = DlibResNet()
    convs = [model.stem] + [c for u in model.units for c in (u.conv1, u.conv2)]
    pairs = [(a, b) for a, b in zip(net.layers, net.layers[1:], strict=False) if a.kind == "con"]
    sd: dict[str, torch.Tensor] = {"mean": torch.tensor(net.input_mean, dtype=torch.float32).view(1, 3, 1, 1)}
    names = {id(m): n for n, m in model.named_modules()}
    for conv, (con, aff) in zip(convs, pairs, strict=True):
        w = con.tensors["weight"].astype(np.float64)
        b = con.tensors["bias"].astype(np.float64)
        if w.shape != tuple(conv.weight.shape) or aff.kind != "affine":
            raise ModelError(f"{source}: conv of shape {w.shape}, expected {tuple(conv.weight.shape)}")
        if (con.ints["stride_y"], con.ints["padding_y"]) != (conv.stride[0], conv.padding[0]):
            raise ModelError(f"{source}: unexpected stride/padding {con.ints}")
        g = aff.tensors["gamma"].astype(np.float64)
        beta = aff.tensors["beta"].astype(np.float64)
        name = names[id(conv)]
        sd[f"{name}.weight"] = torch.from_numpy((w * g[:, None, None, None]).astype(np.float32))
        sd[f"{name}.bias"] = torch.from_numpy((b * g + beta).astype(np.float32))
    fc = net.layers[-1]
    if fc.tensors["weight"].shape != (256, EMBED_DIM) or "bias" in fc.tensors:
        raise ModelError(f"{source}: unexpected final layer {fc.tensors['weight'].shape}")
    sd["fc.weight"] = torch.from_numpy(np.ascontiguousarray(fc.tensors["weight"].T))
    return sd


def _cache_path(path: Path) -> Path:
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / f"dlib_resnet_v1_{st.st_size}_{key}.safetensors"


def load_dlib_resnet(weights: str | Path | None = None, use_cache: bool = True) -> DlibResNet:
    """A frozen, eval-mode :class:`DlibResNet` with weights from ``weights`` (the .dat; default: the one in
    ``face_recognition_models``; or a ``.safetensors`` file of :func:`export_converted`). Converted weights of a
    .dat are cached as safetensors keyed by the file's size+mtime."""
    from safetensors.torch import load_file, save_file

    path = Path(weights) if weights is not None else default_dlib_weights()
    if not path.is_file():
        raise ModelError(f"dlib recognition model not found: {path}")
    if path.suffix.lower() == ".safetensors":
        return _model_from_state(read_converted(path))
    sd = None
    cpath = _cache_path(path)
    if use_cache and cpath.is_file():
        try:
            sd = load_file(str(cpath))
        except Exception:  # a truncated or foreign cache file: rebuild it
            sd = None
    if sd is None:
        sd = convert_dlib_net(read_dlib_net(path), str(path))
        if use_cache:
            from a3gan.checkpoint import atomic_write_bytes

            md = {"source": str(path), "format": CONVERTED_FORMAT}
            try:
                atomic_write_bytes(cpath, lambda tmp: save_file(sd, tmp, metadata=md))
            except OSError:
                pass  # a read-only home is fine: we just parse again next time
    return _model_from_state(sd)


def export_converted(weights: str | Path | None, out: str | Path, half: bool = False) -> Path:
    """Write dlib's weights, converted, as a ``.safetensors`` file that ``load_dlib_resnet`` (and
    ``--identity-weights``) read without the .dat: e.g. to carry them to a machine without
    ``face_recognition_models``. ``half``: float16 on disk (11 MB instead of 22; read back as float32, the
    embeddings move by about 1e-4 in cosine)."""
    from safetensors.torch import save_file

    from a3gan.checkpoint import atomic_write_bytes

    net = load_dlib_resnet(weights)
    sd = {k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in net.state_dict().items()}
    md = {"format": CONVERTED_FORMAT, "source": str(weights or default_dlib_weights())}
    atomic_write_bytes(Path(out), lambda tmp: save_file(sd, tmp, metadata=md))
    return Path(out)


def read_converted(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a converted-weights file (:func:`export_converted` or the cache), as float32; a file of another
    format is a ModelError."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            fmt = (f.metadata() or {}).get("format")
        sd = load_file(str(path))
    except Exception as e:
        raise ModelError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]})") from None
    if fmt != CONVERTED_FORMAT:
        raise ModelError(f"{path}: not converted dlib weights (format {fmt!r}, expected {CONVERTED_FORMAT!r})")
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


def _model_from_state(sd: dict[str, torch.Tensor]) -> DlibResNet:
    model = DlibResNet()
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        raise ModelError(f"converted dlib weights do not fit the network: {str(e).splitlines()[0]}") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class DlibIdentity(IdentityNet):
    """dlib's ResNet behind :class:`~a3gan.identity.base.IdentityNet`: 150x150 chips with dlib's 5-point
    alignment (padding 0.25), 128-D embeddings.

    ``threshold_cos``: dlib declares a match when the Euclidean distance of its raw descriptors is below 0.6
    (the ``dist_thresh`` stored in the .dat). The raw descriptors are not unit vectors: their norm is about 1.5
    (measured on real faces, see :data:`DLIB_MEAN_NORM`). For two descriptors of that norm n,
    ``|a - b|^2 = 2 n^2 (1 - cos)``, so ``|a - b| < 0.6`` <=> ``cos > 1 - 0.6^2 / (2 n^2)``.
    """

    name = "dlib"
    dim = EMBED_DIM
    chip_size = CHIP_SIZE

    def __init__(self, weights: str | Path | None = None, device: str | torch.device = "cpu") -> None:
        path = Path(weights) if weights is not None else default_dlib_weights()
        aligner = CropAligner(CROP_DLIB5_MEAN, dlib_chip_template(CHIP_SIZE, 0.25), CHIP_SIZE)
        super().__init__(aligner, DLIB_CHIP_ARCFACE5, path)
        self.net = load_dlib_resnet(path)
        self.threshold_cos = DLIB_THRESHOLD_COS
        self.to(device)
        self.freeze()

    def embed_chips(self, chips: torch.Tensor) -> torch.Tensor:
        return self.net((chips + 1.0) * 127.5)

    def feature_maps(self, x: torch.Tensor, taps: tuple[int, ...]) -> list[torch.Tensor]:
        """Intermediate maps of the ResNet (:meth:`DlibResNet.feature_maps`) for crops ``x`` (B, 3, R, R) in
        [-1, 1], aligned to dlib chips as :meth:`forward` does; differentiable w.r.t. x."""
        return self.net.feature_maps((self.align(x) + 1.0) * 127.5, taps)

    def tap_count(self) -> int:
        """How many taps :meth:`feature_maps` has (the ResNet's residual units)."""
        return len(self.net.units)

    def tap_channels(self, taps: tuple[int, ...]) -> list[int]:
        """Channels of the maps :meth:`feature_maps` returns for ``taps``."""
        return self.net.tap_channels(taps)

    @torch.no_grad()
    def raw_descriptor_from_chip(self, chip_uint8: np.ndarray) -> np.ndarray:
        """dlib's raw (un-normalised) descriptor of a 150x150 uint8 RGB chip, as ``compute_face_descriptor``."""
        chip = np.asarray(chip_uint8)
        if chip.shape[-3:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise InputError(f"expected {CHIP_SIZE}x{CHIP_SIZE} RGB chips, got shape {chip.shape}")
        t = torch.from_numpy(np.ascontiguousarray(chip)).float()
        t = t.reshape(-1, CHIP_SIZE, CHIP_SIZE, 3).permute(0, 3, 1, 2).to(self.net.mean.device)
        out = self.net(t).cpu().numpy()
        return out[0] if chip.ndim == 3 else out

    @torch.no_grad()
    def embed_from_dlib5(self, image: np.ndarray, landmarks_dlib5: np.ndarray) -> np.ndarray:
        """Like ``embed_from_landmarks`` but with dlib's own 5 points (dlib order, continuous coordinates), which
        reproduces dlib's chip exactly up to interpolation."""
        chip = warp_face(
            check_image(image), check_landmarks(landmarks_dlib5), dlib_chip_template(), CHIP_SIZE
        )
        d = self.raw_descriptor_from_chip(chip)
        return (d / np.linalg.norm(d)).astype(np.float32)
