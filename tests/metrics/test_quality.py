"""a3gan.metrics.quality: SSIM / PSNR of the background only."""

from __future__ import annotations

import numpy as np
import pytest

from a3gan.errors import InputError
from a3gan.metrics import quality as Q


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    face = Q.box_mask((40, 40), (12, 12, 28, 28))
    return a, face


def test_box_mask():
    m = Q.box_mask((5, 6), (1, 2, 3, 4))
    assert m.sum() == 4 and m[2:4, 1:3].all()
    assert Q.box_mask((5, 5), (-3, -3, 100, 100)).all()


def test_changing_only_the_face_leaves_background_perfect(pair):
    a, face = pair
    b = a.copy()
    b[face] = 0
    q = Q.background_quality(a, b, face)
    assert q["ssim"] == pytest.approx(1.0)
    assert q["psnr"] == float("inf")


def test_background_shift_gives_the_hand_computed_psnr(pair):
    a, face = pair
    a = np.clip(a, 20, 235)
    b = a.astype(np.int16) + 10
    b[face] = a[face]
    b = b.astype(np.uint8)
    assert Q.masked_psnr(a, b, ~face) == pytest.approx(20 * np.log10(255 / 10))
    assert Q.masked_ssim(a, b, ~face) < 1.0
    # the face pixels are excluded: the same images measured over the face are identical
    assert Q.masked_psnr(a, b, face) == float("inf")


def test_full_mask_ssim_equals_skimage(pair):
    from skimage.metrics import structural_similarity

    a, _ = pair
    rng = np.random.default_rng(1)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    full = np.ones(a.shape[:2], bool)
    ref = structural_similarity(a.astype(float), b.astype(float), data_range=255, channel_axis=-1, win_size=7)
    assert Q.masked_ssim(a, b, full) == pytest.approx(ref, rel=1e-6)


def test_bad_arguments(pair):
    a, face = pair
    with pytest.raises(InputError, match="shape"):
        Q.masked_psnr(a, a[:10], face)
    with pytest.raises(InputError, match="no pixel"):
        Q.masked_psnr(a, a, np.zeros(a.shape[:2], bool))
    with pytest.raises(InputError, match="too small"):
        Q.masked_ssim(a, a, Q.box_mask((40, 40), (0, 0, 5, 5)))


def _natural_faces(n=8, size=64):
    """Crops of the public-domain astronaut photo: natural image statistics, no periodic pattern."""
    from PIL import Image
    from skimage import data

    img = data.astronaut()
    out = []
    for i in range(n):
        y, x = 20 + 9 * i, 140 + 7 * i
        out.append(np.asarray(Image.fromarray(img[y : y + 200, x : x + 200]).resize((size, size), Image.BILINEAR)))
    return np.stack(out)


