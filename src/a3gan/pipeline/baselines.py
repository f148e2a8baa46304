"""The paper's naive de-identification baselines (Sec. 4.1 "Baselines", Table 5, Fig. 7).

- **8x8 pixelation**: our reading is an 8x8 GRID of blocks over the face region (so a 128 px crop gets 16x16 px
  blocks), each block replaced by its mean colour. Block edges are at ``round(i * size / 8)``.
- **9x9 Gaussian blur**: a 9x9 Gaussian kernel with OpenCV's default sigma for that size,
  ``0.3 * ((9 - 1) * 0.5 - 1) + 0.8 = 1.7``, reflect-101 borders (OpenCV's default).
- **Black-out**: the face region set to black.

They work on aligned crops (:func:`apply_baseline`, used for evaluation on aligned CelebA) and on full images
through the same alignment, face mask and paste-back as A3GAN (:func:`anonymize_faces_baseline`), so that every
method changes exactly the same pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from a3gan.errors import InputError

METHODS = ("pixelate", "blur", "blackout")


def _check(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim not in (2, 3) or img.shape[0] < 1 or img.shape[1] < 1:
        raise InputError(f"expected an (H, W) or (H, W, C) image, got shape {img.shape}")
    return img


def pixelate(img: np.ndarray, blocks: int = 8) -> np.ndarray:
    """Split ``img`` into a ``blocks`` x ``blocks`` grid and fill each cell with its mean colour (same dtype)."""
    img = _check(img)
    if blocks < 1:
        raise InputError(f"pixelation needs at least 1 block, got {blocks}")
    h, w = img.shape[:2]
    ys = np.rint(np.linspace(0, h, blocks + 1)).astype(int)
    xs = np.rint(np.linspace(0, w, blocks + 1)).astype(int)
    out = np.empty_like(img)
    src = img.astype(np.float64)
    for i in range(blocks):
        for j in range(blocks):
            y0, y1, x0, x1 = ys[i], ys[i + 1], xs[j], xs[j + 1]
            if y1 <= y0 or x1 <= x0:
                continue
            mean = src[y0:y1, x0:x1].mean(axis=(0, 1))
            if np.issubdtype(img.dtype, np.integer):
                mean = np.floor(mean + 0.5)
            out[y0:y1, x0:x1] = mean.astype(img.dtype)
    return out


def blur_sigma(ksize: int) -> float:
    """OpenCV's default sigma for a Gaussian kernel of size ``ksize`` (``getGaussianKernel`` with sigma <= 0)."""
    return 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8


def gaussian_blur(img: np.ndarray, ksize: int = 9, sigma: float | None = None) -> np.ndarray:
    """``ksize`` x ``ksize`` Gaussian blur (default sigma: :func:`blur_sigma`), reflect-101 borders, same dtype."""
    import cv2

    img = _check(img)
    if ksize < 1 or ksize % 2 == 0:
        raise InputError(f"blur kernel size must be odd and positive, got {ksize}")
    s = blur_sigma(ksize) if sigma is None else float(sigma)
    src = img if img.dtype in (np.uint8, np.float32) else img.astype(np.float32)
    out = cv2.GaussianBlur(
        np.ascontiguousarray(src), (ksize, ksize), sigmaX=s, sigmaY=s, borderType=cv2.BORDER_REFLECT_101
    )
    return out.astype(img.dtype, copy=False)


def blackout(img: np.ndarray) -> np.ndarray:
    """The region set to 0 (black)."""
    return np.zeros_like(_check(img))


BASELINES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "pixelate": pixelate,
    "blur": gaussian_blur,
    "blackout": blackout,
}


def get_baseline(method: str) -> Callable[[np.ndarray], np.ndarray]:
    key = method.strip().lower()
    if key not in BASELINES:
        raise InputError(f"unknown baseline {method!r}; choose one of {', '.join(METHODS)}")
    return BASELINES[key]


def apply_baseline(crop: np.ndarray, method: str, mask: np.ndarray | None = None) -> np.ndarray:
    """Apply a baseline to an aligned crop (H, W, 3). With ``mask`` (H, W) in [0, 1] the result is blended over it
    (``crop * (1 - mask) + baseline * mask``, float32); without, the whole crop is replaced (same dtype)."""
    out = get_baseline(method)(crop)
    if mask is None:
        return out
    m = np.asarray(mask, np.float32)
    if m.shape != crop.shape[:2]:
        raise InputError(f"mask shape {m.shape} does not match the crop {crop.shape[:2]}")
    return crop.astype(np.float32) * (1 - m[..., None]) + out.astype(np.float32) * m[..., None]


def anonymize_faces_baseline(
    image: np.ndarray, faces: Sequence, method: str, resolution: int = 128, mask: np.ndarray | None = None
) -> np.ndarray:
    """A copy of ``image`` with each face replaced by ``method`` inside the same face mask A3GAN pastes into.

    Each face is aligned to the model crop at ``resolution``, the baseline is applied to the crop, and the crop is
    pasted back over the feathered face mask (no colour matching). Pixels outside every mask are unchanged.
    """
    from a3gan.pipeline.align import align_face
    from a3gan.pipeline.blend import paste_back

    fn = get_baseline(method)
    out = np.array(image, copy=True)
    for f in faces:
        af = align_face(image, f, resolution)
        paste_back(out, fn(af.crop).astype(np.float32), af.M, mask)
    return out
