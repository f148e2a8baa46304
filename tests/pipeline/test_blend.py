"""a3gan.pipeline.blend: face mask, colour matching, paste-back (untouched background, no visible edges)."""

from __future__ import annotations

import numpy as np
import pytest

from a3gan.errors import InputError
from a3gan.pipeline.align import TEMPLATE, apply_affine, estimate_transform
from a3gan.pipeline.blend import (
    MASK_AXES,
    MASK_CENTER,
    blend_arrays,
    composite_crop,
    face_mask,
    match_color,
    paste_back,
)


def _M_for_face(x: float, y: float, size: float, r: int, angle: float = 0.0) -> np.ndarray:
    """Transform of a synthetic face: the template scaled to ``size`` px at (x, y), rotated by ``angle``."""
    c, s = np.cos(angle), np.sin(angle)
    pts = (TEMPLATE - 0.5) * size
    pts = pts @ np.array([[c, s], [-s, c]]) + np.array([x, y])
    return estimate_transform(pts, r)


def test_face_mask_shape_range_border():
    m = face_mask(64)
    assert m.shape == (64, 64) and m.dtype == np.float32
    assert m.min() == 0.0 and m.max() == 1.0
    # exactly 0 on (and near) every border of the crop: the paste-back never shows the crop's box
    assert (m[:3] == 0).all() and (m[-1] == 0).all() and (m[:, :3] == 0).all() and (m[:, -3:] == 0).all()
    np.testing.assert_array_equal(m, m[:, ::-1])  # left-right symmetric
    # fully replaced over the eyes, nose and mouth of the template
    for x, y in TEMPLATE:
        assert m[int(y * 64), int(x * 64)] == 1.0
    assert not m.flags.writeable


def test_face_mask_feather_is_smooth():
    m = face_mask(128).astype(np.float64)
    # smoothstep over ~12 px at 128 px: no step between neighbours larger than ~0.15
    assert np.abs(np.diff(m, axis=0)).max() < 0.15 and np.abs(np.diff(m, axis=1)).max() < 0.15


@pytest.mark.parametrize(
    "kw", [{"resolution": 2}, {"resolution": 64, "inner": 1.0}, {"resolution": 64, "inner": -0.1}]
)
def test_face_mask_bad_arguments(kw):
    with pytest.raises(InputError):
        face_mask(**kw)


def test_match_color_rgb_inverts_affine_change():
    rng = np.random.default_rng(0)
    ref = rng.uniform(60, 190, (16, 16, 3))
    src = ref * 0.6 + 30  # per-channel affine change: matching undoes it exactly
    out = match_color(src, ref, np.ones((16, 16)), space="rgb")
    np.testing.assert_allclose(out, ref, atol=1e-3)


def test_match_color_lab_moves_mean_inside_weight_only():
    ref = np.full((8, 8, 3), (180.0, 120.0, 100.0))
    src = np.full((8, 8, 3), (90.0, 90.0, 90.0))
    w = np.zeros((8, 8))
    w[2:6, 2:6] = 1
    out = match_color(src, ref, w)
    np.testing.assert_allclose(out[3, 3], ref[3, 3], atol=1.0)  # constant images: the mean is all there is
    # zero weight: unchanged
    np.testing.assert_allclose(match_color(src, ref, np.zeros((8, 8))), src)


def test_match_color_bad_arguments():
    with pytest.raises(InputError):
        match_color(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)), np.ones((4, 4)))
    with pytest.raises(InputError):
        match_color(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), np.ones((3, 3)))
    with pytest.raises(InputError):
        match_color(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), np.ones((4, 4)), space="hsv")


def test_composite_crop_hand_values():
    orig = np.full((32, 32, 3), 100.0)
    new = np.full((32, 32, 3), 200.0)
    mask = np.zeros((32, 32), np.float32)
    mask[10, 10], mask[20, 20] = 1.0, 0.25
    c = composite_crop(orig, new, mask, color_match=False)
    assert c[10, 10, 0] == 200 and c[20, 20, 0] == 125 and c[0, 0, 0] == 100
    np.testing.assert_allclose(blend_arrays(orig, new, mask), c)


