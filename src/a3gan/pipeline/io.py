"""Safe image I/O for the anonymization pipeline (issue 4, "Privacy and robustness").

Reading (:func:`load_image`, :func:`read_image`):

- EXIF orientation is applied to the pixels (``ImageOps.exif_transpose``), so faces are upright for the detector.
- Every mode becomes 8-bit RGB: ``1``/``L``/``P``/``CMYK``/``YCbCr``/``LAB``/``HSV`` are converted, 16-bit
  (``I;16*``) and 32-bit (``I``, ``F``) images are *scaled* to 8 bits (65535 -> 255), never clipped.
- An embedded ICC profile is applied: pixels are converted to sRGB on read, so dropping the profile on write keeps
  the colours (ICC profiles are metadata too: they can name the camera, the editing software and dates).
- Alpha (``RGBA``, ``LA``, ``PA``, ``P`` with transparency) is split off and returned separately. The RGB
  channels are anonymized (including pixels under zero alpha) and :func:`write_image` re-attaches the original
  alpha when the output format has one (PNG, WebP, TIFF); JPEG output drops it.
- Pillow's decompression-bomb limit stays on (``Image.MAX_IMAGE_PIXELS``), and its warning is an error too.
  Truncated files are rejected (``ImageFile.LOAD_TRUNCATED_IMAGES`` is forced off while loading and the pixels
  are decoded eagerly). Animated/multi-frame images are rejected rather than silently losing frames.
- Every failure is an :class:`~a3gan.errors.InputError` with a one-line ``"<path>: <reason>"`` message.

Writing (:func:`write_image`) is atomic (temporary file in the destination folder, ``fsync``, ``os.replace``),
refuses to replace any file this process has read as an input (or any path passed in ``inputs``), and writes a
fresh image with **no metadata** (no EXIF, GPS, XMP, IPTC, ICC, text chunks) unless ``keep_metadata=True``, which
copies the source EXIF back (orientation reset to 1 since the pixels are already upright) and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from a3gan.errors import InputError

#: File extensions treated as images by the CLI (lower case, with the dot).
IMAGE_EXTS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
#: File extensions treated as videos by the CLI.
VIDEO_EXTS: frozenset[str] = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm"})

_EXT_FORMAT = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
_ORIENTATION_TAG = 0x0112

# (st_dev, st_ino, st_mtime_ns) of every file read by load_image (or registered by protect) in this process:
# write_image never replaces one of them. The mtime keeps a deleted input's recycled inode from being refused.
_READ_INODES: set[tuple[int, int, int]] = set()


def _file_key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_dev, st.st_ino, st.st_mtime_ns)


_LOAD_LOCK = threading.Lock()


@dataclass
class LoadedImage:
    """A decoded image: ``rgb`` (H, W, 3) uint8, optional ``alpha`` (H, W) uint8, and where it came from."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    format: str | None  # Pillow's format name of the source ("JPEG", "PNG", ...)
    mode: str  # Pillow's mode of the source, before conversion ("L", "CMYK", "I;16", ...)
    path: Path | None = None
    exif: bytes | None = field(default=None, repr=False)  # only used by write_image(keep_metadata=True)


def image_format_for(path: str | Path, like: str | None = None) -> str:
    """Pillow format name for an output path, from its extension, else ``like``; InputError if neither works."""
    fmt = _EXT_FORMAT.get(Path(path).suffix.lower())
    if fmt is None and like:
        fmt = like.upper()
        fmt = "JPEG" if fmt == "JPG" else fmt
    if fmt is None or fmt not in set(_EXT_FORMAT.values()):
        raise InputError(
            f"{path}: cannot tell the image format to write (use one of {', '.join(sorted(IMAGE_EXTS))})"
        )
    return fmt


@contextlib.contextmanager
def _strict_pillow() -> Iterator[None]:
    """Truncated images are errors, and so is a decompression-bomb warning (not only Pillow's 2x error)."""
    with _LOAD_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _to_sRGB(im: Image.Image, where: str) -> Image.Image:
    """Apply an embedded ICC profile (RGB, L or CMYK images) so pixels are sRGB; drop it otherwise."""
    icc = im.info.get("icc_profile")
    if not icc or im.mode not in ("RGB", "L", "CMYK"):
        return im
    try:
        src = ImageCms.ImageCmsProfile(BytesIO(icc))
        dst = ImageCms.createProfile("sRGB")
        out = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return im  # an unusable profile: fall back to Pillow's plain conversion (colours may shift slightly)
    return out if out is not None else im


