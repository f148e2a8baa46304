"""a3gan.metrics.brisque: GGD/AGGD fits, the 36 features, the SVR, and scores that order distortions."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from scipy import ndimage

from a3gan.errors import InputError, ModelError
from a3gan.metrics import brisque as B


@pytest.fixture(scope="module")
def natural() -> np.ndarray:
    """A natural photo shipped with scikit-image (the astronaut), downscaled to 128 px like a face crop."""
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((128, 128), Image.Resampling.LANCZOS))


def test_ggd_shape_fit_recovers_gaussian_and_laplacian():
    rng = np.random.default_rng(0)
    alpha, var = B.ggd_fit(rng.normal(0, 3.0, 200_000))
    assert alpha == pytest.approx(2.0, abs=0.05)
    assert var == pytest.approx(9.0, rel=0.02)
    assert B.ggd_fit(rng.laplace(0, 1.0, 200_000))[0] == pytest.approx(1.0, abs=0.05)


def test_aggd_fit_symmetric_and_asymmetric():
    rng = np.random.default_rng(1)
    alpha, mean, sl2, sr2 = B.aggd_fit(rng.normal(0, 1.0, 200_000))
    assert alpha == pytest.approx(2.0, abs=0.05) and abs(mean) < 0.02
    assert sl2 == pytest.approx(1.0, rel=0.03) and sr2 == pytest.approx(1.0, rel=0.03)
    x = rng.normal(0, 1.0, 200_000)
    x = np.where(x < 0, x * 0.5, x * 2.0)  # narrower on the left: positive mean, sl2 < sr2
    _, mean, sl2, sr2 = B.aggd_fit(x)
    assert mean > 0 and sl2 == pytest.approx(0.25, rel=0.05) and sr2 == pytest.approx(4.0, rel=0.05)


def test_mscn_of_constant_image_is_zero_inside():
    m = B.mscn(np.full((20, 20), 0.5))
    np.testing.assert_allclose(m[4:-4, 4:-4], 0.0, atol=1e-9)


def test_features_shape_and_constant_image_rejected(natural):
    f = B.brisque_features(natural)
    assert f.shape == (36,) and np.all(np.isfinite(f))
    with pytest.raises(InputError, match="no contrast"):
        B.brisque_features(np.full((64, 64, 3), 128, np.uint8))
    with pytest.raises(InputError, match="at least 16x16"):
        B.brisque_features(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="HxW"):
        B.to_gray(np.zeros((4, 4, 2)))


@pytest.mark.skipif(importlib.util.find_spec("brisque") is None, reason="brisque package not installed")
def test_features_match_the_brisque_package(natural):
    """Our features equal brisque 0.2.0's (its own code, with its shape-tuple bug flattened away)."""
    import cv2
    import skimage.color
    from brisque.brisque import BRISQUE

    ref = BRISQUE()
    g = skimage.color.rgb2gray(natural)
    half = cv2.resize(g, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    theirs = [
        float(np.ravel(v)[0])
        for v in [*ref.calculate_brisque_features(g), *ref.calculate_brisque_features(half)]
    ]
    np.testing.assert_allclose(B.brisque_features(natural), theirs, rtol=1e-6, atol=1e-8)


@pytest.mark.skipif(importlib.util.find_spec("libsvm") is None, reason="libsvm not installed")
def test_numpy_svr_equals_libsvm(natural):
    from libsvm import svmutil

    model = B.load_model()
    lib = svmutil.svm_load_model(str(B._package_model_dir() / "svm.txt"))
    rng = np.random.default_rng(0)
    for feats in [
        B.brisque_features(natural),
        *(model.feat_min + rng.random((3, 36)) * (model.feat_max - model.feat_min)),
    ]:
        x, _ = svmutil.gen_svm_nodearray([float(v) for v in model.scale(feats)], isKernel=False)
        expected = svmutil.libsvm.svm_predict_probability(lib, x, (svmutil.c_double * 1)())
        assert model.predict(feats)[0] == pytest.approx(expected, abs=1e-6)


def test_distortions_score_worse_than_the_clean_image(natural):
    clean = B.brisque_score(natural)
    blurred = np.stack([ndimage.gaussian_filter(natural[..., c], 2.0) for c in range(3)], -1)
    rng = np.random.default_rng(0)
    noisy = np.clip(natural + rng.normal(0, 25, natural.shape), 0, 255).astype(np.uint8)
    assert B.brisque_score(blurred) > clean + 10
    assert B.brisque_score(noisy) > clean + 10


def test_model_parsing_errors(tmp_path):
    with pytest.raises(ModelError, match="RBF"):
        B.parse_libsvm_model("svm_type epsilon_svr\nkernel_type linear\nSV\n1 1:0.5\n")
    with pytest.raises(ModelError, match="no support vectors"):
        B.parse_libsvm_model("kernel_type rbf\ngamma 0.5\nrho 1\nSV\n")
    sv, coef, gamma, rho = B.parse_libsvm_model("kernel_type rbf\ngamma 0.5\nrho 1\nSV\n2 1:0.5 3:-1\n", 3)
    np.testing.assert_array_equal(sv, [[0.5, 0.0, -1.0]])
    assert (coef.tolist(), gamma, rho) == ([2.0], 0.5, 1.0)
    # a normalisation pickle that references a class is refused
    import pickle

    (tmp_path / "svm.txt").write_text("kernel_type rbf\ngamma 0.5\nrho 1\nSV\n1 1:0\n")
    (tmp_path / "normalize.pickle").write_bytes(pickle.dumps({"min_": np.zeros(36)}))
    with pytest.raises(ModelError, match="refusing"):
        B.load_model.__wrapped__(str(tmp_path))