def test_paste_back_leaves_background_bit_identical():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    out = img.copy()
    r = 32
    M = _M_for_face(150, 100, 80, r, angle=0.3)
    new = rng.uniform(0, 255, (r, r, 3)).astype(np.float32)
    paste_back(out, new, M)
    changed = np.any(out != img, axis=2)
    assert changed.sum() > 1000  # the face was replaced
    ys, xs = np.nonzero(changed)
    # every changed pixel lies inside the mask's outer ellipse mapped into the image (+1 crop pixel of bilinear
    # interpolation)
    u = (apply_affine(M, np.stack([xs, ys], 1)) + 0.5) / r
    rho = np.hypot((u[:, 0] - MASK_CENTER[0]) / MASK_AXES[0], (u[:, 1] - MASK_CENTER[1]) / MASK_AXES[1])
    assert rho.max() < 1 + 1.0 / (r * MASK_AXES[0])
    far = np.ones(changed.shape, bool)
    far[40:170, 90:210] = False
    np.testing.assert_array_equal(out[far], img[far])


def test_paste_back_has_no_visible_edge():
    img = np.full((160, 160, 3), 100, np.uint8)
    out = img.copy()
    r = 64
    paste_back(out, np.full((r, r, 3), 200.0, np.float32), _M_for_face(80, 80, 100, r))
    o = out[..., 0].astype(int)
    assert o.max() == 200  # the inner face is fully replaced
    # feathered: between neighbouring pixels the 100-level jump is spread out (a hard box edge would be 100)
    assert np.abs(np.diff(o, axis=0)).max() <= 20 and np.abs(np.diff(o, axis=1)).max() <= 20


def test_paste_back_outside_image_and_bad_target():
    img = np.zeros((50, 50, 3), np.uint8)
    out = img.copy()
    paste_back(out, np.full((16, 16, 3), 255.0), _M_for_face(500, 500, 40, 16))  # entirely off-image: no-op
    np.testing.assert_array_equal(out, img)
    paste_back(out, np.full((16, 16, 3), 255.0), _M_for_face(0, 0, 40, 16))  # partly off-image: clipped
    assert out.max() == 255
    with pytest.raises(InputError):
        paste_back(np.zeros((50, 50, 3), np.float32), np.zeros((16, 16, 3)), _M_for_face(20, 20, 20, 16))


def test_smooth_crop_hand_values():
    from a3gan.pipeline.blend import smooth_crop

    flat = np.full((16, 16, 3), 100.0, np.float32)
    np.testing.assert_allclose(smooth_crop(flat, 0.8), flat, atol=1e-4)  # a constant stays constant
    x = np.random.default_rng(0).uniform(0, 255, (16, 16, 3)).astype(np.float32)
    assert smooth_crop(x, 0) is x
    imp = np.zeros((15, 15, 3), np.float32)
    imp[7, 7] = 1.0
    out = smooth_crop(imp, 1.0)
    assert out.sum() == pytest.approx(3.0, abs=1e-4)  # the kernel sums to 1 per channel
    # 1-D Gaussian weights at offsets 0 and 1: g(0)/g(1) = exp(1/2) for sigma 1
    assert out[7, 7, 0] / out[7, 8, 0] == pytest.approx(np.exp(0.5), rel=0.02)
    checker = ((np.indices((16, 16)).sum(0) % 2) * 255.0).astype(np.float32)[..., None].repeat(3, 2)
    assert np.abs(smooth_crop(checker, 1.0) - 127.5)[2:-2, 2:-2].max() < 10  # the checkerboard is gone
    with pytest.raises(InputError, match="smooth"):
        smooth_crop(x, -1)
