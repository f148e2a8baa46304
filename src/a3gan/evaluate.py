"""The evaluation protocol of the paper (Sec. 5, Table 5, Fig. 4-6, ablations of Table 1) as one function.

``run_evaluation`` anonymizes every face of an identity-labelled set with each method and measures:

- anonymity (face verification): per recognizer, the share of (original, anonymized) pairs of the same image still
  verified, at thresholds calibrated on genuine/impostor pairs of the ORIGINALS at stated false-accept rates and at
  the recognizer's standard threshold; the same for (anonymized, OTHER original of the same person); rank-1
  re-identification against a gallery of the other originals (all selected identities, so every other identity is
  a distractor); mean cosine similarity;
- realism (face detection): per detector, the share of originally detected faces found again, mean confidence;
- controllability: attribute preservation / change per attribute (an evaluation-only classifier), eye and mouth
  state agreement (fatigue proxy), Procrustes landmark disparity (expression proxy);
- image quality: BRISQUE, a periodic (checkerboard) artifact score of the face crops' mean spectrum, FID (only with Inception weights given by path; else "n/a (weights unavailable)"),
  SSIM / PSNR of the background outside the face mask.

CelebA-aligned sets are cropped with :mod:`a3gan.geometry` and anonymized as crops (G on the crop; baselines on the
face mask of the crop). In-the-wild sets go through the photo pipeline (detect, align, anonymize, paste back) and
are measured on the re-aligned face crop (background on the full photo).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from a3gan.attributes import ATTRIBUTES, PRESETS, MaskError, parse_mask
from a3gan.errors import A3GANError, DataError, InputError, ModelError
from a3gan.metrics import verification as V
from a3gan.metrics.fid import FID_NA
from a3gan.metrics.report import jsonable, write_report

BASELINES = ("pixelate", "blur", "blackout")
DEFAULT_METHODS = ("a3gan-0", "a3gan-1", "a3gan-3", "a3gan-5", "a3gan-10", "pixelate", "blur", "blackout")
DEFAULT_DETECTORS = ("centerface", "dlib-hog")
KID_REF_N = 600  # reference faces for the realism score (KID-MF), none of them evaluated
KID_MIN_REF = 50
DEFAULT_FARS = (1e-3, 1e-2)
EVAL_RES_NO_MODEL = 128  # the paper's resolution, for baselines-only runs
MAX_IMPOSTOR = 50_000


# ----------------------------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------------------------


def _progress(enabled: bool):  # noqa: ANN202
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=False,
    )


class _Steps:
    """A rich progress bar per step; ``track(iterable, description, total)``."""

    def __init__(self, enabled: bool) -> None:
        self.p = _progress(enabled)

    def __enter__(self) -> _Steps:
        self.p.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.p.__exit__(*exc)

    def track(self, it: Iterable, description: str, total: int | None = None) -> Iterable:
        return self.p.track(it, total=total, description=description)


def _sha(s: str, n: int = 12) -> str:
    return hashlib.sha256(s.encode()).hexdigest()[:n]


def _brisque_summary(steps, images, label: str) -> dict:
    """Mean BRISQUE over ``images``; images BRISQUE cannot score (too small, flat) are counted, not guessed."""
    from a3gan.metrics import brisque as B

    scores, failed = [], 0
    for im in steps.track(images, label, len(images)):
        try:
            scores.append(B.brisque_score(im))
        except InputError:
            failed += 1
    return {"mean": float(np.mean(scores)) if scores else float("nan"), "n": len(scores), "failed": failed}


def _score_summary(name: str, images) -> dict:
    """An image-set score of the face crops from :mod:`a3gan.metrics.quality`: ``"grid"``
    (:func:`~a3gan.metrics.quality.periodic_artifact_score`), ``"colour"``
    (:func:`~a3gan.metrics.quality.colour_noise_score`) or ``"spectrum"`` (``LATTICE_RINGS`` rings of
    :func:`~a3gan.metrics.quality.radial_power_spectrum` on the u/v axes: the line-lattice measure, read as a
    ratio to the originals' by the report); ``score`` None when the crops do not allow it."""
    from a3gan.metrics import quality as Q
    from a3gan.spectrum import LATTICE_RINGS

    fn = {
        "grid": Q.periodic_artifact_score,
        "colour": Q.colour_noise_score,
        "spectrum": lambda im: Q.radial_power_spectrum(im, n_bins=LATTICE_RINGS, axes_only=True),
    }[name]
    try:
        return fn(np.asarray(images))
    except InputError as e:
        return {"score": None, "why": str(e)}


def _kid_summary(ctx: Any, crops: np.ndarray) -> dict:
    """Realism score KID-MF of face crops against the reference faces (:mod:`a3gan.metrics.kid`); ``score``
    None when no reference or no ONNX recognizer is available."""
    if ctx.kid_ref is None or ctx.kid_net is None:
        return {"score": None}
    from a3gan.metrics.kid import kid_by_group
    from a3gan.pipeline.align import crops_to_tensor

    return kid_by_group(ctx.kid_ref, ctx.kid_net.layer_stats(crops_to_tensor(crops)))


def _kid_reference(
    data: Path, faces: Faces, res: int, seed: int, recs: list, steps: _Steps
) -> tuple[Any, dict[int, np.ndarray] | None, str | None]:
    """(ONNX recognizer, its features of up to KID_REF_N aligned faces of ``data`` that are not evaluated, note).
    KID needs aligned crops (CelebA layout) and an ONNX recognizer such as MobileFace; otherwise (None, None,
    why)."""
    from a3gan.identity.onnx_recognizer import OnnxRecognizer

    net = next((r.net for r in recs if isinstance(r.net, OnnxRecognizer)), None)
    if net is None:
        return None, None, "realism score KID-MF not measured (no ONNX recognizer such as mobileface)"
    if not faces.aligned:
        return None, None, "realism score KID-MF not measured (it needs an aligned CelebA-layout set)"
    from a3gan.data._decode import DecodeFailure, decode_one
    from a3gan.data.identity_sets import load_identity_set
    from a3gan.pipeline.align import crops_to_tensor

    used = set(faces.keys)
    pool = [p for p, _ in load_identity_set(data, min_per_identity=1).items if _file_key(p) not in used]
    if len(pool) < 2 * KID_MIN_REF:
        return (
            None,
            None,
            f"realism score KID-MF not measured (only {len(pool)} faces outside the evaluated set)",
        )
    rng = np.random.default_rng(seed + 1)
    crops = []
    for i in steps.track(
        sorted(rng.choice(len(pool), min(KID_REF_N, len(pool)), replace=False)), "KID reference faces"
    ):
        try:
            crops.append(decode_one(str(pool[i]), res))
        except DecodeFailure:
            continue
    if len(crops) < KID_MIN_REF:
        return None, None, "realism score KID-MF not measured (reference faces failed to decode)"
    return net, net.layer_stats(crops_to_tensor(np.stack(crops))), None


def _file_sha(path: str | Path, n: int = 16) -> str:
    from a3gan.identity.base import file_sha256

    return file_sha256(path, n)


class ArrayCache:
    """A persistent ``key -> float32 vector`` store (one ``.npz``), for embeddings of ORIGINAL images."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, np.ndarray] = {}
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    for k, v in zip(z["keys"].tolist(), z["values"], strict=True):
                        self.data[str(k)] = v
            except (OSError, ValueError, KeyError):
                self.data = {}  # a corrupt cache is rebuilt, never trusted
        self.hits = 0
        self.misses = 0

    def get(self, keys: Sequence[str], compute: Callable[[list[int]], np.ndarray]) -> np.ndarray:
        missing = [i for i, k in enumerate(keys) if k not in self.data]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            vals = np.asarray(compute(missing), dtype=np.float32)
            for i, v in zip(missing, vals, strict=True):
                self.data[keys[i]] = v
            self.save()
        return np.stack([self.data[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.data)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(tmp, keys=np.asarray(keys), values=np.stack([self.data[k] for k in keys]))
        tmp.replace(self.path)


class JsonCache:
    """A persistent ``key -> JSON value`` store, for detections and scores of ORIGINAL images."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            self.data = {}

    def get(self, keys: Sequence[str], compute: Callable[[int], Any]) -> list[Any]:
        changed = False
        for i, k in enumerate(keys):
            if k not in self.data:
                self.data[k] = compute(i)
                changed = True
        if changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(jsonable(self.data)))
            tmp.replace(self.path)
        return [self.data[k] for k in keys]


