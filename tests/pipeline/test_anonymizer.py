"""a3gan.pipeline.anonymizer: the Python API end to end with a random-weight tiny checkpoint and stub networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a3gan.errors import InputError, ModelError
from a3gan.pipeline import Anonymizer, AnonymizeResult, Detections, Face, default_face_keys, z_seed
from a3gan.pipeline.align import TEMPLATE, align_face, crops_to_tensor, tensor_to_crops
from a3gan.pipeline.blend import face_mask, match_color


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    from a3gan.checkpoint import save_checkpoint
    from a3gan.config import load_config
    from a3gan.nets import Generator

    cfg = load_config("tiny")
    torch.manual_seed(0)
    G = Generator(cfg.model)
    with torch.no_grad():  # a freshly initialised G barely depends on f_z: make AINet's effect visible
        for name, p in G.named_parameters():
            if name.startswith("ainet") and p.dim() > 1:
                p.mul_(4)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(path, {"G": G}, cfg, {"note": "random weights for tests"})
    return path


def _face(cx: float, cy: float, size: float) -> Face:
    lm = (TEMPLATE - 0.5) * size + np.array([cx, cy])
    return Face((cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2), lm, 0.9)


class FixedDetector:
    """Returns the same faces for every image (no ONNX model needed); reports ``too_small``."""

    name = "fixed"
    min_face_size = 10.0

    def __init__(self, faces: list[Face], too_small: int = 0):
        self.faces, self.too_small = faces, too_small

    def detect_all(self, image):
        return Detections(list(self.faces), self.too_small)

    def detect(self, image):
        return list(self.faces)


class StubIdentity:
    """Embeds a crop by its downsampled pixels (a crude but content-sensitive 'identity'); records calls."""

    name = "stub"
    threshold_cos = 0.5

    def __init__(self):
        self.calls = 0
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.shapes.append(tuple(x.shape))
        e = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return torch.nn.functional.normalize(e - e.mean(1, keepdim=True), dim=1)


class ScriptedIdentity:
    """Originals embed to e0; the first ``n_match`` anonymized batches also embed to e0 (a match), later ones to
    an orthogonal vector. Lets a test force exactly ``n_match`` re-samples."""

    name = "scripted"
    threshold_cos = 0.5

    def __init__(self, n_match: int):
        self.n_match = n_match
        self.calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        e = torch.zeros(x.shape[0], 4)
        if self.calls == 1 or self.calls - 1 <= self.n_match:
            e[:, 0] = 1
        else:
            e[:, 1] = 1
        return e


@pytest.fixture()
def scene() -> tuple[np.ndarray, list[Face]]:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    return img, [_face(150, 60, 50), _face(50, 60, 50)]


def _anon(ckpt, faces, **kw) -> Anonymizer:
    kw.setdefault("identity", StubIdentity())
    return Anonymizer(model=ckpt, detector=FixedDetector(faces), **kw)


def test_anonymize_basic_result(tiny_ckpt, scene):
    img, faces = scene
    anon = _anon(tiny_ckpt, faces, match_threshold=1.01)
    res = anon.anonymize(img)
    assert isinstance(res, AnonymizeResult)
    assert res.image.shape == img.shape and res.image.dtype == np.uint8
    assert len(res.faces) == 2 and res.too_small == 0
    # faces are reported in the given order, keyed left to right
    assert [f.key for f in res.faces] == [1, 0]
    for fr in res.faces:
        assert fr.method_used == "a3gan" and fr.attempts == 1 and not fr.fell_back
        assert -1.0 <= fr.similarity <= 1.0
        assert fr.landmarks.shape == (5, 2)
    # verification compares faces at 128 px even though the tiny model works at 32 px
    assert anon.identity.shapes == [(2, 3, 128, 128), (2, 3, 128, 128)]
    d = res.to_dict()
    assert d["n_faces"] == 2 and d["faces"][0]["method_used"] == "a3gan"


def test_background_bit_identical_and_faces_changed(tiny_ckpt, scene):
    img, faces = scene
    res = _anon(tiny_ckpt, faces, verify=False).anonymize(img)
    changed = np.any(res.image != img, axis=2)
    assert changed[50:75, 35:65].mean() > 0.8 and changed[50:75, 135:165].mean() > 0.8
    far = np.ones(changed.shape, bool)
    for cx in (50, 150):
        far[20:115, cx - 40 : cx + 40] = False
    np.testing.assert_array_equal(res.image[far], img[far])
    assert np.all(res.image[:, 95:105] == img[:, 95:105])  # the strip between the faces


def test_determinism_by_seed(tiny_ckpt, scene):
    img, faces = scene
    a = _anon(tiny_ckpt, faces, verify=False, seed=7).anonymize(img).image
    b = _anon(tiny_ckpt, faces, verify=False, seed=7).anonymize(img).image
    c = _anon(tiny_ckpt, faces, verify=False, seed=8).anonymize(img).image
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c).max() > 10


def test_z_seed_stable_and_distinct():
    assert z_seed(0, 1, 0) == z_seed(0, 1, 0)
    assert len({z_seed(s, k, t) for s in range(3) for k in range(3) for t in range(3)}) == 27
    assert 0 <= z_seed(123, 456, 7) < 2**63


def test_face_keys_control_f_z(tiny_ckpt):
    # two identical faces side by side: equal keys -> identical new faces; different keys -> different ones
    rng = np.random.default_rng(5)
    half = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    img = np.concatenate([half, half], axis=1)
    faces = [_face(50, 50, 50), _face(150, 50, 50)]
    anon = _anon(tiny_ckpt, faces, verify=False, color_match=False)
    same = anon.anonymize(img, face_keys=[3, 3]).image
    # equal up to OpenCV's fixed-point warp coordinates (1/32 px), which differ with the 100 px offset
    assert np.abs(same[:, :100].astype(int) - same[:, 100:]).max() <= 1
    diff = anon.anonymize(img, face_keys=[3, 4]).image
    assert np.abs(diff[:, :100].astype(int) - diff[:, 100:]).max() > 10
    # a callable gives the keys too
    res = anon.anonymize(img, face_keys=lambda fs: [10 + i for i in range(len(fs))])
    assert [f.key for f in res.faces] == [10, 11]
    with pytest.raises(InputError, match="face keys"):
        anon.anonymize(img, face_keys=[1])


def test_default_face_keys_left_to_right():
    faces = [_face(150, 60, 30), _face(20, 60, 30), _face(90, 10, 30)]
    assert default_face_keys(faces) == [2, 0, 1]


def test_generator_output_matches_manual_pipeline(tiny_ckpt, scene):
    """The pasted face is G(aligned crop, m, z(seed, key, 0)), colour-matched: recompute it by hand."""
    from a3gan.checkpoint import load_generator
    from a3gan.pipeline.blend import paste_back

    img, faces = scene
    anon = _anon(tiny_ckpt, faces, verify=False, change="Male", seed=3)
    res = anon.anonymize(img)
    G, cfg, _ = load_generator(tiny_ckpt)
    r = cfg.model.resolution
    out = img.copy()
    for f, key in zip(faces, [1, 0], strict=True):
        af = align_face(img, f, r)
        z = G.sample_z(1, generator=torch.Generator().manual_seed(z_seed(3, key, 0)))
        m = torch.zeros(1, cfg.model.n_attrs)
        m[0, 4] = 1  # Male
        with torch.inference_mode():
            g = tensor_to_crops(G(crops_to_tensor(af.crop[None]), m, z))[0]
        paste_back(out, match_color(g, af.crop, face_mask(r)), af.M)
    assert np.abs(out.astype(int) - res.image).max() <= 1


def test_verification_resamples_until_no_match(tiny_ckpt, scene):
    img, faces = scene
    ident = ScriptedIdentity(n_match=2)
    res = _anon(tiny_ckpt, faces, identity=ident, max_resample=4).anonymize(img)
    for fr in res.faces:
        assert fr.attempts == 3 and not fr.fell_back and fr.method_used == "a3gan"
        assert fr.similarity == pytest.approx(0.0)
    assert ident.calls == 1 + 3  # originals once, then one batched call per attempt
    # the kept face is the third draw: equal to a run whose identity accepts attempt index 2 directly
    other = _anon(tiny_ckpt, faces, identity=ScriptedIdentity(n_match=2), max_resample=2).anonymize(img)
    np.testing.assert_array_equal(res.image, other.image)


def test_verification_fallback_to_pixelation(tiny_ckpt, scene):
    img, faces = scene
    anon = _anon(tiny_ckpt, faces, match_threshold=-1.0, max_resample=2)  # every face always "matches"
    res = anon.anonymize(img)
    assert res.n_fell_back == 2
    for fr in res.faces:
        assert fr.fell_back and fr.method_used == "pixelate-fallback" and fr.attempts == 3
        assert fr.similarity is not None
    # the fallback is the pixelate baseline pasted in the same region
    pix = Anonymizer(method="pixelate", detector=FixedDetector(faces), verify=False)
    pix.resolution = anon.resolution
    np.testing.assert_array_equal(res.image, pix.anonymize(img).image)


def test_no_faces_returns_copy(tiny_ckpt, scene):
    img, _ = scene
    anon = Anonymizer(model=tiny_ckpt, detector=FixedDetector([], too_small=3), identity=StubIdentity())
    res = anon.anonymize(img)
    assert res.faces == [] and res.too_small == 3
    np.testing.assert_array_equal(res.image, img)
    assert res.image is not img


def test_pil_input_and_bad_inputs(tiny_ckpt, scene):
    from PIL import Image

    img, faces = scene
    anon = _anon(tiny_ckpt, faces, verify=False)
    res = anon.anonymize(Image.fromarray(img).convert("RGBA"))
    assert res.image.shape == img.shape
    for bad in (img.astype(np.float32), img[..., 0], "photo.jpg"):
        with pytest.raises(InputError):
            anon.anonymize(bad)


def test_batch_equals_single(tiny_ckpt, scene):
    img, faces = scene
    img2 = np.ascontiguousarray(img[:, ::-1])
    anon = _anon(tiny_ckpt, faces, verify=False, batch_size=3)
    batch = anon.anonymize_batch([img, img2])
    singles = [anon.anonymize(img), anon.anonymize(img2)]
    for b, s in zip(batch, singles, strict=True):
        assert np.abs(b.image.astype(int) - s.image).max() <= 1
        assert [f.key for f in b.faces] == [f.key for f in s.faces]
    # pre-detected faces per image skip the detector
    res = anon.anonymize_batch([img, img2], faces=[faces[:1], []])
    assert len(res[0].faces) == 1 and res[1].faces == []
    with pytest.raises(InputError):
        anon.anonymize_batch([img], faces=[faces, faces])


def test_face_key_callables_called_once_per_image_in_order(tiny_ckpt, scene):
    """The video tracker relies on this: one call per frame, in frame order, with that frame's faces."""
    img, faces = scene
    seen = []

    def keys_for(tag):
        def fn(fs):
            seen.append((tag, len(fs)))
            return list(range(len(fs)))

        return fn

    anon = _anon(tiny_ckpt, faces, verify=False)
    anon.anonymize_batch([img, img, img], face_keys=[keys_for(0), keys_for(1), keys_for(2)])
    assert seen == [(0, 2), (1, 2), (2, 2)]


