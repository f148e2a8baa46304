"""Alignment of detected faces to the model's crop geometry (issue 4).

The model is trained on the STGAN crop of CelebA's aligned images (``a3gan.geometry``). A face in a photo is
brought into exactly that geometry by a similarity transform (scale, rotation, translation; Umeyama 1991 least
squares) from its 5 detected landmarks to :data:`TEMPLATE`, the mean position of the same 5 landmarks in that
crop, measured with the same detector on CelebA (``scripts/pipeline_measure_template.py``).

Matrices follow OpenCV's convention: a 2x3 ``M`` maps image pixel coordinates (pixel centres at integers) to
crop pixel coordinates at resolution ``R``. Landmarks and boxes are continuous coordinates (pixel centre at
``i + 0.5``, see :mod:`a3gan.pipeline.detect`); :func:`estimate_transform` does the half-pixel bookkeeping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from a3gan.errors import InputError
from a3gan.pipeline.detect import Face, check_image

#: Mean CenterFace landmarks (left eye, right eye, nose, left / right mouth corner; image-left first) in the STGAN
#: crop of CelebA aligned images, normalised to [0, 1]^2 of the crop. Measured on CelebA 000001-000500 (499 of 500
#: detected at threshold 0.35; each 89x109 image padded to 2x its size with a replicated border) by
#: ``.venv/bin/python scripts/pipeline_measure_template.py --n 500 --pad 2``. Spread (std) over those images:
#: eyes ~0.017 (x) / 0.012 (y), nose 0.037 / 0.014, mouth corners 0.016 / 0.018.
TEMPLATE = np.array(
    [[0.3869, 0.5129], [0.6215, 0.5087], [0.4995, 0.6457], [0.4058, 0.7561], [0.5997, 0.7521]], np.float32
)


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """Least-squares similarity transform ``dst ~ s R src + t`` (Umeyama 1991, Eq. 40-42); returns 2x3 ``[sR | t]``.

    Raises :class:`InputError` for degenerate point sets (all points equal, non-finite values).
    """
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if len(src) != len(dst) or len(src) < 2:
        raise InputError(f"umeyama needs two equal sets of >= 2 points, got {len(src)} and {len(dst)}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise InputError("umeyama got non-finite landmark coordinates")
    n = len(src)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sc, dc = src - mu_s, dst - mu_d
    var_s = (sc**2).sum() / n
    if var_s < 1e-12:
        raise InputError("cannot align a face whose landmarks all coincide")
    cov = dc.T @ sc / n
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    scale = (d * sign).sum() / var_s if estimate_scale else 1.0
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def transform_scale(M: np.ndarray) -> float:
    """The isotropic scale of a 2x3 similarity matrix (crop pixels per image pixel)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(M, np.float64)[:, :2]))))


def invert_affine(M: np.ndarray) -> np.ndarray:
    M = np.asarray(M, np.float64)
    a_inv = np.linalg.inv(M[:, :2])
    return np.hstack([a_inv, -a_inv @ M[:, 2:]])


