"""Video in, video out with PyAV (issue 4, "Video").

- Frames are decoded, anonymized in chunks of ``chunk_size`` through ``anonymizer.anonymize_batch`` and encoded
  as they go, so memory stays bounded on long videos (at most one chunk of frames is held, plus the codecs'
  own buffers).
- One person keeps one new face: an :class:`~a3gan.pipeline.track.IoUTracker` gives each face a stable integer
  id, which the anonymizer uses as the key its f_z is derived from (with the seed).
- A face the detector misses for a frame or two would show the real face for those frames. While a track is
  alive but unmatched (at most ``cover_missed`` frames) its last box is pixelated as a safety net.
- Output: H.264 (libx264 when PyAV's FFmpeg has it, else MPEG-4 Part 2) in the container named by the output
  extension (.mp4 by default), the same resolution, frame rate and time base, timestamps copied frame by frame
  (variable frame rate is kept). Odd frame sizes are encoded 4:4:4 (4:2:0 needs even sizes) to keep the size.
  Audio streams are copied packet by packet when the output container accepts their codec, else re-encoded to
  AAC. Subtitle, data and attachment streams (which may hold GPS tracks) and all container/stream metadata
  (title, location, creation time, ...) are dropped. A display-matrix rotation (phone videos) is applied to the
  pixels so faces are upright for the detector and the output plays the same way.
- Written to a temporary file in the output folder and renamed into place on success (atomic); on any failure
  no output file is left. An unreadable input is one :class:`~a3gan.errors.InputError` line.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from a3gan.errors import InputError
from a3gan.pipeline.io import atomic_path, check_not_input
from a3gan.pipeline.track import IoUTracker

#: Output containers we write, by extension, and the audio codecs each takes without re-encoding.
_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_COPY_AUDIO = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    "mov": {
        "aac",
        "mp3",
        "ac3",
        "eac3",
        "alac",
        "pcm_s16le",
        "pcm_s16be",
        "pcm_s24le",
        "pcm_f32le",
        "pcm_mulaw",
    },
    "matroska": None,  # Matroska takes (almost) any codec: decided by trying
}

Progress = Callable[[int, int | None], None]


@dataclass
class VideoInfo:
    """What :func:`probe_video` finds: display size (after rotation), frame rate, frame count, audio codecs."""

    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    frames: int | None  # from the container; None when unknown
    duration: float | None  # seconds
    video_codec: str
    audio_codecs: list[str]
    rotation: int  # degrees counter-clockwise applied for display


@dataclass
class TrackSummary:
    """Per-face (per-track) summary for the JSON report."""

    id: int
    first_frame: int
    last_frame: int
    frames: int = 0
    fell_back: int = 0  # frames where this face fell back to pixelation
    max_similarity: float | None = None
    max_attempts: int = 0
    min_score: float = 1.0
    methods: set[str] = field(default_factory=set)
    first_box: tuple[float, float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "track": self.id,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "frames": self.frames,
            "box": [round(v, 1) for v in self.first_box] if self.first_box else None,
            "score": round(self.min_score, 4),
            "similarity": None if self.max_similarity is None else round(self.max_similarity, 4),
            "attempts": self.max_attempts,
            "fell_back": self.fell_back,
            "method": sorted(self.methods),
        }


@dataclass
class VideoResult:
    path: Path
    frames: int
    faces: int  # face detections over all frames
    fell_back: int  # face-frames that fell back to pixelation
    covered: int  # face-frames covered by pixelating a missed track's last box
    audio: list[str]  # per audio stream: "copied" or "re-encoded (aac)"
    tracks: list[TrackSummary]
    fps: Fraction
    seconds: float

    def report(self) -> dict[str, Any]:
        return {
            "type": "video",
            "frames": self.frames,
            "fps": float(self.fps),
            "faces": self.faces,
            "fell_back": self.fell_back,
            "covered_missed": self.covered,
            "audio": self.audio,
            "tracks": [t.to_dict() for t in self.tracks],
        }


def _open_input(path: Path):
    import av

    where = str(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise InputError(f"{where}: cannot read ({e.strerror or e})") from None
    if not path.is_file():
        raise InputError(f"{where}: not a regular file")
    if size == 0:
        raise InputError(f"{where}: empty file (0 bytes)")
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{where}: not a readable video ({_oneline(e)})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{where}: no video stream")
    return container


def _oneline(e: BaseException) -> str:
    text = getattr(e, "strerror", None) if isinstance(getattr(e, "errno", None), int) else None
    text = text or str(e)  # FFmpeg errors: "Invalid data found when processing input", without errno and path
    return (" ".join(text.split()) or type(e).__name__)[:200]


def _rate(stream) -> Fraction:
    for r in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if r is not None and r > 0:
            return Fraction(r)
    return Fraction(25, 1)


def _rotation_k(rotation: float | int | None) -> int:
    """Quarter turns (np.rot90, counter-clockwise) that make a frame upright."""
    if not rotation:
        return 0
    return int(round(float(rotation) / 90.0)) % 4


def probe_video(path: str | Path) -> VideoInfo:
    """Open a video and describe it; InputError("<path>: <reason>") if it cannot be read or decoded."""
    import av

    p = Path(path)
    with _open_input(p) as c:
        vs = c.streams.video[0]
        try:
            first = next(c.decode(vs))
        except StopIteration:
            raise InputError(f"{p}: the video stream has no decodable frames") from None
        except (av.FFmpegError, ValueError) as e:
            raise InputError(f"{p}: cannot decode the video ({_oneline(e)})") from None
        k = _rotation_k(first.rotation)
        w, h = (first.width, first.height) if k % 2 == 0 else (first.height, first.width)
        dur = None
        if vs.duration is not None and vs.time_base is not None:
            dur = float(vs.duration * vs.time_base)
        elif c.duration is not None:
            dur = c.duration / 1_000_000
        return VideoInfo(
            width=w,
            height=h,
            fps=_rate(vs),
            time_base=Fraction(vs.time_base) if vs.time_base else Fraction(1, 90000),
            frames=int(vs.frames) or None,
            duration=dur,
            video_codec=vs.codec_context.name,
            audio_codecs=[a.codec_context.name for a in c.streams.audio],
            rotation=int(first.rotation or 0),
        )


def video_encoder() -> str:
    """``libx264`` when PyAV's FFmpeg has it, else ``mpeg4``."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _can_copy_audio(stream, fmt: str) -> bool:
    """Whether ``fmt`` accepts ``stream``'s codec as-is: checked by writing a header to memory."""
    import io

    import av

    allowed = _COPY_AUDIO.get(fmt)
    if allowed is not None and stream.codec_context.name not in allowed:
        return False
    try:
        with av.open(io.BytesIO(), "w", format=fmt) as probe:
            probe.add_stream_from_template(stream)
            probe.start_encoding()
    except (av.FFmpegError, ValueError, TypeError):
        return False
    return True


