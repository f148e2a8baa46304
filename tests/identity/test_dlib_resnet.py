from __future__ import annotations

import numpy as np
import pytest
import torch

from a3gan.errors import InputError, ModelError
from a3gan.identity import dlib_resnet as dr
from a3gan.identity.dlib_resnet import DlibIdentity, DlibResNet, _pad_add, load_dlib_resnet


def test_pad_add_matches_dlib_add_prev():
    a = torch.ones(1, 4, 3, 3)
    b = torch.full((1, 2, 4, 4), 2.0)
    out = _pad_add(a, b)
    assert out.shape == (1, 4, 4, 4)
    # channels 0-1 get both, 2-3 only a; row/col 3 exists only in b
    assert out[0, 0, 0, 0] == 3 and out[0, 3, 0, 0] == 1
    assert out[0, 0, 3, 3] == 2 and out[0, 3, 3, 3] == 0
    torch.testing.assert_close(_pad_add(a, a), 2 * a)


def test_architecture_shapes_and_params():
    m = DlibResNet()
    n = sum(p.numel() for p in m.parameters())
    # 5,614,592 dlib parameters minus the gamma/beta of the 29 affine layers folded into the convs:
    # channels: stem 32 + 2 convs x (3 x 32 + 4 x 64 + 3 x 128 + 4 x 256) = 3,552
    affine_channels = 32 + 2 * (3 * 32 + 4 * 64 + 3 * 128 + 4 * 256)
    assert affine_channels == 3552
    assert n == 5_614_592 - 2 * affine_channels
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert len(convs) == 29
    with torch.no_grad():
        assert m(torch.rand(2, 3, 150, 150) * 255).shape == (2, 128)


