"""Frozen identity encoders: L_deid of Eq. 12 in training, "verified anonymization" in the photo pipeline, and
face recognizers for evaluation.

- ``build_identity("dlib")``: dlib's face-recognition ResNet ported to PyTorch (:mod:`.dlib_resnet`), 128-D.
- ``build_identity("arcface", weights=PATH)``: insightface IResNet or TreB1eN IR-SE (:mod:`.arcface`), 512-D.
- ``build_identity("faceres", weights=PATH)``: HSE FaceRes (:mod:`.faceres`), 1,024-D, converted from TF.js; the
  identity guard of training (``train.guard``).
- ``build_identity("mobileface", weights=PATH)``: an ONNX recognizer for evaluation only (:mod:`.onnx_recognizer`).
- ``build_identity("none")``: raises: a run without identity loss must not call an identity network.

All take crop-geometry images (B, 3, R, R) in [-1, 1] (``forward``) and full photos with 5 ArcFace-order
landmarks (``embed_from_landmarks``), and return L2-normalised embeddings; ``describe()`` records the backend.
Heavy imports happen inside :func:`build_identity`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from a3gan.errors import InputError, ModelError

if TYPE_CHECKING:
    from a3gan.identity.base import IdentityNet
    from a3gan.identity.onnx_recognizer import OnnxRecognizer

BACKENDS = ("dlib", "arcface", "faceres", "mobileface", "none")

__all__ = ["BACKENDS", "IdentityNet", "build_identity", "default_mobileface_path"]


def default_mobileface_path() -> Path:
    """``../shared/models/mobileface_v2.onnx`` beside the project (or ``$A3GAN_SHARED/models``)."""
    import os

    root = os.environ.get("A3GAN_SHARED")
    base = Path(root) if root else Path(__file__).resolve().parents[3].parent / "shared"
    return base / "models" / "mobileface_v2.onnx"


def build_identity(
    name: str, weights: str | Path | None = None, device: str = "cpu", **kwargs
) -> IdentityNet | OnnxRecognizer:
    """Build a frozen identity network by name: ``"dlib"`` (weights: optional .dat path), ``"arcface"``
    (weights: required .pth/.safetensors), ``"faceres"`` (weights: required converted .safetensors),
    ``"mobileface"`` (weights: .onnx path, default the shared model), ``"none"`` (raises ModelError)."""
    key = str(name).strip().lower()
    if key == "dlib":
        from a3gan.identity.dlib_resnet import DlibIdentity

        return DlibIdentity(weights, device=device)
    if key == "arcface":
        if weights is None:
            raise ModelError(
                "the arcface identity network needs weights: pass the path of an insightface iresnet50/100 "
                "state dict or model_ir_se50.pth (train.identity_weights=PATH)"
            )
        from a3gan.identity.arcface import ArcFaceIdentity

        return ArcFaceIdentity(weights, device=device, **kwargs)
    if key == "faceres":
        if weights is None:
            raise ModelError(
                "the faceres identity network needs weights: convert them with scripts/convert_faceres.py and "
                "pass the path (train.guard_weights=PATH)"
            )
        from a3gan.identity.faceres import FaceResIdentity

        return FaceResIdentity(weights, device=device, **kwargs)
    if key in ("mobileface", "onnx"):
        from a3gan.identity.onnx_recognizer import OnnxRecognizer

        return OnnxRecognizer(weights if weights is not None else default_mobileface_path(), **kwargs)
    if key == "none":
        raise ModelError(
            "identity network 'none' cannot embed faces: this run was configured without L_deid "
            "(train.identity=none); choose 'dlib' or 'arcface'"
        )
    raise InputError(f"unknown identity network {name!r}; choose one of {', '.join(BACKENDS)}")


def __getattr__(name: str):
    if name == "IdentityNet":
        from a3gan.identity.base import IdentityNet

        return IdentityNet
    raise AttributeError(name)
