"""Identity-labelled image sets for the evaluation suite (issue 5): face verification and re-identification.

Two layouts are accepted:

- **CelebA layout**: ``identity_CelebA.txt`` (``file identity``) with the images in ``img_align_celeba/``
  (aligned: evaluation crops them with :func:`a3gan.geometry.celeba_crop_box`) or ``img_celeba/`` (in the
  wild: faces must be detected). ``list_eval_partition.txt`` is used when a partition is asked for.
- **Folder tree**: ``ROOT/<person>/*.jpg``, one folder per identity, in the wild. Labels are the sorted folder
  names' indices (``IdentitySet.names`` maps them back).

Only identities with at least ``min_per_identity`` images are kept (genuine pairs need two images). ``limit``
caps the number of images by taking whole identities in a seeded random order, so every kept identity still
has enough images and the choice is reproducible.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from a3gan.errors import DataError, InputError

IDENTITY_FILE = "identity_CelebA.txt"
PARTITION_FILE = "list_eval_partition.txt"
ALIGNED_DIR = "img_align_celeba"
WILD_DIR = "img_celeba"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
PARTITIONS = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class IdentitySet:
    """Images with identity labels. ``items`` is sorted by (label, path)."""

    items: list[tuple[Path, int]]
    aligned: bool  # True: CelebA-aligned images (crop directly); False: in the wild (detect faces first)
    layout: str  # "celeba" or "folders"
    root: Path
    names: dict[int, str] = field(default_factory=dict)  # label -> identity name (folder name or CelebA id)

    @property
    def paths(self) -> list[Path]:
        return [p for p, _ in self.items]

    @property
    def labels(self) -> list[int]:
        return [lab for _, lab in self.items]

    @property
    def n_identities(self) -> int:
        return len({lab for _, lab in self.items})

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTS) and not name.startswith(".")


def _select(
    groups: dict[int, list[Path]], root: Path, limit: int | None, min_per_identity: int, seed: int
) -> list[tuple[Path, int]]:
    kept = {lab: sorted(ps) for lab, ps in groups.items() if len(ps) >= min_per_identity}
    if not kept:
        best = max((len(v) for v in groups.values()), default=0)
        raise DataError(
            f"{root}: no identity has >= {min_per_identity} images (found {len(groups)} identities, at most "
            f"{best} images each); verification needs several images per identity"
        )
    labels = sorted(kept)
    if limit is not None:
        random.Random(seed).shuffle(labels)
        chosen: list[int] = []
        total = 0
        for lab in labels:
            if total >= limit:
                break
            take = min(len(kept[lab]), limit - total)
            if take < min_per_identity:
                continue  # too few slots left for this identity; a smaller one may still fit
            kept[lab] = kept[lab][:take]
            chosen.append(lab)
            total += take
        labels = sorted(chosen)
        if not labels:
            raise DataError(
                f"{root}: limit={limit} is too small to keep one identity with {min_per_identity} images"
            )
    return [(p, lab) for lab in labels for p in kept[lab]]


def _load_celeba(root: Path, partition: str | None) -> tuple[dict[int, list[Path]], bool, dict[int, str]]:
    from a3gan.data.celeba import list_images, read_label_file

    if (root / ALIGNED_DIR).is_dir():
        img_dir, aligned = root / ALIGNED_DIR, True
    elif (root / WILD_DIR).is_dir():
        img_dir, aligned = root / WILD_DIR, False
    else:
        raise DataError(f"{root}: has {IDENTITY_FILE} but neither {ALIGNED_DIR}/ nor {WILD_DIR}/")
    ids = read_label_file(root / IDENTITY_FILE, "identity")
    if partition is not None:
        parts = read_label_file(root / PARTITION_FILE, "partition", allowed=(0, 1, 2))
        no_part = [f for f in ids if f not in parts]
        if no_part:
            raise DataError(
                f"{img_dir / no_part[0]}: has an identity row but no row in {root / PARTITION_FILE}"
            )
        ids = {f: v for f, v in ids.items() if parts[f] == PARTITIONS[partition]}
        if not ids:
            raise DataError(f"{root / PARTITION_FILE}: partition {partition!r} holds no images")
    on_disk = list_images(img_dir)
    missing = [f for f in ids if f not in on_disk]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{img_dir / missing[0]}{more}: listed in {root / IDENTITY_FILE} but not on disk")
    if aligned:  # one cheap header read: catch a folder of non-CelebA-shaped images early
        from PIL import Image

        from a3gan.geometry import celeba_crop_box

        first = img_dir / min(ids)
        try:
            with Image.open(first) as im:
                celeba_crop_box(*im.size)
        except ValueError as e:
            raise DataError(f"{first}: {e}") from None
        except OSError as e:
            raise DataError(f"{first}: cannot read image ({e})") from None
    groups: dict[int, list[Path]] = defaultdict(list)
    for f, v in ids.items():
        groups[v].append(img_dir / f)
    return groups, aligned, {v: str(v) for v in groups}


def _load_folders(root: Path) -> tuple[dict[int, list[Path]], dict[int, str]]:
    with os.scandir(root) as it:
        people = sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
    groups: dict[int, list[Path]] = {}
    names: dict[int, str] = {}
    for person in people:
        with os.scandir(root / person) as it:
            imgs = [root / person / e.name for e in it if e.is_file() and _is_image(e.name)]
        if imgs:
            lab = len(names)
            names[lab] = person
            groups[lab] = imgs
    if not groups:
        loose = any(_is_image(n) for n in os.listdir(root))
        hint = " (images must be inside one sub-folder per person)" if loose else ""
        raise DataError(f"{root}: no images found in person/*.jpg sub-folders{hint}")
    return groups, names


def load_identity_set(
    path: str | Path,
    limit: int | None = None,
    min_per_identity: int = 2,
    seed: int = 0,
    partition: str | None = None,
) -> IdentitySet:
    """Load an identity-labelled image set (CelebA layout or ``person/*.jpg`` tree); see the module docstring.

    Args:
        path: the dataset folder.
        limit: at most this many images (whole identities, seeded choice); None keeps every eligible image.
        min_per_identity: identities with fewer images are dropped (>= 1; verification needs 2).
        seed: seed of the identity choice when ``limit`` is given.
        partition: CelebA only: ``"train"``, ``"val"`` or ``"test"`` of ``list_eval_partition.txt``.
    """
    root = Path(path).expanduser()
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a positive integer or None, got {limit!r}")
    if isinstance(min_per_identity, bool) or not isinstance(min_per_identity, int) or min_per_identity < 1:
        raise InputError(f"min_per_identity must be a positive integer, got {min_per_identity!r}")
    if partition is not None and partition not in PARTITIONS:
        raise InputError(f"partition must be one of train, val, test or None; got {partition!r}")
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    try:
        is_empty = not any(True for _ in os.scandir(root))
    except OSError as e:
        raise DataError(f"{root}: cannot list the folder ({e.strerror or e})") from None
    if is_empty:
        raise DataError(f"{root}: the folder is empty")

    if (root / IDENTITY_FILE).is_file():
        groups, aligned, names = _load_celeba(root, partition)
        layout = "celeba"
    else:
        for sub in (ALIGNED_DIR, WILD_DIR):
            if (root / sub).is_dir():
                raise DataError(
                    f"{root / IDENTITY_FILE}: file not found; a CelebA-layout folder needs it for identities"
                )
        if partition is not None:
            raise InputError(f"{root}: partition needs a CelebA-layout folder ({IDENTITY_FILE} not found)")
        groups, names = _load_folders(root)
        aligned, layout = False, "folders"
    items = _select(groups, root, limit, min_per_identity, seed)
    used = {lab for _, lab in items}
    return IdentitySet(
        items=items,
        aligned=aligned,
        layout=layout,
        root=root,
        names={lab: n for lab, n in names.items() if lab in used},
    )
