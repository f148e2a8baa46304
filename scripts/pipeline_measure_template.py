"""Measure the 5-point landmark template of the model's crop geometry (a3gan.pipeline.align.TEMPLATE).

Runs the CenterFace detector on CelebA aligned images, maps the 5 landmarks of the best face into the STGAN crop
(a3gan.geometry) normalised to [0, 1]^2, and prints the mean and spread. The aligned images are small (89x109 in
../shared/data), so each is padded with a replicated border to ``--pad`` times its size first: CenterFace is less
precise on a face that fills the whole frame.

    .venv/bin/python scripts/pipeline_measure_template.py --n 500
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from a3gan.geometry import celeba_crop_box
from a3gan.pipeline.detect import LANDMARK_NAMES, CenterFaceDetector


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--celeba", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/celeba")
    )
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--pad", type=float, default=2.0, help="canvas size as a multiple of the image size")
    ap.add_argument("--threshold", type=float, default=0.35)
    args = ap.parse_args()

    det = CenterFaceDetector(threshold=args.threshold, second_pass=False)
    pts, missed = [], 0
    for i in range(1, args.n + 1):
        img = np.asarray(Image.open(Path(args.celeba) / "img_align_celeba" / f"{i:06d}.jpg").convert("RGB"))
        h, w = img.shape[:2]
        px, py = int(round(w * (args.pad - 1) / 2)), int(round(h * (args.pad - 1) / 2))
        canvas = cv2.copyMakeBorder(img, py, py, px, px, cv2.BORDER_REPLICATE)
        faces = det.detect(canvas)
        if not faces:
            missed += 1
            continue
        f = max(faces, key=lambda f: f.score)
        left, top, right, bottom = celeba_crop_box(w, h)
        lm = f.landmarks - np.array([px, py], np.float32)
        pts.append((lm - np.array([left, top])) / np.array([right - left, bottom - top]))
    p = np.stack(pts)
    mean, std = p.mean(0), p.std(0)
    print(f"images: {len(p)} with a face, {missed} without (of {args.n}); pad x{args.pad}")
    for name, m, s in zip(LANDMARK_NAMES, mean, std, strict=True):
        print(f"  {name:12s} x={m[0]:.4f} y={m[1]:.4f}   (std {s[0]:.4f}, {s[1]:.4f})")
    print("TEMPLATE = np.array([" + ", ".join(f"[{m[0]:.4f}, {m[1]:.4f}]" for m in mean) + "], np.float32)")


if __name__ == "__main__":
    main()
