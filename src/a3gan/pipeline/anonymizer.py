"""The Python API of the photo pipeline (issue 4): detect, align, anonymize, verify, paste back.

    from a3gan.pipeline import Anonymizer
    anon = Anonymizer(model="model.safetensors", change="Male,Young", seed=0)
    res = anon.anonymize(image)          # np.ndarray HxWx3 uint8 RGB or PIL.Image
    res.image, res.faces                 # same-shape uint8 image; one FaceResult per face

Verified anonymization: each anonymized face (as it will appear after paste-back) is embedded with an identity
network and compared with the original. While the cosine similarity is still >= the recognizer's match threshold,
f_z is re-sampled (at most ``max_resample`` times); a face that still matches falls back to 8x8 pixelation and is
reported (``fell_back``).

f_z per face is drawn from ``torch.Generator().manual_seed(h(seed, key, attempt))`` where ``key`` is a stable
integer per face (default: its index left to right; a video tracker passes track ids), so the same seed gives the
same output and a tracked person keeps one new face.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from a3gan.errors import A3GANError, InputError, ModelError
from a3gan.pipeline.align import (
    AlignedFace,
    align_face,
    crops_to_tensor,
    rescale_transform,
    tensor_to_crops,
    warp_to_crop,
)
from a3gan.pipeline.baselines import METHODS as BASELINE_METHODS
from a3gan.pipeline.baselines import get_baseline
from a3gan.pipeline.blend import composite_crop, face_mask, match_color, paste_back, smooth_crop
from a3gan.pipeline.detect import Detections, Face, check_image

METHODS = ("a3gan", *BASELINE_METHODS)
#: Crop resolution for the baselines when no generator is loaded (the paper's 128 px).
DEFAULT_BASELINE_RESOLUTION = 128
#: Minimum crop resolution at which identity verification compares faces: a 32 or 64 px model crop would hide the
#: detail a recognizer needs, so the original is re-sampled from the photo at this size and the new face is
#: upsampled to it, as paste-back does.
VERIFY_RESOLUTION = 128

FaceKeys = Sequence[int] | Callable[[list[Face]], Sequence[int]] | None


@dataclass
class FaceResult:
    """One processed face. ``similarity``: identity cosine between the original and the final anonymized crop
    (None when no identity network is used); ``attempts``: number of f_z draws (0 for the baselines)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    method_used: str
    similarity: float | None
    attempts: int
    fell_back: bool
    key: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "landmarks": np.round(np.asarray(self.landmarks, np.float64), 2).tolist(),
            "method_used": self.method_used,
            "similarity": None if self.similarity is None else round(float(self.similarity), 4),
            "attempts": int(self.attempts),
            "fell_back": bool(self.fell_back),
            "key": int(self.key),
        }


@dataclass
class AnonymizeResult:
    """``image``: the anonymized copy (uint8, input shape); ``faces``: per face; ``too_small``: faces the detector
    saw but ignored as smaller than its ``min_face_size`` (left unchanged)."""

    image: np.ndarray
    faces: list[FaceResult] = field(default_factory=list)
    too_small: int = 0

    @property
    def n_fell_back(self) -> int:
        return sum(f.fell_back for f in self.faces)

    def to_dict(self) -> dict[str, Any]:
        return {
            "faces": [f.to_dict() for f in self.faces],
            "n_faces": len(self.faces),
            "n_fell_back": self.n_fell_back,
            "too_small": self.too_small,
        }


def z_seed(seed: int, key: int, attempt: int) -> int:
    """A stable 63-bit seed for face ``key``'s ``attempt``-th f_z draw (independent of Python's hash salt)."""
    h = hashlib.blake2b(f"a3gan-fz/{int(seed)}/{int(key)}/{int(attempt)}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") & (2**63 - 1)


def default_face_keys(faces: Sequence[Face]) -> list[int]:
    """Index of each face when sorted left to right (by box centre x, then y)."""
    order = sorted(range(len(faces)), key=lambda i: (faces[i].center[0], faces[i].center[1]))
    keys = [0] * len(faces)
    for rank, i in enumerate(order):
        keys[i] = rank
    return keys


