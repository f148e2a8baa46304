"""a3gan.pipeline.detect: Face, IoU/NMS, CenterFace decoding and model patching, detector on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from a3gan.errors import InputError
from a3gan.pipeline.detect import (
    CenterFaceDetector,
    Detector,
    Face,
    box_iou,
    build_detector,
    centerface_onnx_path,
    check_image,
    decode_centerface,
    make_dynamic,
    nms,
)

# Faces counted by eye (docs/detection.md) and what the default detector finds at threshold 0.35.
PHOTO_FACES = {"selfie_many": 7, "cast_six": 6, "couple": 2, "two_people": 2}


@pytest.fixture(scope="module")
def detector() -> CenterFaceDetector:
    return CenterFaceDetector(threshold=0.35)


@pytest.fixture(scope="module")
def photo_detections(photos_dir, detector) -> dict:
    """Each shared photo detected once for all tests of this module."""
    return {name: detector.detect_all(_read(photos_dir / f"{name}.jpg")) for name in PHOTO_FACES}


def _read(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def test_face_properties_and_scaled():
    lm = np.arange(10, dtype=np.float32).reshape(5, 2)
    f = Face((10, 20, 50, 80), lm, 0.9)
    assert f.width == 40 and f.height == 60 and f.size == 40
    assert f.center == (30, 50)
    g = f.scaled(2.0, 0.5, dx=1.0, dy=-1.0)
    assert g.box == (21.0, 9.0, 101.0, 39.0)
    np.testing.assert_allclose(g.landmarks[1], [2 * 2 + 1, 3 * 0.5 - 1])
    assert g.score == pytest.approx(0.9)
    assert f.landmarks.dtype == np.float32 and f.landmarks.shape == (5, 2)


def test_box_iou_hand_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0, 1.0]])


def test_nms_keeps_best_and_disjoint():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9]])
    scores = np.array([0.5, 0.9, 0.3, 0.4])
    keep = nms(boxes, scores, 0.3)
    assert keep.tolist() == [1, 2]  # box 1 suppresses 0 and 3 (IoU 0.68, 0.6), box 2 is far away


def test_decode_centerface_hand_computed():
    h, w = 8, 8
    heat = np.zeros((h, w), np.float32)
    heat[2, 3] = 0.9
    heat[6, 6] = 0.2  # below the threshold
    scale = np.zeros((2, h, w), np.float32)
    scale[:, 2, 3] = np.log([10.0, 5.0])  # box height 40, width 20 (x4 stride)
    offset = np.zeros((2, h, w), np.float32)
    offset[:, 2, 3] = [0.25, 0.5]  # (y, x)
    lms = np.zeros((10, h, w), np.float32)
    lms[0::2, 2, 3] = [0.4, 0.4, 0.6, 0.8, 0.8]  # y, in units of box height
    lms[1::2, 2, 3] = [0.3, 0.7, 0.5, 0.35, 0.65]  # x, in units of box width
    faces = decode_centerface(heat, scale, offset, lms, 0.5, (32, 32))
    assert len(faces) == 1
    f = faces[0]
    cx, cy = (3 + 0.5 + 0.5) * 4, (2 + 0.25 + 0.5) * 4  # 16, 11
    x0, y0 = cx - 10, max(0.0, cy - 20)  # the top is clipped to 0
    assert f.box == pytest.approx((x0, y0, x0 + 20, min(y0 + 40, 32)))
    assert f.score == pytest.approx(0.9)
    np.testing.assert_allclose(f.landmarks[:, 0], x0 + 20 * np.array([0.3, 0.7, 0.5, 0.35, 0.65]), rtol=1e-6)
    np.testing.assert_allclose(f.landmarks[:, 1], y0 + 40 * np.array([0.4, 0.4, 0.6, 0.8, 0.8]), rtol=1e-6)


def test_decode_centerface_nothing_above_threshold():
    z = np.zeros((4, 4), np.float32)
    assert (
        decode_centerface(z, np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), np.zeros((10, 4, 4)), 0.5, (16, 16))
        == []
    )


def test_make_dynamic_accepts_any_input_size():
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    data = make_dynamic(centerface_onnx_path().read_bytes(), {"input.1"})
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"input.1": np.zeros((1, 3, 64, 96), np.float32)})
    assert [o.shape for o in outs] == [(1, 1, 16, 24), (1, 2, 16, 24), (1, 2, 16, 24), (1, 10, 16, 24)]


def test_detector_protocol_and_blank_image(detector):
    assert isinstance(detector, Detector)
    res = detector.detect_all(np.full((120, 200, 3), 128, np.uint8))
    assert res.faces == [] and res.too_small == 0
    assert detector.detect(np.zeros((1, 1, 3), np.uint8)) == []  # a 1x1 image: no crash, no faces


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        [1, 2],
    ],
)
def test_check_image_rejects(bad):
    with pytest.raises(InputError):
        check_image(bad)


@pytest.mark.parametrize(
    "kwargs", [{"threshold": 0.0}, {"threshold": 1.5}, {"max_size": 8}, {"min_face_size": -1}]
)
def test_detector_bad_arguments(kwargs):
    with pytest.raises(InputError):
        CenterFaceDetector(**kwargs)


def test_build_detector_unknown():
    with pytest.raises(InputError, match="unknown detector"):
        build_detector("yolo")


@pytest.mark.parametrize("name", sorted(PHOTO_FACES))
def test_recall_on_real_photos(photo_detections, name):
    res = photo_detections[name]
    assert len(res.faces) >= PHOTO_FACES[name]
    assert len(res.faces) <= PHOTO_FACES[name] + 1  # no flood of false positives
    for f in res.faces:
        x0, y0, x1, y1 = f.box
        lm = f.landmarks
        # image-left eye first; eyes above the nose, nose above the mouth; landmarks inside the (padded) box
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
        assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])
        pad = 0.1 * f.width
        assert (lm[:, 0] > x0 - pad).all() and (lm[:, 0] < x1 + pad).all()
    xs = [f.center[0] for f in res.faces]
    assert xs == sorted(xs)  # faces come left to right


def test_large_photo_landmarks_not_misplaced(photo_detections):
    """CenterFace on a full 2280x1588 input put mouth points on the nose; the downscaled pass must not."""
    for f in photo_detections["couple"].faces:
        eye_y = f.landmarks[:2, 1].mean()
        mouth_y = f.landmarks[3:, 1].mean()
        eye_dist = np.linalg.norm(f.landmarks[1] - f.landmarks[0])
        assert 0.8 * eye_dist < mouth_y - eye_y < 1.5 * eye_dist


def test_min_face_size_counts_ignored(photos_dir):
    img = _read(photos_dir / "selfie_many.jpg")
    res = CenterFaceDetector(threshold=0.35, min_face_size=100).detect_all(img)
    # face box sizes there are 60..137 px: the ones under 100 px are counted, not returned
    assert res.too_small >= 3 and len(res.faces) >= 2
    assert all(f.size >= 100 for f in res.faces)
    assert len(res.faces) + res.too_small >= PHOTO_FACES["selfie_many"]
