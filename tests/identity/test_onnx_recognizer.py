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
