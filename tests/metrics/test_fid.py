"""a3gan.metrics.fid: Fréchet distance closed form, and FID through torchmetrics with weights from a file."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from a3gan.errors import InputError, ModelError
from a3gan.metrics import fid as F


def test_frechet_distance_diagonal_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert F.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(5.0 + (1 + 1 + 0.25))


def test_frechet_distance_identical_and_rotated_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + np.eye(5)
    mu = rng.normal(size=5)
    assert F.frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)
    # same covariance, shifted mean: only the mean term remains
    assert F.frechet_distance(mu, cov, mu + 2.0, cov) == pytest.approx(20.0, abs=1e-7)


def test_frechet_distance_singular_covariance_is_finite():
    cov = np.zeros((3, 3))
    cov[0, 0] = 1.0  # rank 1: sqrtm of the product is singular
    d = F.frechet_distance(np.zeros(3), cov, np.zeros(3), cov)
    assert np.isfinite(d) and d == pytest.approx(0.0, abs=1e-5)


def test_frechet_distance_bad_shapes():
    with pytest.raises(InputError, match="mean vectors"):
        F.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(InputError, match="covariances"):
        F.frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))


def test_gaussian_stats():
    f = np.array([[0.0, 0.0], [2.0, 2.0], [4.0, 1.0]])
    mu, cov = F.gaussian_stats(f)
    np.testing.assert_allclose(mu, [2.0, 1.0])
    np.testing.assert_allclose(cov, np.cov(f, rowvar=False))
    with pytest.raises(InputError):
        F.gaussian_stats(np.zeros((1, 3)))


def test_inception_weights_missing_or_unsafe(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        F.load_inception_state_dict(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ModelError, match="cannot read Inception weights"):
        F.load_inception_state_dict(bad)


_HAVE_FID = importlib.util.find_spec("torchmetrics") is not None and importlib.util.find_spec(
    "torch_fidelity"
)


@pytest.mark.slow
@pytest.mark.skipif(not _HAVE_FID, reason="torchmetrics / torch-fidelity not installed (optional, for FID)")
@pytest.mark.skipif(
    os.environ.get("A3GAN_SLOW_TESTS") != "1",
    reason="2 Inception-v3 builds + 299 px forwards: set A3GAN_SLOW_TESTS=1",
)
def test_fid_scorer_end_to_end_with_random_inception_weights(tmp_path, monkeypatch):
    """The real FID path (torchmetrics + torch-fidelity Inception) on weights read from a file: random weights
    here (no download). FID(x, x) ~ 0 and FID(x, other) > 0; a wrong state dict is a ModelError."""
    import torch
    from safetensors.torch import save_file

    F._import_torch_fidelity_inception()
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    # build the architecture without any weights: skip the loading step once
    monkeypatch.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
    monkeypatch.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    torch.manual_seed(0)
    net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    monkeypatch.undo()
    path = tmp_path / "inception.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))

    rng = np.random.default_rng(0)
    real = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(3)]
    other = [np.full((48, 48, 3), v, np.uint8) for v in (0, 128, 255)]
    s = F.FIDScorer(path)
    s.update(real, real=True)
    s.update(real, real=False)
    same = s.compute()
    s.reset_fake()
    s.update(other, real=False)
    diff = s.compute()
    assert abs(same) < 1e-2 * max(1.0, diff)
    assert diff > 0 and diff > 100 * abs(same)

    wrong = tmp_path / "wrong.safetensors"
    save_file({"x": torch.zeros(2)}, str(wrong))
    with pytest.raises(ModelError, match="Inception"):
        F.FIDScorer(wrong)
