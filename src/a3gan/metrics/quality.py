"""Full-reference quality of the region OUTSIDE the face: is the background untouched? (SSIM and PSNR, masked).

A method that only edits the face (the photo pipeline's paste-back, or a baseline applied to the face box) must
leave every other pixel as it was: background SSIM 1 and PSNR infinite. SSIM is averaged over pixels whose whole
SSIM window lies in the background (the mask is eroded by the window radius), so a change inside the face cannot
leak into the background score through the window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from a3gan.colour import RGB_TO_YCBCR
from a3gan.errors import InputError
from a3gan.spectrum import luma, ring_power


def box_mask(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """Boolean HxW mask, True inside ``box`` = (x0, y0, x1, y1) in continuous pixel coordinates (rounded)."""
    h, w = shape
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    m = np.zeros((h, w), dtype=bool)
    m[max(0, y0) : max(0, min(h, y1)), max(0, x0) : max(0, min(w, x1))] = True
    return m


def _check_pair(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b, m = np.asarray(a), np.asarray(b), np.asarray(mask, dtype=bool)
    if a.shape != b.shape:
        raise InputError(f"images differ in shape: {a.shape} and {b.shape}")
    if a.ndim not in (2, 3) or m.shape != a.shape[:2]:
        raise InputError(f"mask of shape {m.shape} does not match an image of shape {a.shape}")
    return a, b, m


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR over the pixels where ``mask`` is True (all channels): 10 log10(R^2 / MSE); inf when identical."""
    a, b, m = _check_pair(a, b, mask)
    if not m.any():
        raise InputError("PSNR mask selects no pixel")
    d = a.astype(np.float64)[m] - b.astype(np.float64)[m]
    mse = float(np.mean(d * d))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def masked_ssim(
    a: np.ndarray, b: np.ndarray, mask: np.ndarray, data_range: float = 255.0, win_size: int = 7
) -> float:
    """Mean SSIM (skimage, Wang et al. 2004, 7x7 uniform window) over mask pixels whose window is all in the mask."""
    from scipy import ndimage
    from skimage.metrics import structural_similarity

    a, b, m = _check_pair(a, b, mask)
    if min(a.shape[:2]) < win_size:
        raise InputError(f"SSIM needs images of at least {win_size}x{win_size} pixels")
    kw = {"channel_axis": -1} if a.ndim == 3 else {}
    _, smap = structural_similarity(
        a.astype(np.float64), b.astype(np.float64), data_range=data_range, win_size=win_size, full=True, **kw
    )
    if smap.ndim == 3:
        smap = smap.mean(axis=-1)
    r = win_size // 2
    inner = ndimage.binary_erosion(m, structure=np.ones((win_size, win_size), bool), border_value=1)
    # skimage crops the border of width r from its mean; do the same so both agree on a full mask
    valid = np.zeros_like(inner)
    valid[r:-r, r:-r] = inner[r:-r, r:-r]
    if not valid.any():
        raise InputError("SSIM mask is too small: no 7x7 window lies entirely outside the face")
    return float(smap[valid].mean())


def background_quality(
    original: np.ndarray, anonymized: np.ndarray, face_mask: np.ndarray
) -> dict[str, float]:
    """SSIM and PSNR of everything outside ``face_mask`` (True = face)."""
    bg = ~np.asarray(face_mask, dtype=bool)
    return {"ssim": masked_ssim(original, anonymized, bg), "psnr": masked_psnr(original, anonymized, bg)}