@pytest.mark.parametrize("method", ["pixelate", "blur", "blackout"])
def test_baseline_methods_need_no_model(scene, method):
    img, faces = scene
    res = Anonymizer(method=method, detector=FixedDetector(faces), identity=StubIdentity()).anonymize(img)
    assert [f.method_used for f in res.faces] == [method, method]
    assert all(f.similarity is not None and f.attempts == 0 for f in res.faces)
    assert np.any(res.image != img)


def test_bad_arguments(tiny_ckpt, tmp_path, monkeypatch):
    det = FixedDetector([])
    with pytest.raises(InputError, match="unknown method"):
        Anonymizer(method="swap", detector=det)
    with pytest.raises(InputError):
        Anonymizer(model=tiny_ckpt, change="Male,Wings", detector=det, verify=False)
    with pytest.raises(InputError):
        Anonymizer(model=tiny_ckpt, max_resample=-1, detector=det)
    with pytest.raises(InputError):
        Anonymizer(model=tiny_ckpt, batch_size=0, detector=det)
    with pytest.raises(InputError, match="verify=False"):
        Anonymizer(model=tiny_ckpt, identity=None, detector=det)
    with pytest.raises(ModelError, match="no such model"):
        Anonymizer(model=tmp_path / "missing.safetensors", detector=det, verify=False)
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    with pytest.raises(ModelError):
        Anonymizer(model=tmp_path / "junk.safetensors", detector=det, verify=False)
    import a3gan.checkpoint

    monkeypatch.setattr(a3gan.checkpoint, "default_model_path", lambda: tmp_path / "none.safetensors")
    with pytest.raises(ModelError, match="--model"):
        Anonymizer(model=None, detector=det, verify=False)


