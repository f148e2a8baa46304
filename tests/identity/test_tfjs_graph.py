"""a3gan.identity.tfjs_graph: reading TF.js graph models (weights, quantization, bad files), each op against hand
values or torch's own layers, gradients, and the safetensors round trip."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from a3gan.errors import ModelError
from a3gan.identity.tfjs_graph import (
    GRAPH_KEY,
    OPS,
    TfjsGraph,
    convert_tfjs,
    load_tfjs_safetensors,
    read_tfjs_model,
    same_pad,
)


def s64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def ph(name: str = "x") -> dict:
    return {"name": name, "op": "Placeholder"}


def const(name: str) -> dict:
    return {"name": name, "op": "Const"}


def conv_node(name: str, op: str, inputs: list[str], stride: int = 1, padding: str = "SAME",
              fused: list[str] | None = None) -> dict:
    attr = {
        "strides": {"list": {"i": ["1", str(stride), str(stride), "1"]}},
        "padding": {"s": s64(padding)},
        "data_format": {"s": s64("NHWC")},
        "dilations": {"list": {"i": ["1", "1", "1", "1"]}},
    }
    if fused is not None:
        attr["fused_ops"] = {"list": {"s": [s64(o) for o in fused]}}
    return {"name": name, "op": op, "input": inputs, "attr": attr}


def run(nodes: list[dict], weights: dict, x: np.ndarray, out: str = "y") -> np.ndarray:
    g = TfjsGraph(nodes, {k: np.asarray(v, np.float32) for k, v in weights.items()}, [out])
    with torch.no_grad():
        return g(torch.tensor(x, dtype=torch.float32)).numpy()


# --------------------------------------------------------------------------------------------------- padding
@pytest.mark.parametrize(("size", "k", "s", "expect"), [(5, 3, 2, (1, 1)), (6, 3, 2, (0, 1)), (4, 1, 1, (0, 0)),
                                                         (7, 3, 1, (1, 1)), (8, 4, 2, (1, 1)), (5, 2, 1, (0, 1))])
def test_same_pad_matches_tensorflow_rule(size, k, s, expect):
    """out = ceil(in / s); total = (out - 1) s + k - in; the odd pixel goes after (bottom/right)."""
    x = torch.ones(1, 1, size, size)
    y = same_pad(x, (k, k), (s, s), (1, 1))
    top, bottom = expect
    assert y.shape[-1] == size + top + bottom
    col = y[0, 0, :, size // 2 + top].tolist()
    assert col[:top] == [0.0] * top and col[len(col) - bottom:] == [0.0] * bottom


def test_conv2d_same_stride2_asymmetric_hand_values():
    """3x3 ones kernel, stride 2, SAME on a 4x4 ramp: pads (0 top, 1 bottom), so out[0, 0] sums rows/cols 0..2."""
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    nodes = [ph(), const("w"), conv_node("y", "Conv2D", ["x", "w"], stride=2)]
    y = run(nodes, {"w": np.ones((3, 3, 1, 1))}, x)
    v = x[0, :, :, 0]
    expect = np.array([[v[0:3, 0:3].sum(), v[0:3, 2:4].sum()], [v[2:4, 0:3].sum(), v[2:4, 2:4].sum()]])
    assert y.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(y[0, :, :, 0], expect)


def test_conv2d_matches_torch_conv_with_tf_kernel_layout():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 5)).astype(np.float32)  # [kh, kw, in, out]
    y = run([ph(), const("w"), conv_node("y", "Conv2D", ["x", "w"])], {"w": w}, x)
    ref = F.conv2d(torch.tensor(x).permute(0, 3, 1, 2), torch.tensor(w).permute(3, 2, 0, 1), padding=1)
    np.testing.assert_allclose(y, ref.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-5)


def test_depthwise_channel_multiplier_order_hand_values():
    """TF's depthwise output channel c * mult + m = input channel c times kernel [:, :, c, m]."""
    x = np.zeros((1, 1, 1, 2), np.float32)
    x[..., 0], x[..., 1] = 2.0, 3.0
    w = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]], np.float32)  # [1, 1, in 2, mult 2]
    y = run([ph(), const("w"), conv_node("y", "DepthwiseConv2dNative", ["x", "w"], padding="VALID")], {"w": w}, x)
    np.testing.assert_allclose(y.reshape(-1), [2.0, 20.0, 300.0, 3000.0])


