"""``a3gan anonymize``: folder mirroring, OUT refusal/--overwrite, fail-closed bad inputs, zero faces/--strict,
the JSON report, mask option errors, determinism by seed, metadata stripping, videos.

Most tests swap the CenterFace detector for a stand-in that "finds" one face in the middle of any image of at least
40 px (the rest of the pipeline is real: alignment, a tiny random generator, paste-back). One test runs the real
detector on a shared photo."""

from __future__ import annotations

import json
import struct
import zlib
from io import BytesIO
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from a3gan import cli
from a3gan.commands import anonymize as cmd
from a3gan.pipeline import io as pio
from a3gan.pipeline.detect import Face


class FakeDetector:
    """One frontal 'face' centred in every image whose shorter side is >= 40 px."""

    name = "fake"
    min_face_size = 10.0

    def __init__(self, threshold: float = 0.5, **kw) -> None:
        self.threshold = threshold

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        if min(h, w) < 40:
            return []
        s = min(h, w) * 0.6
        x0, y0 = (w - s) / 2, (h - s) / 2
        lm = [(0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8)]
        return [Face((x0, y0, x0 + s, y0 + s), [(x0 + a * s, y0 + b * s) for a, b in lm], 0.9)]


@pytest.fixture(autouse=True)
def fake_detector(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    if not request.node.name.startswith("test_real_"):
        monkeypatch.setattr("a3gan.pipeline.detect.CenterFaceDetector", FakeDetector)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from a3gan.checkpoint import save_checkpoint
    from a3gan.config import load_config
    from a3gan.nets import Generator

    torch.manual_seed(0)
    cfg = load_config("tiny")
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(path, {"G": Generator(cfg.model)}, cfg, {"note": "random weights, tests only"})
    return path


def _img(path: Path, w: int = 64, h: int = 48, seed: int = 0, **save) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, **save)
    return path


def _run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = cli.main(["anonymize", *map(str, args)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("error: ")]


def _tiny_video(path: Path, n: int = 4) -> Path:
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 30 * i, np.uint8), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    return path


# ------------------------------------------------------------------------------------------------ layout


def test_folder_is_mirrored(tmp_path: Path, capsys, tiny_model: Path) -> None:
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    _img(src / "a.png")
    _img(src / "sub" / "b.jpg", seed=1)
    _img(src / "sub" / "deeper" / "c.webp", seed=2)
    _tiny_video(src / "sub" / "clip.avi")
    (src / "notes.txt").write_text("hello")
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, src, "-o", out, "--model", tiny_model, "--no-verify")
    assert code == 0, err
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["a.png", "sub/b.jpg", "sub/clip.mp4", "sub/deeper/c.webp"]  # .avi is written as .mp4
    assert "skipped 1 file" in err and ".txt" in err
    assert Image.open(out / "sub" / "b.jpg").format == "JPEG"
    assert not np.array_equal(
        pio.read_image(out / "a.png"), pio.read_image(src / "a.png")
    )  # the face changed
    with av.open(str(out / "sub" / "clip.mp4")) as c:
        assert c.streams.video[0].frames == 4
    assert "files" in stdout and "ok" in stdout  # the summary table


def test_several_inputs_go_side_by_side(tmp_path: Path, capsys) -> None:
    (tmp_path / "d").mkdir()
    _img(tmp_path / "d" / "x.png")
    _img(tmp_path / "y.png")
    code, _, err = _run(capsys, tmp_path / "d", tmp_path / "y.png", "-o", tmp_path / "o", "--method", "blur")
    assert code == 0, err
    assert (tmp_path / "o" / "d" / "x.png").is_file() and (tmp_path / "o" / "y.png").is_file()


