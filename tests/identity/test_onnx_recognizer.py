from __future__ import annotations

import numpy as np
import pytest
import torch

from a3gan.errors import InputError, ModelError
from a3gan.identity import build_identity
from a3gan.identity.onnx_recognizer import OnnxRecognizer


@pytest.fixture(scope="module")
def rec(shared_models):
    return build_identity("mobileface", weights=str(shared_models / "mobileface_v2.onnx"), threads=1)


def test_embed_numpy(rec):
    assert rec.dim == 256
    chips = np.random.default_rng(0).integers(0, 255, (3, 112, 112, 3), dtype=np.uint8)
    e = rec.embed_numpy(chips)
    assert e.shape == (3, 256) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(rec.embed_numpy(chips[0]), e[:1], atol=1e-5)  # a single chip works too
    with pytest.raises(InputError, match="112, 112, 3"):
        rec.embed_numpy(np.zeros((1, 100, 100, 3)))


def test_forward_is_crop_aligned_embed(rec):
    x = torch.rand(2, 3, 96, 96) * 2 - 1
    e = rec(x)
    assert e.shape == (2, 256) and not e.requires_grad
    chips = ((rec.aligner(x) + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(e.numpy(), rec.embed_numpy(chips), atol=1e-5)
    with pytest.raises(InputError):
        rec(torch.zeros(3, 96, 96))


def test_describe(rec):
    d = rec.describe()
    assert d["name"] == "mobileface" and d["dim"] == 256 and len(d["sha256"]) == 16
    assert d["threshold_cos"] == pytest.approx(0.38)


def test_real_faces_same_vs_different(rec, celeba_faces, pair_faces):
    """Embeddings from full photos + landmarks vs from the a3gan crop (fixed alignment) of the same CelebA
    image agree, and are far from other people's."""
    faces = celeba_faces[:8]
    full = np.stack([rec.embed_from_landmarks(f.image, f.arcface5) for f in faces])
    crops = torch.from_numpy(np.stack([f.crop128 for f in faces])).permute(0, 3, 1, 2).float() / 127.5 - 1
    fixed = rec(crops).numpy()
    same = (full * fixed).sum(1)
    assert same.mean() > 0.8, same
    sims = full @ fixed.T
    other = sims[~np.eye(len(faces), dtype=bool)]
    assert same.mean() - other.mean() > 0.5
    assert (np.argmax(sims, axis=1) == np.arange(len(faces))).mean() >= 0.75
    many = rec.embed_faces(pair_faces[0].image, [pair_faces[0].arcface5, pair_faces[0].arcface5])
    assert many.shape == (2, 256)


def test_bad_model_paths(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        OnnxRecognizer(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        OnnxRecognizer(bad)


def _tiny_onnx(path) -> None:
    """A 112 px recognizer: Conv 1x1 stride 2 (channel 0 = R, channel 1 = G / 2) -> global pool -> (N, 2)."""
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    w = np.zeros((2, 3, 1, 1), np.float32)
    w[0, 0], w[1, 1] = 1.0, 0.5
    graph = h.make_graph(
        [
            h.make_node("Conv", ["input", "w"], ["c"], strides=[2, 2]),
            h.make_node("GlobalAveragePool", ["c"], ["p"]),
            h.make_node("Flatten", ["p"], ["embedding"]),
        ],
        "tiny",
        [h.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", 3, 112, 112])],
        [h.make_tensor_value_info("embedding", onnx.TensorProto.FLOAT, ["N", 2])],
        [onnx.numpy_helper.from_array(w, "w")],
    )
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 13)], ir_version=8), str(path))


def test_layer_stats_hand_values(tmp_path):
    """layer_stats: per feature-map size, every conv's channel mean and std over the chip (realism features)."""
    _tiny_onnx(tmp_path / "tiny.onnx")
    rec = OnnxRecognizer(tmp_path / "tiny.onnx", threads=1)
    x = torch.empty(2, 3, 64, 64)
    x[0] = torch.tensor([0.0, -0.5, 1.0]).view(3, 1, 1)  # flat colours: chip values (x + 1) * 127.5
    x[1] = torch.tensor([-1.0, 1.0, 0.0]).view(3, 1, 1)
    stats = rec.layer_stats(x)
    assert list(stats) == [56] and stats[56].shape == (2, 4)  # [mean c0, mean c1, std c0, std c1]
    np.testing.assert_allclose(stats[56][0], [127.5, 0.5 * 63.75, 0.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(stats[56][1], [0.0, 0.5 * 255.0, 0.0, 0.0], atol=1e-3)
    textured = x[:1].clone()
    textured[0, 0, ::2] = -1.0  # stripes in R: the std feature sees them, the mean drops
    t = rec.layer_stats(textured)[56][0]
    assert t[2] > 10.0 and t[0] < 127.5
    with pytest.raises(InputError, match="expected images"):
        rec.layer_stats(torch.zeros(3, 64, 64))
