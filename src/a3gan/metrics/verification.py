"""Anonymity metrics: the paper's face verification (Sec. 5.2, Fig. 4-6, Table 5 "Face Ver.").

A recognizer maps a face to an L2-normalised embedding; two faces "verify" when their cosine similarity is at or
above a threshold. The threshold is calibrated on genuine (same identity) and impostor (different identity) pairs
of ORIGINAL images at a stated false-accept rate (FAR), so every method is judged at the same operating point.

- :func:`verification_rate`: share of (original, anonymized) pairs still verified as the same person (lower is
  more anonymous; the paper's "verification accuracy" of Table 5).
- :func:`rank1_reid`: rank-1 re-identification of anonymized probes against a gallery of OTHER original images
  (same identities plus distractors).
- :func:`roc_auc`: the recognizer's own ROC AUC on originals (a sanity check of the judge).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from a3gan.errors import InputError


def _as_2d(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] == 0:
        raise InputError(f"{name} must be a (N, D) array of embeddings, got shape {np.shape(x)}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} contains NaN or infinite values")
    return a


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero)."""
    a = np.asarray(x, dtype=np.float64)
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), eps)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays -> (N,). Embeddings need not be normalised."""
    a2, b2 = _as_2d(a, "a"), _as_2d(b, "b")
    if a2.shape != b2.shape:
        raise InputError(f"cosine_similarity needs arrays of equal shape, got {a2.shape} and {b2.shape}")
    return np.sum(l2_normalize(a2) * l2_normalize(b2), axis=1)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All-pairs cosine similarity (N, D) x (M, D) -> (N, M)."""
    a2, b2 = _as_2d(a, "a"), _as_2d(b, "b")
    if a2.shape[1] != b2.shape[1]:
        raise InputError(f"embedding sizes differ: {a2.shape[1]} and {b2.shape[1]}")
    return l2_normalize(a2) @ l2_normalize(b2).T


def pair_indices(
    labels: Sequence[object], max_impostor: int = 20000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """All genuine pairs (i < j, same label) and up to ``max_impostor`` random impostor pairs (different labels).

    Returns two (K, 2) int arrays. Impostor pairs are sampled without replacement from all i < j pairs with
    different labels (all of them when there are fewer than ``max_impostor``).
    """
    lab = np.asarray([str(x) for x in labels])
    n = len(lab)
    iu, ju = np.triu_indices(n, k=1)
    same = lab[iu] == lab[ju]
    genuine = np.stack([iu[same], ju[same]], axis=1)
    imp = np.stack([iu[~same], ju[~same]], axis=1)
    if len(imp) > max_impostor:
        rng = np.random.default_rng(seed)
        imp = imp[np.sort(rng.choice(len(imp), size=max_impostor, replace=False))]
    return genuine.astype(np.int64), imp.astype(np.int64)


@dataclass(frozen=True)
class Threshold:
    """A calibrated cosine threshold: pairs with similarity >= ``value`` are accepted as the same person."""

    value: float
    target_far: float | None  # the requested FAR (None: a fixed, recognizer-standard threshold)
    far: float  # the measured FAR on the impostor pairs of originals
    tar: float  # the measured true-accept rate on the genuine pairs of originals
    n_genuine: int
    n_impostor: int
    reliable: bool  # enough impostor pairs to resolve target_far (at least 10 / target_far)

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def calibrate_threshold(genuine: np.ndarray, impostor: np.ndarray, far: float) -> Threshold:
    """Smallest threshold t whose false-accept rate ``mean(impostor >= t)`` is at most ``far``.

    With sorted impostor scores s_1 >= s_2 >= ..., accepting k = floor(far * n) of them means t sits just above
    s_{k+1}; ties at s_{k+1} are all rejected so the measured FAR never exceeds the target.
    """
    g = np.asarray(genuine, dtype=np.float64).ravel()
    imp = np.asarray(impostor, dtype=np.float64).ravel()
    if not 0.0 < far < 1.0:
        raise InputError(f"the false-accept rate must be in (0, 1), got {far}")
    if imp.size == 0:
        raise InputError("threshold calibration needs at least one impostor pair (two or more identities)")
    s = np.sort(imp)[::-1]
    k = int(np.floor(far * s.size))
    t = float(np.nextafter(s[k], np.inf)) if k < s.size else float(s[-1])
    return _threshold(t, far, g, imp)


def fixed_threshold(genuine: np.ndarray, impostor: np.ndarray, value: float) -> Threshold:
    """A recognizer's standard threshold (e.g. dlib's distance 0.6), measured on the original pairs."""
    return _threshold(
        float(value), None, np.asarray(genuine, float).ravel(), np.asarray(impostor, float).ravel()
    )


def _threshold(t: float, far: float | None, g: np.ndarray, imp: np.ndarray) -> Threshold:
    return Threshold(
        value=t,
        target_far=far,
        far=float(np.mean(imp >= t)) if imp.size else float("nan"),
        tar=float(np.mean(g >= t)) if g.size else float("nan"),
        n_genuine=int(g.size),
        n_impostor=int(imp.size),
        reliable=bool(far is None or imp.size * far >= 10),
    )


def verification_rate(scores: np.ndarray, threshold: float) -> float:
    """Share of (original, anonymized) pair scores at or above the threshold (lower = more anonymous)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise InputError("verification_rate needs at least one pair score")
    return float(np.mean(s >= threshold))


def rank1_reid(
    probe_emb: np.ndarray,
    probe_labels: Sequence[object],
    gallery_emb: np.ndarray,
    gallery_labels: Sequence[object],
    exclude: np.ndarray | None = None,
) -> float:
    """Rank-1 re-identification rate: share of probes whose most similar gallery entry has the probe's identity.

    ``exclude`` is an optional boolean (P, G) matrix of gallery entries a probe may not match (e.g. the probe's
    own original image, so only OTHER images of the identity count). Probes whose identity has no allowed gallery
    entry are not counted. Lower = more anonymous.
    """
    sim = cosine_matrix(probe_emb, gallery_emb)
    pl = np.asarray([str(x) for x in probe_labels])
    gl = np.asarray([str(x) for x in gallery_labels])
    if len(pl) != sim.shape[0] or len(gl) != sim.shape[1]:
        raise InputError("rank1_reid: label counts do not match the embeddings")
    if exclude is not None:
        ex = np.asarray(exclude, dtype=bool)
        if ex.shape != sim.shape:
            raise InputError(f"rank1_reid: exclude must have shape {sim.shape}, got {ex.shape}")
        sim = np.where(ex, -np.inf, sim)
    else:
        ex = np.zeros(sim.shape, dtype=bool)
    valid = np.any((pl[:, None] == gl[None, :]) & ~ex, axis=1)
    if not np.any(valid):
        raise InputError("rank1_reid: no probe has another image of its identity in the gallery")
    best = np.argmax(sim, axis=1)
    return float(np.mean(gl[best][valid] == pl[valid]))


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Area under the ROC curve = P(genuine score > impostor score) + 0.5 P(tie) (Mann-Whitney U)."""
    from scipy.stats import rankdata

    g = np.asarray(genuine, dtype=np.float64).ravel()
    imp = np.asarray(impostor, dtype=np.float64).ravel()
    if g.size == 0 or imp.size == 0:
        raise InputError("roc_auc needs at least one genuine and one impostor score")
    ranks = rankdata(np.concatenate([g, imp]))
    u = ranks[: g.size].sum() - g.size * (g.size + 1) / 2.0
    return float(u / (g.size * imp.size))
