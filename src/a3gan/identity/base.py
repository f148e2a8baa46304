"""The common interface of the identity networks (L_deid of Eq. 12, verified anonymization, evaluation)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from a3gan.errors import InputError
from a3gan.identity.align import CropAligner, check_image, check_landmarks, warp_face


def file_sha256(path: str | Path, prefix: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:prefix]


class IdentityNet(nn.Module):
    """A frozen face-recognition network behind one interface.

    ``forward(x)``: x (B, 3, R, R) in [-1, 1], RGB, in the a3gan crop geometry (:mod:`a3gan.geometry`), any R.
    Returns L2-normalised embeddings (B, dim), differentiable w.r.t. x; the parameters are frozen and the module
    stays in eval mode (``train()`` is a no-op), so it can sit inside a training graph.

    Attributes: ``name``, ``dim``, ``threshold_cos`` (two faces match when the cosine similarity of their
    normalised embeddings is at least this), ``chip_size``; ``describe()`` for configs and reports.
    Subclasses implement ``embed_chips`` (aligned chips in [-1, 1] -> raw embeddings).
    """

    name: str = "identity"
    dim: int = 0
    threshold_cos: float = 0.5
    chip_size: int = 112

    def __init__(self, aligner: CropAligner, chip_template: np.ndarray, weights: str | Path | None) -> None:
        super().__init__()
        self.aligner = aligner
        self.chip_template = np.asarray(chip_template, dtype=np.float64)
        self.weights_path = str(weights) if weights is not None else None
        self._sha: str | None = None

    # --- frozen, eval-only ---------------------------------------------------------------------------
    def freeze(self) -> IdentityNet:
        for p in self.parameters():
            p.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> IdentityNet:  # noqa: ARG002 - always eval (frozen statistics)
        return super().train(False)

    # --- embeddings ------------------------------------------------------------------------------------
    def embed_chips(self, chips: torch.Tensor) -> torch.Tensor:
        """(B, 3, chip_size, chip_size) aligned chips in [-1, 1] -> raw (un-normalised) embeddings (B, dim)."""
        raise NotImplementedError

    def align(self, x: torch.Tensor) -> torch.Tensor:
        """Crop geometry (B, 3, R, R) -> recognizer chips (B, 3, chip_size, chip_size), differentiable."""
        return self.aligner(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"{self.name}: expected images of shape (B, 3, R, R), got {tuple(x.shape)}")
        return F.normalize(self.embed_chips(self.align(x)), dim=1)

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of two batches of normalised embeddings."""
        return (a * b).sum(dim=1)

    def same_person(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.similarity(a, b) >= self.threshold_cos

    @torch.no_grad()
    def embed_from_landmarks(self, image: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        """Embed one face of a full photo. ``image``: uint8 RGB (H, W, 3); ``landmarks5``: (5, 2) in continuous
        coordinates, ArcFace order (left eye, right eye, nose, left/right mouth corner; "left" = image left).
        Returns the L2-normalised embedding as float32 (dim,)."""
        chip = self.chip_from_landmarks(image, landmarks5)
        p = next(self.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
        t = torch.from_numpy(chip).to(device).permute(2, 0, 1).unsqueeze(0).float() / 127.5 - 1.0
        return F.normalize(self.embed_chips(t), dim=1)[0].float().cpu().numpy()

    def chip_from_landmarks(self, image: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        """The aligned uint8 chip (chip_size, chip_size, 3) this network sees for a face of a full photo."""
        return warp_face(check_image(image), check_landmarks(landmarks5), self.chip_template, self.chip_size)

    # --- bookkeeping -----------------------------------------------------------------------------------
    def weights_sha256(self) -> str | None:
        if self.weights_path is None:
            return None
        if self._sha is None:
            self._sha = file_sha256(self.weights_path)
        return self._sha

    def describe(self) -> dict[str, Any]:
        """What training records in its config/checkpoint and evaluation prints in its report."""
        return {
            "name": self.name,
            "weights": self.weights_path,
            "sha256": self.weights_sha256(),
            "dim": int(self.dim),
            "threshold_cos": float(self.threshold_cos),
            "chip_size": int(self.chip_size),
        }

    def extra_repr(self) -> str:
        return f"name={self.name}, dim={self.dim}, threshold_cos={self.threshold_cos:.4f}"
