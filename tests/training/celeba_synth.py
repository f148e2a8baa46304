"""Write a tiny synthetic folder in CelebA's official layout (used by tests/training and tests/commands)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: The 40 columns of list_attr_celeba.txt, in the official order.
CELEBA_40 = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()


def make_synthetic_celeba(root: Path, n: int = 24, seed: int = 0, size: tuple[int, int] = (89, 109)) -> Path:
    """Write ``n`` smooth random images (half-size CelebA aligned layout) and consistent label files."""
    rng = np.random.default_rng(seed)
    img_dir = root / "img_align_celeba"
    img_dir.mkdir(parents=True)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    attr_rows, part_rows, id_rows = [], [], []
    for i in range(1, n + 1):
        name = f"{i:06d}.jpg"
        a = rng.integers(0, 2, size=len(CELEBA_40))
        # a face-like blob whose colour depends on some attributes, on a random smooth background
        cx, cy = w / 2 + rng.normal(0, 2), h * 0.55 + rng.normal(0, 2)
        blob = np.exp(-(((xx - cx) / (w * 0.28)) ** 2 + ((yy - cy) / (h * 0.3)) ** 2))
        base = rng.uniform(40, 200, size=3)
        face = np.array([200, 160, 130]) * (0.6 + 0.4 * a[CELEBA_40.index("Pale_Skin")])
        img = base[None, None] * (1 - blob[..., None]) + face[None, None] * blob[..., None]
        img += rng.normal(0, 8, size=img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(img_dir / name, quality=90)
        attr_rows.append(name + " " + " ".join(f"{1 if v else -1:2d}" for v in a))
        part_rows.append(f"{name} 0")
        id_rows.append(f"{name} {1 + i % 7}")
    (root / "list_attr_celeba.txt").write_text(
        f"{n}\n" + " ".join(CELEBA_40) + "\n" + "\n".join(attr_rows) + "\n"
    )
    (root / "list_eval_partition.txt").write_text("\n".join(part_rows) + "\n")
    (root / "identity_CelebA.txt").write_text("\n".join(id_rows) + "\n")
    return root
