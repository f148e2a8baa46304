"""a3gan.metrics.attributes: accuracy, preservation rates, and the evaluation classifier (fit, save, load)."""

from __future__ import annotations

import numpy as np
import pytest

from a3gan.errors import InputError, ModelError
from a3gan.metrics import attributes as A


def test_identity_split():
    assert A.identity_split([1, 2, 2, 3], {2}).tolist() == [True, False, False, True]


def test_accuracy_hand_values():
    pred = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
    truth = np.array([[1, 0], [0, 1], [0, 1], [0, 1]])
    np.testing.assert_allclose(A.per_attribute_accuracy(pred, truth), [0.75, 0.75])
    # attribute 0: TPR 1/1, TNR 2/3 -> 5/6; attribute 1: TPR 2/3, TNR 1/1
    np.testing.assert_allclose(A.balanced_accuracy(pred, truth), [5 / 6, 5 / 6])
    with pytest.raises(InputError):
        A.per_attribute_accuracy(pred, truth[:2])


def test_preservation_hand_case():
    before = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 1]])
    after = np.array([[1, 1, 0], [0, 1, 1], [1, 1, 1], [1, 1, 1]])
    r = A.preservation(before, after, [0, 0, 1])
    np.testing.assert_allclose(r["preservation"], [0.75, 0.5, 0.5])
    np.testing.assert_allclose(r["change"], [0.25, 0.5, 0.5])
    assert r["preserved_mean"] == pytest.approx(0.625)
    assert r["changed_mean"] == pytest.approx(0.5)
    assert np.isnan(A.preservation(before, before, [0, 0, 0])["changed_mean"])
    with pytest.raises(InputError):
        A.preservation(before, after, [0, 1])


def _toy(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Attribute 0 = bright image, attribute 1 = red left half."""
    y = rng.integers(0, 2, (n, 2))
    x = rng.integers(60, 100, (n, 32, 32, 3)) + 100 * y[:, 0, None, None, None]
    x[:, :, :16, 0] += 150 * y[:, 1, None, None]
    x[:, :, :16, 1:] -= 60 * y[:, 1, None, None, None]
    return x.clip(0, 255).astype(np.uint8), y


def test_classifier_learns_a_toy_problem_and_round_trips(tmp_path):
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x, y = _toy(256, rng)
    net = A.AttributeNet(("Bright", "Red_Left"), width=8)
    stats = net.fit(x, y, epochs=3, batch=32, lr=5e-3, seed=0)
    assert stats["steps"] == 24 and np.isfinite(stats["final_loss"])
    xt, yt = _toy(128, rng)
    acc = A.per_attribute_accuracy(net.predict(xt), yt)
    assert (acc > 0.9).all(), acc
    path = tmp_path / "clf.safetensors"
    net.meta = {"split": "toy"}
    net.save(path)
    back = A.AttributeNet.load(path)
    assert back.attributes == ("Bright", "Red_Left") and back.meta == {"split": "toy"}
    np.testing.assert_allclose(back.logits(xt[:8]), net.logits(xt[:8]), atol=1e-5)


def test_classifier_bad_inputs(tmp_path):
    net = A.AttributeNet(("a",), width=4)
    with pytest.raises(InputError, match="labels"):
        net.fit(np.zeros((64, 8, 8, 3), np.uint8), np.zeros((64, 2)))
    with pytest.raises(InputError, match="at least"):
        net.fit(np.zeros((4, 8, 8, 3), np.uint8), np.zeros((4, 1)), batch=8)
    with pytest.raises(InputError, match="images"):
        net.predict(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ModelError, match="not found"):
        A.AttributeNet.load(tmp_path / "none.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelError):
        A.AttributeNet.load(bad)