def test_existing_out_is_refused_unless_overwrite(tmp_path: Path, capsys) -> None:
    _img(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("x")
    code, _, err = _run(capsys, tmp_path / "a.png", "-o", out, "--method", "pixelate")
    assert code == 2 and len(_error_lines(err)) == 1 and "--overwrite" in err
    assert not (out / "a.png").exists()
    code, _, err = _run(capsys, tmp_path / "a.png", "-o", out, "--method", "pixelate", "--overwrite")
    assert code == 0, err
    assert (out / "a.png").is_file() and (out / "old.txt").is_file()


def test_empty_existing_out_is_fine(tmp_path: Path, capsys) -> None:
    _img(tmp_path / "a.png")
    (tmp_path / "out").mkdir()
    assert _run(capsys, tmp_path / "a.png", "-o", tmp_path / "out", "--method", "blackout")[0] == 0


def test_a_folder_without_images_or_videos_is_an_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = _run(capsys, tmp_path / "empty", "-o", tmp_path / "out", "--method", "pixelate")
    assert code == 2 and len(_error_lines(err)) == 1 and "no image or video files found" in err
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("x")
    code, _, err = _run(capsys, tmp_path / "docs", "-o", tmp_path / "out2", "--method", "pixelate")
    assert code == 2 and len(_error_lines(err)) == 1 and "1 other file(s): .txt" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


def test_never_writes_into_or_over_an_input(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _img(src / "a.png")
    before = (src / "a.png").read_bytes()
    for out in (src / "out", src, tmp_path):  # inside the input, the input itself, a parent of it
        code, _, err = _run(capsys, src, "-o", out, "--method", "pixelate", "--overwrite")
        assert code == 2 and len(_error_lines(err)) == 1, err
    code, _, err = _run(capsys, src / "a.png", "-o", src / "a.png", "--method", "pixelate", "--overwrite")
    assert code == 2 and "input" in err
    assert sorted(p.name for p in src.iterdir()) == ["a.png"] and (src / "a.png").read_bytes() == before


def test_single_image_to_a_file(tmp_path: Path, capsys) -> None:
    _img(tmp_path / "a.png")
    dst = tmp_path / "new" / "anon.jpg"
    code, _, err = _run(capsys, tmp_path / "a.png", "-o", dst, "--method", "pixelate")
    assert code == 0, err
    assert Image.open(dst).format == "JPEG"  # the output's extension decides the format
    code, _, err = _run(capsys, tmp_path / "a.png", "-o", dst, "--method", "pixelate")
    assert code == 2 and "already exists" in err
    code, _, err = _run(capsys, tmp_path / "a.png", "-o", tmp_path / "x.mp4", "--method", "pixelate")
    assert code == 2 and "image output" in err
    code, _, err = _run(
        capsys, tmp_path / "a.png", tmp_path / "a.png", "-o", tmp_path / "y.png", "--method", "blur"
    )
    assert code == 2 and "output folder" in err


# --------------------------------------------------------------------------------------------- bad inputs


def _bomb(path: Path) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )
    return path


def test_every_bad_input_fails_closed_with_one_line(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "empty.jpg").write_bytes(b"")
    (src / "text.jpg").write_text("not a picture\n")
    buf = BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (src / "cut.jpg").write_bytes(buf.getvalue()[:600])
    buf = BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    (src / "cut.png").write_bytes(buf.getvalue()[:700])
    _bomb(src / "bomb.png")
    (src / "video.mp4").write_text("not a video either\n")
    (src / "zero.mp4").write_bytes(b"")
    _img(src / "good.png")
    out = tmp_path / "out"
    code, _, err = _run(capsys, src, "-o", out, "--method", "pixelate", "--report", tmp_path / "r.json")
    assert code == 1
    errors = _error_lines(err)
    bad = ["empty.jpg", "text.jpg", "cut.jpg", "cut.png", "bomb.png", "video.mp4", "zero.mp4"]
    for name in bad:
        assert sum(f"error: {src / name}: " in ln for ln in errors) == 1, (name, err)
    assert "decompression bomb" in err and "empty file" in err and "not an image" in err
    assert err.strip().splitlines()[-1].startswith("error: 7 of 8 input file(s) failed")
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]  # no output at all for the bad ones
    rep = json.loads((tmp_path / "r.json").read_text())
    status = {Path(f["input"]).name: f["status"] for f in rep["files"]}
    assert status == {**dict.fromkeys(bad, "failed"), "good.png": "ok"}
    assert rep["summary"]["failed"] == 7 and rep["summary"]["ok"] == 1


def test_missing_and_unsupported_inputs(tmp_path: Path, capsys) -> None:
    _img(tmp_path / "a.png")
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.4")
    code, _, err = _run(
        capsys,
        tmp_path / "a.png",
        tmp_path / "nope.jpg",
        tmp_path / "doc.pdf",
        "-o",
        tmp_path / "o",
        "--method",
        "pixelate",
    )
    assert code == 1
    assert f"error: {tmp_path / 'nope.jpg'}: no such file" in err and "unsupported file type '.pdf'" in err
    assert (tmp_path / "o" / "a.png").is_file()


