"""a3gan.pipeline.baselines: 8x8 pixelation, 9x9 Gaussian blur, black-out against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from a3gan.errors import InputError
from a3gan.pipeline.align import TEMPLATE
from a3gan.pipeline.baselines import (
    anonymize_faces_baseline,
    apply_baseline,
    blackout,
    blur_sigma,
    gaussian_blur,
    get_baseline,
    pixelate,
)
from a3gan.pipeline.detect import Face


def test_pixelate_2x2_blocks_hand_values():
    img = np.arange(16, dtype=np.float64).reshape(4, 4)
    out = pixelate(img, blocks=2)
    # top-left block {0,1,4,5} -> 2.5, top-right {2,3,6,7} -> 4.5, bottom-left {8,9,12,13} -> 10.5, {10,11,14,15}
    np.testing.assert_array_equal(out, [[2.5, 2.5, 4.5, 4.5]] * 2 + [[10.5, 10.5, 12.5, 12.5]] * 2)


def test_pixelate_8x8_grid_on_16px_crop():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = pixelate(img)  # 8x8 grid: 2x2 px blocks
    assert out.dtype == np.uint8 and out.shape == img.shape
    block = img[4:6, 10:12].astype(float).mean((0, 1))
    np.testing.assert_array_equal(out[4:6, 10:12], np.broadcast_to(np.floor(block + 0.5), (2, 2, 3)))
    assert len(np.unique(out.reshape(-1, 3), axis=0)) <= 64


def test_pixelate_uneven_size_and_rounding():
    # 10 px into 8 blocks: edges at rint(linspace(0, 10, 9)) = 0 1 2 4 5 6 8 9 10
    img = np.zeros((10, 10), np.uint8)
    img[2, 2], img[3, 3] = 1, 2  # block rows 2:4, cols 2:4 -> mean (1 + 2) / 4 = 0.75 -> 1
    out = pixelate(img)
    assert out[2, 2] == 1 and out[3, 2] == 1 and out[4, 4] == 0
    img2 = np.array([[1, 2]], np.uint8)
    assert pixelate(img2, blocks=1).tolist() == [[2, 2]]  # 1.5 rounds half up


def test_blur_sigma_is_opencv_default():
    assert blur_sigma(9) == pytest.approx(1.7)
    assert blur_sigma(3) == pytest.approx(0.8)


def test_gaussian_blur_impulse_response():
    img = np.zeros((21, 21), np.float32)
    img[10, 10] = 1.0
    out = gaussian_blur(img)
    x = np.arange(-4, 5)
    g = np.exp(-(x**2) / (2 * 1.7**2))
    g /= g.sum()
    expected = np.zeros((21, 21))
    expected[6:15, 6:15] = np.outer(g, g)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_gaussian_blur_keeps_dtype_and_constant():
    img = np.full((12, 12, 3), 77, np.uint8)
    out = gaussian_blur(img)
    assert out.dtype == np.uint8 and (out == 77).all()


def test_blackout():
    img = np.full((5, 6, 3), 200, np.uint8)
    out = blackout(img)
    assert out.shape == img.shape and out.dtype == img.dtype and not out.any()
    assert (img == 200).all()  # input untouched


def test_apply_baseline_with_mask_hand_values():
    crop = np.full((4, 4, 3), 100, np.uint8)
    mask = np.zeros((4, 4), np.float32)
    mask[1, 1], mask[2, 2] = 1.0, 0.5
    out = apply_baseline(crop, "blackout", mask)
    assert out[1, 1, 0] == 0 and out[2, 2, 0] == 50 and out[0, 0, 0] == 100
    np.testing.assert_array_equal(apply_baseline(crop, "blackout"), np.zeros_like(crop))


@pytest.mark.parametrize(
    "call",
    [
        lambda: get_baseline("swirl"),
        lambda: pixelate(np.zeros((4, 4)), blocks=0),
        lambda: gaussian_blur(np.zeros((4, 4)), ksize=8),
        lambda: pixelate(np.zeros((0, 4))),
        lambda: apply_baseline(np.zeros((4, 4, 3)), "blur", np.ones((3, 3))),
    ],
)
def test_bad_arguments(call):
    with pytest.raises(InputError):
        call()


@pytest.mark.parametrize("method", ["pixelate", "blur", "blackout"])
def test_full_image_baseline_changes_only_face_region(method):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (160, 240, 3), dtype=np.uint8)
    lm = (TEMPLATE - 0.5) * 60 + np.array([80.0, 80.0])
    face = Face((50, 50, 110, 110), lm, 0.9)
    out = anonymize_faces_baseline(img, [face], method, resolution=32)
    changed = np.any(out != img, axis=2)
    assert changed[70:95, 65:95].mean() > 0.9  # the face centre is replaced
    far = np.ones(changed.shape, bool)
    far[30:135, 35:125] = False
    np.testing.assert_array_equal(out[far], img[far])  # far from the face: bit-identical
    if method == "blackout":
        assert out[80, 80].max() == 0