def periodic_artifact_score(images: np.ndarray | list[np.ndarray]) -> dict[str, Any]:
    """Grid (checkerboard) artifacts of a set of N x N images: the largest peak of their mean power spectrum at
    the frequencies stride-2 layers repeat at (periods of 2 and 4 px: every (u, v) in multiples of N/4 but
    (0, 0)), each divided by the median power of the 24 bins around it. (Period 8 is left out: natural faces
    have too much, too uneven power there for a stable ratio.)

    A natural face's spectrum falls off smoothly, so the ratio stays near 1 (CelebA at 64 px: at most 1.8 over
    64 faces); a generator with transposed-convolution artifacts leaves peaks of 5-150x there (measured on the
    small-preset checkpoints). BRISQUE, built on camera distortions, does not see such a grid. Returns
    ``{"score": max ratio, "at": [u, v], "n": number of images}``.
    """
    arr = np.asarray(images)
    if arr.ndim not in (3, 4) or arr.shape[0] < 1:
        raise InputError(f"expected a stack of images (n, N, N[, 3]), got shape {arr.shape}")
    n_img, h, w = arr.shape[:3]
    if h != w or h % 4 or h < 16:
        raise InputError(f"the artifact score needs square images with a side divisible by 4 (>= 16), got {h}x{w}")
    grey = arr.astype(np.float64).mean(axis=-1) if arr.ndim == 4 else arr.astype(np.float64)
    grey = grey - grey.mean(axis=(1, 2), keepdims=True)
    win = np.hanning(h)
    grey = grey * win[None, :, None] * win[None, None, :]
    power = (np.abs(np.fft.fft2(grey)) ** 2).mean(axis=0)
    step = h // 4
    best, at = 0.0, [0, 0]
    for u in range(0, h // 2 + 1, step):
        for v in range(0, h // 2 + 1, step):
            if u == 0 and v == 0:
                continue
            ring = [power[(u + du) % h, (v + dv) % h] for du in range(-2, 3) for dv in range(-2, 3) if du or dv]
            ratio = float(power[u, v] / max(np.median(ring), 1e-20))
            if ratio > best:
                best, at = ratio, [u, v]
    return {"score": best, "at": at, "n": int(n_img)}


def colour_noise_score(images: np.ndarray | list[np.ndarray], cutoff: float = 0.25) -> dict[str, Any]:
    """Colour noise of a set of N x N RGB images: per image, the power of its chroma channels (Cb, Cr) at spatial
    frequencies of at least ``cutoff`` cycles/pixel (half of Nyquist for 0.25), divided by the power of its luma
    (Y) at the same frequencies; the median over the images (Hann-windowed FFT, means removed).

    Camera photos carry little fine colour detail (sensors demosaic colour at a coarser scale, and JPEG keeps
    chroma at half resolution), so the ratio is small: 0.005 on 128 CelebA crops at 64 px, 0.006 after a 5x5 box
    blur. A generator that paints a patchwork of coloured pixels, which BRISQUE and the grid score do not catch,
    scores 0.1-0.8 (the small-preset checkpoints up to model v3: 0.28), as does a photo with sensor-like noise of
    sigma 6/255 (0.17). Returns ``{"score": median ratio, "n": number of images}``.
    """
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[0] < 1 or arr.shape[-1] != 3:
        raise InputError(f"expected a stack of RGB images (n, N, N, 3), got shape {arr.shape}")
    if not 0.0 < cutoff < 0.5:
        raise InputError(f"cutoff must be in (0, 0.5) cycles/pixel, got {cutoff}")
    n_img, h, w = arr.shape[:3]
    if h != w or h < 16:
        raise InputError(f"the colour noise score needs square images of at least 16 px, got {h}x{w}")
    ycc = arr.astype(np.float64) @ np.asarray(RGB_TO_YCBCR).T
    ycc = ycc - ycc.mean(axis=(1, 2), keepdims=True)
    win = np.hanning(h)
    ycc = ycc * win[None, :, None, None] * win[None, None, :, None]
    power = np.abs(np.fft.fft2(ycc, axes=(1, 2))) ** 2
    f = np.fft.fftfreq(h)
    high = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2) >= cutoff
    luma = power[:, high, 0].sum(axis=1)
    chroma = power[:, high, 1:].sum(axis=(1, 2))
    ratio = chroma / np.maximum(luma, 1e-12)
    return {"score": float(np.median(ratio)), "n": int(n_img)}


def radial_power_spectrum(
    images: np.ndarray | list[np.ndarray], n_bins: int = 16, axes_only: bool = False
) -> dict[str, Any]:
    """Mean luma power spectrum of a set of N x N images, summed in ``n_bins`` equal rings of radial frequency
    from 0 to 0.5 cycles/pixel (the corners beyond Nyquist go to the last ring).

    Each image's mean is removed and a periodic Hann window applied (:func:`a3gan.spectrum.ring_power`, which the
    spectral loss uses too); each ring holds sum |F|^2 / N^2, so the rings add up to the windowed image's energy (Parseval): a cosine of amplitude A at k cycles per image along
    one axis (2 < k < N/2 - 2) puts A^2 * (3N/16) * (3N/8) into the ring holding k/N and nothing elsewhere.
    With ``axes_only`` only the frequencies within one FFT bin of the u or v axis count: the energy of
    horizontal and vertical lines, where a generator's upsampling lattice shows (the shipped small model at 64 px:
    up to 4x CelebA's near Nyquist, while its spectrum as a whole falls short of CelebA's at high frequencies).
    Divide two results' ``power`` for a generated-over-real ratio (``scripts/probe_spectrum.py``). Returns
    ``{"freq": ring centres in cycles/pixel, "power": per ring, "n": number of images}``.
    """
    arr = np.asarray(images)
    if arr.ndim not in (3, 4) or arr.shape[0] < 1:
        raise InputError(f"expected a stack of images (n, N, N[, 3]), got shape {arr.shape}")
    n_img, h, w = arr.shape[:3]
    if h != w or h < 16:
        raise InputError(f"the power spectrum needs square images of at least 16 px, got {h}x{w}")
    if not 1 <= n_bins <= h // 2:
        raise InputError(f"n_bins must be between 1 and {h // 2} for {h} px images, got {n_bins}")
    t = torch.from_numpy(arr.astype(np.float64))
    grey = luma(t.permute(0, 3, 1, 2)) if arr.ndim == 4 else t
    out = ring_power(grey, n_bins, axes_only).numpy()
    freq = (np.arange(n_bins) + 0.5) * 0.5 / n_bins
    return {"freq": freq.tolist(), "power": out.tolist(), "n": int(n_img)}