# ----------------------------------------------------------------------------------------------------------------
# methods
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Method:
    """One row of the report: an A3GAN mask of one checkpoint, or a naive baseline."""

    name: str
    kind: str  # "a3gan" | "baseline"
    mask: list[int] | None = None
    model: str | None = None  # name of the checkpoint (key of the models dict)


def parse_methods(spec: str | Sequence[str], attributes: Sequence[str] = ATTRIBUTES) -> list[Method]:
    """``"a3gan-0,a3gan-5,pixelate"`` -> methods. An A3GAN method is ``a3gan-<preset>`` or ``a3gan:<mask>`` with
    any mask spelling of :func:`a3gan.attributes.parse_mask` (bits or attribute names separated by ``+``)."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not items:
        raise InputError("no method given; e.g. --methods a3gan-0,a3gan-5,pixelate,blur,blackout")
    out: list[Method] = []
    for raw in items:
        low = raw.lower()
        if low in BASELINES:
            out.append(Method(low, "baseline"))
            continue
        if low.startswith("a3gan:"):
            mask_spec = raw.split(":", 1)[1].replace("+", ",")
        elif low in PRESETS:
            mask_spec = low
        else:
            raise InputError(
                f"unknown method {raw!r}; choose from {', '.join(DEFAULT_METHODS)} or a3gan:<mask> "
                "(e.g. a3gan:Male+Young)"
            )
        try:
            bits = parse_mask(mask_spec, attributes)
        except MaskError as e:
            raise InputError(f"method {raw!r}: {e}") from None
        out.append(Method(raw if low not in PRESETS else low, "a3gan", bits))
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise InputError(f"a method is listed twice: {', '.join(names)}")
    return out


def parse_models(model: str | Path | None, models: Sequence[str] | str | None) -> dict[str, Path]:
    """``--model PATH`` and ``--models name=path,name=path`` -> ordered {name: path} (the first is the main one)."""
    out: dict[str, Path] = {}
    if model:
        out["a3gan"] = Path(model)
    items: list[str] = []
    if models:
        for m in [models] if isinstance(models, str) else models:
            items += [s.strip() for s in str(m).split(",") if s.strip()]
    for it in items:
        if "=" in it:
            name, path = (s.strip() for s in it.split("=", 1))
        else:
            path = it
            name = Path(it).stem
        if not name or not path:
            raise InputError(f"--models entries look like name=path, got {it!r}")
        if name in out:
            raise InputError(f"model name {name!r} is used twice")
        out[name] = Path(path)
    for name, p in out.items():
        if not p.is_file():
            raise ModelError(f"model {name!r}: {p}: no such file")
    return out


def _ablation_label(cfg: Any) -> str:
    m = cfg.model
    parts = []
    if m.skip != "scu":
        parts.append("w/ STU" if m.skip == "stu" else "w/o SCU")
    if not m.use_mask:
        parts.append("w/o mask")
    if m.inject != "adain":
        parts.append("w/o AdaIN")
    return "A3GAN " + (", ".join(parts) if parts else "(full)")


# ----------------------------------------------------------------------------------------------------------------
# recognizers
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Recognizer:
    """A face recognizer used as a judge: ``net(x)`` on crop-geometry tensors in [-1, 1] -> normalised (B, D)."""

    name: str
    net: Any
    threshold_cos: float
    info: dict[str, Any]
    key: str  # cache key: name + weights hash

    def embed(self, crops: np.ndarray, batch: int = 32) -> np.ndarray:
        import torch

        from a3gan.pipeline.align import crops_to_tensor

        out = []
        with torch.no_grad():
            for i in range(0, len(crops), batch):
                e = self.net(crops_to_tensor(crops[i : i + batch]))
                out.append(torch.nn.functional.normalize(e.float(), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def build_recognizers(specs: Sequence[Any] | None, device: str = "cpu") -> tuple[list[Recognizer], list[str]]:
    """Recognizers from specs: ``"dlib"``, ``"mobileface"`` (the shared ONNX model), a path (``.onnx``: an ONNX
    recognizer with mobileface's input convention; a FaceRes ``.safetensors`` from scripts/convert_faceres.py;
    other ``.pth``/``.pt``/``.safetensors``: ArcFace), or an object
    with ``__call__``, ``threshold_cos`` (and optionally ``name``, ``describe()``). None: dlib + mobileface (when
    its file is present). Returns (recognizers, notes)."""
    from a3gan.identity import build_identity, default_mobileface_path

    notes: list[str] = []
    if specs is None or len(specs) == 0:
        specs = ["dlib"]
        if default_mobileface_path().is_file():
            specs.append("mobileface")
        else:
            notes.append(f"mobileface not evaluated: {default_mobileface_path()} is absent")
    out: list[Recognizer] = []
    for s in specs:
        if not isinstance(s, str | Path):
            if not callable(s) or not hasattr(s, "threshold_cos"):
                raise InputError("a recognizer object must be callable and have a threshold_cos attribute")
            name = str(getattr(s, "name", type(s).__name__))
            info = s.describe() if hasattr(s, "describe") else {"name": name}
            out.append(Recognizer(name, s, float(s.threshold_cos), info, _sha(json.dumps(info, default=str))))
            continue
        spec = str(s)
        low = spec.lower()
        try:
            if low in ("dlib", "mobileface"):
                net = build_identity(low, device=device)
            else:
                p = Path(spec)
                if not p.is_file():
                    raise ModelError(f"recognizer {spec!r}: no such file (or use 'dlib' / 'mobileface')")
                from a3gan.identity.faceres import is_faceres_file

                kind = (
                    "mobileface" if p.suffix.lower() == ".onnx" else "faceres" if is_faceres_file(p) else "arcface"
                )
                net = build_identity(kind, weights=p, device=device)
        except A3GANError:
            raise
        except (ImportError, OSError, RuntimeError, ValueError) as e:
            raise ModelError(f"cannot build recognizer {spec!r}: {e}") from None
        if hasattr(net, "eval"):
            net.eval()
        info = net.describe() if hasattr(net, "describe") else {"name": low}
        name = str(info.get("name", low))
        if any(r.name == name for r in out):
            name = f"{name}-{len(out)}"
        key = _sha(json.dumps(info, sort_keys=True, default=str))
        out.append(Recognizer(name, net, float(net.threshold_cos), info, key))
    return out, notes


# ----------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Faces:
    """The evaluated faces: original crops (N, R, R, 3) uint8 with identity labels; for in-the-wild photos also
    the full images and the alignment of each face (to anonymize through the pipeline)."""

    keys: list[str]
    labels: np.ndarray
    crops: np.ndarray
    aligned: bool
    attr_truth: np.ndarray | None = None  # (N, K) 0/1 when the set has CelebA attribute labels
    photos: list[np.ndarray] = field(default_factory=list)
    faces: list[Any] = field(default_factory=list)  # pipeline Face per photo (in the wild)
    skipped: list[str] = field(default_factory=list)
    # every CelebA label (names, (N, 40)), for "which faces stay recognisable"
    all_labels: tuple[list[str], np.ndarray] | None = None


def _load_faces(
    data: Path, limit: int | None, seed: int, res: int, min_per_identity: int, steps: _Steps
) -> Faces:
    from a3gan.data.identity_sets import load_identity_set

    ds = load_identity_set(data, limit=limit, min_per_identity=min_per_identity, seed=seed)
    if ds.n_identities < 2:
        raise DataError(f"{data}: evaluation needs at least 2 identities with {min_per_identity}+ images")
    keys, labels, crops, skipped = [], [], [], []
    photos, faces = [], []
    if ds.aligned:
        from a3gan.data._decode import DecodeFailure, decode_one

        for p, lab in steps.track(ds.items, "decode original crops", len(ds)):
            try:
                crops.append(decode_one(str(p), res))
            except DecodeFailure as e:
                raise DataError(f"{p}: {e}") from None
            keys.append(_file_key(p))
            labels.append(lab)
    else:
        from a3gan.pipeline.align import align_face
        from a3gan.pipeline.detect import CenterFaceDetector
        from a3gan.pipeline.io import read_image

        det = CenterFaceDetector()
        for p, lab in steps.track(ds.items, "detect + align faces", len(ds)):
            img = read_image(p)
            found = det.detect(img)
            if not found:
                skipped.append(str(p))
                continue
            f = max(found, key=lambda f: f.size * f.score)
            crops.append(align_face(img, f, res).crop)
            photos.append(img)
            faces.append(f)
            keys.append(f"{_file_key(p)}#{','.join(f'{v:.1f}' for v in f.box)}")
            labels.append(lab)
    if len(crops) < 3:
        raise DataError(f"{data}: fewer than 3 usable faces")
    names = [Path(k.split("|")[0]).name for k in keys]
    attr_truth = all_labels = None
    if ds.layout == "celeba":
        attr_truth = _attr_labels(ds.root, names)
        all_labels = _attr_labels(ds.root, names, None)
    return Faces(
        keys, np.asarray(labels), np.stack(crops), ds.aligned, attr_truth, photos, faces, skipped, all_labels
    )


def _file_key(p: str | Path) -> str:
    """Cache key of an image file: resolved path, size and modification time (a changed file is re-embedded)."""
    st = Path(p).stat()
    return f"{Path(p).resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _attr_labels(root: Path, names: list[str], attributes=ATTRIBUTES):
    """0/1 labels (N, K) of the paper's attributes for the files ``names``; ``attributes=None``: every column of
    the file, returned as ``(column names, labels)``. None when the file or a row is missing."""
    from a3gan.data.celeba import ATTR_FILE, read_attr_file

    if not (root / ATTR_FILE).is_file():
        return None
    table = read_attr_file(root / ATTR_FILE, attributes)
    idx = {f: i for i, f in enumerate(table.files)}
    if not all(n in idx for n in names):
        return None
    values = table.values[[idx[n] for n in names]]
    return values if attributes is not None else (list(table.names), values)


# ----------------------------------------------------------------------------------------------------------------
# the attribute classifier (evaluation only)
# ----------------------------------------------------------------------------------------------------------------


def _attribute_classifier(
    data: Path,
    eval_labels: set[int],
    min_per_identity: int,
    given: Path | None,
    cache: Path,
    seed: int,
    steps: _Steps,
    max_train: int = 6000,
    epochs: int = 4,
) -> tuple[Any, dict[str, Any]]:
    """Load ``given`` or the cached classifier, or train one on the CelebA identities that have FEWER than
    ``min_per_identity`` images (never evaluated, so disjoint from every evaluation set of this folder)."""
    from a3gan.metrics.attributes import AttributeNet

    if given is not None:
        net = AttributeNet.load(given)
        return net, {"path": str(given), "trained_here": False, **net.meta}
    from a3gan.data._decode import DecodeFailure, decode_one
    from a3gan.data.celeba import ATTR_FILE, IDENTITY_FILE, IMG_DIR, read_attr_file, read_label_file

    if not (data / ATTR_FILE).is_file() or not (data / IDENTITY_FILE).is_file():
        raise DataError(f"{data}: training the attribute classifier needs {ATTR_FILE} and {IDENTITY_FILE}")
    ids = read_label_file(data / IDENTITY_FILE, "identity")
    table = read_attr_file(data / ATTR_FILE, ATTRIBUTES)
    counts: dict[int, int] = {}
    for f in table.files:
        if f in ids:
            counts[ids[f]] = counts.get(ids[f], 0) + 1
    train = [
        i
        for i, f in enumerate(table.files)
        if f in ids
        and counts[ids[f]] < min_per_identity
        and ids[f] not in eval_labels
        and (data / IMG_DIR / f).is_file()
    ]
    rng = np.random.default_rng(seed)
    if len(train) > max_train:
        train = sorted(rng.choice(train, size=max_train, replace=False).tolist())
    split = (
        f"trained on {len(train)} images of CelebA identities with fewer than {min_per_identity} images in {data} "
        f"(evaluation only uses identities with {min_per_identity}+ images, so the sets are identity-disjoint)"
    )
    key = _sha(f"{data.resolve()}|{split}|{seed}|{epochs}")
    path = cache / f"attr-classifier-{key}.safetensors"
    if path.is_file():
        net = AttributeNet.load(path)
        return net, {"path": str(path), "trained_here": False, "cached": True, **net.meta}
    if len(train) < 256:
        raise DataError(f"{data}: only {len(train)} images to train the attribute classifier (need 256+)")
    imgs = []
    for i in steps.track(train, "decode classifier training set", len(train)):
        try:
            imgs.append(decode_one(str(data / IMG_DIR / table.files[i]), 64))
        except DecodeFailure as e:
            raise DataError(f"{data / IMG_DIR / table.files[i]}: {e}") from None
    net = AttributeNet(ATTRIBUTES)
    bar = steps.p.add_task("train attribute classifier", total=None)

    def cb(step: int, total: int) -> None:
        steps.p.update(bar, completed=step, total=total)

    stats = net.fit(np.stack(imgs), table.values[train], epochs=epochs, seed=seed, progress=cb)
    net.meta = {"split": split, "train_stats": stats, "attributes": list(ATTRIBUTES)}
    net.save(path)
    return net, {"path": str(path), "trained_here": True, **net.meta}


# ----------------------------------------------------------------------------------------------------------------
# anonymization of crops
# ----------------------------------------------------------------------------------------------------------------


def _face_region(res: int) -> np.ndarray:
    """(R, R) float mask of the face in crop geometry: the photo pipeline's feathered face mask."""
    from a3gan.pipeline.blend import face_mask

    return np.asarray(face_mask(res), np.float32)