def test_fused_conv_bias_relu_and_prelu():
    x = np.array([[[[1.0, -1.0]]]], np.float32)  # (1, 1, 1, 2)
    w = np.eye(2, dtype=np.float32).reshape(1, 1, 2, 2)
    b = np.array([0.5, -0.5], np.float32)
    relu = run([ph(), const("w"), const("b"), conv_node("y", "_FusedConv2D", ["x", "w", "b"],
                                                        fused=["BiasAdd", "Relu"])], {"w": w, "b": b}, x)
    np.testing.assert_allclose(relu.reshape(-1), [1.5, 0.0])
    alpha = np.array([0.1, 0.25], np.float32)
    prelu = run([ph(), const("w"), const("b"), const("a"),
                 conv_node("y", "FusedDepthwiseConv2dNative", ["x", "w", "b", "a"], padding="VALID",
                           fused=["BiasAdd", "Prelu"])],
                {"w": np.ones((1, 1, 2, 1)), "b": b, "a": alpha}, x)
    np.testing.assert_allclose(prelu.reshape(-1), [1.5, -1.5 * 0.25])


def test_fused_op_not_supported_is_refused():
    x = np.ones((1, 1, 1, 1), np.float32)
    nodes = [ph(), const("w"), conv_node("y", "_FusedConv2D", ["x", "w"], fused=["Elu"])]
    with pytest.raises(ModelError, match="Elu"):
        run(nodes, {"w": np.ones((1, 1, 1, 1))}, x)


def test_elementwise_reductions_and_matmul_hand_values():
    x = np.array([[[[1.0, -2.0]], [[3.0, 4.0]]]], np.float32)  # (1, 2, 1, 2)
    nodes = [
        ph(), const("ax"), const("k"), const("b"), const("six"),
        {"name": "m", "op": "Mean", "input": ["x", "ax"], "attr": {"keep_dims": {"b": False}}},  # (1, 2)
        {"name": "mm", "op": "_FusedMatMul", "input": ["m", "k", "b"],
         "attr": {"fused_ops": {"list": {"s": [s64("BiasAdd"), s64("Relu")]}}, "transpose_b": {"b": True}}},
        {"name": "c", "op": "Minimum", "input": ["mm", "six"]},
        {"name": "y", "op": "Softmax", "input": ["c:0"]},
    ]
    w = {"ax": np.array([1, 2]), "k": np.array([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]),
         "b": np.array([0.0, 0.0, 1.0]), "six": np.array(6.0)}
    y = run(nodes, w, x)
    mean = np.array([2.0, 1.0])  # over H and W
    logits = np.minimum(np.maximum(w["k"] @ mean + w["b"], 0.0), 6.0)  # [2, 3, 0]
    expect = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(y.reshape(-1), expect, rtol=1e-6)


def test_l2_normalize_pattern_and_squeeze():
    """MobileFaceNet-style tail: Squeeze, Square, Sum(keep_dims), Maximum, Rsqrt, Mul -> unit vectors."""
    x = np.array([[[[3.0, 4.0]]], [[[0.0, 2.0]]]], np.float32)  # (2, 1, 1, 2)
    nodes = [
        ph(), const("ax"), const("eps"),
        {"name": "s", "op": "Squeeze", "input": ["x"], "attr": {"squeeze_dims": {"list": {"i": ["1", "2"]}}}},
        {"name": "q", "op": "Square", "input": ["s"]},
        {"name": "n", "op": "Sum", "input": ["q", "ax"], "attr": {"keep_dims": {"b": True}}},
        {"name": "mx", "op": "Maximum", "input": ["n", "eps"]},
        {"name": "r", "op": "Rsqrt", "input": ["mx"]},
        {"name": "y", "op": "Mul", "input": ["s", "r"]},
    ]
    y = run(nodes, {"ax": np.array([-1]), "eps": np.array(1e-10)}, x)
    np.testing.assert_allclose(y, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)