def _scale_to_uint8(arr: np.ndarray, mode: str, where: str) -> np.ndarray:
    """16/32-bit single-channel pixels -> uint8, scaling the source range to 0..255 (never clipping)."""
    a = arr.astype(np.float64)
    if mode == "F":
        if not np.isfinite(a).all():
            raise InputError(f"{where}: floating-point image holds NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0 and hi <= 1:
            scale = 255.0
        elif lo >= 0 and hi <= 255:
            scale = 1.0
        elif lo >= 0 and hi <= 65535:
            scale = 255.0 / 65535.0
        else:
            raise InputError(f"{where}: floating-point image values span [{lo:g}, {hi:g}], not a known range")
        return np.rint(a * scale).astype(np.uint8)
    if mode.startswith("I;16") or (a.size and a.min() >= 0 and a.max() <= 65535):
        return np.rint(a * (255.0 / 65535.0)).astype(np.uint8)  # 16-bit: 65535 -> 255, 257 -> 1
    # full signed 32-bit range
    return np.rint((a + 2.0**31) * (255.0 / (2.0**32 - 1))).astype(np.uint8)


def _convert(im: Image.Image, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    mode = im.mode
    alpha: np.ndarray | None = None
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA" if ("transparency" in im.info or mode == "PA") else "RGB")
        mode = im.mode
    if mode in ("RGBA", "RGBa", "LA", "La"):
        if mode in ("RGBa", "La"):  # premultiplied alpha
            im = im.convert("RGBA" if mode == "RGBa" else "LA")
        alpha = np.asarray(im.getchannel("A"), dtype=np.uint8).copy()
        im = im.convert("RGB") if im.mode == "RGBA" else im.getchannel("L")
        mode = im.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        gray = _scale_to_uint8(np.asarray(im), mode, where)
        return np.repeat(gray[:, :, None], 3, axis=2), alpha
    im = _to_sRGB(im, where)
    if im.mode != "RGB":
        try:
            im = im.convert("RGB")
        except (ValueError, OSError) as e:
            raise InputError(f"{where}: cannot convert colour mode {im.mode} to RGB ({e})") from None
    rgb = np.asarray(im, dtype=np.uint8)
    return np.ascontiguousarray(rgb), alpha


def _describe(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg[:200]


def load_image(path: str | Path) -> LoadedImage:
    """Decode an image file safely (see the module docstring). Raises InputError("<path>: <reason>")."""
    p = Path(path)
    where = str(p)
    try:
        st = p.stat()
    except OSError as e:
        raise InputError(f"{where}: cannot read ({e.strerror or _describe(e)})") from None
    if not p.is_file():
        raise InputError(f"{where}: not a regular file")
    if st.st_size == 0:
        raise InputError(f"{where}: empty file (0 bytes)")
    try:
        with _strict_pillow(), Image.open(p) as im:
            fmt = im.format
            if getattr(im, "n_frames", 1) > 1 and fmt != "MPO":  # MPO = JPEG + preview frames: use frame 0
                raise InputError(
                    f"{where}: animated or multi-frame images are not supported (convert to a video)"
                )
            im.load()
            exif = im.info.get("exif") if isinstance(im.info.get("exif"), bytes) else None
            src_mode = im.mode
            im2 = ImageOps.exif_transpose(im)
            im2.load()
            rgb, alpha = _convert(im2, where)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{where}: not an image file (unrecognised or corrupt header)") from None
    except Image.DecompressionBombError as e:
        raise InputError(f"{where}: refused as a possible decompression bomb ({_describe(e)})") from None
    except Image.DecompressionBombWarning as e:
        raise InputError(f"{where}: refused as a possible decompression bomb ({_describe(e)})") from None
    except (
        OSError,
        SyntaxError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        ZeroDivisionError,
        struct.error,
        MemoryError,
    ) as e:
        reason = _describe(e)
        if "truncated" in reason.lower() or isinstance(e, EOFError):
            raise InputError(f"{where}: truncated image file ({reason})") from None
        raise InputError(f"{where}: corrupt or unreadable image ({reason})") from None
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputError(f"{where}: image has no pixels")
    _READ_INODES.add(_file_key(st))
    return LoadedImage(rgb=rgb, alpha=alpha, format=fmt, mode=src_mode, path=p, exif=exif)


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to an (H, W, 3) uint8 RGB array (alpha dropped; use :func:`load_image` to keep it)."""
    return load_image(path).rgb


def protect(paths: Iterable[str | Path]) -> None:
    """Register files as inputs: :func:`write_image` and :func:`check_not_input` will never replace them."""
    for q in paths:
        try:
            s = os.stat(q)
        except OSError:
            continue
        _READ_INODES.add(_file_key(s))


def _same_file(a: os.stat_result, inputs: Iterable[str | Path]) -> bool:
    if _file_key(a) in _READ_INODES:
        return True
    for q in inputs:
        try:
            s = os.stat(q)
        except OSError:
            continue
        if (s.st_dev, s.st_ino) == (a.st_dev, a.st_ino):
            return True
    return False


def check_not_input(path: str | Path, inputs: Iterable[str | Path] = ()) -> None:
    """InputError if ``path`` is (a link to) a file read as an input or one of ``inputs``."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError:
        st = None
    inputs = list(inputs)
    if st is not None and _same_file(st, inputs):
        raise InputError(f"{p}: refusing to write over an input file")
    rp = os.path.realpath(p)
    if any(os.path.realpath(q) == rp for q in inputs):
        raise InputError(f"{p}: refusing to write over an input file")


def _exif_without_orientation(exif: bytes | None) -> bytes | None:
    if not exif:
        return None
    try:
        e = Image.Exif()
        e.load(exif)
        if _ORIENTATION_TAG in e:
            e[_ORIENTATION_TAG] = 1
        return e.tobytes()
    except Exception:  # an unparsable EXIF block is dropped rather than copied blindly
        return None


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and ``os.replace`` it into place.

    On any exception the temporary file is removed and ``path`` is left as it was (absent or the old file).
    """
    p = Path(path)
    folder = p.parent if str(p.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=suffix, dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def atomic_write(path: str | Path, write: Callable[[object], None], suffix: str = ".tmp") -> None:
    """Call ``write(file_object)`` on a temp file next to ``path``, fsync it, then ``os.replace`` it into place."""
    with atomic_path(path, suffix) as tmp, open(tmp, "wb") as f:
        write(f)
        f.flush()


def write_image(
    path: str | Path,
    array: np.ndarray,
    like: str | None = None,
    quality: int = 95,
    *,
    alpha: np.ndarray | None = None,
    keep_metadata: bool = False,
    source: LoadedImage | None = None,
    inputs: Iterable[str | Path] = (),
) -> Path:
    """Write an (H, W, 3) uint8 RGB array atomically, with no metadata.

    The format comes from the extension of ``path`` (else ``like``, e.g. the source's format). ``alpha`` (H, W) is
    re-attached for PNG/WebP/TIFF. ``keep_metadata`` copies ``source.exif`` (orientation reset to 1). Refuses to
    replace a file read by :func:`load_image` in this process or listed in ``inputs``.
    """
    p = Path(path)
    fmt = image_format_for(p, like)
    arr = np.asarray(array)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(f"{p}: expected an (H, W, 3) uint8 array, got {arr.dtype} {arr.shape}")
    if not 1 <= quality <= 100:
        raise InputError(f"quality must be in 1..100, got {quality}")
    check_not_input(p, inputs)
    im = Image.fromarray(np.ascontiguousarray(arr), "RGB")  # a fresh image: carries no info/metadata at all
    if alpha is not None and fmt in _ALPHA_FORMATS:
        a = np.asarray(alpha)
        if a.shape != arr.shape[:2] or a.dtype != np.uint8:
            raise InputError(f"{p}: alpha must be (H, W) uint8 matching the image, got {a.dtype} {a.shape}")
        im.putalpha(Image.fromarray(np.ascontiguousarray(a), "L"))
    params: dict = {}
    if fmt == "JPEG":
        params = {"quality": int(quality), "subsampling": 0 if quality >= 90 else 2, "optimize": False}
    elif fmt == "WEBP":
        params = {"quality": int(quality)}
    elif fmt == "PNG":
        params = {"compress_level": 6}
    if keep_metadata and source is not None and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        exif = _exif_without_orientation(source.exif)
        if exif:
            params["exif"] = exif

    def _save(f) -> None:
        im.save(f, format=fmt, **params)

    atomic_write(p, _save)
    return p