def _resize(crops: np.ndarray, res: int) -> np.ndarray:
    if crops.shape[1] == res:
        return crops
    from PIL import Image

    return np.stack(
        [np.asarray(Image.fromarray(c).resize((res, res), Image.Resampling.LANCZOS)) for c in crops]
    )


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(np.asarray(x, np.float64) + 0.5), 0, 255).astype(np.uint8)


def _run_generator(
    G: Any, crops: np.ndarray, mask: list[int], seed: int, device: str, batch: int = 16
) -> np.ndarray:
    import torch

    from a3gan.pipeline.align import crops_to_tensor, tensor_to_crops
    from a3gan.pipeline.blend import smooth_crop

    res = int(G.cfg.resolution)
    src = _resize(crops, res)
    out = []
    gen = torch.Generator().manual_seed(int(seed))
    m_all = torch.tensor(mask, dtype=torch.float32)
    with torch.no_grad():
        for i in range(0, len(src), batch):
            x = crops_to_tensor(src[i : i + batch], device)
            z = G.sample_z(len(x), generator=gen, device=device)
            y = G(x, m_all.to(device).expand(len(x), -1), z)
            sigma = getattr(G, "inference_smooth", 0.0)  # the model's post-filter, as the pipeline applies it
            out.append(_to_uint8(np.stack([smooth_crop(c, sigma) for c in tensor_to_crops(y)])))
    return _resize(np.concatenate(out), crops.shape[1])