def to_rgb_array(image: Any) -> np.ndarray:
    """np.ndarray HxWx3 uint8 RGB (checked) or a PIL image (converted to RGB) -> HxWx3 uint8 array."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None  # type: ignore[assignment]
    if Image is not None and isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    return check_image(image)


@dataclass
class _Item:
    img: int
    af: AlignedFace
    key: int
    orig_v: np.ndarray | None = None  # the original face at the verification resolution
    new: np.ndarray | None = None  # the (colour-matched) replacement crop, float32 0..255
    similarity: float | None = None
    attempts: int = 0
    method_used: str = ""
    fell_back: bool = False


class Anonymizer:
    """Detect every face, replace it, verify it no longer matches, paste it back. See the module docstring.

    model: path of an a3gan checkpoint (None: the shipped default model) or a Generator module; unused by the
        baseline methods. change: the attribute mask (preset, names, bits; ``a3gan.attributes.parse_mask``).
    method: "a3gan" | "pixelate" | "blur" | "blackout". threshold: detector confidence (ignored when
        ``detector`` is given). identity: "dlib" | "arcface" | an identity network object | None.
    verify: re-sample / fall back when the identity still matches (baselines only report the similarity).
    match_threshold: cosine at or above which two faces match (default: the identity network's threshold_cos).
    color_match: match the generated face's colour statistics to the original's inside the face mask.
    smooth: Gaussian sigma (crop pixels) applied to each generated crop (``blend.smooth_crop``); None = the
        model's recommendation (``inference_smooth`` in its metadata, 0 when absent), 0 = off.
    """

    def __init__(
        self,
        model: str | Path | Any | None = None,
        change: str | Sequence[int] | None = "a3gan-0",
        seed: int = 0,
        method: str = "a3gan",
        threshold: float = 0.35,
        device: str = "cpu",
        detector: Any | None = None,
        verify: bool = True,
        max_resample: int = 4,
        identity: str | Any | None = "dlib",
        match_threshold: float | None = None,
        batch_size: int = 16,
        color_match: bool = True,
        identity_weights: str | Path | None = None,
        smooth: float | None = None,
    ) -> None:
        method = str(method).strip().lower()
        if method not in METHODS:
            raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if max_resample < 0:
            raise InputError(f"max_resample must be >= 0, got {max_resample}")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.method = method
        self.seed = int(seed)
        self.device = str(device)
        self.verify = bool(verify)
        self.max_resample = int(max_resample)
        self.batch_size = int(batch_size)
        self.color_match = bool(color_match)
        if smooth is not None and not smooth >= 0:
            raise InputError(f"smooth must be >= 0, got {smooth}")
        self.G = None
        self.cfg = None
        self.model_path: Path | None = None
        self.mask_bits: list[int] | None = None
        if method == "a3gan":
            self._load_model(model)
            from a3gan.attributes import MaskError, parse_mask

            try:
                self.mask_bits = parse_mask(change, self.cfg.model.attributes)
            except MaskError as e:
                raise InputError(str(e)) from None
            self.resolution = int(self.cfg.model.resolution)
        self.smooth = float(smooth if smooth is not None else getattr(self.G, "inference_smooth", 0.0))
        if method != "a3gan":
            self.resolution = DEFAULT_BASELINE_RESOLUTION
        if detector is None:
            from a3gan.pipeline.detect import CenterFaceDetector

            detector = CenterFaceDetector(threshold=threshold)
        self.detector = detector
        self.identity = self._build_identity(identity, identity_weights) if verify else None
        if self.identity is None and verify and method == "a3gan":
            raise InputError("verified anonymization needs an identity network; pass verify=False to skip it")
        if match_threshold is not None:
            self.match_threshold: float | None = float(match_threshold)
        elif self.identity is not None:
            self.match_threshold = float(self.identity.threshold_cos)
        else:
            self.match_threshold = None

    # -- setup ---------------------------------------------------------------------------------------------------
    def _load_model(self, model: Any) -> None:
        import torch

        if isinstance(model, torch.nn.Module):
            if not hasattr(model, "cfg"):
                raise ModelError("a generator module passed as model must carry its ModelConfig as .cfg")
            from a3gan.config import Config

            self.G = model.to(self.device).eval()
            self.cfg = Config(model=model.cfg)
            return
        from a3gan.checkpoint import default_model_path, load_generator

        if model is None:
            path = Path(default_model_path())
            if not path.is_file():
                raise ModelError(
                    f"no default model is installed ({path.name} is missing from the package); "
                    "pass a checkpoint with --model PATH (Anonymizer(model=PATH))"
                )
        else:
            path = Path(model)
            if not path.is_file():
                raise ModelError(f"{path}: no such model file")
        self.model_path = path
        self.G, self.cfg, self.meta = load_generator(path, device=self.device)

    def _build_identity(self, identity: Any, weights: Any) -> Any | None:
        if identity is None or (isinstance(identity, str) and identity.strip().lower() == "none"):
            return None
        if not isinstance(identity, str):
            if not callable(identity) or not hasattr(identity, "threshold_cos"):
                raise InputError(
                    "an identity network object must be callable and have a threshold_cos attribute"
                )
            return identity
        try:
            from a3gan.identity import build_identity
        except ImportError as e:
            raise ModelError(f"identity network {identity!r} is not available ({e})") from None
        try:
            net = build_identity(identity, weights=weights, device=self.device)
        except A3GANError:
            raise
        except (ImportError, OSError, RuntimeError, ValueError) as e:
            raise ModelError(f"cannot build identity network {identity!r}: {e}") from None
        if hasattr(net, "eval"):
            net.eval()
        return net

    # -- public API ----------------------------------------------------------------------------------------------
    def detect(self, image: Any) -> Detections:
        """Faces in ``image`` (left to right) and the number ignored as too small."""
        arr = to_rgb_array(image)
        if hasattr(self.detector, "detect_all"):
            return self.detector.detect_all(arr)
        faces = list(self.detector.detect(arr))
        return Detections(faces, 0)

    def anonymize(
        self, image: Any, faces: Sequence[Face] | None = None, face_keys: FaceKeys = None
    ) -> AnonymizeResult:
        """Anonymize every face of one image. ``faces`` skips detection; ``face_keys`` see :meth:`anonymize_batch`."""
        return self.anonymize_batch(
            [image], None if faces is None else [faces], None if face_keys is None else [face_keys]
        )[0]

    def anonymize_batch(
        self,
        images: Sequence[Any],
        faces: Sequence[Sequence[Face] | None] | None = None,
        face_keys: Sequence[FaceKeys] | None = None,
    ) -> list[AnonymizeResult]:
        """Anonymize several images with batched generator calls over all their faces.

        faces: per image, pre-detected faces (or None to detect). face_keys: per image, a list of integer keys
        (one per face, in the order of that image's faces) or a callable ``faces -> keys``, or None for
        :func:`default_face_keys`. Faces with equal keys get equal f_z.
        """
        arrays = [to_rgb_array(im) for im in images]
        if faces is not None and len(faces) != len(arrays):
            raise InputError(f"got {len(arrays)} images but {len(faces)} face lists")
        if face_keys is not None and len(face_keys) != len(arrays):
            raise InputError(f"got {len(arrays)} images but {len(face_keys)} face-key lists")
        dets: list[Detections] = []
        items: list[_Item] = []
        for i, arr in enumerate(arrays):
            given = None if faces is None else faces[i]
            det = self.detect(arr) if given is None else Detections(list(given), 0)
            dets.append(det)
            keys = self._keys(det.faces, None if face_keys is None else face_keys[i])
            for f, k in zip(det.faces, keys, strict=True):
                items.append(_Item(i, align_face(arr, f, self.resolution), k))
        if items:
            if self.identity is not None:
                for it in items:
                    it.orig_v = self._verify_crop(arrays[it.img], it.af)
            if self.method == "a3gan":
                self._run_generator(items)
            else:
                self._run_baseline(items)
        results = []
        for i, arr in enumerate(arrays):
            out = arr.copy()
            face_results = []
            for it in (it for it in items if it.img == i):
                paste_back(out, it.new, it.af.M)
                f = it.af.face
                face_results.append(
                    FaceResult(
                        f.box,
                        f.score,
                        f.landmarks.copy(),
                        it.method_used,
                        it.similarity,
                        it.attempts,
                        it.fell_back,
                        it.key,
                    )
                )
            results.append(AnonymizeResult(out, face_results, dets[i].too_small))
        return results

    # -- internals -----------------------------------------------------------------------------------------------
    @staticmethod
    def _keys(faces: list[Face], spec: FaceKeys) -> list[int]:
        if spec is None:
            return default_face_keys(faces)
        keys = list(spec(faces)) if callable(spec) else list(spec)
        if len(keys) != len(faces):
            raise InputError(f"got {len(keys)} face keys for {len(faces)} faces")
        return [int(k) for k in keys]

    @property
    def verify_resolution(self) -> int:
        return max(self.resolution, VERIFY_RESOLUTION)

    def _verify_crop(self, image: np.ndarray, af: AlignedFace) -> np.ndarray:
        rv = self.verify_resolution
        if rv == af.resolution:
            return af.crop.astype(np.float32)
        return warp_to_crop(image, rescale_transform(af.M, rv / af.resolution), rv).astype(np.float32)

    def _as_pasted(self, it: _Item, new: np.ndarray) -> np.ndarray:
        """The face as paste-back will show it, at the verification resolution (float32 0..255)."""
        import cv2

        rv = self.verify_resolution
        if new.shape[0] != rv:
            new = np.clip(cv2.resize(new, (rv, rv), interpolation=cv2.INTER_CUBIC), 0, 255)
        return composite_crop(it.orig_v, new, face_mask(rv), color_match=False)

    def _embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """Identity embeddings (n, D) of float crops in 0..255, L2-normalised."""
        import torch

        out = []
        with torch.inference_mode():
            for s in range(0, len(crops), self.batch_size):
                x = crops_to_tensor(np.stack(crops[s : s + self.batch_size]), self.device)
                e = self.identity(x).float()
                out.append(torch.nn.functional.normalize(e, dim=1).cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def _generate(self, todo: list[_Item], attempt: int) -> list[np.ndarray]:
        import torch

        m_row = torch.tensor(self.mask_bits, dtype=torch.float32)
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for s in range(0, len(todo), self.batch_size):
                chunk = todo[s : s + self.batch_size]
                x = crops_to_tensor(np.stack([it.af.crop for it in chunk]), self.device)
                z = torch.cat(
                    [
                        self.G.sample_z(
                            1,
                            generator=torch.Generator().manual_seed(z_seed(self.seed, it.key, attempt)),
                            device=self.device,
                        )
                        for it in chunk
                    ]
                )
                m = m_row.to(self.device).unsqueeze(0).expand(len(chunk), -1)
                out.extend(smooth_crop(c, self.smooth) for c in tensor_to_crops(self.G(x, m, z)))
        return out

    def _run_generator(self, items: list[_Item]) -> None:
        mask = face_mask(self.resolution)
        orig_emb = self._embed([it.orig_v for it in items]) if self.verify else None
        pending = list(range(len(items)))
        for attempt in range(self.max_resample + 1 if self.verify else 1):
            gen = self._generate([items[i] for i in pending], attempt)
            for i, g in zip(pending, gen, strict=True):
                it = items[i]
                it.new = match_color(g, it.af.crop, mask) if self.color_match else g
                it.attempts = attempt + 1
                it.method_used = "a3gan"
            if not self.verify:
                return
            emb = self._embed([self._as_pasted(items[i], items[i].new) for i in pending])
            still = []
            for i, e in zip(pending, emb, strict=True):
                items[i].similarity = float(np.dot(orig_emb[i], e))
                if items[i].similarity >= self.match_threshold:
                    still.append(i)
            pending = still
            if not pending:
                return
        # still recognisable after every draw: fall back to pixelation for those faces
        pix = get_baseline("pixelate")
        for i in pending:
            it = items[i]
            it.new = pix(it.af.crop).astype(np.float32)
            it.method_used = "pixelate-fallback"
            it.fell_back = True
        for i, e in zip(
            pending, self._embed([self._as_pasted(items[i], items[i].new) for i in pending]), strict=True
        ):
            items[i].similarity = float(np.dot(orig_emb[i], e))

    def _run_baseline(self, items: list[_Item]) -> None:
        fn = get_baseline(self.method)
        for it in items:
            it.new = fn(it.af.crop).astype(np.float32)
            it.method_used = self.method
        if self.identity is not None:
            orig = self._embed([it.orig_v for it in items])
            comps = [self._as_pasted(it, it.new) for it in items]
            for it, o, e in zip(items, orig, self._embed(comps), strict=True):
                it.similarity = float(np.dot(o, e))

    def describe(self) -> dict[str, Any]:
        """Settings for a JSON report."""
        return {
            "method": self.method,
            "model": None if self.model_path is None else str(self.model_path),
            "mask": self.mask_bits,
            "seed": self.seed,
            "resolution": self.resolution,
            "verify": self.verify,
            "max_resample": self.max_resample,
            "match_threshold": self.match_threshold,
            "identity": getattr(self.identity, "name", None) if self.identity is not None else None,
            "detector": getattr(self.detector, "name", type(self.detector).__name__),
            "threshold": getattr(self.detector, "threshold", None),
        }
