"""CelebA in its official layout, decoded once into a memory-mapped uint8 cache (issue 3, "Data").

Layout (Liu et al., ICCV 2015)::

    ROOT/img_align_celeba/000001.jpg ...   aligned images, 178x218 (any uniform scale works, e.g. 89x109)
    ROOT/list_attr_celeba.txt              line 1: row count, line 2: 40 attribute names, then "file v1 .. v40"
    ROOT/list_eval_partition.txt           "file p", p = 0 train, 1 val, 2 test
    ROOT/identity_CelebA.txt               "file identity" (optional here; used by evaluation)

Geometry: the STGAN/AttGAN crop of :mod:`a3gan.geometry` (170x170 at x=3, y=26 of 178x218), computed from each
image's own size, so the half-resolution subset (89x109) gets the same face region. The crop box is given to
Pillow's ``resize(box=...)`` with float coordinates, so it stays sub-pixel exact at any scale instead of being
rounded to whole pixels, and is resampled with LANCZOS (``reducing_gap=3.0``): LANCZOS is the sharpest
anti-aliased filter Pillow has and costs nothing here because every image is decoded exactly once. From full
CelebA that is a 170 -> 128 (or 64) px reduction; from the 89x109 subset, 85 -> 64 px is a reduction and
85 -> 128 px an (honest, blurry) enlargement.

Speed: the first use of a (root, file list, resolution) decodes, crops and resizes every image of the partition
in a pool of worker processes (rich progress bar) into a uint8 array (N, R, R, 3) saved as ``.npy`` - written to
a temporary file and renamed, under a file lock so that N training processes started together decode only
once. Later uses memory-map it: ``__getitem__`` is a slice, a float conversion to [-1, 1] and an optional
horizontal flip. The cache goes to ``ROOT/.a3gan_cache/`` if that is writable, else ``$A3GAN_CACHE_DIR``, else
``$XDG_CACHE_HOME/a3gan`` (``~/.cache/a3gan``). Sizes: full CelebA train partition at 128 px is 8.0 GB
(162,770 x 49,152 bytes), at 64 px 2.0 GB; the 10,000-image subset is 0.49 GB at 128 px.

Augmentation: STGAN and AttGAN train with none (their CelebA pipelines only crop and resize), so ``flip`` is
off by default; ``flip=True`` mirrors an image with probability 1/2 (attributes are all left/right symmetric).

Validation: every problem raises :class:`a3gan.errors.DataError` with one line naming the file (and line): a
missing file or folder, a malformed attribute file (count line, header, column count, values other than -1/1,
duplicate rows), a requested attribute absent from the header, an image listed but not on disk, an image on
disk or in the partition list without a label row, a corrupt or truncated image (found when it is decoded with
``Image.load()``; ``ImageFile.LOAD_TRUNCATED_IMAGES`` stays False), an image that is not a scaled CelebA
aligned image. Nothing trains silently on garbage.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from a3gan.attributes import ATTRIBUTES
from a3gan.data import _decode
from a3gan.errors import DataError, InputError

IMG_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"
PARTITIONS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Bump when the crop, filter or array layout changes: old caches are then ignored.
CACHE_VERSION = "stgan-crop/lanczos-rg3/v1"


# --------------------------------------------------------------------------------------------------------------
# Label files
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttrTable:
    """Parsed ``list_attr_celeba.txt``: ``values[i, k]`` in {0, 1} is attribute ``names[k]`` of ``files[i]``."""

    files: list[str]
    names: tuple[str, ...]
    values: np.ndarray  # (n_files, len(names)) uint8
    header: tuple[str, ...]  # every name of line 2, in file order


def _canon(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file (cannot decode as UTF-8)") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


_BLOCK = 8192  # lines parsed per vectorised block (bounds the memory of the token lists)


def _parse_attr_block(
    path: Path, block: list[tuple[int, str]], header: tuple[str, ...]
) -> tuple[list[str], np.ndarray]:
    """Rows ``(lineno, text)`` -> (file names, bool (n, ncol) of value == 1), every token checked.

    Fast path: split the whole block at once and check token kinds by position (names are never -1/1, values
    always are, so any row with a missing or extra token misaligns and is caught); on failure, re-scan the
    block line by line to report the exact line.
    """
    ncol = len(header)
    k = ncol + 1
    toks = " ".join(t for _, t in block).split()
    if len(toks) == len(block) * k:
        names = toks[0::k]
        del toks[0::k]
        vals = np.array(toks, dtype="S3").reshape(len(block), ncol)  # S3: longer tokens can never equal -1/1
        pos, neg = vals == b"1", vals == b"-1"
        if (pos | neg).all() and not any(n in ("1", "-1") for n in names):
            return names, pos
    for lineno, text in block:
        parts = text.split()
        if len(parts) != k:
            raise DataError(
                f"{path}: line {lineno}: expected {k} columns (file name + {ncol} attributes), got {len(parts)}"
            )
        if parts[0] in ("1", "-1"):
            raise DataError(f"{path}: line {lineno}: expected a file name in column 1, got {parts[0]!r}")
        for c, v in enumerate(parts[1:]):
            if v not in ("1", "-1"):
                raise DataError(
                    f"{path}: line {lineno}: attribute {header[c]!r} of {parts[0]} is {v!r}; values must be -1 or 1"
                )
    raise DataError(f"{path}: lines {block[0][0]}-{block[-1][0]}: malformed rows")  # pragma: no cover


def read_attr_file(path: str | Path, attributes: Sequence[str] | None = None) -> AttrTable:
    """Parse the official 40-attribute file and select ``attributes`` BY NAME from its header (line 2).

    -1 -> 0 and 1 -> 1. Every row is checked (column count, values), not only the selected columns.
    ``attributes=None`` keeps every column. Names match exactly, else case-insensitively.
    """
    path = Path(path)
    lines = _read_lines(path)
    if len(lines) < 2:
        raise DataError(f"{path}: malformed attribute file: needs a count line and a header line")
    first = lines[0].split()
    if "," in lines[1] or "," in lines[0]:
        raise DataError(
            f"{path}: malformed attribute file: looks comma-separated (the Kaggle CSV variant?); expected the "
            "official whitespace-separated list_attr_celeba.txt"
        )
    if len(first) != 1 or not first[0].isdigit():
        raise DataError(
            f"{path}: line 1: malformed attribute file: expected the number of rows, got {lines[0]!r}"
        )
    count = int(first[0])
    header = tuple(lines[1].split())
    if not header:
        raise DataError(f"{path}: line 2: bad header: expected attribute names, got an empty line")
    numeric = [t for t in header if _is_number(t)]
    if numeric:
        raise DataError(
            f"{path}: line 2: bad header: expected attribute names, got values such as {numeric[0]!r} "
            "(is the header line missing?)"
        )
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise DataError(f"{path}: line 2: bad header: duplicate attribute names {dup}")
    ncol = len(header)

    files: list[str] = []
    blocks: list[np.ndarray] = []
    linenos: list[int] = []
    for b0 in range(2, len(lines), _BLOCK):
        block = [(i + 1, ln) for i, ln in enumerate(lines[b0 : b0 + _BLOCK], start=b0) if ln.strip()]
        names, values = _parse_attr_block(path, block, header)
        files.extend(names)
        blocks.append(values)
        linenos.extend(i for i, _ in block)
    if len(files) != count:
        raise DataError(f"{path}: line 1 says {count} rows but the file has {len(files)}")
    if not files:
        raise DataError(f"{path}: the attribute file has no rows")
    pos = np.concatenate(blocks, axis=0)
    if len(set(files)) != len(files):
        seen: set[str] = set()
        for f, ln in zip(files, linenos, strict=True):
            if f in seen:
                raise DataError(f"{path}: line {ln}: duplicate row for {f}")
            seen.add(f)

    if attributes is None:
        cols = list(range(ncol))
    else:
        wanted = list(attributes)
        if not wanted:
            raise InputError("attributes must not be empty")
        if len(set(wanted)) != len(wanted):
            raise InputError(f"duplicate attribute names in {wanted}")
        exact = {h: i for i, h in enumerate(header)}
        canon = {_canon(h): i for i, h in enumerate(header)}
        cols = []
        for name in wanted:
            i = exact.get(name, canon.get(_canon(name)))
            if i is None:
                raise DataError(
                    f"{path}: attribute {name!r} is not in the header (line 2); available: {', '.join(header)}"
                )
            cols.append(i)
    values = pos[:, cols].astype(np.uint8)
    return AttrTable(files=files, names=tuple(header[c] for c in cols), values=values, header=header)


def read_label_file(path: str | Path, what: str, allowed: Sequence[int] | None = None) -> dict[str, int]:
    """Parse a ``file integer`` file (``identity_CelebA.txt``, ``list_eval_partition.txt``)."""
    path = Path(path)
    out: dict[str, int] = {}
    for lineno, line in enumerate(_read_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DataError(f"{path}: line {lineno}: expected 'file {what}', got {len(parts)} columns")
        try:
            v = int(parts[1])
        except ValueError:
            raise DataError(
                f"{path}: line {lineno}: {what} of {parts[0]} is {parts[1]!r}, not an integer"
            ) from None
        if allowed is not None and v not in allowed:
            raise DataError(
                f"{path}: line {lineno}: {what} of {parts[0]} is {v}; allowed: {', '.join(map(str, allowed))}"
            )
        if parts[0] in out:
            raise DataError(f"{path}: line {lineno}: duplicate row for {parts[0]}")
        out[parts[0]] = v
    if not out:
        raise DataError(f"{path}: file has no rows")
    return out


def list_images(folder: Path) -> set[str]:
    """Names of the image files directly inside ``folder`` (a DataError if it is missing)."""
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found (expected the official CelebA layout)")
    try:
        with os.scandir(folder) as it:
            return {e.name for e in it if e.name.lower().endswith(IMAGE_EXTS) and not e.name.startswith(".")}
    except OSError as e:
        raise DataError(f"{folder}: cannot list the folder ({e.strerror or e})") from None


def _missing_error(first: Path | str, count: int, what: str) -> DataError:
    more = f" (and {count - 1} more)" if count > 1 else ""
    return DataError(f"{first}{more}: {what}")


# --------------------------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------------------------


def default_cache_dir(root: Path) -> Path:
    """``$A3GAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/a3gan`` (``~/.cache/a3gan``). Never the dataset folder itself:
    a dataset is input and is not written to (the cache key holds the dataset's path, so datasets don't collide)."""
    env = os.environ.get("A3GAN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "a3gan"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (POSIX ``flock``), so concurrent processes build a cache once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, the atomic rename still keeps the cache whole
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _default_decode_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 32))


def build_image_cache(
    paths: Sequence[str],
    resolution: int,
    dest: Path,
    *,
    workers: int | None = None,
    progress: bool = True,
    chunk: int = 64,
) -> None:
    """Decode, crop and resize ``paths`` into ``dest`` (.npy, uint8 (N, R, R, 3)), atomically.

    Raises DataError naming the first image (in file order) that cannot be decoded; no cache is left behind.
    """
    n = len(paths)
    workers = _default_decode_workers() if workers is None else max(1, int(workers))
    workers = min(workers, max(1, (n + chunk - 1) // chunk))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    tasks = [(s, list(paths[s : s + chunk]), resolution) for s in range(0, n, chunk)]
    pool = None
    try:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, resolution, resolution, 3))
        if workers > 1:
            import multiprocessing as mp

            pool = mp.get_context().Pool(workers)  # started before the progress thread
            results = pool.imap(_decode.decode_chunk, tasks)
        else:
            results = map(_decode.decode_chunk, tasks)
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("[bold]decoding CelebA {task.fields[res]} px"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, disable=not progress, transient=False) as bar:
            task = bar.add_task("decode", total=n, res=resolution)
            for start, images, err in results:
                if err is not None:
                    raise DataError(f"{err[0]}: {err[1]}; remove or re-download it (and fix its label rows)")
                assert images is not None
                arr[start : start + len(images)] = images
                bar.advance(task, len(images))
        arr.flush()
        del arr
        os.replace(tmp, dest)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# --------------------------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------------------------


class CelebA(Dataset):
    """CelebA aligned faces: items are ``(image (3, R, R) float32 in [-1, 1], attrs (N,) float32 in {0, 1})``.

    Args:
        root: folder in the official layout (see the module docstring).
        resolution: side R of the square model input.
        partition: ``"train"`` (0), ``"val"`` (1), ``"test"`` (2) of ``list_eval_partition.txt``, or ``"all"``
            (then the partition file may be absent).
        attributes: header names to return, in this order (default: the paper's 10, Appendix D).
        cache_dir: where the decoded ``.npy`` goes (default: see :func:`default_cache_dir`).
        flip: random horizontal flip (p = 1/2). Off by default: STGAN/AttGAN use no augmentation.
        limit: keep only the first ``limit`` images of the partition (file order).
        decode_workers: processes for the one-time decode (default: the CPUs this process may use).
        progress: show a progress bar while decoding.
        rebuild_cache: decode again even if a cache exists.
    """

    def __init__(
        self,
        root: str | Path,
        resolution: int,
        partition: str = "train",
        attributes: Sequence[str] = ATTRIBUTES,
        cache_dir: str | Path | None = None,
        flip: bool = False,
        limit: int | None = None,
        *,
        decode_workers: int | None = None,
        progress: bool = True,
        rebuild_cache: bool = False,
    ) -> None:
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
            raise InputError(f"resolution must be a positive integer, got {resolution!r}")
        if partition not in (*PARTITIONS, "all"):
            raise InputError(f"partition must be one of train, val, test, all; got {partition!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InputError(f"limit must be a positive integer or None, got {limit!r}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"{self.root}: CelebA folder not found")
        self.resolution = resolution
        self.partition = partition
        self.flip = bool(flip)

        table = read_attr_file(self.root / ATTR_FILE, attributes)
        attr_file = self.root / ATTR_FILE
        row_of = {f: i for i, f in enumerate(table.files)}
        img_dir = self.root / IMG_DIR
        on_disk = list_images(img_dir)
        unlabelled = sorted(on_disk.difference(row_of))
        if unlabelled:
            raise _missing_error(
                img_dir / unlabelled[0], len(unlabelled), f"image has no label row in {attr_file}"
            )

        if partition == "all":
            files = list(table.files)
        else:
            part_file = self.root / PARTITION_FILE
            parts = read_label_file(part_file, "partition", allowed=(0, 1, 2))
            no_label = [f for f in parts if f not in row_of]
            if no_label:
                raise _missing_error(
                    img_dir / no_label[0],
                    len(no_label),
                    f"listed in {part_file} but has no label row in {attr_file}",
                )
            no_part = [f for f in table.files if f not in parts]
            if no_part:
                raise _missing_error(
                    img_dir / no_part[0],
                    len(no_part),
                    f"has a label row in {attr_file} but no row in {part_file}",
                )
            want = PARTITIONS[partition]
            files = [f for f in table.files if parts[f] == want]
            if not files:
                counts = {k: sum(1 for v in parts.values() if v == p) for k, p in PARTITIONS.items()}
                raise DataError(
                    f"{part_file}: partition {partition!r} holds no images "
                    f"(train {counts['train']}, val {counts['val']}, test {counts['test']}); "
                    "use another partition or 'all'"
                )
        if limit is not None:
            files = files[:limit]

        not_on_disk = [f for f in files if f not in on_disk]
        if not_on_disk:
            raise _missing_error(
                img_dir / not_on_disk[0], len(not_on_disk), f"listed in {attr_file} but not on disk"
            )

        id_file = self.root / IDENTITY_FILE
        self._identities: np.ndarray | None = None
        if id_file.is_file():
            ids = read_label_file(id_file, "identity")
            no_id = [f for f in files if f not in ids]
            if no_id:
                raise _missing_error(
                    img_dir / no_id[0], len(no_id), f"image has no identity row in {id_file}"
                )
            self._identities = np.array([ids[f] for f in files], dtype=np.int64)

        rows = np.array([row_of[f] for f in files], dtype=np.int64)
        self._files = files
        self._attr_names = table.names
        self._attr_u8 = np.ascontiguousarray(table.values[rows])
        self._attr_t = torch.from_numpy(self._attr_u8.astype(np.float32))

        cdir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir(self.root)
        self.cache_path = cdir / self._cache_name(files)
        self.cache_hit = False
        self._mm: np.ndarray | None = None
        self._prepare_cache(decode_workers, progress, rebuild_cache)

    # ---- cache -------------------------------------------------------------------------------------------------
    def _cache_name(self, files: list[str]) -> str:
        img_dir = self.root / IMG_DIR
        h = hashlib.sha256()
        h.update(
            json.dumps(
                {
                    "root": str(self.root.resolve()),
                    "img_dir_mtime_ns": img_dir.stat().st_mtime_ns,
                    "resolution": self.resolution,
                    "version": CACHE_VERSION,
                    "n": len(files),
                }
            ).encode()
        )
        h.update("\n".join(files).encode())
        return f"celeba-{self.partition}-{self.resolution}px-{len(files)}-{h.hexdigest()[:16]}.npy"

    def _open_cache(self) -> np.ndarray | None:
        try:
            mm = np.load(self.cache_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if mm.dtype != np.uint8 or mm.shape != (len(self._files), self.resolution, self.resolution, 3):
            return None
        return mm

    def _prepare_cache(self, workers: int | None, progress: bool, rebuild: bool) -> None:
        if not rebuild and self.cache_path.is_file():
            mm = self._open_cache()
            if mm is not None:
                self._mm, self.cache_hit = mm, True
                return
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(
                f"{self.cache_path.parent}: cannot create the cache folder ({e.strerror or e})"
            ) from None
        with _file_lock(self.cache_path.with_name(self.cache_path.name + ".lock")):
            if not rebuild and self.cache_path.is_file():  # another process built it while we waited
                mm = self._open_cache()
                if mm is not None:
                    self._mm, self.cache_hit = mm, True
                    return
            paths = [str(self.root / IMG_DIR / f) for f in self._files]
            build_image_cache(paths, self.resolution, self.cache_path, workers=workers, progress=progress)
        self._mm = self._open_cache()
        if self._mm is None:  # pragma: no cover - only if the file is removed under us
            raise DataError(f"{self.cache_path}: cache was written but cannot be read back")

    @property
    def images(self) -> np.ndarray:
        """The decoded crops, uint8 (N, R, R, 3), memory-mapped read-only."""
        if self._mm is None:  # reopened lazily after pickling (DataLoader workers with spawn)
            self._mm = self._open_cache()
            if self._mm is None:
                raise DataError(
                    f"{self.cache_path}: decoded-image cache is missing or damaged; load the data again"
                )
        return self._mm

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_mm"] = None  # never pickle the memory map (it would copy gigabytes)
        return state

    # ---- dataset -----------------------------------------------------------------------------------------------
    @property
    def files(self) -> list[str]:
        """Image file names (relative to ``img_align_celeba/``), in item order."""
        return list(self._files)

    @property
    def identities(self) -> np.ndarray | None:
        """int64 identity per item from ``identity_CelebA.txt``, or None when that file is absent."""
        return None if self._identities is None else self._identities.copy()

    @property
    def attributes(self) -> tuple[str, ...]:
        """The attribute names of the label vector, in order (as spelled in the header)."""
        return self._attr_names

    @property
    def attr_matrix(self) -> np.ndarray:
        """uint8 (N_items, N_attrs) in {0, 1}."""
        return self._attr_u8.copy()

    def __len__(self) -> int:
        return len(self._files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self._files)
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {index} out of range for CelebA with {n} items")
        img = torch.from_numpy(np.array(self.images[i], copy=True)).permute(2, 0, 1)
        x = img.to(torch.float32).div_(127.5).sub_(1.0)
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, self._attr_t[i]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Batched fetch (used by DataLoader): one gather from the memory map and one float conversion."""
        n = len(self._files)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        idx = np.where(idx < 0, idx + n, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"index out of range for CelebA with {n} items")
        u8 = torch.from_numpy(self.images[idx]).permute(0, 3, 1, 2)
        x = u8.to(torch.float32, memory_format=torch.contiguous_format).div_(127.5).sub_(1.0)
        if self.flip:
            m = torch.rand(len(idx)) < 0.5
            x[m] = x[m].flip(-1)
        a = self._attr_t[torch.from_numpy(idx)]
        return list(zip(x.unbind(0), a.unbind(0), strict=True))

    def __repr__(self) -> str:
        return (
            f"CelebA(root={str(self.root)!r}, partition={self.partition!r}, resolution={self.resolution}, "
            f"items={len(self)}, attributes={len(self._attr_names)}, flip={self.flip})"
        )


# --------------------------------------------------------------------------------------------------------------
# Loader
# --------------------------------------------------------------------------------------------------------------


def _seed_worker(worker_id: int) -> None:
    import random

    s = torch.initial_seed() % 2**32  # derived by torch from the loader's generator + worker id
    np.random.seed(s)
    random.seed(s)


def default_num_workers() -> int:
    """Loader workers: a batch is one memory-map gather, so 0 (in-process) on <= 2 CPUs, else up to 4 workers
    to overlap loading with the training step."""
    n = _default_decode_workers()
    return 0 if n <= 2 else min(4, n // 2)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = True,
    num_workers: int | None = None,
    seed: int = 0,
    drop_last: bool = True,
    distributed_ok: bool = True,
    pin_memory: bool | None = None,
) -> DataLoader:
    """A seeded torch DataLoader: the same seed gives the same order (and the same flips with workers > 0).

    ``distributed_ok=True`` (default) returns a plain DataLoader for ``accelerate.Accelerator.prepare``, which
    shards its batches across processes and keeps the seeded shuffle in sync. ``distributed_ok=False`` is for
    plain ``torch.distributed`` without Accelerate: when a process group of size > 1 is active, a
    DistributedSampler (seeded, call ``loader.sampler.set_epoch(e)``) gives each rank its own shard.
    Workers persist between epochs; ``pin_memory`` defaults to CUDA being available.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if num_workers is None:
        num_workers = default_num_workers()
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise InputError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise DataError("the dataset is empty")
    if drop_last and n < batch_size:
        raise DataError(f"the dataset has {n} items, fewer than one batch of {batch_size} (drop_last=True)")
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    g = torch.Generator()
    g.manual_seed(int(seed))
    sampler = None
    if not distributed_ok and torch.distributed.is_available() and torch.distributed.is_initialized():
        if torch.distributed.get_world_size() > 1:
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(dataset, shuffle=shuffle, seed=int(seed), drop_last=drop_last)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=num_workers,
        generator=g,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        worker_init_fn=_seed_worker if num_workers > 0 else None,
        prefetch_factor=4 if num_workers > 0 else None,
    )