@pytest.mark.parametrize("mode", ["L", "CMYK", "I;16", "RGBA", "P"])
def test_awkward_modes_work(tmp_path: Path, capsys, mode: str) -> None:
    rng = np.random.default_rng(0)
    if mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65536, (48, 64), dtype=np.uint16))
    else:
        im = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).convert(mode)
    name = "x.jpg" if mode == "CMYK" else "x.png"
    im.save(tmp_path / name)
    code, _, err = _run(capsys, tmp_path / name, "-o", tmp_path / "o", "--method", "blackout")
    assert code == 0, err
    back = Image.open(tmp_path / "o" / name)
    assert back.size == (64, 48)
    assert back.mode == ("RGBA" if mode == "RGBA" else "RGB")


def test_zero_faces_warns_and_copies_or_strict_fails(tmp_path: Path, capsys) -> None:
    src = _img(tmp_path / "tiny.jpg", w=1, h=1, exif=_gps_exif())
    code, _, err = _run(capsys, src, "-o", tmp_path / "o", "--method", "pixelate")
    assert code == 0 and "warning: " in err and "no face found" in err and "copied unchanged" in err
    out = tmp_path / "o" / "tiny.jpg"
    assert out.is_file() and not Image.open(out).getexif()  # copied, but without its metadata
    code, _, err = _run(capsys, src, "-o", tmp_path / "o2", "--method", "pixelate", "--strict")
    assert code == 1 and len(_error_lines(err)) == 2 and "--strict" in err  # the file's line + the summary
    assert not (tmp_path / "o2" / "tiny.jpg").exists()


def test_video_zero_faces_strict(tmp_path: Path, capsys) -> None:
    # 30x20 frames: the stand-in detector finds nothing
    with av.open(str(tmp_path / "v.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=5)
        s.width, s.height, s.pix_fmt = 30, 20, "yuv420p"
        for i in range(2):
            f = av.VideoFrame.from_ndarray(np.zeros((20, 30, 3), np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    code, _, err = _run(capsys, tmp_path / "v.mp4", "-o", tmp_path / "o", "--method", "blur")
    assert code == 0 and "no face found in any frame" in err
    code, _, err = _run(capsys, tmp_path / "v.mp4", "-o", tmp_path / "o2", "--method", "blur", "--strict")
    assert code == 1 and not (tmp_path / "o2" / "v.mp4").exists()


# ------------------------------------------------------------------------------------------ report, options


def test_report_content(tmp_path: Path, capsys, tiny_model: Path) -> None:
    _img(tmp_path / "a.png")
    _tiny_video(tmp_path / "v.mp4", n=3)
    rep = tmp_path / "rep" / "r.json"
    code, _, err = _run(
        capsys,
        tmp_path / "a.png",
        tmp_path / "v.mp4",
        "-o",
        tmp_path / "o",
        "--model",
        tiny_model,
        "--no-verify",
        "--preset",
        "a3gan-5",
        "--seed",
        "7",
        "--report",
        rep,
    )
    assert code == 0, err
    doc = json.loads(rep.read_text())
    assert doc["settings"]["method"] == "a3gan" and doc["settings"]["seed"] == 7
    assert doc["settings"]["mask"] == [
        0,
        1,
        0,
        0,
        1,
        0,
        1,
        0,
        1,
        1,
    ]  # Blond_Hair, Male, Mustache, Pale_Skin, Young
    img, vid = doc["files"]
    assert img["status"] == "ok" and img["type"] == "image" and (img["width"], img["height"]) == (64, 48)
    (face,) = img["faces"]
    assert set(face) == {"box", "score", "similarity", "attempts", "fell_back", "method"}
    np.testing.assert_allclose(face["box"], [17.6, 9.6, 46.4, 38.4], atol=0.01)
    assert face["score"] == pytest.approx(0.9) and face["attempts"] == 1 and face["fell_back"] is False
    assert face["method"] == "a3gan" and face["similarity"] is None  # --no-verify: not measured
    assert vid["type"] == "video" and vid["frames"] == 3 and vid["faces"] == 3
    assert [t["track"] for t in vid["tracks"]] == [0] and vid["tracks"][0]["frames"] == 3
    assert doc["summary"]["faces"] == 4 and doc["summary"]["ok"] == 2
    code, _, err = _run(
        capsys, tmp_path / "a.png", "-o", tmp_path / "o3", "--method", "blur", "--report", rep
    )
    assert code == 2 and "report already exists" in err


@pytest.mark.parametrize(
    "args,words",
    [
        (["--change", "Male,Beard"], ["unknown attribute 'Beard'", "Bangs", "Young"]),
        (["--preset", "a3gan-7"], ["unknown preset", "a3gan-5", "a3gan-10"]),
        (["--change", "Male", "--preset", "a3gan-1"], ["mutually exclusive"]),
        (["--change", "0101"], ["10 bits"]),
        (["--method", "swirl"], ["unknown --method", "pixelate"]),
        (["--threshold", "1.5"], ["--threshold"]),
        (["--max-resample", "-1"], ["--max-resample"]),
        (["--smooth", "-1"], ["--smooth"]),
        (["--model", "/nonexistent/model.safetensors", "--no-verify"], ["no such model file"]),
    ],
)
def test_option_errors_are_one_line(tmp_path: Path, capsys, args: list[str], words: list[str]) -> None:
    _img(tmp_path / "a.png")
    code, _, err = _run(capsys, tmp_path / "a.png", "-o", tmp_path / "o", *args)
    assert code == 2
    (line,) = _error_lines(err)
    assert len(err.strip().splitlines()) == 1
    for w in words:
        assert w in line
    assert not (tmp_path / "o").exists()


def test_bad_model_file(tmp_path: Path, capsys) -> None:
    _img(tmp_path / "a.png")
    (tmp_path / "m.safetensors").write_bytes(b"garbage")
    code, _, err = _run(
        capsys, tmp_path / "a.png", "-o", tmp_path / "o", "--model", tmp_path / "m.safetensors"
    )
    assert code == 2 and len(_error_lines(err)) == 1


def test_same_seed_same_faces(tmp_path: Path, capsys, tiny_model: Path) -> None:
    _img(tmp_path / "a.png")
    outs = []
    for i, seed in enumerate([3, 3, 4]):
        o = tmp_path / f"o{i}"
        code, _, err = _run(
            capsys,
            tmp_path / "a.png",
            "-o",
            o,
            "--model",
            tiny_model,
            "--no-verify",
            "--change",
            "Male,Young",
            "--seed",
            str(seed),
        )
        assert code == 0, err
        outs.append(pio.read_image(o / "a.png"))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])


def _gps_exif() -> bytes:
    e = Image.Exif()
    e[0x010F] = "SpyCam"
    e.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.0)})
    return e.tobytes()


