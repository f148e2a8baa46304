"""Face alignment for the identity networks: 5-point similarity transforms, templates, and the fixed,
differentiable crop-geometry -> recognizer-chip warp used on generator outputs.

Coordinate convention (same as :mod:`a3gan.pipeline.detect`): continuous image coordinates, pixel ``(i, j)``
covers ``[j, j+1) x [i, i+1)`` so its centre is ``(j + 0.5, i + 0.5)``. Landmarks are 5 (x, y) points in the
ArcFace order: left eye, right eye, nose tip, left and right mouth corner ("left" = the image's left).
Crop coordinates ``u`` are continuous coordinates divided by the crop side: (0, 0) is the crop's top-left
corner and (1, 1) its bottom-right corner, whatever the resolution.

The mean landmark positions below were measured by ``scripts/identity_measure_template.py`` on the first 400
images of ``../shared/data/celeba`` in which dlib's HOG detector (on a 2x upscaled copy) found one face:
dlib's ``shape_predictor_5_face_landmarks`` for the dlib points and ``shape_predictor_68_face_landmarks`` for the
ArcFace-order points (eye centre = mean of the 6 eye-contour points, nose tip = point 30, mouth corners = 48, 54).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from a3gan.errors import InputError

#: dlib's 5-point chip template (``get_face_chip_details``), unit square, in the order of dlib's 5-point model:
#: outer and inner corner of the image-right eye, outer and inner corner of the image-left eye, nose bottom.
DLIB5_TEMPLATE_UNIT = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750600800, 0.2137274023331],
        [0.3340850613712, 0.2290642403233],
        [0.4901123135679, 0.6277975316475],
    ]
)

#: The standard ArcFace 112x112 template (insightface ``arcface_dst``), in pixel-index coordinates as cv2 uses
#: them; :func:`arcface_template` converts it to continuous coordinates.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)

# --- measured by scripts/identity_measure_template.py (see module docstring): 400 faces from 428 CelebA images.
# Per-point std is 0.008-0.025 crop units for the dlib points (one similarity to the mean leaves a median max
# residual of 0.012); the per-face scale relative to the mean is 1.002 +- 0.066.
#: mean dlib 5-point landmarks (dlib order) in crop coordinates of the STGAN crop (a3gan.geometry)
CROP_DLIB5_MEAN = np.array(
    [
        [0.66381, 0.51147],
        [0.57328, 0.51599],
        [0.34734, 0.51072],
        [0.43760, 0.51584],
        [0.50299, 0.68796],
    ]
)
#: mean ArcFace-order landmarks in crop coordinates
CROP_ARCFACE5_MEAN = np.array(
    [
        [0.39204, 0.51143],
        [0.61894, 0.51220],
        [0.50126, 0.64131],
        [0.40265, 0.74901],
        [0.60978, 0.74974],
    ]
)
#: mean ArcFace-order landmarks in dlib's 150x150 chip (padding 0.25), continuous chip coordinates: the template
#: that maps detector landmarks in ArcFace order to the chip dlib's network expects
DLIB_CHIP_ARCFACE5 = np.array(
    [
        [47.93025, 46.87307],
        [100.20124, 46.73345],
        [73.29040, 76.92587],
        [50.73975, 101.80129],
        [98.26291, 101.63764],
    ]
)


def dlib_chip_template(size: int = 150, padding: float = 0.25) -> np.ndarray:
    """dlib's 5-point template in continuous chip coordinates of a ``size`` chip with ``padding``.

    dlib places the template at ``(padding + p) / (2 padding + 1) * size`` in pixel-index coordinates and maps
    the chip's pixel grid with a scale of ``(size * s - 1) / (size - 1)`` image pixels per chip pixel, where ``s``
    is the fitted similarity's scale; for a face at the chip's own resolution (s = 1) that is exactly the
    template in continuous coordinates, which is what this returns.
    """
    return (padding + DLIB5_TEMPLATE_UNIT) / (2 * padding + 1) * size


def arcface_template(size: int = 112) -> np.ndarray:
    """The ArcFace template in continuous coordinates of a ``size`` chip (scaled from 112)."""
    return (ARCFACE_TEMPLATE_112 + 0.5) * (size / 112.0)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping ``src`` points to
    ``dst`` points, as a 2x3 matrix ``[[a, -b, tx], [b, a, ty]]`` (Umeyama's solution, as in dlib and skimage)."""
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise InputError(
            f"similarity_transform needs two equal sets of >= 2 points, got {src.shape}, {dst.shape}"
        )
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise InputError("landmarks contain NaN or infinite values")
    if np.ptp(src, axis=0).max() < 1e-9:
        raise InputError("degenerate landmarks (all points coincide)")
    n = len(src)
    a = np.zeros((2 * n, 4))
    a[0::2] = np.stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)], 1)
    a[1::2] = np.stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)], 1)
    sol, *_ = np.linalg.lstsq(a, dst.reshape(-1), rcond=None)
    ca, sb, tx, ty = sol
    if np.hypot(ca, sb) < 1e-12:
        raise InputError("degenerate landmarks (all points coincide)")
    return np.array([[ca, -sb, tx], [sb, ca, ty]])