def test_periodic_artifact_score_natural_vs_checkerboard():
    faces = _natural_faces()
    clean = Q.periodic_artifact_score(faces)
    assert clean["n"] == 8 and clean["score"] < 3.0
    ii, jj = np.mgrid[:64, :64]
    checker = np.where((ii + jj) % 2 == 0, 6.0, -6.0)[None, :, :, None]
    dirty = Q.periodic_artifact_score(np.clip(faces + checker, 0, 255))
    assert dirty["score"] > 10 * clean["score"] and dirty["at"] == [32, 32]
    stripes = np.where((jj // 2) % 2 == 0, 6.0, -6.0)[None, :, :, None]  # period 4 along x -> (u, v) = (0, 16)
    assert Q.periodic_artifact_score(np.clip(faces + stripes, 0, 255))["at"] == [0, 16]
    # brightness does not matter, grey input works
    shifted = Q.periodic_artifact_score(faces.astype(np.float64) * 0.5 + 40)
    assert shifted["score"] == pytest.approx(clean["score"], rel=1e-6)
    assert Q.periodic_artifact_score(faces.mean(-1))["score"] == pytest.approx(clean["score"], rel=1e-6)


def test_periodic_artifact_score_bad_arguments():
    with pytest.raises(InputError, match="divisible by 4"):
        Q.periodic_artifact_score(np.zeros((2, 62, 62, 3)))
    with pytest.raises(InputError, match="divisible by 4"):
        Q.periodic_artifact_score(np.zeros((2, 64, 32, 3)))
    with pytest.raises(InputError, match="stack"):
        Q.periodic_artifact_score(np.zeros((64, 64, 3, 1, 1)))


def test_colour_noise_score_grey_and_hand_values():
    """Grey images have no chroma at all (score 0). One image of a pure luma checkerboard plus a chroma
    checkerboard of a quarter of its amplitude: all the power is at the Nyquist corner, so the ratio is the
    ratio of squared amplitudes of the two patterns (hand value 1/16 * (Cb^2 + Cr^2) / Y^2 for the colour used)."""
    faces = _natural_faces(4)
    grey = np.repeat(faces.mean(-1, keepdims=True), 3, axis=-1)
    assert Q.colour_noise_score(grey)["score"] == pytest.approx(0.0, abs=1e-12)
    ii, jj = np.mgrid[:32, :32]
    s = np.where((ii + jj) % 2 == 0, 1.0, -1.0)[..., None]
    luma = s * np.ones(3)  # (1, 1, 1): Y = 1, Cb = Cr = 0
    red = s * np.array([1.0, 0.0, 0.0])  # (1, 0, 0): Y = .299, Cb = -.168736, Cr = .5
    img = 100 + 20 * luma + 5 * red
    y = 20 + 5 * 0.299
    cb, cr = 5 * -0.168736, 5 * 0.5
    got = Q.colour_noise_score(img[None])
    assert got["score"] == pytest.approx((cb**2 + cr**2) / y**2, rel=1e-6)
    assert got["n"] == 1


def test_colour_noise_score_natural_vs_coloured_noise():
    faces = _natural_faces(8).astype(np.float64)
    clean = Q.colour_noise_score(faces)["score"]
    rng = np.random.default_rng(0)
    noisy = np.clip(faces + rng.normal(0, 6, faces.shape), 0, 255)
    assert clean < 0.05
    assert Q.colour_noise_score(noisy)["score"] > 3 * clean
    # brightness and contrast change luma and chroma alike: the ratio stays
    assert Q.colour_noise_score(faces * 0.5 + 40)["score"] == pytest.approx(clean, rel=1e-6)


def test_colour_noise_score_bad_arguments():
    with pytest.raises(InputError, match="RGB"):
        Q.colour_noise_score(np.zeros((2, 64, 64)))
    with pytest.raises(InputError, match="square"):
        Q.colour_noise_score(np.zeros((2, 64, 32, 3)))
    with pytest.raises(InputError, match="cutoff"):
        Q.colour_noise_score(np.zeros((2, 64, 64, 3)), cutoff=0.6)


def test_radial_power_spectrum_hand_values():
    """A cosine of amplitude A at k cycles per image along x: all of its energy, A^2 (3N/16) (3N/8) by hand
    (periodic Hann window, Parseval), lands in the ring holding k/N, and on the axes; a diagonal cosine of the
    same radius lands in the same ring but not on the axes."""
    n, k, a = 64, 18, 10.0
    ii, jj = np.mgrid[:n, :n]
    img = 50 + a * np.cos(2 * np.pi * k * jj / n)
    got = Q.radial_power_spectrum(img[None], n_bins=8)
    assert got["n"] == 1 and len(got["power"]) == 8
    assert got["freq"][4] == pytest.approx(0.28125)  # ring 4: [0.25, 0.3125) holds 18/64 = 0.28125 (+-1 bin)
    hand = a**2 * (3 * n / 16) * (3 * n / 8)  # 28,800
    assert got["power"][4] == pytest.approx(hand, rel=1e-9)
    assert sum(got["power"]) == pytest.approx(hand, rel=1e-9)
    axes = Q.radial_power_spectrum(img[None], n_bins=8, axes_only=True)
    assert axes["power"][4] == pytest.approx(hand, rel=1e-9)
    kd = 13  # radius sqrt(2) * 13 / 64 = 0.287: ring 4 again
    diag = 50 + a * np.cos(2 * np.pi * kd * (ii + jj) / n)
    d_all = Q.radial_power_spectrum(diag[None], n_bins=8)["power"]
    d_axes = Q.radial_power_spectrum(diag[None], n_bins=8, axes_only=True)["power"]
    assert d_all[4] == pytest.approx(sum(d_all), rel=1e-9) and d_all[4] > 0.9 * hand
    assert sum(d_axes) == pytest.approx(0.0, abs=1e-9)


def test_radial_power_spectrum_lines_and_invariances():
    faces = _natural_faces(8).astype(np.float64)
    clean = np.asarray(Q.radial_power_spectrum(faces, n_bins=8, axes_only=True)["power"])
    assert np.all(np.diff(clean[1:]) < 0)  # natural images: power falls with frequency
    # a lattice of 1-px horizontal lines every 2 rows: energy at the Nyquist row, on the axis
    lines = np.where(np.mgrid[:64, :64][0] % 2 == 0, 4.0, -4.0)[None, :, :, None]
    dirty = np.asarray(Q.radial_power_spectrum(faces + lines, n_bins=8, axes_only=True)["power"])
    assert dirty[-1] > 10 * clean[-1]
    assert dirty[:4] == pytest.approx(clean[:4], rel=1e-6)
    # brightness offset does not matter; grey input equals the RGB luma
    shifted = Q.radial_power_spectrum(faces + 30, n_bins=8)["power"]
    assert shifted == pytest.approx(Q.radial_power_spectrum(faces, n_bins=8)["power"], rel=1e-9)
    luma = faces @ np.array([0.299, 0.587, 0.114])
    assert Q.radial_power_spectrum(luma, n_bins=8)["power"] == pytest.approx(
        Q.radial_power_spectrum(faces, n_bins=8)["power"], rel=1e-9
    )


def test_radial_power_spectrum_bad_arguments():
    with pytest.raises(InputError, match="square"):
        Q.radial_power_spectrum(np.zeros((2, 64, 32, 3)))
    with pytest.raises(InputError, match="stack"):
        Q.radial_power_spectrum(np.zeros((64, 64, 3, 1, 1)))
    with pytest.raises(InputError, match="n_bins"):
        Q.radial_power_spectrum(np.zeros((2, 64, 64)), n_bins=33)
