"""a3gan.pipeline.io: safe decoding of awkward/bad images and metadata-free atomic writes."""

from __future__ import annotations

import os
import struct
import zlib
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from a3gan.errors import InputError
from a3gan.pipeline import io as pio


def _gradient(h: int = 24, w: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(1, w - 1), y * 255 // max(1, h - 1), (x + y) % 256], -1).astype(np.uint8)


def _exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc."  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0x0112] = orientation
    gps = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    exif.get_ifd(0x8825).update(gps)
    return exif


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _bomb_png(path: Path, w: int, h: int) -> Path:
    """A valid PNG signature + IHDR claiming w x h pixels, with a tiny IDAT: a few dozen bytes on disk."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
    data += _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _png_chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def _one_line_error(excinfo: pytest.ExceptionInfo, path: Path, *words: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert msg.startswith(str(path) + ": ")
    for w in words:
        assert w in msg.lower(), msg
    return msg


# ----------------------------------------------------------------------------------------------- good inputs


def test_rgb_png_round_trip_exact(tmp_path: Path) -> None:
    arr = _gradient()
    Image.fromarray(arr).save(tmp_path / "a.png")
    out = pio.read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out, arr)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # 2 rows x 4 cols: left half red, right half blue. Orientation 6 = "rotate 90 CW to display".
    arr = np.zeros((2, 4, 3), np.uint8)
    arr[:, :2] = (255, 0, 0)
    arr[:, 2:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(tmp_path / "o.png", exif=exif.tobytes())
    out = pio.read_image(tmp_path / "o.png")
    assert out.shape == (4, 2, 3)
    # after a clockwise turn the left (red) half is on top
    np.testing.assert_array_equal(out[:2, :, 0], 255)
    np.testing.assert_array_equal(out[2:, :, 2], 255)


def test_grayscale_l_becomes_rgb(tmp_path: Path) -> None:
    g = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out = pio.read_image(tmp_path / "g.png")
    assert out.shape == (4, 6, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], g)


def test_bilevel_mode_1(tmp_path: Path) -> None:
    im = Image.new("1", (3, 2), 0)
    im.putpixel((1, 0), 1)
    im.save(tmp_path / "b.png")
    out = pio.read_image(tmp_path / "b.png")
    assert out[0, 1].tolist() == [255, 255, 255] and out[0, 0].tolist() == [0, 0, 0]


def test_16bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    v = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(v).save(tmp_path / "d.png")
    loaded = pio.load_image(tmp_path / "d.png")
    assert loaded.mode.startswith("I")
    # 65535 -> 255, 257 -> 1, 32896 -> 128 (clipping would give 255 for everything above 255)
    np.testing.assert_array_equal(loaded.rgb[0, :, 0], [0, 1, 128, 255])
    np.testing.assert_array_equal(loaded.rgb[..., 0], loaded.rgb[..., 2])


def test_32bit_float_tiff_in_unit_range(tmp_path: Path) -> None:
    v = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    Image.fromarray(v).save(tmp_path / "f.tif")
    out = pio.read_image(tmp_path / "f.tif")
    np.testing.assert_array_equal(out[0, :, 1], [0, 128, 255])


def test_cmyk_jpeg(tmp_path: Path) -> None:
    im = Image.new("CMYK", (16, 16), (255, 0, 0, 0))  # pure cyan ink
    im.save(tmp_path / "c.jpg", quality=95)
    loaded = pio.load_image(tmp_path / "c.jpg")
    assert loaded.mode == "CMYK" and loaded.rgb.shape == (16, 16, 3)
    r, g, b = loaded.rgb[8, 8].astype(int)
    assert r < 20 and g > 235 and b > 235  # cyan = (0, 255, 255)


def test_rgba_png_alpha_kept_and_reattached(tmp_path: Path) -> None:
    arr = _gradient(8, 8)
    alpha = np.tile(np.arange(0, 256, 32, dtype=np.uint8), (8, 1))
    Image.fromarray(np.dstack([arr, alpha]), "RGBA").save(tmp_path / "t.png")
    loaded = pio.load_image(tmp_path / "t.png")
    np.testing.assert_array_equal(loaded.rgb, arr)
    np.testing.assert_array_equal(loaded.alpha, alpha)
    pio.write_image(tmp_path / "o.png", loaded.rgb, alpha=loaded.alpha)
    back = np.asarray(Image.open(tmp_path / "o.png"))
    assert back.shape == (8, 8, 4)
    np.testing.assert_array_equal(back[..., 3], alpha)
    # JPEG output has no alpha channel: the alpha is dropped, RGB written
    pio.write_image(tmp_path / "o.jpg", loaded.rgb, alpha=loaded.alpha)
    assert Image.open(tmp_path / "o.jpg").mode == "RGB"


def test_la_and_palette_with_transparency(tmp_path: Path) -> None:
    la = Image.new("LA", (2, 2), (100, 7))
    la.save(tmp_path / "la.png")
    loaded = pio.load_image(tmp_path / "la.png")
    assert loaded.rgb[0, 0].tolist() == [100, 100, 100] and loaded.alpha[0, 0] == 7

    p = Image.new("P", (2, 2), 1)
    p.putpalette([0, 0, 0, 10, 20, 30] + [0] * (256 * 3 - 6))
    p.info["transparency"] = 0
    p.putpixel((0, 0), 0)
    p.save(tmp_path / "p.png", transparency=0)
    loaded = pio.load_image(tmp_path / "p.png")
    assert loaded.rgb[1, 1].tolist() == [10, 20, 30]
    assert loaded.alpha is not None and loaded.alpha[0, 0] == 0 and loaded.alpha[1, 1] == 255


def test_one_by_one_image(tmp_path: Path) -> None:
    Image.new("RGB", (1, 1), (1, 2, 3)).save(tmp_path / "px.png")
    out = pio.read_image(tmp_path / "px.png")
    assert out.shape == (1, 1, 3) and out[0, 0].tolist() == [1, 2, 3]


def test_icc_profile_is_applied_then_dropped(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    arr = _gradient(6, 6)
    Image.fromarray(arr).save(tmp_path / "icc.png", icc_profile=icc)
    out = pio.read_image(tmp_path / "icc.png")
    assert np.abs(out.astype(int) - arr.astype(int)).max() <= 2  # sRGB -> sRGB is (almost) the identity
    pio.write_image(tmp_path / "icc_out.png", out)
    assert "icc_profile" not in Image.open(tmp_path / "icc_out.png").info


# ------------------------------------------------------------------------------------------------ bad inputs


def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(InputError) as e:
        pio.read_image(p)
    _one_line_error(e, p, "empty")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture\nsecond line\n")
    with pytest.raises(InputError) as e:
        pio.read_image(p)
    _one_line_error(e, p, "not an image")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        pio.read_image(tmp_path / "nope.png")
    _one_line_error(e, tmp_path / "nope.png", "cannot read")
    with pytest.raises(InputError) as e:
        pio.read_image(tmp_path)
    _one_line_error(e, tmp_path, "not a regular file")


@pytest.mark.parametrize("ext,fmt", [(".jpg", "JPEG"), (".png", "PNG")])
def test_truncated_files(tmp_path: Path, ext: str, fmt: str) -> None:
    buf = BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format=fmt)
    data = buf.getvalue()
    p = tmp_path / f"cut{ext}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as e:
        pio.read_image(p)
    _one_line_error(e, p)
    assert "truncated" in str(e.value).lower() or "corrupt" in str(e.value).lower()


def test_corrupt_png_crc(tmp_path: Path) -> None:
    buf = BytesIO()
    Image.fromarray(_gradient()).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF  # inside the compressed data: the chunk CRC no longer matches
    p = tmp_path / "crc.png"
    p.write_bytes(bytes(data))
    with pytest.raises(InputError) as e:
        pio.read_image(p)
    _one_line_error(e, p)


def test_corrupt_jpeg_header(tmp_path: Path) -> None:
    buf = BytesIO()
    Image.fromarray(_gradient()).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")  # baseline frame header: destroy it
    data[sof + 2 : sof + 12] = b"\xff" * 10
    p = tmp_path / "bad.jpg"
    p.write_bytes(bytes(data))
    with pytest.raises(InputError) as e:
        pio.read_image(p)
    _one_line_error(e, p)


@pytest.mark.parametrize("side", [10_000, 20_000])  # 100 MP (Pillow's warning) and 400 MP (Pillow's error)
def test_decompression_bomb(tmp_path: Path, side: int) -> None:
    p = _bomb_png(tmp_path / f"bomb{side}.png", side, side)
    assert p.stat().st_size < 100
    assert Image.MAX_IMAGE_PIXELS is not None  # the limit is still on
    with pytest.raises(InputError) as e:
        pio.read_image(p)
    _one_line_error(e, p, "decompression bomb")


def test_animated_gif_is_refused(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), (80 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(InputError) as e:
        pio.read_image(tmp_path / "a.gif")
    _one_line_error(e, tmp_path / "a.gif", "multi-frame")


def test_truncated_setting_is_restored(tmp_path: Path) -> None:
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = True  # some other library switched it on...
    try:
        buf = BytesIO()
        Image.fromarray(_gradient(64, 64)).save(buf, format="JPEG")
        p = tmp_path / "cut.jpg"
        p.write_bytes(buf.getvalue()[:300])
        with pytest.raises(InputError):  # ...we still refuse truncated files
            pio.read_image(p)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


# ---------------------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".tif"])
def test_written_files_carry_no_exif_or_gps(tmp_path: Path, ext: str) -> None:
    src = tmp_path / "src.jpg"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>SECRET-XMP</rdf:RDF></x:xmpmeta>'
    Image.fromarray(_gradient()).save(
        src, exif=_exif_with_gps().tobytes(), xmp=xmp, comment=b"SECRET-COMMENT"
    )
    with Image.open(src) as im:  # the source really has them
        assert im.getexif().get_ifd(0x8825)
        assert b"SECRET-XMP" in src.read_bytes()
    loaded = pio.load_image(src)
    out = pio.write_image(tmp_path / f"out{ext}", loaded.rgb, source=loaded)
    data = out.read_bytes()
    for secret in (b"SpyCam", b"Model X", b"SECRET-XMP", b"SECRET-COMMENT", b"Exif\x00\x00"):
        assert secret not in data
    with Image.open(out) as im:
        exif = im.getexif()  # a TIFF's own structure is an IFD too: only its layout tags may be there
        assert not {0x010F, 0x0110, 0x0112, 0x8825, 0x8769, 0x02BC} & set(exif)
        assert not exif.get_ifd(0x8825) and not exif.get_ifd(0x8769)
        if ext != ".tif":
            assert len(exif) == 0
        assert "exif" not in im.info and "icc_profile" not in im.info and "xmp" not in im.info


def test_keep_metadata_copies_exif_with_upright_orientation(tmp_path: Path) -> None:
    src = tmp_path / "src.jpg"
    Image.fromarray(_gradient()).save(src, exif=_exif_with_gps(orientation=6).tobytes())
    loaded = pio.load_image(src)
    assert loaded.rgb.shape == (32, 24, 3)  # rotated on read
    out = pio.write_image(tmp_path / "keep.jpg", loaded.rgb, source=loaded, keep_metadata=True)
    with Image.open(out) as im:
        exif = im.getexif()
        assert exif[0x010F] == "SpyCam Inc."
        assert exif[0x0112] == 1  # pixels are already upright
        assert exif.get_ifd(0x8825)[1] == "N"


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dst = tmp_path / "out" / "x.png"
    pio.write_image(dst, _gradient())
    before = dst.read_bytes()
    assert sorted(os.listdir(dst.parent)) == ["x.png"]

    def boom(self, fp, format=None, **kw):  # noqa: A002
        fp.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError):
        pio.write_image(dst, np.zeros((4, 4, 3), np.uint8))
    assert dst.read_bytes() == before  # the old file is untouched
    assert sorted(os.listdir(dst.parent)) == ["x.png"]  # the temp file was removed


def test_write_never_replaces_an_input(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(_gradient()).save(src)
    arr = pio.read_image(src)
    with pytest.raises(InputError, match="input"):
        pio.write_image(src, arr)
    link = tmp_path / "link.png"
    link.symlink_to(src)
    with pytest.raises(InputError, match="input"):
        pio.write_image(link, arr)
    other = tmp_path / "other.png"  # never read, but declared an input
    Image.fromarray(_gradient()).save(other)
    with pytest.raises(InputError, match="input"):
        pio.write_image(other, arr, inputs=[other])
    np.testing.assert_array_equal(pio.read_image(src), arr)  # untouched


def test_write_format_from_extension_or_like(tmp_path: Path) -> None:
    arr = _gradient()
    pio.write_image(tmp_path / "a.jpeg", arr)
    assert Image.open(tmp_path / "a.jpeg").format == "JPEG"
    pio.write_image(tmp_path / "noext", arr, like="PNG")
    assert Image.open(tmp_path / "noext").format == "PNG"
    with pytest.raises(InputError, match="format"):
        pio.write_image(tmp_path / "what.xyz", arr)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4, 4), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        np.zeros((0, 4, 3), np.uint8),
    ],
)
def test_write_rejects_bad_arrays(tmp_path: Path, bad: np.ndarray) -> None:
    with pytest.raises(InputError):
        pio.write_image(tmp_path / "x.png", bad)


def test_write_rejects_bad_quality_and_alpha(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="quality"):
        pio.write_image(tmp_path / "x.jpg", _gradient(), quality=0)
    with pytest.raises(InputError, match="alpha"):
        pio.write_image(tmp_path / "x.png", _gradient(), alpha=np.zeros((2, 2), np.uint8))
