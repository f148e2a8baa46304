"""a3gan.identity.faceres: the template, the input convention (BGR, 0..255, NHWC) against hand values on a stand-in
graph, the file checks, build_identity / evaluate wiring, the converter script, and (when a converted file is
present) that the real FaceRes tells CelebA people apart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from a3gan.errors import ModelError
from a3gan.identity import build_identity
from a3gan.identity.align import arcface_template
from a3gan.identity.faceres import (
    FACERES_OUTPUT,
    FACERES_SIZE,
    RECOGNIZER_KEY,
    FaceResIdentity,
    converter_metadata,
    faceres_template,
    is_faceres_file,
)
from a3gan.identity.tfjs_graph import convert_tfjs

ROOT = Path(__file__).resolve().parents[2]
REAL = Path(os.environ.get("A3GAN_FACERES", Path.home() / ".cache" / "a3gan" / "faceres.safetensors"))


def stand_in(tmp_path: Path, metadata: dict[str, str] | None = None) -> Path:
    """A converted file whose graph is Mean over H, W of the input (output named like FaceRes's), so an
    embedding is the chip's mean B, G, R value as the graph sees it."""
    from tests.identity.test_tfjs_graph import const, ph, write_model

    nodes = [ph("input_1"), const("ax"), {"name": FACERES_OUTPUT, "op": "Mean", "input": ["input_1", "ax"]}]
    model = write_model(tmp_path, [("ax", np.array([1, 2], np.int32), None)], nodes)
    out = tmp_path / "faceres.safetensors"
    convert_tfjs(model, out, [FACERES_OUTPUT], converter_metadata("test") if metadata is None else metadata)
    return out


def test_template_hand_values():
    """Margin 0 is the ArcFace template at 224; margin m shrinks it about the centre by 1 + 2m."""
    np.testing.assert_allclose(faceres_template(224, 0.0), arcface_template(224))
    t = faceres_template(224, 0.1)
    left_eye = (arcface_template(112)[0] - 56.0) / 1.2 * 2.0 + 112.0
    np.testing.assert_allclose(t[0], left_eye)
    a = arcface_template(224)
    assert np.linalg.norm(t[0] - t[1]) == pytest.approx(np.linalg.norm(a[0] - a[1]) / 1.2)


def test_input_is_bgr_0_255_nhwc(tmp_path: Path):
    net = FaceResIdentity(stand_in(tmp_path))
    assert net.dim == 3 and net.chip_size == FACERES_SIZE and net.name == "faceres"
    chips = torch.empty(2, 3, FACERES_SIZE, FACERES_SIZE)
    chips[0, 0], chips[0, 1], chips[0, 2] = -1.0, 0.0, 1.0  # RGB in [-1, 1]
    chips[1] = 0.2
    raw = net.embed_chips(chips)
    torch.testing.assert_close(raw[0], torch.tensor([255.0, 127.5, 0.0]))  # B, G, R
    torch.testing.assert_close(raw[1], torch.full((3,), 1.2 * 127.5))


def test_forward_aligns_normalises_and_passes_gradients(tmp_path: Path):
    net = FaceResIdentity(stand_in(tmp_path))
    assert list(net.parameters()) == [] and not net.training
    net.train()
    assert not net.training  # frozen: train() is a no-op
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    e = net(x)
    assert e.shape == (2, 3)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(2))
    e[:, 0].sum().backward()
    assert x.grad.abs().sum() > 0
    d = net.describe()
    assert d["name"] == "faceres" and d["dim"] == 3 and d["source"] == "test" and d["sha256"]


def test_bad_files(tmp_path: Path):
    with pytest.raises(ModelError, match="convert_faceres"):
        FaceResIdentity(tmp_path / "missing.safetensors")
    other = stand_in(tmp_path, {RECOGNIZER_KEY: "mobilefacenet"})
    with pytest.raises(ModelError, match="not a converted FaceRes model"):
        FaceResIdentity(other)
    assert not is_faceres_file(other) and not is_faceres_file(tmp_path / "missing.safetensors")
    with pytest.raises(ModelError, match="needs weights"):
        build_identity("faceres")


def test_build_identity_and_evaluate_pick_faceres_by_its_metadata(tmp_path: Path):
    from a3gan.evaluate import build_recognizers

    path = stand_in(tmp_path)
    assert is_faceres_file(path)
    assert isinstance(build_identity("faceres", path), FaceResIdentity)
    recs, _ = build_recognizers([str(path)])
    assert recs[0].name == "faceres" and isinstance(recs[0].net, FaceResIdentity)


def test_convert_script_errors_are_one_line(tmp_path: Path):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "convert_faceres.py"), str(tmp_path / "nope.json"),
                        str(tmp_path / "o.safetensors")], capture_output=True, text=True)
    assert r.returncode != 0 and r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "bad.json").write_text("[]")
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "convert_faceres.py"), str(tmp_path / "bad.json"),
                        str(tmp_path / "o.safetensors")], capture_output=True, text=True)
    assert r.returncode != 0 and "not a TF.js graph model" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.safetensors").exists()


@pytest.mark.skipif(not REAL.is_file(), reason=f"no converted FaceRes at {REAL} (scripts/convert_faceres.py)")
def test_real_faceres_tells_celeba_people_apart(celeba_dir: Path):
    """On the first 400 CelebA images (crop geometry, 64 px as in training): genuine pairs are more similar than
    impostor pairs (AUC > 0.9; 0.955 measured on 1,500) and impostors sit near the calibrated mean 0.38."""
    from a3gan.data.celeba import CelebA
    from a3gan.metrics.verification import roc_auc

    ds = CelebA(celeba_dir, 64, partition="all", limit=400, progress=False)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    ids = np.asarray(ds.identities)
    net = FaceResIdentity(REAL)
    assert net.dim == 1024
    with torch.no_grad():
        e = torch.cat([net(x[i : i + 50]) for i in range(0, len(x), 50)]).numpy()
    s = e @ e.T
    iu = np.triu_indices(len(x), 1)
    same = (ids[:, None] == ids[None, :])[iu]
    genuine, impostor = s[iu][same], s[iu][~same]
    assert len(genuine) >= 10
    assert roc_auc(genuine, impostor) > 0.9
    assert 0.30 < impostor.mean() < 0.46 and genuine.mean() > impostor.mean() + 0.15
