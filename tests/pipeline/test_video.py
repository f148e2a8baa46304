"""a3gan.pipeline.video: tiny synthetic videos (with and without audio) through a stand-in anonymizer, plus a few
frames of the shared street video through the real one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from a3gan.errors import InputError
from a3gan.pipeline import video as pv

W, H, N, FPS = 64, 48, 10, 10
SR = 16000


def _square_x(i: int) -> int:
    return 8 + 2 * i  # the "face": a 12x12 white square moving 2 px per frame


def make_video(
    path: Path,
    n: int = N,
    w: int = W,
    h: int = H,
    fps: int = FPS,
    audio: str | None = None,
    fmt: str | None = None,
    metadata: dict | None = None,
    rotation: int = 0,
) -> Path:
    """A gray video with a moving checkered square; optional 440 Hz sine audio (``"aac"`` or ``"pcm_s16le"``)."""
    with av.open(str(path), "w", format=fmt) as c:
        if metadata:
            c.metadata.update(metadata)
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height = w, h
        v.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
        v.options = {"crf": "10"}
        if rotation:
            v.set_display_rotation(rotation)
        a = None
        if audio:
            a = c.add_stream(audio, rate=SR)
            a.layout = "mono"
        for i in range(n):
            img = np.full((h, w, 3), 90, np.uint8)
            x = _square_x(i)
            img[10:22, x : x + 12] = 255
            img[10:22, x : x + 12][np.indices((12, 12)).sum(0) % 2 == 0] = 120  # textured, like a face
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        if a is not None:
            total = int(SR * n / fps)
            t = np.arange(total) / SR
            s = 0.3 * np.sin(2 * np.pi * 440 * t)
            step = 1024
            for k in range(0, total, step):
                chunk = s[k : k + step]
                if audio.startswith("pcm_s16"):
                    fr = av.AudioFrame.from_ndarray(
                        (chunk * 32767).astype(np.int16)[None], format="s16", layout="mono"
                    )
                else:
                    fr = av.AudioFrame.from_ndarray(
                        chunk.astype(np.float32)[None], format="fltp", layout="mono"
                    )
                fr.sample_rate = SR
                fr.pts = k
                for p in a.encode(fr):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
    return path


@dataclass
class FakeFace:
    box: tuple[float, float, float, float]
    score: float = 0.9
    key: int | None = None
    similarity: float | None = 0.1
    attempts: int = 1
    fell_back: bool = False
    method_used: str = "fake"


@dataclass
class FakeResult:
    image: np.ndarray
    faces: list[FakeFace]


class FakeAnonymizer:
    """Finds the white square (the 'face') and blacks it out; can be told to miss frames or to crash."""

    def __init__(self, miss: set[int] = frozenset(), crash_at: int | None = None) -> None:
        self.seen = 0
        self.miss = set(miss)
        self.crash_at = crash_at
        self.batch_sizes: list[int] = []

    def anonymize_batch(self, images, faces=None, face_keys=None):  # the Anonymizer.anonymize_batch signature
        self.batch_sizes.append(len(images))
        out = []
        for j, img in enumerate(images):
            idx = self.seen
            self.seen += 1
            if self.crash_at is not None and idx == self.crash_at:
                raise RuntimeError("boom")
            ys, xs = np.nonzero(img[..., 0] > 200)
            faces = []
            if len(xs) and idx not in self.miss:
                faces = [FakeFace((xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0))]
            keys = face_keys[j](faces) if face_keys is not None else [None] * len(faces)
            res = img.copy()
            for f, k in zip(faces, keys, strict=True):
                f.key = k
                x0, y0, x1, y1 = (int(v) for v in f.box)
                res[y0:y1, x0:x1] = 0
            out.append(FakeResult(res, faces))
        return out


def _decode(path: Path) -> tuple[list[np.ndarray], av.container.InputContainer]:
    c = av.open(str(path))
    frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    c.close()
    return frames, av.open(str(path))


def test_video_without_audio(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4")
    calls: list[tuple[int, int | None]] = []
    anon = FakeAnonymizer()
    res = pv.anonymize_video(
        src, tmp_path / "out" / "o.mp4", anon, chunk_size=4, progress=lambda d, t: calls.append((d, t))
    )
    assert res.frames == N and res.faces == N and res.audio == []
    assert anon.batch_sizes == [4, 4, 2]  # chunks: memory stays bounded
    assert calls == [(i + 1, N) for i in range(N)]
    frames, c = _decode(res.path)
    with c:
        vs = c.streams.video[0]
        assert len(frames) == N
        assert (vs.codec_context.width, vs.codec_context.height) == (W, H)
        assert vs.average_rate == FPS and vs.codec_context.name in ("h264", "mpeg4")
        assert not c.streams.audio
        assert abs(float(vs.duration * vs.time_base) - N / FPS) < 1e-6
    for i, f in enumerate(frames):
        x = _square_x(i)
        assert f[12:20, x + 2 : x + 10].max() < 40  # the "face" is gone
        assert abs(int(f[40, 50].mean()) - 90) <= 3  # the rest is as it was (lossy codec)
    # one person, one track, one key
    assert [t.id for t in res.tracks] == [0]
    assert res.tracks[0].frames == N and res.tracks[0].first_frame == 0 and res.tracks[0].last_frame == N - 1
    assert not [p for p in os.listdir(tmp_path / "out") if p != "o.mp4"]  # no temp files left


def test_video_with_aac_audio_is_copied(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", audio="aac")
    res = pv.anonymize_video(src, tmp_path / "o.mp4", FakeAnonymizer())
    assert res.audio == ["copied"]
    with av.open(str(src)) as a, av.open(str(res.path)) as b:
        pa = [bytes(p) for p in a.demux(audio=0) if p.size]
        pb = [bytes(p) for p in b.demux(audio=0) if p.size]
        assert pa == pb  # bit-identical audio packets
        assert b.streams.audio[0].codec_context.sample_rate == SR
        assert b.streams.video[0].frames == N


def test_pcm_audio_is_reencoded_to_aac(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mkv", audio="pcm_s16le")
    res = pv.anonymize_video(src, tmp_path / "o.mp4", FakeAnonymizer())
    assert res.audio == ["re-encoded (aac)"]
    with av.open(str(res.path)) as c:
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac" and a.codec_context.sample_rate == SR
        samples = sum(f.samples for f in c.decode(audio=0))
    assert abs(samples - SR * N / FPS) <= 2048  # ~1 s of sound, give or take the AAC priming/padding


def test_max_frames_trims_video_and_audio(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", audio="aac")
    res = pv.anonymize_video(src, tmp_path / "o.mp4", FakeAnonymizer(), max_frames=4)
    assert res.frames == 4
    with av.open(str(res.path)) as c:
        assert len(list(c.decode(video=0))) == 4
    with av.open(str(src)) as c:
        src_pts = [p.pts for p in c.demux(audio=0) if p.size]
    with av.open(str(res.path)) as c:
        a = c.streams.audio[0]
        pts = [p.pts for p in c.demux(a) if p.size]
    # exactly the packets that start before the end of frame 4 (0.4 s), same timestamps
    assert pts == [p for p in src_pts if p / SR < 0.4]
    assert pts[-1] / SR > 0.4 - 1024 / SR


def test_missed_detection_is_covered(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4")
    res = pv.anonymize_video(src, tmp_path / "o.mp4", FakeAnonymizer(miss={5}), cover_missed=2)
    assert res.covered == 1 and res.faces == N - 1
    frames, c = _decode(res.path)
    c.close()
    x = _square_x(5)
    # frame 5: not detected, but the track's last box was pixelated: the checker pattern is averaged away
    assert frames[4][12:20, x : x + 8].max() < 40  # (frame 4: detected and blacked out)
    assert frames[5][12:20, x + 2 : x + 10].max() < 230
    assert 150 < frames[5][12:20, x + 2 : x + 10].mean() < 215
    assert [t.id for t in res.tracks] == [0]  # and the track survived the gap


def test_metadata_is_dropped(tmp_path: Path) -> None:
    src = make_video(
        tmp_path / "in.mkv", fmt="matroska", metadata={"title": "secret", "location": "+48.85+002.29/"}
    )
    with av.open(str(src)) as c:
        assert c.metadata.get("title") == "secret"
    res = pv.anonymize_video(src, tmp_path / "o.mp4", FakeAnonymizer())
    with av.open(str(res.path)) as c:
        assert "title" not in c.metadata and "location" not in c.metadata
    assert b"secret" not in res.path.read_bytes()


def test_odd_size_is_kept(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", w=65, h=49, n=3)
    res = pv.anonymize_video(src, tmp_path / "o.mp4", FakeAnonymizer())
    frames, c = _decode(res.path)
    c.close()
    assert frames[0].shape == (49, 65, 3) and len(frames) == 3


def test_display_rotation_is_applied(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=2, rotation=90)
    info = pv.probe_video(src)
    assert (info.width, info.height, info.rotation) == (H, W, 90)
    res = pv.anonymize_video(src, tmp_path / "o.mp4", FakeAnonymizer())
    frames, c = _decode(res.path)
    c.close()
    assert frames[0].shape == (W, H, 3)  # upright pixels, no rotation flag needed
    # 90 degrees counter-clockwise (as FFmpeg's autorotate): the top-left square moved to the bottom-left
    assert frames[0][46:54, 12:20].max() < 40  # found there (upright) and blacked out
    assert abs(int(frames[0][10:20, 12:20].mean()) - 90) <= 3


def test_probe(tmp_path: Path) -> None:
    info = pv.probe_video(make_video(tmp_path / "in.mp4", audio="aac"))
    assert (info.width, info.height, info.fps, info.frames) == (W, H, Fraction(FPS), N)
    assert info.audio_codecs == ["aac"] and info.video_codec == "h264"


def test_failure_leaves_no_output(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", audio="aac")
    with pytest.raises(RuntimeError, match="boom"):
        pv.anonymize_video(src, tmp_path / "out" / "o.mp4", FakeAnonymizer(crash_at=6), chunk_size=2)
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("kind", ["empty", "text", "garbage", "truncated"])
def test_unreadable_videos(tmp_path: Path, kind: str) -> None:
    p = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("not a video\n")
    elif kind == "garbage":
        p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    else:
        data = make_video(tmp_path / "full.mp4").read_bytes()
        p.write_bytes(data[: len(data) // 2])  # the moov atom is at the end: cut off
    for call in (
        lambda: pv.probe_video(p),
        lambda: pv.anonymize_video(p, tmp_path / "o.mp4", FakeAnonymizer()),
    ):
        with pytest.raises(InputError) as e:
            call()
        msg = str(e.value)
        assert msg.startswith(str(p) + ": ") and "\n" not in msg
    assert not (tmp_path / "o.mp4").exists()


def test_bad_arguments(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=2)
    with pytest.raises(InputError, match="input"):
        pv.anonymize_video(src, src, FakeAnonymizer())
    with pytest.raises(InputError, match=".mp4"):
        pv.anonymize_video(src, tmp_path / "o.gif", FakeAnonymizer())
    with pytest.raises(InputError, match="chunk_size"):
        pv.anonymize_video(src, tmp_path / "o.mp4", FakeAnonymizer(), chunk_size=0)
    with pytest.raises(InputError, match="max_frames"):
        pv.anonymize_video(src, tmp_path / "o.mp4", FakeAnonymizer(), max_frames=0)


def test_pixelate_box_hand_computed() -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    img[0, 0] = 40  # one bright pixel in the top-left 2x2 cell
    pv.pixelate_box(img, (0, 0, 4, 4), blocks=2, grow=0.0)
    np.testing.assert_array_equal(img[:2, :2], 10)  # mean of (40, 0, 0, 0)
    np.testing.assert_array_equal(img[2:, 2:], 0)


def test_street_video_first_frames(tmp_path: Path, shared_data: Path) -> None:
    src = shared_data / "video" / "street.mp4"
    if not src.exists():
        pytest.skip(f"{src} is absent")
    from a3gan.pipeline.anonymizer import Anonymizer
    from a3gan.pipeline.detect import CenterFaceDetector

    # one 640 px detector pass per frame (no tiles): this test is about the video plumbing on a real file
    anon = Anonymizer(
        method="pixelate", seed=0, verify=False, detector=CenterFaceDetector(threshold=0.35, tiles=False)
    )
    res = pv.anonymize_video(src, tmp_path / "street.mp4", anon, max_frames=3, chunk_size=3)
    assert res.frames == 3 and res.audio == ["copied"] and res.faces >= 3  # pedestrians are found
    with av.open(str(res.path)) as c:
        vs = c.streams.video[0]
        assert (vs.codec_context.width, vs.codec_context.height) == (1920, 1080)
        assert vs.average_rate == 25 and c.streams.audio
        assert len(list(c.decode(video=0))) == 3