def invert_affine(m: np.ndarray) -> np.ndarray:
    full = np.vstack([np.asarray(m, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2):
        raise InputError(f"expected 5 landmarks as a (5, 2) array, got shape {lm.shape}")
    if not np.isfinite(lm).all():
        raise InputError("landmarks contain NaN or infinite values")
    return lm


def check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise InputError(f"expected an RGB uint8 image of shape (H, W, 3), got {img.dtype} {img.shape}")
    if min(img.shape[:2]) < 2:
        raise InputError(f"image too small: {img.shape[1]}x{img.shape[0]}")
    return img


def warp_face(image: np.ndarray, landmarks: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """Warp the face with ``landmarks`` (continuous coordinates) onto ``template`` (continuous chip coordinates)
    of a ``size`` x ``size`` chip, bilinear, zero border. Large faces are first shrunk with area averaging so
    the bilinear step never downsamples by more than 2x (as dlib's chip extraction does with its pyramid).
    Returns uint8 (size, size, 3)."""
    import cv2

    img = check_image(image)
    lm = check_landmarks(landmarks)
    m = similarity_transform(lm, template)  # image -> chip, continuous
    scale = float(np.hypot(m[0, 0], m[1, 0]))  # chip pixels per image pixel
    if scale < 0.5:
        f = 2.0 * scale  # shrink so that the remaining scale is 0.5
        h, w = img.shape[:2]
        nw, nh = max(2, round(w * f)), max(2, round(h * f))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        lm = lm * np.array([nw / w, nh / h])
        m = similarity_transform(lm, template)
    # continuous -> pixel-index coordinates on both sides: x_idx = x_cont - 0.5
    a = m[:, :2]
    t = m[:, 2] + a @ np.array([0.5, 0.5]) - 0.5
    return cv2.warpAffine(
        img, np.hstack([a, t[:, None]]), (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def crop_to_chip_theta(crop_points: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 ``theta`` for ``F.affine_grid(..., align_corners=False)`` that samples a ``size`` chip from an
    image in crop geometry, given mean landmarks in crop coordinates (``crop_points``, unit square) and their
    template in continuous chip coordinates. Independent of the input resolution."""
    # similarity chip (continuous) -> crop unit coordinates
    m = similarity_transform(template, crop_points)
    # output normalised coordinate xo in [-1, 1] -> chip continuous c = (xo + 1) * size / 2
    to_chip = np.array([[size / 2, 0, size / 2], [0, size / 2, size / 2], [0, 0, 1.0]])
    # crop unit u -> input normalised g = 2u - 1
    to_norm = np.array([[2.0, 0, -1], [0, 2.0, -1], [0, 0, 1.0]])
    full = to_norm @ np.vstack([m, [0, 0, 1.0]]) @ to_chip
    return full[:2]


class CropAligner(nn.Module):
    """Fixed differentiable warp (``affine_grid`` + ``grid_sample``) from (B, 3, R, R) images in crop geometry to
    (B, 3, size, size) recognizer chips. Works for any R; the grid is cached per (R, device, dtype)."""

    def __init__(
        self, crop_points: np.ndarray, template: np.ndarray, size: int, padding_mode: str = "border"
    ):
        super().__init__()
        self.size = int(size)
        self.padding_mode = padding_mode
        theta = crop_to_chip_theta(crop_points, template, size)
        self.register_buffer("theta", torch.tensor(theta, dtype=torch.float32).unsqueeze(0), persistent=False)
        self._grids: dict[tuple, torch.Tensor] = {}

    def grid(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.device, x.dtype)
        g = self._grids.get(key)
        if g is None:
            g = F.affine_grid(
                self.theta.to(device=x.device, dtype=x.dtype),
                [1, 3, self.size, self.size],
                align_corners=False,
            )
            self._grids[key] = g
        return g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"expected images of shape (B, 3, R, R), got {tuple(x.shape)}")
        g = self.grid(x).expand(x.shape[0], -1, -1, -1)
        return F.grid_sample(x, g, mode="bilinear", padding_mode=self.padding_mode, align_corners=False)

    def _apply(self, fn, recurse=True):  # device/dtype moves invalidate the cached grids
        self._grids = {}
        return super()._apply(fn, recurse)