@pytest.fixture(scope="module")
def ident(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("A3GAN_CACHE", str(tmp_path_factory.mktemp("cache")))
        try:
            yield DlibIdentity()
        except ModelError as e:
            pytest.skip(str(e))


def test_cache_is_written_and_used(ident, monkeypatch):
    cached = list(dr.cache_dir().glob("dlib_resnet_v1_*.safetensors"))
    assert len(cached) == 1
    monkeypatch.setattr(dr, "read_dlib_net", lambda *a, **k: pytest.fail("parsed again despite the cache"))
    m = load_dlib_resnet()
    torch.testing.assert_close(m.fc.weight, ident.net.fc.weight)


def test_bad_weights_path(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_dlib_resnet(tmp_path / "nope.dat")
    bad = tmp_path / "bad.dat"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError):
        load_dlib_resnet(bad, use_cache=False)


def test_frozen_eval_and_differentiable(ident):
    assert all(not p.requires_grad for p in ident.parameters())
    ident.train()
    assert not ident.training and not ident.net.training
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    e = ident(x)
    assert e.shape == (2, 128)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(2))
    (e[0] * e[1]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()


def test_feature_maps_are_the_forward_pass_taps(ident):
    """feature_maps returns the units' outputs of the same forward pass: the last unit's map, pooled and put through
    fc, is the raw descriptor; shapes and channels follow UNITS; gradients reach the input; bad taps fail."""
    chip = torch.rand(2, 3, 150, 150) * 255
    net = ident.net
    maps = net.feature_maps(chip, (2, 6, 13))
    assert [tuple(f.shape) for f in maps] == [(2, 32, 35, 35), (2, 64, 17, 17), (2, 256, 2, 2)]
    assert net.tap_channels((2, 6, 13)) == [32, 64, 256]
    torch.testing.assert_close(net.fc(maps[-1].mean(dim=(2, 3))), net(chip))
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    f = ident.feature_maps(x, (2,))
    assert f[0].shape == (2, 32, 35, 35)
    f[0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for bad in ((), (6, 2), (2, 2), (14,), (-1,)):
        with pytest.raises(InputError, match="taps"):
            net.feature_maps(chip, bad)


def test_bad_input_shape(ident):
    with pytest.raises(InputError, match=r"\(B, 3, R, R\)"):
        ident(torch.zeros(3, 64, 64))
    with pytest.raises(InputError, match="150x150"):
        ident.raw_descriptor_from_chip(np.zeros((100, 100, 3), np.uint8))


def test_threshold_derivation(ident):
    # dlib: |a - b| < 0.6 on raw descriptors of norm ~1.5  <=>  cos > 1 - 0.36 / (2 * 1.5^2) = 0.92
    assert ident.threshold_cos == pytest.approx(0.92)
    d = ident.describe()
    assert d["name"] == "dlib" and d["dim"] == 128 and d["threshold_cos"] == pytest.approx(0.92)
    assert d["weights"].endswith("dlib_face_recognition_resnet_model_v1.dat") and len(d["sha256"]) == 16


# --- parity with dlib on real faces --------------------------------------------------------------------------
def test_parity_with_dlib_on_real_faces(ident, celeba_faces, pair_faces):
    faces = celeba_faces[:6] + pair_faces
    chips = np.stack([f.chip for f in faces])
    ours = ident.raw_descriptor_from_chip(chips)
    ref = np.stack([f.descriptor for f in faces])
    diff = np.abs(ours - ref).max()
    assert diff < 1e-4, f"max abs diff to dlib {diff:.2e}"


def test_raw_descriptors_are_not_unit_norm(celeba_faces, pair_faces):
    norms = np.array([np.linalg.norm(f.descriptor) for f in celeba_faces + pair_faces])
    assert 1.3 < norms.mean() < 1.7 and norms.min() > 1.2  # so the cosine threshold needs the conversion


def test_fixed_alignment_agrees_with_dlib_chip(ident, celeba_faces):
    """Crop geometry (128 px) through the fixed affine vs dlib's own per-image 5-point chip. Measured: 0.992."""
    x = torch.from_numpy(np.stack([f.crop128 for f in celeba_faces])).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        ours = ident(x).numpy()
    ref = np.stack([f.descriptor / np.linalg.norm(f.descriptor) for f in celeba_faces])
    cos = (ours * ref).sum(1)
    assert cos.mean() >= 0.9, cos
    # and identity is preserved: each crop is closer to its own dlib embedding than to any other face's
    assert (np.argmax(ours @ ref.T, axis=1) == np.arange(len(ref))).all()


def test_embed_from_landmarks(ident, celeba_faces, pair_faces):
    for f in celeba_faces[:4] + pair_faces:
        ref = f.descriptor / np.linalg.norm(f.descriptor)
        e5 = ident.embed_from_dlib5(f.image, f.dlib5)  # reproduces dlib's own chip
        assert float(e5 @ ref) > 0.98
        ea = ident.embed_from_landmarks(f.image, f.arcface5)  # ArcFace-order points, measured template
        assert ea.shape == (128,) and abs(np.linalg.norm(ea) - 1) < 1e-5
        assert float(ea @ ref) > 0.9


def test_forward_speed_batch16(ident):
    import time

    x = torch.rand(16, 3, 150, 150) * 255
    with torch.no_grad():
        ident.net(x)
        t = time.perf_counter()
        ident.net(x)
        dt = time.perf_counter() - t
    assert dt < 2.0, f"batch of 16 took {dt:.2f}s"  # ~0.19 s measured on one core


@pytest.mark.parametrize("half", [False, True])
def test_export_converted_round_trip(ident, tmp_path, half):
    out = dr.export_converted(None, tmp_path / "dlib.safetensors", half=half)
    size = out.stat().st_size
    # 5.6 M parameters: float32 ~22.4 MB, float16 half of it
    assert (10e6 < size < 12e6) if half else (21e6 < size < 23e6)
    m = load_dlib_resnet(out)
    assert m.fc.weight.dtype == torch.float32 and not m.fc.weight.requires_grad
    x = torch.rand(3, 3, 150, 150, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        ref, got = ident.net(x), m(x)
    if half:
        cos = torch.nn.functional.cosine_similarity(ref, got, dim=1)
        assert (cos > 0.999).all() and not torch.equal(ref, got)
    else:
        torch.testing.assert_close(got, ref, rtol=0, atol=0)
    # a DlibIdentity (the training's --identity-weights) reads it too
    assert DlibIdentity(out).net.fc.weight.shape == ident.net.fc.weight.shape


def test_converted_file_of_another_format(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(ModelError, match="not converted dlib weights"):
        load_dlib_resnet(other)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x01" * 100)
    with pytest.raises(ModelError, match="not a readable safetensors"):
        load_dlib_resnet(junk)