def _anonymize(
    method: Method, faces: Faces, G: Any | None, seed: int, device: str, region: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Anonymized crops (N, R, R, 3) uint8 and, in the wild, the anonymized full photos."""
    from a3gan.pipeline.baselines import apply_baseline

    if faces.aligned:
        if method.kind == "baseline":
            return np.stack([_to_uint8(apply_baseline(c, method.name, region)) for c in faces.crops]), None
        return _run_generator(G, faces.crops, method.mask or [], seed, device), None
    from a3gan.pipeline.align import align_face
    from a3gan.pipeline.anonymizer import Anonymizer

    anon = Anonymizer(
        model=G,
        change=method.mask,
        seed=seed,
        method="a3gan" if method.kind == "a3gan" else method.name,
        device=device,
        detector=_NoDetector(),
        verify=False,
        identity=None,
    )
    res = faces.crops.shape[1]
    outs, crops = [], []
    for img, f in zip(faces.photos, faces.faces, strict=True):
        r = anon.anonymize(img, faces=[f])
        outs.append(r.image)
        crops.append(align_face(r.image, f, res).crop)
    return np.stack(crops), outs


class _NoDetector:
    """Faces are always given to the Anonymizer during evaluation."""

    min_face_size = 0.0

    def detect(self, image: np.ndarray) -> list:  # noqa: ARG002
        return []


# ----------------------------------------------------------------------------------------------------------------
# per-method measurements
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _Context:
    faces: Faces
    recs: list[Recognizer]
    orig_emb: dict[str, np.ndarray]
    thresholds: dict[str, dict[str, V.Threshold]]
    same_id_other: np.ndarray  # (N, N) bool: same identity, different image
    detectors: dict[str, Any]
    orig_hits: dict[str, list[list]]
    lm_pred: Any
    orig_lm: list[np.ndarray | None]
    lm_boxes: list[tuple[float, float, float, float]]
    attr_net: Any
    orig_attr: np.ndarray | None
    region: np.ndarray
    fid: Any
    fars: tuple[float, ...]
    kid_net: Any = None  # the ONNX recognizer whose layers give the realism features (metrics/kid.py)
    kid_ref: dict[int, np.ndarray] | None = None  # its features of the reference faces (not evaluated ones)


def _verification(ctx: _Context, rec: Recognizer, emb: np.ndarray) -> dict[str, Any]:
    o = ctx.orig_emb[rec.name]
    cos_same = V.cosine_similarity(o, emb)
    sim = V.cosine_matrix(emb, o)
    cross = sim[ctx.same_id_other]
    out: dict[str, Any] = {"mean_cos": float(cos_same.mean()), "mean_cos_other_images": float(cross.mean())}
    for tname, th in ctx.thresholds[rec.name].items():
        out[tname] = {
            "same_image": V.verification_rate(cos_same, th.value),
            "other_images": V.verification_rate(cross, th.value),
            "same_image_verified": (cos_same >= th.value).astype(int).tolist(),  # per face, for the analysis
        }
    n = len(o)
    out["rank1"] = V.rank1_reid(emb, ctx.faces.labels, o, ctx.faces.labels, exclude=np.eye(n, dtype=bool))
    return out


def _hits_json(hits: list) -> list[list[float]]:
    return [[*h.box, h.score] for h in hits]


def _hits(js: list[list[float]]) -> list:
    from a3gan.metrics.detection import Hit

    return [Hit(tuple(h[:4]), h[4]) for h in js]


def _measure(
    ctx: _Context,
    name: str,
    anon: np.ndarray,
    photos: list[np.ndarray] | None,
    mask: list[int] | None,
    steps: _Steps,
) -> dict[str, Any]:
    from a3gan.metrics import attributes as A
    from a3gan.metrics import detection as D
    from a3gan.metrics import landmarks as L

    row: dict[str, Any] = {"verification": {}, "detection": {}}
    for rec in ctx.recs:
        row["verification"][rec.name] = _verification(ctx, rec, rec.embed(anon))
    for dname, det in ctx.detectors.items():
        hits = [_hits_json(det(a)) for a in steps.track(anon, f"{name}: detect ({dname})", len(anon))]
        row["detection"][dname] = D.redetection(
            [_hits(h) for h in ctx.orig_hits[dname]], [_hits(h) for h in hits]
        )
    # landmarks on the original face's box, in both images
    pairs_o, pairs_a = [], []
    for i, a in enumerate(anon):
        if ctx.orig_lm[i] is not None:
            pairs_o.append(ctx.orig_lm[i])
            pairs_a.append(ctx.lm_pred(a, ctx.lm_boxes[i]))
    row["landmarks"] = L.summarize(pairs_o, pairs_a)
    if ctx.attr_net is not None and ctx.orig_attr is not None:
        pa = ctx.attr_net.predict(anon)
        row["attributes"] = A.preservation(
            ctx.orig_attr, pa, mask if mask is not None else [0] * len(ATTRIBUTES)
        )
        row["attributes"]["mask"] = mask
    row["brisque"] = _brisque_summary(steps, anon, f"{name}: BRISQUE")
    row["grid"] = _score_summary("grid", anon)
    row["colour"] = _score_summary("colour", anon)
    row["spectrum"] = _score_summary("spectrum", anon)
    row["kid"] = _kid_summary(ctx, anon)
    if ctx.fid is not None:
        ctx.fid.reset_fake()
        for i in range(0, len(anon), 32):
            ctx.fid.update(list(anon[i : i + 32]), real=False)
        row["fid"] = {"value": ctx.fid.compute(), "n_real": ctx.fid.n_real, "n_fake": ctx.fid.n_fake}
    else:
        row["fid"] = {"value": FID_NA}
    row["background"] = _background(ctx, anon, photos)
    return row


def _background(ctx: _Context, anon: np.ndarray, photos: list[np.ndarray] | None) -> dict[str, float]:
    from a3gan.metrics import quality as Q

    ss, ps = [], []
    if photos is None:
        face = ctx.region > 0.0
        for o, a in zip(ctx.faces.crops, anon, strict=True):
            q = Q.background_quality(o, a, face)
            ss.append(q["ssim"])
            ps.append(q["psnr"])
    else:
        from a3gan.pipeline.align import align_face, warp_from_crop

        res = ctx.faces.crops.shape[1]
        for img, out, f in zip(ctx.faces.photos, photos, ctx.faces.faces, strict=True):
            af = align_face(img, f, res)
            patch, (x0, y0, x1, y1) = warp_from_crop(
                np.ones((res, res), np.float32) * (ctx.region > 0), af.M, img.shape
            )
            face = np.zeros(img.shape[:2], bool)
            face[y0:y1, x0:x1] = patch > 0
            q = Q.background_quality(img, out, face)
            ss.append(q["ssim"])
            ps.append(q["psnr"])
    finite = [p for p in ps if math.isfinite(p)]
    return {
        "ssim": float(np.mean(ss)),
        "psnr": float(np.mean(finite)) if finite else float("inf"),
        "psnr_identical_share": float(np.mean([not math.isfinite(p) for p in ps])),
    }


# ----------------------------------------------------------------------------------------------------------------
# the protocol
# ----------------------------------------------------------------------------------------------------------------


def run_evaluation(
    data: str | Path,
    model: str | Path | None = None,
    methods: str | Sequence[str] = DEFAULT_METHODS,
    out: str | Path = "report",
    limit: int | None = 300,
    seed: int = 0,
    device: str = "cpu",
    recognizers: Sequence[Any] | None = None,
    inception: str | Path | None = None,
    models: Sequence[str] | str | None = None,
    detectors: Sequence[str] = DEFAULT_DETECTORS,
    attr_classifier: str | Path | None = None,
    min_per_identity: int = 3,
    fars: Sequence[float] = DEFAULT_FARS,
    progress: bool = True,
    classifier_max_train: int = 6000,
    classifier_epochs: int = 4,
) -> dict[str, Any]:
    """Evaluate methods on an identity-labelled set and write ``report.md``, ``report.json`` and plots to ``out``.

    Returns the report dict (the content of report.json). See the module docstring for what is measured.
    ``models``: extra checkpoints ``name=path`` for the ablation table (each run with the A3GAN-5 mask, as in the
    paper's Table 1). ``recognizers``: specs for :func:`build_recognizers` (None: dlib + mobileface).
    """
    t_start = time.time()
    data = Path(data).expanduser()
    outdir = Path(out).expanduser()
    if limit is not None and (isinstance(limit, bool) or int(limit) < 3):
        raise InputError(f"--limit must be at least 3 images, got {limit}")
    fars = tuple(float(f) for f in fars)
    if not fars or any(not 0 < f < 1 for f in fars):
        raise InputError(f"false-accept rates must be in (0, 1), got {fars}")
    if min_per_identity < 2:
        raise InputError("min_per_identity must be at least 2 (re-identification needs another image)")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{outdir}: cannot create the report folder ({e.strerror})") from None
    cache = outdir / "cache"
    cache.mkdir(exist_ok=True)

    # --- models and methods ------------------------------------------------------------------------------------
    model_paths = parse_models(model, models)
    method_list = parse_methods(methods)
    if any(m.kind == "a3gan" for m in method_list) and "a3gan" not in model_paths:
        raise InputError("A3GAN methods need a checkpoint: pass --model PATH (or list only baselines)")
    from a3gan.checkpoint import load_generator

    gens: dict[str, tuple[Any, Any, dict]] = {}
    for name, p in model_paths.items():
        G, cfg, meta = load_generator(p, device=device)
        G.cfg = cfg.model
        gens[name] = (G, cfg, meta)
    main_cfg = gens["a3gan"][1] if "a3gan" in gens else (next(iter(gens.values()))[1] if gens else None)
    res = int(main_cfg.model.resolution) if main_cfg is not None else EVAL_RES_NO_MODEL
    for name, (_, cfg, _) in gens.items():
        if tuple(cfg.model.attributes) != ATTRIBUTES:
            raise ModelError(
                f"model {name!r} uses attributes {cfg.model.attributes}; evaluation needs the paper's 10"
            )
    rows_spec: list[tuple[Method, str | None]] = [
        (m, "a3gan" if m.kind == "a3gan" else None) for m in method_list
    ]
    ablation_names = [n for n in gens if n != "a3gan"]
    for n in ablation_names:
        rows_spec.append((Method(f"{n} (a3gan-5)", "a3gan", parse_mask("a3gan-5"), n), n))

    notes: list[str] = []
    with _Steps(progress) as steps:
        faces = _load_faces(data, limit, seed, res, min_per_identity, steps)
        if faces.skipped:
            notes.append(f"{len(faces.skipped)} images without a detected face were skipped")
        n = len(faces.keys)
        region = _face_region(res)

        # --- recognizers, thresholds on originals ----------------------------------------------------------------
        recs, rnotes = build_recognizers(recognizers, device)
        notes += rnotes
        orig_emb: dict[str, np.ndarray] = {}
        thresholds: dict[str, dict[str, V.Threshold]] = {}
        rec_info: list[dict[str, Any]] = []
        gen_pairs, imp_pairs = V.pair_indices(faces.labels, max_impostor=MAX_IMPOSTOR, seed=seed)
        if len(gen_pairs) == 0:
            raise DataError("no genuine pair among the selected images (every identity needs 2+ images)")
        for rec in recs:
            c = ArrayCache(cache / f"emb-{rec.name}-{rec.key}-r{res}.npz")
            keys = faces.keys
            e = c.get(keys, lambda idx, rec=rec: rec.embed(faces.crops[idx]))
            orig_emb[rec.name] = e
            g = np.sum(e[gen_pairs[:, 0]] * e[gen_pairs[:, 1]], axis=1)
            im = np.sum(e[imp_pairs[:, 0]] * e[imp_pairs[:, 1]], axis=1)
            th = {f"far={f:g}": V.calibrate_threshold(g, im, f) for f in fars}
            th["standard"] = V.fixed_threshold(g, im, rec.threshold_cos)
            thresholds[rec.name] = th
            rec_info.append(
                {
                    "name": rec.name,
                    "info": rec.info,
                    "roc_auc_originals": V.roc_auc(g, im),
                    "thresholds": {k: v.to_dict() for k, v in th.items()},
                    "cache": {"hits": c.hits, "computed": c.misses},
                    "used_in_training": _used_in_training(rec, gens),
                }
            )
        labels = faces.labels
        same_other = (labels[:, None] == labels[None, :]) & ~np.eye(n, dtype=bool)

        # --- detectors, landmarks, attributes, BRISQUE of originals ------------------------------------------------
        from a3gan.metrics import detection as D
        from a3gan.metrics import landmarks as L

        dets: dict[str, Any] = {}
        for dn in detectors:
            try:
                dets[dn] = D.build_detector(dn, res)
            except ModelError as e:
                notes.append(f"detector {dn} unavailable: {e}")
        orig_hits: dict[str, list[list]] = {}
        for dn, det in dets.items():
            jc = JsonCache(cache / f"det-{dn}-r{res}.json")
            bar = steps.p.add_task(f"original: detect ({dn})", total=n)

            def detect_one(i: int, det: Any = det, bar: Any = bar) -> list[list[float]]:
                steps.p.advance(bar)
                return _hits_json(det(faces.crops[i]))

            orig_hits[dn] = jc.get(faces.keys, detect_one)
            steps.p.update(bar, completed=n)
        lm_pred = L.LandmarkPredictor()
        hog = dets.get("dlib-hog")
        lm_boxes, orig_lm = [], []
        default_box = (0.23 * res, 0.30 * res, 0.82 * res, 0.89 * res)  # mean dlib HOG box on CelebA crops
        for i in range(n):
            hits = orig_hits.get("dlib-hog", [])[i] if hog is not None else []
            box = tuple(max(hits, key=lambda h: h[4])[:4]) if hits else default_box
            lm_boxes.append(box)
            orig_lm.append(lm_pred(faces.crops[i], box))

        attr_net, attr_info, orig_attr = None, None, None
        if faces.attr_truth is not None or attr_classifier is not None:
            try:
                attr_net, attr_info = _attribute_classifier(
                    data,
                    set(labels.tolist()),
                    min_per_identity,
                    Path(attr_classifier) if attr_classifier else None,
                    cache,
                    seed,
                    steps,
                    classifier_max_train,
                    classifier_epochs,
                )
            except DataError as e:
                notes.append(f"attribute classifier unavailable: {e}")
        if attr_net is not None:
            from a3gan.metrics.attributes import balanced_accuracy, per_attribute_accuracy

            orig_attr = attr_net.predict(faces.crops)
            if faces.attr_truth is not None:
                attr_info["heldout_accuracy"] = dict(
                    zip(ATTRIBUTES, per_attribute_accuracy(orig_attr, faces.attr_truth).tolist(), strict=True)
                )
                attr_info["heldout_balanced_accuracy"] = dict(
                    zip(ATTRIBUTES, balanced_accuracy(orig_attr, faces.attr_truth).tolist(), strict=True)
                )
                attr_info["heldout_n"] = n
        else:
            notes.append("attribute preservation not measured (no attribute labels and no --attr-classifier)")

        fid = None
        if inception is not None:
            from a3gan.metrics.fid import FIDScorer

            fid = FIDScorer(inception, device=device)
            for i in range(0, n, 32):
                fid.update(list(faces.crops[i : i + 32]), real=True)

        kid_net, kid_ref, kid_note = _kid_reference(data, faces, res, seed, recs, steps)
        if kid_note:
            notes.append(kid_note)

        ctx = _Context(
            faces,
            recs,
            orig_emb,
            thresholds,
            same_other,
            dets,
            orig_hits,
            lm_pred,
            orig_lm,
            lm_boxes,
            attr_net,
            orig_attr,
            region,
            fid,
            fars,
            kid_net,
            kid_ref,
        )
        rows = [_original_row(ctx, steps)]
        for method, gname in rows_spec:
            t0 = time.time()
            G = gens[gname][0] if gname else None
            anon, photos = _anonymize(method, faces, G, seed, device, region)
            row = _measure(ctx, method.name, anon, photos, method.mask, steps)
            row.update(
                {"method": method.name, "kind": method.kind, "model": gname, "seconds": time.time() - t0}
            )
            if gname:
                row["config"] = gens[gname][1].model.__dict__ | {"label": _ablation_label(gens[gname][1])}
            rows.append(row)
            if method.kind == "a3gan" and method.name.startswith("a3gan") and gname == "a3gan":
                _save_examples(outdir, method.name, faces.crops[:8], anon[:8])
            elif method.kind == "baseline":
                _save_examples(outdir, method.name, faces.crops[:8], anon[:8])

    report = {
        "settings": {
            "data": str(data.resolve()),
            "aligned": faces.aligned,
            "limit": limit,
            "seed": seed,
            "device": device,
            "n_images": n,
            "n_identities": int(len(set(labels.tolist()))),
            "min_per_identity": min_per_identity,
            "resolution": res,
            "fars": list(fars),
            "methods": [m.name for m, _ in rows_spec],
            "models": {
                k: {
                    "path": str(v),
                    "sha256": _file_sha(v),
                    "config": json.loads(gens[k][1].to_json()),
                    "meta": gens[k][2],
                }
                for k, v in model_paths.items()
            },
            "detectors": list(dets),
            "inception": str(inception) if inception else None,
            "n_genuine_pairs": int(len(gen_pairs)),
            "n_impostor_pairs": int(len(imp_pairs)),
            "seconds": time.time() - t_start,
        },
        "recognizers": rec_info,
        "attribute_classifier": attr_info,
        "rows": rows,
        "notes": notes,
        "ablation": [r["method"] for r in rows if r.get("model") not in (None, "a3gan")],
    }
    if faces.all_labels is not None:
        report["face_labels"] = {"names": faces.all_labels[0], "values": faces.all_labels[1].tolist()}
    write_report(report, outdir)
    return jsonable(report)


def _used_in_training(rec: Recognizer, gens: dict[str, tuple[Any, Any, dict]]) -> bool:
    ids = {cfg.train.identity for _, cfg, _ in gens.values()}
    return rec.name.lower().startswith("dlib") and "dlib" in ids


def _original_row(ctx: _Context, steps: _Steps) -> dict[str, Any]:
    """The "Original" row: the judges on the unmodified faces (genuine pairs of different images, detection of the
    originals, classifier accuracy, BRISQUE of the originals)."""

    row: dict[str, Any] = {"method": "Original", "kind": "original", "verification": {}, "detection": {}}
    n = len(ctx.faces.keys)
    for rec in ctx.recs:
        o = ctx.orig_emb[rec.name]
        cross = V.cosine_matrix(o, o)[ctx.same_id_other]
        v: dict[str, Any] = {"mean_cos": 1.0, "mean_cos_other_images": float(cross.mean())}
        for tname, th in ctx.thresholds[rec.name].items():
            v[tname] = {"same_image": 1.0, "other_images": V.verification_rate(cross, th.value)}
        v["rank1"] = V.rank1_reid(o, ctx.faces.labels, o, ctx.faces.labels, exclude=np.eye(n, dtype=bool))
        row["verification"][rec.name] = v
    for dn, hits in ctx.orig_hits.items():
        det = [1.0 for h in hits if h]
        conf = [max(x[4] for x in h) for h in hits if h]
        row["detection"][dn] = {
            "rate": len(det) / n,
            "conf": float(np.mean(conf)) if conf else float("nan"),
            "n": n,
        }
    row["brisque"] = _brisque_summary(steps, ctx.faces.crops, "original: BRISQUE")
    row["grid"] = _score_summary("grid", ctx.faces.crops)
    row["colour"] = _score_summary("colour", ctx.faces.crops)
    row["spectrum"] = _score_summary("spectrum", ctx.faces.crops)
    row["kid"] = _kid_summary(ctx, ctx.faces.crops)
    row["fid"] = {"value": None}
    return row


def _save_examples(outdir: Path, name: str, orig: np.ndarray, anon: np.ndarray) -> None:
    """A 2-row strip (originals above, anonymized below) per method, for looking at, not for publishing."""
    from PIL import Image

    if len(orig) == 0:
        return
    top = np.concatenate(list(orig), axis=1)
    bottom = np.concatenate(list(anon), axis=1)
    d = outdir / "examples"
    d.mkdir(exist_ok=True)
    Image.fromarray(np.concatenate([top, bottom], axis=0)).save(d / f"{name.replace(' ', '_')}.png")
