"""Paste-back of an anonymized crop into the photo (issue 4): colour matching and a feathered face-mask blend.

The face mask is defined once in crop coordinates (the model's aligned geometry), so it follows each face's pose
through the inverse similarity warp. It is 1 on an inner ellipse (brows to chin, cheek to cheek in the CelebA
crop), falls smoothly to exactly 0 on an outer ellipse that lies strictly inside the crop, and is 0 beyond. Only
image pixels where the warped mask is > 0 are written: every other pixel is bit-identical to the input.
"""

from __future__ import annotations

import functools

import numpy as np

from a3gan.errors import InputError
from a3gan.pipeline.align import warp_from_crop

#: Outer ellipse of the face mask in normalised crop coordinates: centre (x, y) and semi-axes (a, b). The crop's
#: template eyes are at y~0.51 and mouth corners at y~0.75 (align.TEMPLATE); CelebA's hairline is near y~0.2 and
#: the chin near y~0.93. The outer ellipse spans y 0.17..0.98 and x 0.17..0.83, so the mask reaches 0 before the
#: crop border. INNER is the fraction of that ellipse where the mask is exactly 1.
MASK_CENTER = (0.5, 0.575)
MASK_AXES = (0.33, 0.405)
MASK_INNER = 0.72


@functools.lru_cache(maxsize=16)
def _face_mask(
    resolution: int, inner: float, center: tuple[float, float], axes: tuple[float, float]
) -> np.ndarray:
    r = resolution
    c = (np.arange(r, dtype=np.float64) + 0.5) / r  # pixel centres in [0, 1]
    x, y = np.meshgrid(c, c)
    rho = np.sqrt(((x - center[0]) / axes[0]) ** 2 + ((y - center[1]) / axes[1]) ** 2)
    t = np.clip((1.0 - rho) / (1.0 - inner), 0.0, 1.0)  # 0 at the outer ellipse, 1 inside the inner one
    m = t * t * (3.0 - 2.0 * t)  # smoothstep: C1 feathering, zero slope at both ends
    m = m.astype(np.float32)
    m.setflags(write=False)
    return m


def face_mask(
    resolution: int,
    inner: float = MASK_INNER,
    center: tuple[float, float] = MASK_CENTER,
    axes: tuple[float, float] = MASK_AXES,
) -> np.ndarray:
    """The feathered face mask (R, R) float32 in [0, 1] in crop coordinates (read-only, cached)."""
    if resolution < 4:
        raise InputError(f"mask resolution must be >= 4, got {resolution}")
    if not 0.0 <= inner < 1.0:
        raise InputError(f"mask inner fraction must be in [0, 1), got {inner}")
    return _face_mask(int(resolution), float(inner), tuple(map(float, center)), tuple(map(float, axes)))