def pixelate_box(image: np.ndarray, box: Sequence[float], blocks: int = 8, grow: float = 0.1) -> None:
    """In place: replace ``box`` (grown by ``grow`` on each side, clipped) by ``blocks`` x ``blocks`` cell means."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    gx, gy = (x1 - x0) * grow, (y1 - y0) * grow
    x0, y0 = max(0, int(math.floor(x0 - gx))), max(0, int(math.floor(y0 - gy)))
    x1, y1 = min(w, int(math.ceil(x1 + gx))), min(h, int(math.ceil(y1 + gy)))
    if x1 <= x0 or y1 <= y0:
        return
    region = image[y0:y1, x0:x1]
    ys = np.linspace(0, y1 - y0, min(blocks, y1 - y0) + 1).astype(int)
    xs = np.linspace(0, x1 - x0, min(blocks, x1 - x0) + 1).astype(int)
    for a, b in zip(ys[:-1], ys[1:], strict=True):
        for c, d in zip(xs[:-1], xs[1:], strict=True):
            cell = region[a:b, c:d]
            cell[...] = cell.reshape(-1, 3).mean(0).round().astype(np.uint8)


class _Keys:
    """The ``face_keys`` callable: tracks faces frame after frame, remembers missed tracks per frame."""

    def __init__(self, tracker: IoUTracker, cover_missed: int) -> None:
        self.tracker = tracker
        self.cover_missed = cover_missed
        self.missed: list[list[tuple[float, float, float, float]]] = []

    def __call__(self, faces: Sequence[Any]) -> list[int]:
        ids = self.tracker.update([f.box for f in faces])
        lost = self.tracker.lost(self.cover_missed) if self.cover_missed > 0 else []
        self.missed.append([t.box for t in lost])
        return ids


def _colorspace(vs) -> int | None:
    """The input's YUV matrix when it is tagged and swscale knows it (1 = BT.709, 5/6 = BT.601, 7, 9 = BT.2020)."""
    cs = getattr(vs.codec_context, "colorspace", None)
    cs = {6: 5}.get(cs, cs)  # SMPTE 170M is the BT.601 matrix
    return cs if cs in (1, 4, 5, 7, 9) else None


