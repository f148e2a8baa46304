"""Reader for dlib's serialized face-recognition network (``dlib_face_recognition_resnet_model_v1.dat``).

dlib (``dlib/serialize.h``, ``dlib/dnn``) writes a network as follows:

- integers as one control byte (low nibble: number of bytes that follow, bit 7: negative) followed by that many
  little-endian bytes; strings as an integer length then the bytes; floats/doubles as two such integers
  (mantissa, exponent: value = mantissa * 2**exponent); bools as the characters ``'0'``/``'1'``;
- tensors (version 2) as an integer version, then ``num_samples, k, nr, nc`` and raw little-endian float32 data;
- ``add_loss_layer``: version, the loss details (``loss_metric_2``: margin, distance threshold), then the network;
- ``add_layer`` (and tag/skip layers): a version integer and the sub-network FIRST, then the layer's details and
  a trailer (3 bools and 3 tensors: x_grad, cached output, params_grad). So after a run of nested version
  integers the file holds the input layer, then every layer from the input outward.

Every layer's details start with a name string (``con_4``, ``affine_``, ``relu_``, ``max_pool_2``, ``avg_pool_2``,
``add_prev_``, ``fc_2``). We read the whole file sequentially and fail loudly on anything unexpected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from a3gan.errors import ModelError


@dataclass
class DlibLayer:
    """One layer of the network, in forward order (input first)."""

    kind: str  # "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc"
    ints: dict[str, int] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class DlibNet:
    """The parsed network: input-layer constants, loss constants and the layers in forward order."""

    input_mean: tuple[float, float, float]  # avg_red, avg_green, avg_blue of input_rgb_image_sized
    input_size: tuple[int, int]  # (nr, nc)
    margin: float
    dist_thresh: float
    layers: list[DlibLayer]

    def kinds(self) -> list[str]:
        return [layer.kind for layer in self.layers]


class _Reader:
    def __init__(self, data: bytes, path: str) -> None:
        self.b = data
        self.p = 0
        self.path = path

    def fail(self, what: str) -> ModelError:
        return ModelError(f"{self.path}: not a dlib face-recognition network ({what} at byte {self.p})")

    def int(self) -> int:
        if self.p >= len(self.b):
            raise self.fail("unexpected end of file")
        c = self.b[self.p]
        n = c & 0x0F
        if c & 0x70 or n > 8:
            raise self.fail(f"bad integer control byte 0x{c:02x}")
        v = int.from_bytes(self.b[self.p + 1 : self.p + 1 + n], "little")
        self.p += 1 + n
        return -v if c & 0x80 else v

    def string(self, max_len: int = 256) -> str:
        n = self.int()
        if not 0 <= n <= max_len or self.p + n > len(self.b):
            raise self.fail(f"bad string length {n}")
        s = self.b[self.p : self.p + n]
        self.p += n
        try:
            return s.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("non-ASCII layer name") from None

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0**exponent

    def bool(self) -> bool:
        c = self.b[self.p : self.p + 1]
        if c not in (b"0", b"1"):
            raise self.fail(f"bad bool {c!r}")
        self.p += 1
        return c == b"1"

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise self.fail(f"unsupported tensor version {version}")
        dims = [self.int() for _ in range(4)]
        if any(d < 0 for d in dims):
            raise self.fail(f"negative tensor dims {dims}")
        n = int(np.prod(dims))
        if self.p + 4 * n > len(self.b):
            raise self.fail("tensor data past end of file")
        a = np.frombuffer(self.b, dtype="<f4", count=n, offset=self.p).astype(np.float32).reshape(dims)
        self.p += 4 * n
        return a

    def alias_shape(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise self.fail(f"unsupported alias_tensor version {version}")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]

    def trailer(self) -> None:
        """add_layer's state after the details: 3 bools, x_grad, cached output, params_grad tensors."""
        for _ in range(3):
            self.bool()
        for _ in range(3):
            self.tensor()


def _split(params: np.ndarray, shapes: list[tuple[int, int, int, int]], r: _Reader) -> list[np.ndarray]:
    flat = params.reshape(-1)
    sizes = [int(np.prod(s)) for s in shapes]
    if sum(sizes) != flat.size:
        raise r.fail(f"parameter count {flat.size} does not match shapes {shapes}")
    out, off = [], 0
    for s, n in zip(shapes, sizes, strict=True):
        out.append(flat[off : off + n].reshape(s).copy())
        off += n
    return out


def _layer(r: _Reader, name: str) -> DlibLayer:
    if name == "con_4":
        params = r.tensor()
        keys = ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        ints = {k: r.int() for k in keys}
        w_shape = r.alias_shape()
        b_shape = r.alias_shape()
        for _ in range(4):  # learning-rate / weight-decay multipliers
            r.float()
        w, bias = _split(params, [w_shape, b_shape], r)
        return DlibLayer("con", ints, {"weight": w, "bias": bias.reshape(-1)})
    if name == "affine_":
        params = r.tensor()
        g_shape = r.alias_shape()
        b_shape = r.alias_shape()
        mode = r.int()
        gamma, beta = _split(params, [g_shape, b_shape], r)
        return DlibLayer("affine", {"mode": mode}, {"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)})
    if name == "relu_":
        return DlibLayer("relu")
    if name in ("max_pool_2", "avg_pool_2"):
        keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        return DlibLayer(name[:-2], {k: r.int() for k in keys})
    if name == "add_prev_":
        return DlibLayer("add_prev")
    if name == "fc_2":
        num_outputs = r.int()
        num_inputs = r.int()
        params = r.tensor()
        w_shape = r.alias_shape()
        b_shape = r.alias_shape()
        bias_mode = r.int()
        for _ in range(4):
            r.float()
        shapes = [w_shape] + ([b_shape] if bias_mode == 0 else [])
        parts = _split(params, shapes, r)
        t = {"weight": parts[0].reshape(num_inputs, num_outputs)}  # dlib computes out = in @ W
        if bias_mode == 0:
            t["bias"] = parts[1].reshape(-1)
        return DlibLayer(
            "fc", {"num_outputs": num_outputs, "num_inputs": num_inputs, "bias_mode": bias_mode}, t
        )
    raise r.fail(f"unsupported layer {name!r}")


def read_dlib_net(path: str | Path) -> DlibNet:
    """Parse a dlib ``loss_metric`` network file into :class:`DlibNet` (raises ModelError if it is not one)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read dlib model {path}: {e.strerror or e}") from None
    r = _Reader(data, str(path))
    if r.int() != 1:
        raise r.fail("bad add_loss_layer version")
    loss = r.string()
    if loss != "loss_metric_2":
        raise r.fail(f"expected loss 'loss_metric_2', found {loss!r}")
    margin = r.float()
    dist_thresh = r.float()
    # Nested add_layer / tag / skip version integers (the sub-network is serialized before each layer's details).
    while True:
        save = r.p
        c = data[r.p] if r.p < len(data) else 0
        if c != 0x01 or r.p + 1 >= len(data) or data[r.p + 1] not in (1, 2, 3):
            r.p = save
            break
        r.int()
    input_name = r.string()
    if input_name != "input_rgb_image_sized":
        raise r.fail(f"expected input layer 'input_rgb_image_sized', found {input_name!r}")
    mean = (r.float(), r.float(), r.float())
    size = (r.int(), r.int())
    layers: list[DlibLayer] = []
    while r.p < len(data):
        name = r.string()
        layers.append(_layer(r, name))
        r.trailer()
        if len(layers) == 1:
            r.int()  # the add_layer that holds the input layer also stores its sample expansion factor
    return DlibNet(mean, size, margin, dist_thresh, layers)