def test_every_listed_op_runs():
    """Each op of OPS has at least one test above or here (a cheap guard against a typo in the table)."""
    t = torch.tensor([[0.25, -4.0]])
    for op in ("Identity", "Add", "AddV2", "BiasAdd", "Sub", "RealDiv", "Relu", "Relu6", "Abs", "Sigmoid", "Sqrt"):
        args = (t, torch.tensor([2.0, 2.0])) if op in ("Add", "AddV2", "BiasAdd", "Sub", "RealDiv") else (t,)
        out = OPS[op]({"name": op}, *[a.abs() if op == "Sqrt" else a for a in args])
        assert out.shape == t.shape
    assert OPS["Relu6"]({}, torch.tensor([7.0, -1.0, 3.0])).tolist() == [6.0, 0.0, 3.0]
    assert OPS["Reshape"]({}, torch.arange(6.0), torch.tensor([2, 3])).shape == (2, 3)


def test_gradients_reach_the_input_and_nothing_trains():
    rng = np.random.default_rng(1)
    nodes = [ph(), const("w"), const("ax"), conv_node("c", "Conv2D", ["x", "w"], stride=2),
             {"name": "y", "op": "Mean", "input": ["c", "ax"]}]
    g = TfjsGraph(nodes, {"w": rng.standard_normal((3, 3, 3, 4)).astype(np.float32), "ax": np.array([1, 2])}, ["y"])
    assert list(g.parameters()) == []
    x = torch.randn(2, 9, 9, 3, requires_grad=True)
    g(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------------- bad graphs
def test_bad_graphs_are_refused_when_built():
    w = {"w": np.ones((1, 1, 1, 1), np.float32)}
    with pytest.raises(ModelError, match="unsupported ops NonMaxSuppressionV5"):
        TfjsGraph([ph(), const("w"), {"name": "y", "op": "NonMaxSuppressionV5", "input": ["x", "w"]}], w, ["y"])
    with pytest.raises(ModelError, match="without weights"):
        TfjsGraph([ph(), const("w"), const("v"), {"name": "y", "op": "Add", "input": ["x", "v"]}], w, ["y"])
    with pytest.raises(ModelError, match="unknown tensor"):
        TfjsGraph([ph(), {"name": "y", "op": "Add", "input": ["x", "nope"]}], {}, ["y"])
    with pytest.raises(ModelError, match="one input placeholder, found 2"):
        TfjsGraph([ph("a"), ph("b"), {"name": "y", "op": "Add", "input": ["a", "b"]}], {}, ["y"])
    with pytest.raises(ModelError, match="no output node 'z'"):
        TfjsGraph([ph(), {"name": "y", "op": "Relu", "input": ["x"]}], {}, ["z"])


def test_nchw_convolution_is_refused():
    node = conv_node("y", "Conv2D", ["x", "w"])
    node["attr"]["data_format"] = {"s": s64("NCHW")}
    with pytest.raises(ModelError, match="NHWC"):
        run([ph(), const("w"), node], {"w": np.ones((1, 1, 1, 1))}, np.ones((1, 2, 2, 1), np.float32))


# --------------------------------------------------------------------------------------------------- files
def write_model(folder: Path, weights: list[tuple[str, np.ndarray, dict | None]], nodes: list[dict]) -> Path:
    """A TF.js graph model: model.json + one shard, each weight stored as its quantization says."""
    blob, manifest = b"", []
    for name, arr, q in weights:
        if q is None:
            data = arr.astype("<f4" if arr.dtype.kind == "f" else "<i4")
        elif q["dtype"] == "float16":
            data = arr.astype("<f2")
        else:  # uint8 affine
            data = np.round((arr - q["min"]) / q["scale"]).astype(np.uint8)
        blob += data.tobytes()
        entry = {"name": name, "shape": list(arr.shape), "dtype": "float32" if arr.dtype.kind == "f" else "int32"}
        if q is not None:
            entry["quantization"] = q
        manifest.append(entry)
    (folder / "group1-shard1of1.bin").write_bytes(blob)
    spec = {"format": "graph-model", "modelTopology": {"node": nodes},
            "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": manifest}]}
    path = folder / "model.json"
    path.write_text(json.dumps(spec))
    return path


