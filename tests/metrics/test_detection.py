"""a3gan.metrics.detection: IoU, re-detection rate and confidence, detectors on a real face."""

from __future__ import annotations

import math

import numpy as np
import pytest

from a3gan.errors import InputError
from a3gan.metrics import detection as D


def test_iou_hand_values():
    assert D.iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert D.iou((0, 0, 2, 2), (0, 0, 2, 2)) == 1.0
    assert D.iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


def test_best_match_respects_min_iou():
    hits = [D.Hit((0, 0, 10, 10), 0.9), D.Hit((2, 2, 12, 12), 0.5), D.Hit((50, 50, 60, 60), 0.99)]
    assert D.best_match((1, 1, 11, 11), hits).score == 0.9 or D.best_match((1, 1, 11, 11), hits).score == 0.5
    assert D.best_match((2, 2, 12, 12), hits).score == 0.5
    assert D.best_match((30, 30, 40, 40), hits) is None


def test_redetection_hand_case():
    face = (10, 10, 50, 50)
    orig = [[D.Hit(face, 0.9)], [D.Hit(face, 0.8), D.Hit((0, 0, 5, 5), 0.3)], [], [D.Hit(face, 1.0)]]
    anon = [[D.Hit((12, 12, 52, 52), 0.6)], [D.Hit((60, 60, 90, 90), 0.9)], [D.Hit(face, 0.9)], []]
    r = D.redetection(orig, anon)
    assert r["n_orig_detected"] == 3 and r["n_redetected"] == 1
    assert r["rate"] == pytest.approx(1 / 3)
    assert r["orig_detected"] == pytest.approx(3 / 4)
    assert r["conf"] == pytest.approx(0.6) and r["orig_conf"] == pytest.approx(0.9)
    empty = D.redetection([[]], [[]])
    assert math.isnan(empty["rate"])
    with pytest.raises(InputError):
        D.redetection([[]], [])


def test_unknown_detector():
    with pytest.raises(InputError, match="unknown detector"):
        D.build_detector("yolo")


def test_dlib_hog_finds_a_real_face_and_not_a_blacked_out_one():
    pytest.importorskip("dlib")
    from PIL import Image
    from skimage import data

    img = np.asarray(Image.fromarray(data.astronaut()[40:220, 140:320]).resize((128, 128)))
    det = D.build_detector("dlib-hog", 128)
    hits = det(img)
    assert len(hits) >= 1 and 0.5 < max(h.score for h in hits) <= 1.0
    black = img.copy()
    black[20:110, 25:105] = 0
    r = D.redetection([hits], [det(black)])
    assert r["rate"] == 0.0