def apply_affine(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    return pts @ np.asarray(M, np.float64)[:, :2].T + np.asarray(M, np.float64)[:, 2]


def estimate_transform(landmarks: np.ndarray, resolution: int, template: np.ndarray = TEMPLATE) -> np.ndarray:
    """The 2x3 matrix (OpenCV convention) from image pixels to crop pixels that aligns ``landmarks`` (5, 2)."""
    if resolution < 1:
        raise InputError(f"crop resolution must be >= 1, got {resolution}")
    lm = np.asarray(landmarks, np.float64).reshape(-1, 2)
    dst = np.asarray(template, np.float64).reshape(-1, 2) * resolution  # continuous crop coordinates
    m = umeyama(lm, dst)  # continuous -> continuous
    # pixel centres: p_cv = p_cont - 0.5 on both sides  =>  t' = A * 0.5 + t - 0.5
    m[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return m


def rescale_transform(M: np.ndarray, factor: float) -> np.ndarray:
    """The same crop at ``factor`` times the resolution: crop pixel p -> factor * (p + 0.5) - 0.5."""
    out = np.asarray(M, np.float64) * factor
    out[:, 2] += 0.5 * factor - 0.5
    return out


def _roi_of_crop(M: np.ndarray, resolution: int, shape: tuple[int, int], margin: int = 2):
    """Integer bounding box (x0, y0, x1, y1) in the image of the crop square, clipped to ``shape`` (h, w)."""
    inv = invert_affine(M)
    r = resolution
    corners = apply_affine(
        inv, np.array([[-0.5, -0.5], [r - 0.5, -0.5], [-0.5, r - 0.5], [r - 0.5, r - 0.5]])
    )
    h, w = shape
    x0 = int(np.clip(np.floor(corners[:, 0].min()) - margin, 0, w))
    y0 = int(np.clip(np.floor(corners[:, 1].min()) - margin, 0, h))
    x1 = int(np.clip(np.ceil(corners[:, 0].max()) + margin + 1, 0, w))
    y1 = int(np.clip(np.ceil(corners[:, 1].max()) + margin + 1, 0, h))
    return x0, y0, x1, y1


def warp_to_crop(image: np.ndarray, M: np.ndarray, resolution: int) -> np.ndarray:
    """Sample the (R, R, 3) crop ``M`` selects from ``image``; same dtype as the input.

    When the crop is smaller than the face (scale < 1) the source region is first reduced with area averaging
    (anti-aliasing), then resampled bilinearly; enlargements are bilinear. Outside the image the border pixels are
    replicated.
    """
    import cv2

    M = np.asarray(M, np.float64)
    r = int(resolution)
    s = transform_scale(M)
    if s < 1.0:
        x0, y0, x1, y1 = _roi_of_crop(M, r, image.shape[:2], margin=int(np.ceil(2 / s)))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            roi = image[y0:y1, x0:x1]
            nw, nh = max(2, int(round((x1 - x0) * s))), max(2, int(round((y1 - y0) * s)))
            small = cv2.resize(roi, (nw, nh), interpolation=cv2.INTER_AREA)
            sx, sy = (x1 - x0) / nw, (y1 - y0) / nh
            # small pixel q -> image pixel p = (q + 0.5) * s_xy - 0.5 + offset
            P = np.array([[sx, 0, 0.5 * sx - 0.5 + x0], [0, sy, 0.5 * sy - 0.5 + y0], [0, 0, 1]])
            Mq = M @ P
            return cv2.warpAffine(small, Mq, (r, r), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpAffine(image, M, (r, r), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_from_crop(
    crop: np.ndarray, M: np.ndarray, image_shape: tuple[int, ...], cubic: bool = False
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Inverse warp: the crop (R, R[, C]) resampled into image space, restricted to the crop's footprint.

    Returns ``(patch, (x0, y0, x1, y1))`` where ``patch`` covers ``image[y0:y1, x0:x1]`` (float32), 0 outside
    the crop square. ``cubic`` uses bicubic resampling (sharper when enlarging; not for masks).
    """
    import cv2

    r = crop.shape[0]
    x0, y0, x1, y1 = _roi_of_crop(M, r, tuple(image_shape[:2]))
    if x1 <= x0 or y1 <= y0:
        shape = (0, 0) + tuple(crop.shape[2:])
        return np.zeros(shape, np.float32), (x0, y0, x0, y0)
    Mr = np.asarray(M, np.float64).copy()
    Mr[:, 2] += Mr[:, :2] @ np.array([x0, y0], np.float64)  # roi pixel q -> crop: M (q + offset)
    flags = (cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP
    patch = cv2.warpAffine(
        np.ascontiguousarray(crop, np.float32),
        Mr,
        (x1 - x0, y1 - y0),
        flags=flags,
        borderMode=cv2.BORDER_CONSTANT,
    )
    return patch, (x0, y0, x1, y1)


@dataclass
class AlignedFace:
    """A face brought into the model's crop geometry: ``crop`` (R, R, 3) uint8 and ``M`` (image -> crop)."""

    face: Face
    M: np.ndarray
    crop: np.ndarray

    @property
    def resolution(self) -> int:
        return int(self.crop.shape[0])


#: Rough landmark positions relative to a CenterFace box (x0, y0, w, h), used only when a face's landmarks are
#: unusable (coincident or non-finite), so that such a face is still anonymized rather than skipped.
BOX_LANDMARKS = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.58], [0.35, 0.78], [0.65, 0.78]], np.float32)


def box_landmarks(box: tuple[float, float, float, float]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return BOX_LANDMARKS * np.array([x1 - x0, y1 - y0], np.float32) + np.array([x0, y0], np.float32)


def align_face(
    image: np.ndarray, face: Face, resolution: int, template: np.ndarray = TEMPLATE
) -> AlignedFace:
    """Align one detected face: similarity transform from its landmarks to :data:`TEMPLATE`, then warp.

    Faces with unusable landmarks fall back to landmarks guessed from the box (:data:`BOX_LANDMARKS`).
    """
    check_image(image)
    try:
        M = estimate_transform(face.landmarks, resolution, template)
    except InputError:
        M = estimate_transform(box_landmarks(face.box), resolution, template)
    return AlignedFace(face, M, warp_to_crop(image, M, resolution))


def align_faces(image: np.ndarray, faces: Sequence[Face], resolution: int) -> list[AlignedFace]:
    return [align_face(image, f, resolution) for f in faces]


def crops_to_tensor(crops: np.ndarray | Sequence[np.ndarray], device: str = "cpu"):
    """uint8/float (B, R, R, 3) or a list of (R, R, 3) crops in 0..255 -> float tensor (B, 3, R, R) in [-1, 1]."""
    import torch

    arr = np.stack(list(crops)) if not isinstance(crops, np.ndarray) else crops
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise InputError(f"expected crops of shape (B, R, R, 3), got {arr.shape}")
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(0, 3, 1, 2)
    return (t / 127.5 - 1.0).to(device)


def tensor_to_crops(x) -> np.ndarray:
    """Float tensor (B, 3, R, R) in [-1, 1] -> float32 (B, R, R, 3) in [0, 255] (not rounded)."""
    a = ((x.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).permute(0, 2, 3, 1).numpy()
    return np.ascontiguousarray(a, dtype=np.float32)
