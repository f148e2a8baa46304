"""An independent face recognizer for evaluation, run with onnxruntime (not differentiable).

The default is ``../shared/models/mobileface_v2.onnx`` (MobileFace Identification V2, MIT): float32 NCHW RGB
input with values 0..255 (normalisation is inside the graph), 112x112 chips aligned to the ArcFace 5-point
template, 256-D output compared by cosine similarity. Training never sees it, so it judges anonymity fairly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from a3gan.errors import InputError, ModelError
from a3gan.identity.align import (
    CROP_ARCFACE5_MEAN,
    CropAligner,
    arcface_template,
    check_image,
    check_landmarks,
)
from a3gan.identity.align import warp_face as _warp_face
from a3gan.identity.base import file_sha256

ONNX_SIZE = 112
#: Match threshold on cosine similarity, measured on the first 3,000 images of ../shared/data/celeba (crop
#: geometry at 128 px through the fixed alignment; 645 genuine and 4.5M impostor pairs): AUC 0.980, EER 6.0% at
#: 0.16; 0.38 is the FAR = 1e-3 operating point (TAR 0.71). Evaluation may calibrate its own.
MOBILEFACE_THRESHOLD_COS = 0.38


class OnnxRecognizer(nn.Module):
    """A face recognizer in an ONNX file with the :class:`~a3gan.identity.base.IdentityNet` API, for evaluation.

    ``forward(x)`` takes crop-geometry images (B, 3, R, R) in [-1, 1] and returns normalised embeddings under
    ``no_grad`` (onnxruntime has no gradients); ``embed_numpy(chips)`` takes aligned uint8/float chips
    (B, 112, 112, 3) 0..255; ``embed_from_landmarks(image, landmarks5)`` embeds one face of a full photo.
    """

    chip_size = ONNX_SIZE

    def __init__(
        self,
        path: str | Path,
        name: str = "mobileface",
        threshold_cos: float = MOBILEFACE_THRESHOLD_COS,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"recognizer model not found: {self.path}")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"{self.path}: not a loadable ONNX model ({msg[:200]})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1 or list(inputs[0].shape[1:]) != [3, ONNX_SIZE, ONNX_SIZE]:
            shape = inputs[0].shape if inputs else None
            raise ModelError(f"{self.path}: expected one input of shape (N, 3, 112, 112), got {shape}")
        self.input_name = inputs[0].name
        out_dim = outputs[0].shape[-1]
        self.dim = (
            int(out_dim)
            if isinstance(out_dim, int)
            else int(self.embed_numpy(np.zeros((1, 112, 112, 3))).shape[1])
        )
        self.name = name
        self.threshold_cos = float(threshold_cos)
        self.chip_template = arcface_template(ONNX_SIZE)
        self.aligner = CropAligner(CROP_ARCFACE5_MEAN, self.chip_template, ONNX_SIZE)
        self._sha: str | None = None
        self._layers: tuple[Any, list[str]] | None = None
        self.eval()

    def embed_numpy(self, chips: np.ndarray, normalize: bool = True) -> np.ndarray:
        """(B, 112, 112, 3) RGB chips with values 0..255 (uint8 or float) -> (B, dim) float32 embeddings."""
        c = np.asarray(chips)
        if c.ndim == 3:
            c = c[None]
        if c.ndim != 4 or c.shape[1:] != (ONNX_SIZE, ONNX_SIZE, 3):
            raise InputError(f"expected RGB chips of shape (B, 112, 112, 3), got {c.shape}")
        x = np.ascontiguousarray(c.transpose(0, 3, 1, 2), dtype=np.float32)
        out = self.session.run(None, {self.input_name: x})[0].astype(np.float32)
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def layer_stats(self, x: torch.Tensor, batch: int = 64) -> dict[int, np.ndarray]:
        """Crop-geometry images (B, 3, R, R) in [-1, 1] -> per feature-map size S, the spatial mean and std of
        every channel of every convolution of the graph at S x S, concatenated: {S: (B, features)}. The
        features of :mod:`a3gan.metrics.kid` (realism score). Needs the ``onnx`` package to expose the layers."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[0] < 1:
            raise InputError(f"{self.name}: expected images of shape (B, 3, R, R), got {tuple(x.shape)}")
        if self._layers is None:
            try:
                import onnx
            except ImportError:
                raise ModelError("the realism score (KID) needs the onnx package: pip install onnx") from None
            import onnxruntime as ort

            graph = onnx.load(str(self.path))
            names = [n.output[0] for n in graph.graph.node if n.op_type == "Conv"]
            if not names:
                raise ModelError(f"{self.path}: no convolutions to take realism features from")
            for name in names:
                graph.graph.output.append(
                    onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                )
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.session.get_session_options().intra_op_num_threads
            sess = ort.InferenceSession(graph.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            self._layers = (sess, names)
        sess, names = self._layers
        out: dict[int, list[np.ndarray]] = {}
        with torch.no_grad():
            for i in range(0, x.shape[0], batch):
                chips = (self.aligner(x[i : i + batch].detach().float().cpu()).clamp(-1, 1) + 1.0) * 127.5
                acts = sess.run(
                    names, {self.input_name: np.ascontiguousarray(chips.numpy(), dtype=np.float32)}
                )
                per: dict[int, list[np.ndarray]] = {}
                for a in acts:
                    per.setdefault(int(a.shape[-1]), []).append(
                        np.concatenate([a.mean((2, 3)), a.std((2, 3))], 1)
                    )
                for size, parts in per.items():
                    out.setdefault(size, []).append(np.concatenate(parts, 1))
        return {size: np.concatenate(parts).astype(np.float64) for size, parts in out.items()}

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"{self.name}: expected images of shape (B, 3, R, R), got {tuple(x.shape)}")
        chips = (self.aligner(x.detach().float().cpu()).clamp(-1, 1) + 1.0) * 127.5
        out = self.embed_numpy(chips.permute(0, 2, 3, 1).numpy(), normalize=False)
        return F.normalize(torch.from_numpy(out), dim=1).to(x.device)

    def chip_from_landmarks(self, image: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        return _warp_face(check_image(image), check_landmarks(landmarks5), self.chip_template, ONNX_SIZE)

    def embed_from_landmarks(self, image: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        """One face of a full photo (uint8 RGB, 5 ArcFace-order landmarks in continuous coordinates) ->
        normalised embedding (dim,)."""
        return self.embed_numpy(self.chip_from_landmarks(image, landmarks5))[0]

    def embed_faces(self, image: np.ndarray, landmarks: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """Several faces of one photo in one batch: (F, 5, 2) landmarks -> (F, dim)."""
        lms = np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2)
        if len(lms) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_numpy(np.stack([self.chip_from_landmarks(image, lm) for lm in lms]))

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sum(dim=1)

    def describe(self) -> dict[str, Any]:
        if self._sha is None:
            self._sha = file_sha256(self.path)
        return {
            "name": self.name,
            "weights": str(self.path),
            "sha256": self._sha,
            "dim": self.dim,
            "threshold_cos": self.threshold_cos,
            "chip_size": ONNX_SIZE,
        }

    def train(self, mode: bool = True) -> OnnxRecognizer:  # noqa: ARG002
        return super().train(False)