def small_model(folder: Path) -> Path:
    w = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4) / 8.0  # exact in float16
    b = np.array([0.0, 0.5, 1.0, 1.5], np.float32)  # exact in uint8 with min 0, scale 0.5
    nodes = [ph(), const("w"), const("b"), const("ax"),
             conv_node("c", "_FusedConv2D", ["x", "w", "b"], fused=["BiasAdd"]),
             {"name": "y", "op": "Mean", "input": ["c", "ax"]}]
    return write_model(folder, [("w", w, {"dtype": "float16"}), ("b", b, {"dtype": "uint8", "min": 0.0, "scale": 0.5}),
                                ("ax", np.array([1, 2], np.int32), None)], nodes)


def test_read_quantized_weights(tmp_path: Path):
    nodes, w = read_tfjs_model(small_model(tmp_path))
    assert [n["op"] for n in nodes][-1] == "Mean"
    np.testing.assert_array_equal(w["w"], np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4) / 8.0)
    np.testing.assert_array_equal(w["b"], [0.0, 0.5, 1.0, 1.5])
    assert w["ax"].dtype == np.int32 and w["ax"].tolist() == [1, 2]
    assert w["w"].dtype == np.float32
    _, kept = read_tfjs_model(tmp_path / "model.json", keep_float16=True)
    assert kept["w"].dtype == np.float16 and kept["b"].dtype == np.float32
    np.testing.assert_array_equal(kept["w"].astype(np.float32), w["w"])


def test_convert_round_trip_gives_the_same_outputs(tmp_path: Path):
    model = small_model(tmp_path)
    nodes, w = read_tfjs_model(model)
    direct = TfjsGraph(nodes, w, ["y"])
    out = tmp_path / "m.safetensors"
    convert_tfjs(model, out, ["y"], {"a3gan.recognizer": "test"})
    graph, meta = load_tfjs_safetensors(out)
    assert meta["a3gan.recognizer"] == "test" and GRAPH_KEY in meta
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as f:
        assert f.get_tensor("w").dtype == torch.float16  # stored as quantized: half the size
    assert graph.const("w").dtype == torch.float32
    x = torch.rand(2, 3, 3, 3)
    expect = x.mean(dim=(1, 2)) @ torch.tensor(w["w"]).reshape(3, 4) + torch.tensor(w["b"])
    torch.testing.assert_close(graph(x), direct(x))
    torch.testing.assert_close(graph(x), expect, rtol=1e-5, atol=1e-5)
    assert not list(tmp_path.glob("*.tmp*"))


def test_bad_files_give_model_errors(tmp_path: Path):
    with pytest.raises(ModelError, match="not a TF.js graph model"):
        read_tfjs_model(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a TF.js graph model"):
        read_tfjs_model(tmp_path / "junk.json")
    (tmp_path / "layers.json").write_text(json.dumps({"format": "layers-model", "modelTopology": {"node": []},
                                                       "weightsManifest": []}))
    with pytest.raises(ModelError, match="layers-model"):
        read_tfjs_model(tmp_path / "layers.json")
    model = small_model(tmp_path)
    shard = tmp_path / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes()[:10])
    with pytest.raises(ModelError, match="truncated"):
        read_tfjs_model(model)
    shard.unlink()
    with pytest.raises(ModelError, match="cannot read weight shard"):
        read_tfjs_model(model)
    model = small_model(tmp_path)
    spec = json.loads(model.read_text())
    spec["weightsManifest"][0]["weights"][0]["quantization"] = {"dtype": "int4"}
    model.write_text(json.dumps(spec))
    with pytest.raises(ModelError, match="unsupported quantization"):
        read_tfjs_model(model)


def test_safetensors_without_graph_is_refused(tmp_path: Path):
    from safetensors.torch import save_file

    p = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(ModelError, match="no TF.js graph"):
        load_tfjs_safetensors(p)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(ModelError, match="cannot read"):
        load_tfjs_safetensors(tmp_path / "junk.safetensors")
    save_file({"w": torch.zeros(2)}, str(p), metadata={GRAPH_KEY: "{"})
    with pytest.raises(ModelError, match="malformed"):
        load_tfjs_safetensors(p)
