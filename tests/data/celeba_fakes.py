"""A tiny synthetic CelebA-layout folder with hand-written labels, made inside each test (no shared data)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

#: The official header of list_attr_celeba.txt (40 names, in the official order).
OFFICIAL_40 = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()

#: Hand-written labels of the paper's 10 attributes (a3gan.attributes.ATTRIBUTES order):
#: Bangs Blond_Hair Brown_Hair Bushy_Eyebrows Male Mouth_Slightly_Open Mustache Narrow_Eyes Pale_Skin Young
PAPER_BITS = {
    "000001.jpg": "0010010001",
    "000002.jpg": "0000000001",
    "000003.jpg": "0000100110",
    "000004.jpg": "0100000001",
    "000005.jpg": "1000000001",
    "000006.jpg": "0000110000",
    "000007.jpg": "0001101000",
    "000008.jpg": "0000000011",
    "000009.jpg": "1110000000",
    "000010.jpg": "0000101100",
    "000011.jpg": "0000000000",
    "000012.jpg": "1111111111",
}
FILES = sorted(PAPER_BITS)
#: Smiling of each file (one of the 30 other columns, to test selection of a non-paper attribute).
SMILING = {f: int(i % 3 == 0) for i, f in enumerate(FILES)}
PARTITIONS = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
IDENTITIES = [7, 7, 7, 9, 9, 3, 5, 5, 5, 5, 11, 12]


def attr_value(fname: str, name: str) -> int:
    """The -1/1 value the fake file holds for (file, attribute)."""
    from a3gan.attributes import ATTRIBUTES

    if name in ATTRIBUTES:
        return 1 if PAPER_BITS[fname][ATTRIBUTES.index(name)] == "1" else -1
    if name == "Smiling":
        return 1 if SMILING[fname] else -1
    return 1 if (sum(map(ord, name)) + FILES.index(fname)) % 2 else -1


def write_attr_file(
    path: Path, files: Sequence[str], header: Sequence[str], count: int | None = None
) -> None:
    lines = [str(len(files) if count is None else count), " ".join(header) + " "]
    for f in files:
        # the official file pads 1 with a space so columns line up: "000001.jpg -1  1  1 -1"
        lines.append(f + " " + " ".join(f"{attr_value(f, h):2d}" for h in header))
    path.write_text("\n".join(lines) + "\n")


def noise_image(size: tuple[int, int], seed: int) -> Image.Image:
    """Blocky random noise (12x14 blocks), so it keeps its full range after downscaling."""
    rng = np.random.default_rng(seed)
    blocks = Image.fromarray(rng.integers(0, 256, (14, 12, 3), dtype=np.uint8))
    return blocks.resize(size, Image.Resampling.NEAREST)


def make_celeba(
    root: Path,
    size: tuple[int, int] = (178, 218),
    header: Sequence[str] = OFFICIAL_40,
    files: Sequence[str] = FILES,
    partitions: Sequence[int] | None = PARTITIONS,
    identities: Sequence[int] | None = IDENTITIES,
    image_fn: Callable[[int, str], Image.Image] | None = None,
) -> Path:
    """Write ROOT/img_align_celeba/*.jpg plus the three label files; returns ROOT."""
    img_dir = root / "img_align_celeba"
    img_dir.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        im = image_fn(i, f) if image_fn else noise_image(size, i)
        im.save(img_dir / f, quality=95)
    write_attr_file(root / "list_attr_celeba.txt", files, header)
    if partitions is not None:
        (root / "list_eval_partition.txt").write_text(
            "".join(f"{f} {p}\n" for f, p in zip(files, partitions, strict=True))
        )
    if identities is not None:
        (root / "identity_CelebA.txt").write_text(
            "".join(f"{f} {p}\n" for f, p in zip(files, identities, strict=True))
        )
    return root
