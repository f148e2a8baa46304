#!/usr/bin/env python
"""Measure the mean 5-point landmarks of CelebA in the a3gan crop geometry (for a3gan.identity.align).

For each CelebA aligned image (in file order) the image is upscaled 2x (the shared subset is half resolution),
dlib's HOG detector runs with one more upsampling, and images with exactly one face are kept. On each face:

- dlib's 5-point predictor gives the dlib-order points (what dlib's chip template is defined on);
- dlib's 68-point predictor gives the ArcFace-order points: eye centres (mean of the 6 eye-contour points),
  nose tip (30), mouth corners (48, 54).

Points are converted to continuous coordinates of the original image, then to crop coordinates (unit square of
the STGAN crop, a3gan.geometry). The script prints the means (paste them into a3gan/identity/align.py), the
spread, and the mean ArcFace-order points inside dlib's 150x150 chip (padding 0.25), which is the template that
lets dlib be fed faces found by any ArcFace-order detector.

    .venv/bin/python scripts/identity_measure_template.py --celeba ../shared/data/celeba --count 400
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from a3gan.geometry import celeba_crop_box
from a3gan.identity.align import dlib_chip_template, similarity_transform
from a3gan.identity.dlib_resnet import SHAPE_MODEL_5, SHAPE_MODEL_68, dlib_models_dir


def dlib68_to_arcface5(pts68: np.ndarray) -> np.ndarray:
    """ArcFace-order 5 points from dlib's 68 (image-left eye = 36..41, image-right eye = 42..47)."""
    return np.stack([pts68[36:42].mean(0), pts68[42:48].mean(0), pts68[30], pts68[48], pts68[54]])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--celeba", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/celeba")
    )
    ap.add_argument("--count", type=int, default=400)
    args = ap.parse_args(argv)

    import dlib

    models = dlib_models_dir()
    detector = dlib.get_frontal_face_detector()
    sp5 = dlib.shape_predictor(str(models / SHAPE_MODEL_5))
    sp68 = dlib.shape_predictor(str(models / SHAPE_MODEL_68))
    img_dir = Path(args.celeba) / "img_align_celeba"
    files = sorted(img_dir.glob("*.jpg"))
    if not files:
        print(f"no images in {img_dir}", file=sys.stderr)
        return 1
    tmpl = dlib_chip_template(150, 0.25)
    d5, a5, chip_a5 = [], [], []
    tried = 0
    for f in files:
        if len(d5) >= args.count:
            break
        tried += 1
        im = Image.open(f).convert("RGB")
        w, h = im.size
        up = np.asarray(im.resize((2 * w, 2 * h), Image.Resampling.BICUBIC))
        dets = detector(up, 1)
        if len(dets) != 1:
            continue
        s5, s68 = sp5(up, dets[0]), sp68(up, dets[0])
        # pixel index in the 2x image -> continuous coordinates of the original image
        p5 = (np.array([[s5.part(i).x, s5.part(i).y] for i in range(5)], float) + 0.5) / 2
        p68 = (np.array([[s68.part(i).x, s68.part(i).y] for i in range(68)], float) + 0.5) / 2
        pa = dlib68_to_arcface5(p68)
        x0, y0, x1, _ = celeba_crop_box(w, h)
        side = x1 - x0
        d5.append((p5 - [x0, y0]) / side)
        a5.append((pa - [x0, y0]) / side)
        m = similarity_transform(p5, tmpl)  # image -> dlib chip (continuous)
        chip_a5.append(pa @ m[:, :2].T + m[:, 2])
    d5, a5, chip_a5 = np.array(d5), np.array(a5), np.array(chip_a5)
    np.set_printoptions(precision=5, suppress=True)
    print(f"faces kept: {len(d5)} of {tried} images tried")
    for name, arr in (("CROP_DLIB5_MEAN", d5), ("CROP_ARCFACE5_MEAN", a5), ("DLIB_CHIP_ARCFACE5", chip_a5)):
        print(f"{name} =\n{arr.mean(0)!r}\n  std per point: {arr.std(0).round(4).tolist()}")
    # how well one fixed similarity explains each face: residual of mean->face fits, in crop units
    mean = d5.mean(0)
    res = [np.abs(np.c_[mean, np.ones(5)] @ similarity_transform(mean, f).T - f).max() for f in d5]
    print(f"dlib5 residual of per-face similarity to the mean (crop units): median {np.median(res):.4f}")
    scales = [np.hypot(*similarity_transform(mean, f)[:, 0]) for f in d5]
    print(f"per-face scale relative to the mean: {np.mean(scales):.3f} +- {np.std(scales):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