def _add_video_stream(
    out, encoder: str, rate: Fraction, time_base: Fraction, width: int, height: int, vs, crf
):
    stream = out.add_stream(encoder, rate=rate)
    stream.width, stream.height = width, height
    even = width % 2 == 0 and height % 2 == 0
    if encoder == "libx264":
        stream.pix_fmt = "yuv420p" if even else "yuv444p"
        stream.options = {"crf": str(crf), "preset": "fast"}
    else:
        if not even:
            raise InputError(f"frame size {width}x{height} is odd: MPEG-4 needs even sizes (install libx264)")
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = int(max(1_000_000, width * height * float(rate) * 0.2))
    stream.time_base = time_base
    stream.codec_context.time_base = time_base
    cc_in = vs.codec_context
    for attr in ("colorspace", "color_primaries", "color_trc"):
        v = getattr(cc_in, attr, None)
        if v not in (None, 2, 0):  # 2 = unspecified, 0 = reserved/RGB
            try:
                setattr(stream.codec_context, attr, v)
            except (AttributeError, ValueError, TypeError):
                pass
    return stream


def anonymize_video(
    src: str | Path,
    dst: str | Path,
    anonymizer: Any,
    *,
    chunk_size: int = 8,
    max_frames: int | None = None,
    progress: Progress | None = None,
    iou_threshold: float = 0.3,
    max_age: int = 12,
    cover_missed: int = 2,
    crf: int = 18,
    inputs: Iterable[str | Path] = (),
) -> VideoResult:
    """Anonymize every face of every frame of ``src`` and write ``dst`` (see the module docstring).

    ``anonymizer`` needs ``anonymize_batch(frames, face_keys=[callable per frame])`` (an
    :class:`~a3gan.pipeline.anonymizer.Anonymizer`) that calls each frame's callable once, in frame order, and
    returns, per frame, an object with ``image``
    (H, W, 3) uint8 and ``faces`` (each with ``box``, ``score``, ``key``, ``similarity``, ``attempts``,
    ``fell_back``, ``method_used``). ``progress(frames_done, total_or_None)`` is called after every frame.
    """
    import av

    src, dst = Path(src), Path(dst)
    if chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"max_frames must be >= 1, got {max_frames}")
    fmt = _CONTAINERS.get(dst.suffix.lower())
    if fmt is None:
        raise InputError(f"{dst}: write videos as one of {', '.join(sorted(_CONTAINERS))}")
    check_not_input(dst, [src, *inputs])
    t_start = time.perf_counter()

    inp = _open_input(src)
    try:
        vs = inp.streams.video[0]
        vs.thread_type = "AUTO"
        audio_in = list(inp.streams.audio)
        rate = _rate(vs)
        tb = Fraction(vs.time_base) if vs.time_base else Fraction(1, 90000)
        total = int(vs.frames) or None
        if max_frames is not None:
            total = min(total, max_frames) if total else max_frames
        tracker = IoUTracker(iou_threshold=iou_threshold, max_age=max_age)
        keys = _Keys(tracker, cover_missed)
        summaries: dict[int, TrackSummary] = {}
        counts = defaultdict(int)
        audio_modes: list[str] = []

        with atomic_path(dst, suffix=dst.suffix) as tmp:
            out = av.open(
                str(tmp),
                "w",
                format=fmt,
                container_options={"movflags": "+faststart"} if fmt in ("mp4", "mov") else {},
            )
            try:
                state = _EncodeState(_colorspace(vs))
                audio_out: dict[int, Any] = {}
                resamplers: dict[int, Any] = {}
                for a in audio_in:
                    if _can_copy_audio(a, fmt):
                        audio_out[a.index] = out.add_stream_from_template(a)
                        audio_out[a.index].time_base = a.time_base
                        audio_modes.append("copied")
                    else:
                        enc = out.add_stream("aac", rate=a.codec_context.sample_rate or 48000)
                        enc.layout = {1: "mono", 2: "stereo", 6: "5.1"}.get(
                            a.codec_context.channels, "stereo"
                        )
                        audio_out[a.index] = enc
                        resamplers[a.index] = av.AudioResampler(
                            format="fltp", layout=enc.layout, rate=enc.rate
                        )
                        audio_modes.append("re-encoded (aac)")

                def flush_chunk(frames: list, pts: list[int]) -> None:
                    if not frames:
                        return
                    start = len(keys.missed)
                    results = anonymizer.anonymize_batch(frames, face_keys=[keys] * len(frames))
                    if len(results) != len(frames) or len(keys.missed) != start + len(frames):
                        raise RuntimeError("anonymize_batch must call face_keys once per frame, in order")
                    for j, res in enumerate(results):
                        idx = state.done
                        img = np.asarray(res.image)
                        if img.shape != frames[j].shape or img.dtype != np.uint8:
                            raise RuntimeError(f"anonymizer returned {img.dtype} {img.shape} for a frame")
                        img = np.array(img, copy=True) if not img.flags.writeable else img
                        for box in keys.missed[start + j]:
                            pixelate_box(img, box)
                            counts["covered"] += 1
                        for f in res.faces:
                            counts["faces"] += 1
                            counts["fell_back"] += int(bool(f.fell_back))
                            key = int(f.key) if f.key is not None else -1
                            s = summaries.get(key)
                            if s is None:
                                s = summaries[key] = TrackSummary(
                                    key, idx, idx, first_box=tuple(float(v) for v in f.box)
                                )
                            s.last_frame = idx
                            s.frames += 1
                            s.fell_back += int(bool(f.fell_back))
                            s.max_attempts = max(s.max_attempts, int(f.attempts or 0))
                            s.min_score = min(s.min_score, float(f.score))
                            s.methods.add(str(f.method_used))
                            if f.similarity is not None:
                                sim = float(f.similarity)
                                s.max_similarity = (
                                    sim if s.max_similarity is None else max(s.max_similarity, sim)
                                )
                        state.encode(out, ovs, img, pts[j])
                        state.done += 1
                        if progress is not None:
                            progress(state.done, total)
                    frames.clear()
                    pts.clear()

                buf: list[np.ndarray] = []
                buf_pts: list[int] = []
                ovs = None
                k_rot = 0
                frame_tick = max(1, round(1 / (rate * tb)))  # one frame in time-base units
                # Audio packets wait here until a decoded video frame ends after them, so that with max_frames
                # no sound past the last kept frame is written (and no packet is muxed before the header).
                audio_queue: deque = deque()
                video_end = -math.inf  # seconds: end of the latest decoded video frame
                video_done = False
                audio_left = {a.index for a in audio_in}
                last_pts = -1

                def release(until: float, final: bool = False) -> None:
                    """Mux queued audio before ``until``; ``final``: drop the rest (each stream on its own)."""
                    while audio_queue:
                        ap = audio_queue[0]
                        t = _packet_time(ap)
                        if t is not None and t >= until and not final:
                            break
                        audio_queue.popleft()
                        if t is None or t < until:
                            _mux_audio(out, ap, audio_out[ap.stream.index], resamplers.get(ap.stream.index))

                for packet in inp.demux(vs, *audio_in):
                    if packet.stream.type == "audio":
                        if packet.dts is None and packet.size == 0 and packet.stream.index not in resamplers:
                            continue  # demuxer flush packet of a copied stream
                        if video_done:
                            t = _packet_time(packet)
                            if t is not None and t >= video_end:
                                audio_left.discard(packet.stream.index)
                                if not audio_left:
                                    break
                                continue
                        audio_queue.append(packet)
                        if len(audio_queue) > 50_000:
                            raise InputError(f"{src}: audio runs far ahead of any decodable video frame")
                        if ovs is not None:
                            release(video_end)
                        continue
                    if video_done:
                        continue
                    try:
                        decoded = packet.decode()
                    except (av.FFmpegError, ValueError) as e:
                        raise InputError(f"{src}: corrupt video data ({_oneline(e)})") from None
                    for frame in decoded:
                        if ovs is None:
                            k_rot = _rotation_k(frame.rotation)
                            w, h = (
                                (frame.width, frame.height) if k_rot % 2 == 0 else (frame.height, frame.width)
                            )
                            ovs = _add_video_stream(out, video_encoder(), rate, tb, w, h, vs, crf)
                        p = frame.pts if frame.pts is not None else last_pts + frame_tick
                        p = max(p, last_pts + 1)  # strictly increasing timestamps
                        last_pts = p
                        video_end = float((p + (frame.duration or frame_tick)) * tb)
                        rgb = frame.to_ndarray(format="rgb24", src_colorspace=state.colorspace)
                        if k_rot:
                            rgb = np.ascontiguousarray(np.rot90(rgb, k_rot))
                        buf.append(rgb)
                        buf_pts.append(p)
                        if max_frames is not None and state.done + len(buf) >= max_frames:
                            video_done = True
                            break
                        if len(buf) >= chunk_size:
                            flush_chunk(buf, buf_pts)
                    if ovs is not None:
                        release(video_end)
                    if video_done:
                        flush_chunk(buf, buf_pts)
                        if not audio_left:
                            break
                flush_chunk(buf, buf_pts)
                if ovs is None:
                    raise InputError(f"{src}: the video stream has no decodable frames")
                release(video_end if video_done else math.inf, final=True)
                if ovs is None:
                    raise InputError(f"{src}: the video stream has no decodable frames")
                for pkt in ovs.encode(None):
                    out.mux(pkt)
                for idx, rs in resamplers.items():
                    enc = audio_out[idx]
                    for fr in rs.resample(None):
                        for pkt in enc.encode(fr):
                            out.mux(pkt)
                    for pkt in enc.encode(None):
                        out.mux(pkt)
            except BaseException:
                out.close()
                raise
            out.close()
    except av.FFmpegError as e:
        raise InputError(f"{src}: video processing failed ({_oneline(e)})") from None
    finally:
        inp.close()
    return VideoResult(
        path=dst,
        frames=state.done,
        faces=counts["faces"],
        fell_back=counts["fell_back"],
        covered=counts["covered"],
        audio=audio_modes,
        tracks=sorted(summaries.values(), key=lambda s: s.id),
        fps=rate,
        seconds=time.perf_counter() - t_start,
    )


class _EncodeState:
    def __init__(self, colorspace: int | None = None) -> None:
        self.done = 0
        self.colorspace = colorspace  # the input's YUV matrix (None: swscale's default, BT.601)

    def encode(self, out, stream, rgb: np.ndarray, pts: int) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame = frame.reformat(format=stream.pix_fmt, dst_colorspace=self.colorspace)
        frame.pts = pts
        frame.time_base = stream.codec_context.time_base
        for pkt in stream.encode(frame):
            out.mux(pkt)


def _packet_time(packet) -> float | None:
    if packet.pts is None or packet.time_base is None:
        return None
    return float(packet.pts * packet.time_base)


def _mux_audio(out, packet, ostream, resampler) -> None:
    if resampler is None:
        if packet.dts is None:  # demuxer flush packet: nothing to copy
            return
        packet.stream = ostream
        out.mux(packet)
        return
    for fr in packet.decode():
        fr.pts = None  # the resampler and encoder re-time the samples
        for rf in resampler.resample(fr):
            for pkt in ostream.encode(rf):
                out.mux(pkt)
