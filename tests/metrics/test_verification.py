"""a3gan.metrics.verification: cosine, threshold calibration, verification rate, rank-1, ROC AUC."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a3gan.errors import InputError
from a3gan.metrics import verification as V


class StubRecognizer:
    """Embeds an image as its normalised, mean-removed pixel vector: identical images give cosine 1."""

    threshold_cos = 0.5

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        f = x.flatten(1)
        return torch.nn.functional.normalize(f - f.mean(1, keepdim=True), dim=1)


def test_cosine_similarity_hand_values():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [3.0, 4.0]])
    b = np.array([[2.0, 0.0], [-1.0, 1.0], [-3.0, -4.0]])
    np.testing.assert_allclose(V.cosine_similarity(a, b), [1.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(V.cosine_matrix(a[:1], b), [[1.0, -1 / np.sqrt(2), -0.6]], atol=1e-12)


def test_cosine_bad_arguments():
    with pytest.raises(InputError, match="equal shape"):
        V.cosine_similarity(np.ones((2, 3)), np.ones((3, 3)))
    with pytest.raises(InputError, match="NaN"):
        V.cosine_similarity(np.array([[np.nan, 1.0]]), np.ones((1, 2)))
    with pytest.raises(InputError, match="embedding sizes"):
        V.cosine_matrix(np.ones((2, 3)), np.ones((2, 4)))


def test_stub_recognizer_identical_images_match_and_impostor_does_not():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
    other = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
    rec = StubRecognizer()
    e_img, e_same, e_other = rec(img).numpy(), rec(img.clone()).numpy(), rec(other).numpy()
    same = V.cosine_similarity(e_img, e_same)
    imp = V.cosine_similarity(e_img, e_other)
    assert same[0] == pytest.approx(1.0, abs=1e-6)
    assert V.verification_rate(same, rec.threshold_cos) == 1.0
    assert imp[0] < rec.threshold_cos
    assert V.verification_rate(imp, rec.threshold_cos) == 0.0


def test_pair_indices_counts_and_sampling():
    gen, imp = V.pair_indices(["a", "a", "b", "b", "b"])
    assert sorted(map(tuple, gen.tolist())) == [(0, 1), (2, 3), (2, 4), (3, 4)]
    assert len(imp) == 6 and all(i < j for i, j in imp)
    _, imp2 = V.pair_indices(list(range(100)), max_impostor=50, seed=1)
    assert len(imp2) == 50 and len({tuple(p) for p in imp2.tolist()}) == 50


def test_calibrate_threshold_hand_case():
    imp = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    gen = np.array([0.85, 0.95, 0.5])
    th = V.calibrate_threshold(gen, imp, far=0.2)  # accept the 2 highest impostors: t just above 0.8
    assert 0.8 < th.value <= 0.9
    assert th.far == pytest.approx(0.2)
    assert th.tar == pytest.approx(2 / 3)
    assert not th.reliable  # 10 impostor pairs cannot resolve FAR=0.2 to 10 false accepts
    tied = V.calibrate_threshold(gen, np.array([0.5, 0.5, 0.5, 0.5]), far=0.3)  # ties are all rejected
    assert tied.far == 0.0


def test_calibrate_threshold_on_synthetic_distributions():
    rng = np.random.default_rng(0)
    imp = rng.normal(0.0, 0.1, 20000)
    gen = rng.normal(0.6, 0.1, 2000)
    for far in (1e-2, 1e-3):
        th = V.calibrate_threshold(gen, imp, far)
        assert th.far <= far
        assert th.far >= far - 2 / imp.size
        assert th.reliable
        # the Gaussian quantile: P(N(0, 0.1) >= t) = far
        from scipy.stats import norm

        assert th.value == pytest.approx(norm.isf(far, 0, 0.1), abs=0.02)
    assert V.calibrate_threshold(gen, imp, 1e-3).tar > 0.9


def test_calibrate_threshold_bad_arguments():
    with pytest.raises(InputError, match="false-accept"):
        V.calibrate_threshold([1.0], [0.0], far=0.0)
    with pytest.raises(InputError, match="impostor"):
        V.calibrate_threshold([1.0], [], far=0.01)


def test_fixed_threshold_measures_far_and_tar():
    th = V.fixed_threshold([0.9, 0.7, 0.2], [0.1, 0.6, 0.3, 0.0], 0.5)
    assert (th.far, th.tar, th.target_far, th.reliable) == (0.25, pytest.approx(2 / 3), None, True)


def test_verification_rate():
    assert V.verification_rate([0.1, 0.5, 0.9, 0.49], 0.5) == 0.5
    with pytest.raises(InputError):
        V.verification_rate([], 0.5)


def test_rank1_on_hand_made_gallery():
    # gallery: identity A near (1, 0), identity B near (0, 1), distractor C at (-1, 0)
    gallery = np.array([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0], [-1.0, 0.0]])
    g_lab = ["A", "A", "B", "B", "C"]
    probes = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.2]])  # A found, B found, "B" probe that looks like A
    assert V.rank1_reid(probes, ["A", "B", "B"], gallery, g_lab) == pytest.approx(2 / 3)
    # excluding a probe's own image: the probe's best match is removed, the next one decides
    exclude = np.zeros((3, 5), bool)
    exclude[0, 0] = exclude[0, 1] = True  # probe 0 may match neither A image -> not counted (no other A)
    assert V.rank1_reid(probes, ["A", "B", "B"], gallery, g_lab, exclude=exclude) == pytest.approx(1 / 2)


def test_rank1_bad_arguments():
    with pytest.raises(InputError, match="label counts"):
        V.rank1_reid(np.ones((2, 2)), ["a"], np.ones((2, 2)), ["a", "b"])
    with pytest.raises(InputError, match="no probe"):
        V.rank1_reid(np.ones((1, 2)), ["z"], np.ones((2, 2)), ["a", "b"])


def test_roc_auc_hand_values():
    assert V.roc_auc([0.9, 0.4], [0.5, 0.1]) == pytest.approx(0.75)
    assert V.roc_auc([1.0, 2.0], [0.0]) == 1.0
    assert V.roc_auc([0.0], [1.0, 2.0]) == 0.0
    assert V.roc_auc([0.5], [0.5]) == 0.5
    with pytest.raises(InputError):
        V.roc_auc([], [0.1])
