"""a3gan.pipeline.align: Umeyama, template, warps to and from the crop, tensor conversion, CelebA geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a3gan.errors import InputError
from a3gan.pipeline.align import (
    TEMPLATE,
    align_face,
    apply_affine,
    crops_to_tensor,
    estimate_transform,
    invert_affine,
    tensor_to_crops,
    transform_scale,
    umeyama,
    warp_from_crop,
    warp_to_crop,
)
from a3gan.pipeline.detect import Face


def _similarity(s: float, theta: float, t) -> np.ndarray:
    c, si = np.cos(theta), np.sin(theta)
    return np.array([[s * c, -s * si, t[0]], [s * si, s * c, t[1]]])


def test_umeyama_recovers_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    M = _similarity(0.37, 0.4, (12.0, -3.0))
    dst = apply_affine(M, src)
    np.testing.assert_allclose(umeyama(src, dst), M, atol=1e-9)
    assert transform_scale(M) == pytest.approx(0.37)


def test_umeyama_least_squares_no_reflection():
    # mirrored points: the best proper similarity, never a reflection
    src = np.array([[0, 0], [3, 0], [0, 1], [1, 2.0]])
    dst = src * np.array([-1.0, 1.0])
    M = umeyama(src, dst)
    assert np.linalg.det(M[:, :2]) > 0


def test_umeyama_two_points_hand_values():
    # (0,0)->(1,1), (1,0)->(1,3): scale 2, rotation +90 degrees, translation (1,1)
    M = umeyama(np.array([[0, 0], [1, 0.0]]), np.array([[1, 1], [1, 3.0]]))
    np.testing.assert_allclose(M, [[0, -2, 1], [2, 0, 1]], atol=1e-12)


@pytest.mark.parametrize(
    "src,dst",
    [
        (np.ones((5, 2)), np.zeros((5, 2))),  # all landmarks coincide
        (np.zeros((5, 2)), np.zeros((4, 2))),
        (np.full((5, 2), np.nan), np.zeros((5, 2))),
    ],
)
def test_umeyama_bad_input(src, dst):
    with pytest.raises(InputError):
        umeyama(src, dst)


def test_template_geometry():
    assert TEMPLATE.shape == (5, 2)
    assert (TEMPLATE > 0).all() and (TEMPLATE < 1).all()
    assert TEMPLATE[0, 0] < TEMPLATE[2, 0] < TEMPLATE[1, 0]  # nose between the eyes
    assert TEMPLATE[:2, 1].max() < TEMPLATE[2, 1] < TEMPLATE[3:, 1].min()  # eyes, nose, mouth top to bottom
    assert abs(TEMPLATE[:, 0].mean() - 0.5) < 0.02  # horizontally centred crop


def test_estimate_transform_identity_for_template_landmarks():
    r = 64
    lm = TEMPLATE * r  # continuous coordinates of a face already in crop geometry
    M = estimate_transform(lm, r)
    np.testing.assert_allclose(M, [[1, 0, 0], [0, 1, 0]], atol=1e-5)
    # a face twice as large, shifted by (100, 50): crop pixel centres map back to 2x + 0.5 + offset
    M2 = estimate_transform(lm * 2 + np.array([100, 50]), r)
    p = apply_affine(invert_affine(M2), np.array([[0.0, 0.0]]))  # crop pixel (0, 0), centre (0.5, 0.5)
    np.testing.assert_allclose(p, [[100 + 1.0 - 0.5, 50 + 1.0 - 0.5]], atol=1e-4)  # continuous 1.0 -> cv 0.5


def test_warp_to_crop_translation_exact():
    img = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    M = np.array([[1.0, 0, -7], [0, 1.0, -5]])  # crop pixel (x, y) = image pixel (x + 7, y + 5)
    crop = warp_to_crop(img, M, 16)
    assert crop.dtype == np.uint8 and crop.shape == (16, 16, 3)
    np.testing.assert_array_equal(crop, img[5:21, 7:23])


def test_warp_to_crop_antialiases_when_shrinking():
    # a 1-pixel checkerboard shrunk 4x must become flat grey (area averaging), not an aliased pattern
    yy, xx = np.mgrid[0:256, 0:256]
    img = np.repeat((((xx + yy) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    M = np.array([[0.25, 0, 0], [0, 0.25, 0]])
    M[:, 2] = M[:, :2] @ [0.5, 0.5] - 0.5  # continuous scaling by 1/4
    crop = warp_to_crop(img, M, 64).astype(float)
    assert abs(crop[4:-4, 4:-4].mean() - 127.5) < 2 and crop[4:-4, 4:-4].std() < 2


def test_warp_from_crop_inverts_warp_to_crop():
    # smooth image, rotated and scaled crop; pasting it back reproduces the image inside the footprint
    yy, xx = np.mgrid[0:120, 0:160].astype(np.float32)
    img = np.stack([xx * 1.2, yy * 1.5, 100 + 0 * xx], 2).clip(0, 255).astype(np.uint8)
    M = _similarity(1.3, 0.3, (-60.0, -40.0))
    crop = warp_to_crop(img, M, 48)
    patch, (x0, y0, x1, y1) = warp_from_crop(crop.astype(np.float32), M, img.shape)
    ones, _ = warp_from_crop(np.ones((48, 48), np.float32), M, img.shape)
    inner = ones > 0.999
    assert inner.sum() > 500
    err = np.abs(patch - img[y0:y1, x0:x1].astype(np.float32))[inner]
    assert err.mean() < 1.0 and err.max() < 3.0
    assert (patch[ones == 0] == 0).all()


def test_align_face_on_synthetic_image():
    img = np.zeros((200, 200, 3), np.uint8)
    lm = TEMPLATE * 80 + np.array([60.0, 40.0])
    face = Face((60, 40, 140, 120), lm, 0.99)
    af = align_face(img, face, 32)
    assert af.crop.shape == (32, 32, 3) and af.resolution == 32
    np.testing.assert_allclose(transform_scale(af.M), 32 / 80, rtol=1e-5)


def test_align_face_with_unusable_landmarks_uses_the_box():
    img = np.full((100, 100, 3), 50, np.uint8)
    for lm in (np.full((5, 2), 40.0), np.full((5, 2), np.nan)):
        af = align_face(img, Face((20, 20, 60, 70), lm, 0.5), 16)
        assert af.crop.shape == (16, 16, 3) and np.isfinite(af.M).all()
        centre = apply_affine(invert_affine(af.M), np.array([[7.5, 7.5]]))[0]
        assert 25 < centre[0] < 55 and 25 < centre[1] < 70  # the crop is on the box


def test_crops_tensor_round_trip():
    crops = np.array([[[[0, 255, 127]]]], np.uint8).repeat(4, 1).repeat(4, 2)  # (1, 4, 4, 3)
    t = crops_to_tensor(crops)
    assert t.shape == (1, 3, 4, 4) and t.dtype == torch.float32
    assert t[0, 0, 0, 0].item() == -1.0 and t[0, 1, 0, 0].item() == 1.0
    np.testing.assert_allclose(tensor_to_crops(t), crops, atol=1e-4)
    assert tensor_to_crops(torch.full((1, 3, 2, 2), 5.0)).max() == 255.0  # clamped
    with pytest.raises(InputError):
        crops_to_tensor(np.zeros((2, 4, 4), np.uint8)[None, ..., None])


def test_alignment_of_celeba_matches_stgan_crop(celeba_dir):
    """Detect + align aligned CelebA images: the transform must be the STGAN crop the model was trained on."""
    import cv2
    from PIL import Image

    from a3gan.geometry import celeba_crop_box
    from a3gan.pipeline.detect import CenterFaceDetector

    det = CenterFaceDetector(threshold=0.35, second_pass=False)
    r = 64
    scales = []
    for i in range(501, 511):  # outside the 500 images the template was measured on
        img = np.asarray(Image.open(celeba_dir / "img_align_celeba" / f"{i:06d}.jpg").convert("RGB"))
        h, w = img.shape[:2]
        px, py = w // 2, h // 2
        big = cv2.copyMakeBorder(img, py, py, px, px, cv2.BORDER_REPLICATE)
        faces = det.detect(big)
        assert faces, f"no face in CelebA {i:06d}"
        af = align_face(big, max(faces, key=lambda f: f.score), r)
        # the exact transform: the crop box of the padded image onto the R x R crop
        left, top, right, bottom = celeba_crop_box(w, h)
        side = right - left
        exact = np.array([[r / side, 0, 0], [0, r / side, 0]])
        exact[:, 2] = exact[:, :2] @ np.array([0.5 - left - px, 0.5 - top - py]) - 0.5
        scales.append(transform_scale(af.M) / transform_scale(exact))
        angle = np.degrees(np.arctan2(af.M[1, 0], af.M[0, 0]))
        assert abs(angle) < 6
        centre = np.array([[r / 2 - 0.5, r / 2 - 0.5]])
        off = apply_affine(invert_affine(af.M), centre) - apply_affine(invert_affine(exact), centre)
        assert np.abs(off).max() < 0.04 * side  # crop centre within 4% of the crop size (about 3 px here)
    # faces differ in proportions (one image: up to ~15% off), but on average the scale is the STGAN crop's
    assert np.median(scales) == pytest.approx(1.0, abs=0.05) and 0.8 < min(scales) and max(scales) < 1.2