def _rgb_to_lab(x: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.clip(x, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _lab_to_rgb(x: np.ndarray) -> np.ndarray:
    import cv2

    return np.clip(cv2.cvtColor(x.astype(np.float32), cv2.COLOR_Lab2RGB) * 255.0, 0, 255)


def match_color(
    src: np.ndarray, ref: np.ndarray, weight: np.ndarray, max_ratio: float = 2.0, space: str = "lab"
) -> np.ndarray:
    """Match the per-channel mean and std of ``src`` to ``ref`` inside ``weight`` (Reinhard et al. 2001).

    src, ref: (H, W, 3) RGB in 0..255 (any dtype); weight: (H, W) >= 0. Statistics are weighted by ``weight``; the
    std ratio is clipped to [1/max_ratio, max_ratio]. ``space`` is "lab" (CIE L*a*b*, default) or "rgb".
    Returns float32 RGB in [0, 255].
    """
    if src.shape != ref.shape or src.ndim != 3 or src.shape[2] != 3:
        raise InputError(
            f"match_color needs two (H, W, 3) images of one shape, got {src.shape} and {ref.shape}"
        )
    w = np.asarray(weight, np.float64)
    if w.shape != src.shape[:2]:
        raise InputError(f"match_color weight must be {src.shape[:2]}, got {w.shape}")
    if w.sum() <= 0:
        return np.clip(src, 0, 255).astype(np.float32)
    if space == "lab":
        a, b = _rgb_to_lab(src).astype(np.float64), _rgb_to_lab(ref).astype(np.float64)
    elif space == "rgb":
        a, b = np.asarray(src, np.float64), np.asarray(ref, np.float64)
    else:
        raise InputError(f"unknown colour space {space!r}; use 'lab' or 'rgb'")
    wn = (w / w.sum())[..., None]
    mu_a, mu_b = (a * wn).sum((0, 1)), (b * wn).sum((0, 1))
    sd_a = np.sqrt(((a - mu_a) ** 2 * wn).sum((0, 1)))
    sd_b = np.sqrt(((b - mu_b) ** 2 * wn).sum((0, 1)))
    ratio = np.clip(sd_b / np.maximum(sd_a, 1e-6), 1.0 / max_ratio, max_ratio)
    out = (a - mu_a) * ratio + mu_b
    if space == "lab":
        return _lab_to_rgb(out)
    return np.clip(out, 0, 255).astype(np.float32)


def composite_crop(
    orig_crop: np.ndarray, new_crop: np.ndarray, mask: np.ndarray | None = None, color_match: bool = True
) -> np.ndarray:
    """What the face looks like after paste-back, in crop space: ``orig * (1 - mask) + new' * mask`` (float32).

    ``new'`` is ``new_crop`` colour-matched to ``orig_crop`` inside the mask when ``color_match``. This crop is
    what the identity verification compares with the original crop.
    """
    r = orig_crop.shape[0]
    m = face_mask(r) if mask is None else np.asarray(mask, np.float32)
    new = np.asarray(new_crop, np.float32)
    if color_match:
        new = match_color(new, orig_crop, m)
    return blend_arrays(np.asarray(orig_crop, np.float32), new, m)


def blend_arrays(base: np.ndarray, top: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = np.asarray(alpha, np.float32)[..., None]
    return base.astype(np.float32) * (1.0 - a) + top.astype(np.float32) * a


def paste_back(out: np.ndarray, new_crop: np.ndarray, M: np.ndarray, mask: np.ndarray | None = None) -> None:
    """Blend ``new_crop`` (R, R, 3, 0..255) into ``out`` (H, W, 3 uint8) IN PLACE through the inverse of ``M``.

    ``mask`` (R, R) defaults to :func:`face_mask`. Pixels where the warped mask is 0 are not touched.
    """
    if out.dtype != np.uint8 or out.ndim != 3:
        raise InputError(f"paste_back writes into an (H, W, 3) uint8 image, got {out.dtype} {out.shape}")
    r = new_crop.shape[0]
    m = face_mask(r) if mask is None else np.asarray(mask, np.float32)
    patch, (x0, y0, x1, y1) = warp_from_crop(np.clip(new_crop, 0, 255), M, out.shape, cubic=True)
    alpha, _ = warp_from_crop(m, M, out.shape)
    if patch.size == 0:
        return
    alpha = np.clip(alpha, 0.0, 1.0)
    region = out[y0:y1, x0:x1]
    blended = blend_arrays(region, np.clip(patch, 0, 255), alpha)
    new = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    inside = alpha > 0
    region[inside] = new[inside]


def smooth_crop(crop: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass of a generated crop (sigma in crop pixels; 0 = unchanged). It removes the pixel-level
    checkerboard a small, briefly trained generator leaves; the crop is then upsampled onto the photo, where those
    frequencies would be magnified. The identity check runs on the result, so anonymity is still verified."""
    if sigma < 0:
        raise InputError(f"smooth must be >= 0, got {sigma}")
    if sigma == 0:
        return crop
    import cv2

    return cv2.GaussianBlur(
        np.asarray(crop, dtype=np.float32), (0, 0), float(sigma), borderType=cv2.BORDER_REFLECT
    )