def test_real_photo_end_to_end(tiny_ckpt, photos_dir):
    """CenterFace + tiny random generator on a real photo: every face replaced, background untouched."""
    from PIL import Image

    img = np.asarray(Image.open(photos_dir / "two_people.jpg").convert("RGB"))
    anon = Anonymizer(model=tiny_ckpt, identity=StubIdentity(), match_threshold=1.01)
    res = anon.anonymize(img)
    assert len(res.faces) >= 2
    changed = np.any(res.image != img, axis=2)
    far = np.ones(changed.shape, bool)
    for f in res.faces:
        x0, y0, x1, y1 = f.box
        w, h = x1 - x0, y1 - y0
        far[max(0, int(y0 - h)) : int(y1 + h), max(0, int(x0 - w)) : int(x1 + w)] = False
        cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
        assert changed[cy - 5 : cy + 5, cx - 5 : cx + 5].all()
    np.testing.assert_array_equal(res.image[far], img[far])


def test_smooth_defaults_to_the_models_recommendation(tiny_ckpt, scene):
    from a3gan.checkpoint import load_generator, save_checkpoint
    from a3gan.pipeline.blend import smooth_crop

    img, faces = scene
    assert _anon(tiny_ckpt, faces, verify=False).smooth == 0.0
    G, cfg, _ = load_generator(tiny_ckpt)
    rec = tiny_ckpt.parent / "smooth.safetensors"
    save_checkpoint(rec, {"G": G}, cfg, {"inference_smooth": 0.9})
    a = _anon(rec, faces, verify=False)
    assert a.smooth == 0.9 and _anon(rec, faces, verify=False, smooth=0).smooth == 0.0
    # the generated crops are the raw ones, filtered
    raw = _anon(rec, faces, verify=False, smooth=0)
    from types import SimpleNamespace

    items = [SimpleNamespace(af=SimpleNamespace(crop=np.full((32, 32, 3), 128, np.uint8)), key=0)]
    np.testing.assert_allclose(
        a._generate(items, 0)[0], smooth_crop(raw._generate(items, 0)[0], 0.9), atol=1e-4
    )
    with pytest.raises(InputError, match="smooth"):
        _anon(rec, faces, verify=False, smooth=-0.5)
