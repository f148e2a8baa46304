from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from a3gan.errors import ModelError
from a3gan.identity import build_identity
from a3gan.identity.arcface import (
    IRBackbone,
    IResNet,
    build_arcface_backbone,
    random_arcface_state_dict,
    read_state_dict,
)


def test_iresnet50_keys_and_size():
    sd = IResNet((3, 4, 14, 3)).state_dict()
    for k in (
        "conv1.weight",
        "bn1.running_mean",
        "prelu.weight",
        "layer1.0.bn1.weight",
        "layer1.0.downsample.0.weight",
        "layer3.13.conv2.weight",
        "bn2.weight",
        "fc.weight",
        "features.weight",
    ):
        assert k in sd, k
    assert "layer3.14.conv1.weight" not in sd
    assert sd["fc.weight"].shape == (512, 512 * 7 * 7)
    n = sum(v.numel() for k, v in sd.items() if "running" not in k and "num_batches" not in k)
    assert 43e6 < n < 44e6  # insightface r50: 43.6M parameters


def test_iresnet100_depth_detected():
    m = IResNet((3, 13, 30, 3))
    _, arch = build_arcface_backbone(m.state_dict())
    assert arch == "iresnet100"


def test_ir_se50_keys():
    sd = IRBackbone(50, se=True).state_dict()
    for k in (
        "input_layer.0.weight",
        "input_layer.2.weight",
        "body.0.res_layer.0.weight",
        "body.0.res_layer.5.fc1.weight",
        "body.3.shortcut_layer.0.weight",
        "body.23.res_layer.4.running_var",
        "output_layer.3.weight",
        "output_layer.4.running_mean",
    ):
        assert k in sd, k
    assert "body.24.res_layer.0.weight" not in sd
    assert "body.0.shortcut_layer.0.weight" not in sd  # 64 -> 64: MaxPool2d(1, 2) shortcut


def _save(sd, path, fmt):
    if fmt == "pth":
        torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, path)  # wrapped + DataParallel
    else:
        save_file(sd, str(path))


@pytest.mark.parametrize(("arch", "fmt"), [("iresnet50", "pth"), ("ir_se50", "safetensors")])
def test_load_released_layouts_from_file(tmp_path, arch, fmt):
    sd = random_arcface_state_dict(arch, seed=1)
    path = tmp_path / f"w.{fmt}"
    _save(sd, path, fmt)
    net = build_identity("arcface", weights=str(path))
    assert net.arch == arch and net.dim == 512
    assert all(not p.requires_grad for p in net.parameters()) and not net.training
    d = net.describe()
    assert d["name"] == "arcface" and d["arch"] == arch and d["dim"] == 512 and len(d["sha256"]) == 16
    loaded = net.net.state_dict()
    assert set(loaded) == set(sd)
    for k, v in sd.items():
        torch.testing.assert_close(loaded[k], v, rtol=0, atol=0)
    if arch == "ir_se50":  # the IResNet forward is covered at depth 18 below; IR-SE only exists at 50+
        with torch.no_grad():
            out = net(torch.rand(1, 3, 64, 64) * 2 - 1)
        assert out.shape == (1, 512) and torch.isfinite(out).all()


def test_ir50_without_se_detected():
    _, arch = build_arcface_backbone(IRBackbone(50, se=False).state_dict())
    assert arch == "ir50"


def test_forward_gradient_and_landmarks(tmp_path):
    path = tmp_path / "r18.pth"
    _save(random_arcface_state_dict("iresnet18", seed=2), path, "pth")
    net = build_identity("arcface", weights=str(path))
    assert net.arch == "iresnet18"
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    e = net(x)
    assert e.shape == (2, 512)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(2))
    e[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    img = np.random.default_rng(0).integers(0, 255, (200, 180, 3), dtype=np.uint8)
    lm = np.array([[70, 90], [110, 90], [90, 115], [75, 140], [105, 140]], float)
    emb = net.embed_from_landmarks(img, lm)
    assert emb.shape == (512,) and abs(np.linalg.norm(emb) - 1) < 1e-5


def test_unknown_file_lists_expected_keys(tmp_path):
    p = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3)}, p)
    with pytest.raises(
        ModelError, match=r"expected an insightface IResNet state dict .*input_layer\.0\.weight"
    ):
        build_identity("arcface", weights=str(p))


def test_wrong_shapes_and_garbage(tmp_path):
    sd = random_arcface_state_dict("ir_se50")
    sd["output_layer.3.weight"] = torch.zeros(512, 100)
    p = tmp_path / "bad.safetensors"
    save_file(sd, str(p))
    with pytest.raises(ModelError, match="do not fit ir_se50"):
        build_identity("arcface", weights=str(p))
    g = tmp_path / "garbage.pth"
    g.write_bytes(b"not a pickle at all")
    with pytest.raises(ModelError, match="cannot read ArcFace weights"):
        read_state_dict(g)
    with pytest.raises(ModelError, match="not found"):
        read_state_dict(tmp_path / "missing.pth")


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    p = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, p)
    with pytest.raises(ModelError, match="cannot read ArcFace weights"):
        read_state_dict(p)


def test_arcface_needs_weights():
    with pytest.raises(ModelError, match="needs weights"):
        build_identity("arcface")
