"""Decode + crop + resize of one CelebA aligned image. Kept free of torch so decode worker processes start fast."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFile

from a3gan.geometry import celeba_crop_box

#: Resampling filter of the cache. LANCZOS (a windowed sinc, a=3) is Pillow's sharpest anti-aliased filter.
RESAMPLE = Image.Resampling.LANCZOS
#: Pillow first box-reduces by an integer factor while the remaining scale stays >= this gap; 3.0 is
#: "indistinguishable from fair resampling" (Pillow docs). For CelebA -> 64/128 px it never triggers.
REDUCING_GAP = 3.0


class DecodeFailure(Exception):
    """An image that cannot be used; the message is one line without the path (the caller adds it)."""


def decode_one(path: str, resolution: int) -> np.ndarray:
    """Fully decode ``path`` (truncated files rejected), take the STGAN crop and resize it to (R, R, 3) uint8."""
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated JPEG must fail here, not train as grey garbage
    try:
        with Image.open(path) as im:
            im.load()
            try:
                box = celeba_crop_box(*im.size)
            except ValueError as e:
                raise DecodeFailure(str(e)) from None
            rgb = im if im.mode == "RGB" else im.convert("RGB")
            out = rgb.resize((resolution, resolution), resample=RESAMPLE, box=box, reducing_gap=REDUCING_GAP)
    except DecodeFailure:
        raise
    except FileNotFoundError:
        raise DecodeFailure("file disappeared while decoding") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DecodeFailure(f"corrupt or truncated image ({msg})") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved
    return np.asarray(out, dtype=np.uint8)


def decode_chunk(args: tuple[int, list[str], int]) -> tuple[int, np.ndarray | None, tuple[str, str] | None]:
    """Pool task: decode a run of files. Returns (start, images (n, R, R, 3) or None, (path, error) or None)."""
    start, paths, resolution = args
    out = np.empty((len(paths), resolution, resolution, 3), dtype=np.uint8)
    for j, p in enumerate(paths):
        try:
            out[j] = decode_one(p, resolution)
        except DecodeFailure as e:
            return start, None, (p, str(e))
    return start, out, None
