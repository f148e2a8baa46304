from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from a3gan.errors import InputError
from a3gan.identity.align import (
    CROP_ARCFACE5_MEAN,
    CROP_DLIB5_MEAN,
    CropAligner,
    arcface_template,
    crop_to_chip_theta,
    dlib_chip_template,
    invert_affine,
    similarity_transform,
    warp_face,
)


def test_similarity_recovers_known_transform():
    src = np.array([[0, 0], [10, 0], [0, 10], [7, 3], [2, 9]], float)
    ang, s, t = 0.3, 1.7, np.array([5.0, -2.0])
    r = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    m = similarity_transform(src, src @ r.T + t)
    np.testing.assert_allclose(m[:, :2], r, atol=1e-10)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-10)
    np.testing.assert_allclose(invert_affine(m)[:, :2], np.linalg.inv(r), atol=1e-10)


def test_similarity_bad_points():
    with pytest.raises(InputError):
        similarity_transform(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(InputError, match="degenerate"):
        similarity_transform(np.ones((5, 2)), np.random.rand(5, 2))
    with pytest.raises(InputError, match="NaN"):
        similarity_transform(np.full((5, 2), np.nan), np.ones((5, 2)))


def test_templates():
    # dlib: (0.25 + p) / 1.5 * 150, e.g. the nose point (0.4901, 0.6278) -> (74.01, 87.78)
    np.testing.assert_allclose(dlib_chip_template()[4], [74.0112, 87.7798], atol=1e-3)
    # ArcFace: pixel-index template + 0.5 in continuous coordinates
    np.testing.assert_allclose(arcface_template(112)[0], [38.7946, 52.1963])
    np.testing.assert_allclose(arcface_template(224)[0], [77.5892, 104.3926])


def test_measured_crop_means_are_plausible():
    # ArcFace order: left eye left of right eye, eyes above nose above mouth, roughly symmetric about x = 0.5
    a = CROP_ARCFACE5_MEAN
    assert a[0, 0] < 0.5 < a[1, 0] and a[3, 0] < 0.5 < a[4, 0]
    assert a[:2, 1].max() < a[2, 1] < a[3:, 1].min()
    assert abs(a[:, 0].mean() - 0.5) < 0.02
    assert abs(CROP_DLIB5_MEAN[:, 0].mean() - 0.5) < 0.02


def test_theta_maps_template_to_crop_points():
    size = 150
    tmpl = dlib_chip_template(size)
    theta = crop_to_chip_theta(CROP_DLIB5_MEAN, tmpl, size)
    xo = tmpl / size * 2 - 1  # template in output-normalised coordinates
    g = xo @ theta[:, :2].T + theta[:, 2]
    m = similarity_transform(tmpl, CROP_DLIB5_MEAN)  # chip -> crop, the least-squares fit
    np.testing.assert_allclose(g, (np.c_[tmpl, np.ones(5)] @ m.T) * 2 - 1, atol=1e-9)
    assert np.abs(g - (CROP_DLIB5_MEAN * 2 - 1)).max() < 0.02


def test_crop_aligner_samples_the_right_place():
    """A bright dot at a crop point must land on the matching template point of the chip, at any R."""
    tmpl = arcface_template(112)
    al = CropAligner(CROP_ARCFACE5_MEAN, tmpl, 112)
    for r in (64, 128):
        x = -torch.ones(1, 3, r, r)
        u = CROP_ARCFACE5_MEAN[2]  # nose
        j, i = int(u[0] * r), int(u[1] * r)
        x[..., i - 1 : i + 2, j - 1 : j + 2] = 1.0
        chip = al(x)
        assert chip.shape == (1, 3, 112, 112)
        w = (chip[0, 0] + 1).clamp(min=0)
        yy, xx = torch.meshgrid(torch.arange(112.0), torch.arange(112.0), indexing="ij")
        cy, cx = float((w * yy).sum() / w.sum()) + 0.5, float((w * xx).sum() / w.sum()) + 0.5
        assert abs(cx - tmpl[2, 0]) < 3 and abs(cy - tmpl[2, 1]) < 3, (r, cx, cy)


def test_crop_aligner_gradient_and_bad_input():
    al = CropAligner(CROP_DLIB5_MEAN, dlib_chip_template(), 150)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    al(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(InputError):
        al(torch.rand(3, 32, 32))


def test_crop_aligner_constant_image_stays_constant():
    al = CropAligner(CROP_ARCFACE5_MEAN, arcface_template(), 112)
    x = torch.full((1, 3, 128, 128), 0.25)
    torch.testing.assert_close(al(x), torch.full((1, 3, 112, 112), 0.25))


def test_warp_face_identity_and_scaling():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    tmpl = arcface_template(112)
    np.testing.assert_array_equal(warp_face(img, tmpl, tmpl, 112), img)  # landmarks already on the template
    # the same face at 2x: a 2x image with 2x landmarks gives (nearly) the same chip
    big = np.asarray(
        F.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None].float(), scale_factor=2, mode="nearest")[0]
        .permute(1, 2, 0)
        .byte()
    )
    chip = warp_face(big, tmpl * 2, tmpl, 112)
    assert np.abs(chip.astype(int) - img.astype(int))[8:-8, 8:-8].mean() < 40  # bilinear on noise


def test_warp_face_bad_arguments():
    img = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(InputError, match=r"\(5, 2\)"):
        warp_face(img, np.zeros((4, 2)), arcface_template(), 112)
    with pytest.raises(InputError, match="uint8"):
        warp_face(img.astype(np.float32), arcface_template(), arcface_template(), 112)
    with pytest.raises(InputError, match="uint8"):
        warp_face(np.zeros((50, 50), np.uint8), arcface_template(), arcface_template(), 112)
