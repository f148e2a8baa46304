"""The photo pipeline (issue 4): detect faces, align them to the model's crop, anonymize, verify, paste back.

Light to import: torch, onnxruntime and OpenCV load only when a detector or an :class:`Anonymizer` is built.
"""

from a3gan.pipeline.anonymizer import (
    METHODS,
    Anonymizer,
    AnonymizeResult,
    FaceResult,
    default_face_keys,
    to_rgb_array,
    z_seed,
)
from a3gan.pipeline.detect import CenterFaceDetector, Detections, Detector, Face, build_detector

__all__ = [
    "METHODS",
    "AnonymizeResult",
    "Anonymizer",
    "CenterFaceDetector",
    "Detections",
    "Detector",
    "Face",
    "FaceResult",
    "build_detector",
    "default_face_keys",
    "to_rgb_array",
    "z_seed",
]