def test_metadata_is_stripped_unless_kept(tmp_path: Path, capsys) -> None:
    src = _img(tmp_path / "a.jpg", exif=_gps_exif())
    code, _, _ = _run(capsys, src, "-o", tmp_path / "o", "--method", "pixelate")
    assert code == 0
    assert b"SpyCam" not in (tmp_path / "o" / "a.jpg").read_bytes()
    assert not Image.open(tmp_path / "o" / "a.jpg").getexif()
    code, _, _ = _run(capsys, src, "-o", tmp_path / "k", "--method", "pixelate", "--keep-metadata")
    assert code == 0
    assert Image.open(tmp_path / "k" / "a.jpg").getexif().get_ifd(0x8825)[1] == "N"


def test_extension_lists_match_the_io_module() -> None:
    assert set(cmd.IMAGE_EXTS) == set(pio.IMAGE_EXTS) and set(cmd.VIDEO_EXTS) == set(pio.VIDEO_EXTS)


def test_real_photo_with_real_detector(tmp_path: Path, capsys, photos_dir: Path) -> None:
    src = photos_dir / "selfie_many.jpg"
    code, _, err = _run(
        capsys, src, "-o", tmp_path / "o", "--method", "blur", "--report", tmp_path / "r.json"
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "r.json").read_text())
    faces = doc["files"][0]["faces"]
    assert len(faces) >= 5 and all(f["method"] == "blur" for f in faces)
    a, b = pio.read_image(src).astype(int), pio.read_image(tmp_path / "o" / "selfie_many.jpg").astype(int)
    x0, y0, x1, y1 = (int(v) for v in faces[0]["box"])
    assert np.abs(a[y0:y1, x0:x1] - b[y0:y1, x0:x1]).mean() > 2  # the face region changed
