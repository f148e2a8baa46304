"""a3gan.metrics.landmarks: EAR / MAR on known points, Procrustes, state agreement, dlib's 68-point predictor."""

from __future__ import annotations

import numpy as np
import pytest

from a3gan.errors import InputError
from a3gan.metrics import landmarks as L

EYE = np.array([[0, 0], [1, 1], [3, 1], [4, 0], [3, -1], [1, -1]], float)  # p1..p6


def _face(ear_scale: float = 1.0, mouth_open: float = 0.0) -> np.ndarray:
    """A synthetic 68-point face: only the eyes and inner mouth matter for EAR/MAR; the rest is a jawline."""
    p = np.zeros((68, 2))
    p[:17] = np.stack([np.linspace(-10, 10, 17), 5 + np.abs(np.linspace(-10, 10, 17))], 1)
    p[17:36] = np.stack([np.linspace(-8, 8, 19), np.full(19, -8.0)], 1)
    eye = EYE * [1, ear_scale]
    p[36:42] = eye + [-7, -4]
    p[42:48] = eye + [3, -4]
    mouth = np.array([[0, 0], [1, -1], [2, -1], [3, -1], [4, 0], [3, 1], [2, 1], [1, 1]], float)
    mouth[1:4, 1] -= mouth_open
    mouth[5:8, 1] += mouth_open
    p[48:60] = np.stack([np.linspace(-3, 7, 12), np.full(12, 6.0)], 1)
    p[60:68] = mouth + [-2, 6]
    return p


def test_ear_on_known_landmarks():
    assert L.eye_aspect_ratio(EYE) == pytest.approx((2 + 2) / (2 * 4))
    assert L.eye_aspect_ratio(EYE * [1, 0.1]) == pytest.approx(0.05)
    with pytest.raises(InputError, match="6 points"):
        L.eye_aspect_ratio(EYE[:5])
    with pytest.raises(InputError, match="degenerate"):
        L.eye_aspect_ratio(np.zeros((6, 2)))


def test_mar_on_known_landmarks():
    closed = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [4, 0], [3, 0], [2, 0], [1, 0]], float)
    assert L.mouth_aspect_ratio(closed) == 0.0
    opened = closed.copy()
    opened[1:4, 1] = -1
    opened[5:8, 1] = 1
    assert L.mouth_aspect_ratio(opened) == pytest.approx(6 / 12)


def test_face_ratios_and_summary():
    f = _face()
    r = L.face_ratios(f)
    assert r["ear"] == pytest.approx(0.5) and r["mar"] == pytest.approx(2 / 4 * 2 / 3 * 1.5, abs=1e-9)
    closed_eyes = _face(ear_scale=0.2)  # EAR 0.1 < 0.2: closed
    s = L.summarize([f, f, f, f], [f, closed_eyes, _face(mouth_open=1.0), f * 2.0 + 3.0])
    assert s["n"] == 4
    assert s["eye_state_agreement"] == pytest.approx(0.75)
    assert s["mouth_state_agreement"] == pytest.approx(1.0)  # MAR 0.5 -> 1.17, both "open"
    assert s["fatigue_agreement"] == pytest.approx(0.75)
    assert s["ear_abs_diff"] == pytest.approx(0.4 / 4)
    assert s["eye_kappa"] == pytest.approx(
        0.0
    )  # one face closed in one set only: chance-level beyond base rate
    assert L.summarize([], []) == {"n": 0}


def test_pearson_and_kappa_hand_values():
    assert L.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert L.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert L.pearson([1, 2, 3], [5, 5, 5]) == 0.0  # a constant (erased) side carries no information
    # 4 faces, states a = [T, T, F, F], b = [T, F, F, F]: po = 3/4, pe = 1/2 * 1/4 + 1/2 * 3/4 = 1/2
    assert L.cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    # always predicting the majority state: high raw agreement, kappa 0
    assert L.cohen_kappa([0, 0, 0, 1], [0, 0, 0, 0]) == pytest.approx(0.0)
    with pytest.raises(InputError):
        L.pearson([1], [1])


def test_procrustes_removes_similarity_transforms():
    f = _face()
    th = 0.4
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    assert L.procrustes_disparity(f, 3.0 * f @ rot.T + [5, -2]) == pytest.approx(0.0, abs=1e-12)
    assert L.procrustes_disparity(f, _face(mouth_open=2.0)) > 1e-3
    with pytest.raises(InputError):
        L.procrustes_disparity(f, f[:60])


def test_state_agreement():
    assert L.state_agreement([0.1, 0.3, 0.25], [0.1, 0.1, 0.3], 0.2, above=False) == pytest.approx(2 / 3)
    with pytest.raises(InputError):
        L.state_agreement([], [], 0.2, above=True)


def test_dlib_predictor_on_a_real_face():
    pytest.importorskip("dlib")
    from skimage import data

    img = data.astronaut()  # 512x512, face at about x 170-270, y 60-190
    pred = L.LandmarkPredictor()
    p = pred(img, (160, 60, 290, 200))
    assert p.shape == (68, 2)
    assert (p[:, 0] > 130).all() and (p[:, 0] < 320).all() and (p[:, 1] > 40).all() and (p[:, 1] < 230).all()
    r = L.face_ratios(p)
    assert 0.15 < r["ear"] < 0.45  # open eyes
    assert r["mar"] < L.MAR_OPEN  # closed mouth (smiling, lips together)
    with pytest.raises(InputError):
        pred(np.zeros((10, 10), np.uint8), (0, 0, 5, 5))
