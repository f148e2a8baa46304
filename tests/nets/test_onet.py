"""MTCNN's O-Net as the projected D's frozen feature network (not in paper, ``loss.proj_net=onet``): the port and
its shipped weights (it must still tell faces from non-faces), the crop geometry, shapes, gradients, bad arguments,
and the weight conversion script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from a3gan.errors import InputError, ModelError
from a3gan.nets.onet import FACE_BOX, ONet, ONetFeatures, default_weights, load_onet

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def onet() -> ONetFeatures:
    return ONetFeatures()


def astronaut_crop(resolution: int = 64) -> torch.Tensor:
    """The public-domain astronaut's face, detected and aligned into the a3gan crop by the package's pipeline."""
    from skimage import data

    from a3gan.pipeline.align import align_face
    from a3gan.pipeline.detect import CenterFaceDetector

    img = data.astronaut()
    faces = CenterFaceDetector().detect(img)
    assert len(faces) == 1
    crop = align_face(img, faces[0], resolution).crop
    return torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_shipped_weights_load_frozen(onet: ONetFeatures) -> None:
    assert default_weights().is_file()
    n = sum(p.numel() for p in onet.parameters())
    assert n == 389_040  # O-Net: 4 convs, 5 PReLUs, dense 1152 -> 256 and three output layers
    assert not any(p.requires_grad for p in onet.parameters())
    onet.train()
    assert not onet.training and not onet.net.training  # frozen: stays in eval mode


def test_port_tells_faces_from_non_faces(onet: ONetFeatures) -> None:
    """The port reads the weights as they were trained: a real face scores near 1; noise, the same face upside
    down and a shuffled patchwork of it score low. (A wrong flatten order or channel order fails this: with BGR
    input or a transposed image the same face scored 0.2-0.45 when this was written.)"""
    x = astronaut_crop()
    p_face = onet.face_prob(x).item()
    assert p_face > 0.95
    g = torch.Generator().manual_seed(0)
    assert onet.face_prob(torch.rand(4, 3, 64, 64, generator=g) * 2 - 1).max().item() < 0.2
    assert onet.face_prob(x.flip(2)).item() < p_face
    patches = x.reshape(1, 3, 4, 16, 4, 16).permute(0, 1, 4, 3, 2, 5).reshape(1, 3, 64, 64)
    assert onet.face_prob(patches).item() < 0.2
    assert onet.face_prob(x.transpose(2, 3)).item() < 0.5  # transposed: the wrong convention scores low


def test_celeba_faces_score_as_faces(onet: ONetFeatures, celeba_dir: Path) -> None:
    from a3gan.data.celeba import CelebA

    ds = CelebA(celeba_dir, 64, "train", progress=False)
    x = torch.stack([ds[i][0] for i in range(32)])
    p = onet.face_prob(x)
    assert p.median().item() > 0.98 and (p > 0.5).float().mean().item() >= 0.9


def test_onet_input_crop_and_scale(onet: ONetFeatures) -> None:
    """The 48 x 48 input is FACE_BOX of the crop, resized, and scaled from [-1, 1] to (v - 127.5) / 128."""
    r = 100
    x0, y0, x1, y1 = (round(f * r) for f in FACE_BOX)
    assert (x0, y0, x1, y1) == (18, 25, 85, 92)
    x = torch.full((1, 3, r, r), -1.0)
    x[:, :, y0:y1, x0:x1] = 0.5  # only the box is lit: O-Net's input is uniform
    inp = onet.onet_input(x)
    assert inp.shape == (1, 3, 48, 48)
    assert torch.allclose(inp, torch.full_like(inp, 0.5 * 127.5 / 128))
    # a 255 pixel is (255 - 127.5) / 128 = 0.99609375, as facenet-pytorch normalises
    assert onet.onet_input(torch.ones(1, 3, 64, 64)).max().item() == pytest.approx(0.99609375)


def test_feature_maps_shapes_and_gradients(onet: ONetFeatures) -> None:
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    maps = onet.feature_maps(x, (0, 1, 2, 3))
    assert [tuple(m.shape) for m in maps] == [(2, 32, 46, 46), (2, 64, 21, 21), (2, 64, 8, 8), (2, 128, 3, 3)]
    assert onet.tap_channels((1, 2, 3)) == [64, 64, 128] and onet.tap_count() == 4
    sum(m.square().mean() for m in maps).backward()
    g = x.grad.abs().sum(1)[0]
    x0, y0, x1, y1 = (round(f * 64) for f in FACE_BOX)
    assert g[y0:y1, x0:x1].sum() > 0
    inside = torch.zeros_like(g, dtype=torch.bool)
    inside[y0:y1, x0:x1] = True
    assert g[~inside].sum() == 0  # O-Net sees the face box and nothing else
    # any resolution: a 128 px crop is cut and downsampled (antialiased) to the same 48 x 48
    assert onet.feature_maps(torch.zeros(1, 3, 128, 128), (3,))[0].shape == (1, 128, 3, 3)


def test_bad_arguments(onet: ONetFeatures, tmp_path: Path) -> None:
    for taps in ((), (4,), (2, 1), (1, 1), (-1,)):
        with pytest.raises(InputError, match="O-Net taps"):
            onet.feature_maps(torch.zeros(1, 3, 64, 64), taps)
    for shape in ((3, 64, 64), (1, 1, 64, 64), (1, 3, 64, 32), (1, 3, 8, 8)):
        with pytest.raises(InputError, match="face crops"):
            onet.feature_maps(torch.zeros(shape), (1,))
    with pytest.raises(ModelError, match="not found"):
        load_onet(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a readable safetensors"):
        load_onet(bad)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(other))
    with pytest.raises(ModelError, match="not MTCNN's O-Net"):
        load_onet(other)


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "convert_mtcnn_onet.py"), *args], capture_output=True, text=True
    )


def test_convert_script_round_trip_and_bad_files(tmp_path: Path) -> None:
    """facenet-pytorch's onet.pt (a plain state dict) -> safetensors that load_onet reads back exactly."""
    torch.manual_seed(3)
    net = ONet()
    src = tmp_path / "onet.pt"
    torch.save(net.state_dict(), src)
    out = tmp_path / "out" / "onet.safetensors"
    r = run_script(str(src), str(out))
    assert r.returncode == 0, r.stderr
    back = load_onet(out)
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in net.state_dict().items())
    x = torch.rand(2, 3, 48, 48)
    assert all(torch.equal(a, b) for a, b in zip(net.eval()(x), back(x), strict=True))

    for bad, msg in ((tmp_path / "nope.pt", "no such file"), (tmp_path / "junk.pt", "not a readable state dict"),
                     (tmp_path / "other.pt", "not MTCNN's O-Net")):
        if bad.name == "junk.pt":
            bad.write_bytes(b"junk")
        elif bad.name == "other.pt":
            torch.save({"w": torch.zeros(2)}, bad)
        r = run_script(str(bad), str(tmp_path / "x.safetensors"))
        assert r.returncode != 0 and "Traceback" not in r.stderr
        assert r.stderr.strip().splitlines()[-1].startswith("error:") and msg in r.stderr
    assert not (tmp_path / "x.safetensors").exists()
    # a pickled object that is not a state dict is refused without being unpickled (weights_only=True)
    evil = tmp_path / "evil.pt"
    torch.save({"f": np.dtype("float32")}, evil)  # numpy objects are not in the weights-only allow list
    r = run_script(str(evil), str(tmp_path / "x.safetensors"))
    assert r.returncode != 0 and "not a readable state dict" in r.stderr
