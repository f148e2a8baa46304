"""Section 2: the photo and video pipelines end to end (``a3gan anonymize``) against ``deface`` on the same files.

Both tools run as command-line programs in subprocesses, one after the other, on the same inputs: wall time
(start-up included), frames/s and peak RSS. Our run goes through ``benchmarks/stages.py``, which times each stage
inside the same run. The model is the shipped default when installed, else a random-weight ``small`` checkpoint
(same architecture and cost; a trained model may need more re-draws in the verification loop, see the report).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path

from _util import ROOT, SHARED, VENV_BIN, run_measured, table
from stages import STAGES

STAGES_PY = Path(__file__).resolve().parent / "stages.py"


def model_path(tmp: Path, preset: str = "small") -> tuple[Path, str]:
    """The shipped default model, or a random-weight checkpoint of ``preset`` written into ``tmp``."""
    import torch

    from a3gan.checkpoint import default_model_path, save_checkpoint
    from a3gan.config import load_config
    from a3gan.nets import Generator

    p = Path(default_model_path())
    if p.is_file():
        return p, f"shipped default model `{p.name}`"
    cfg = load_config(preset)
    torch.manual_seed(0)
    out = tmp / f"random-{preset}.safetensors"
    save_checkpoint(out, {"G": Generator(cfg.model)}, cfg, {"note": "random weights (benchmark)"})
    return out, f"random-weight `{preset}` checkpoint (no default model installed yet)"


def make_clip(src: Path, dst: Path, frames: int | None, width: int | None = None, loops: int = 1) -> int:
    """Re-encode the first ``frames`` frames of ``src`` (all when None), optionally scaled to ``width`` px and
    played ``loops`` times in a row, to an H.264 MP4 without audio. Returns the number of frames written."""
    import av

    n = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vs = inp.streams.video[0]
        rate = vs.average_rate or Fraction(25)
        w0, h0 = vs.codec_context.width, vs.codec_context.height
        w = width or w0
        h = int(round(h0 * w / w0 / 2)) * 2
        os_ = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=rate)
        os_.width, os_.height, os_.pix_fmt = w, h, "yuv420p"
        if os_.codec_context.name == "libx264":
            os_.options = {"crf": "18", "preset": "veryfast"}
        cached = []
        for fr in inp.decode(vs):
            if frames is not None and len(cached) >= frames:
                break
            cached.append(fr.reformat(width=w, height=h, format="yuv420p").to_ndarray())
        for _ in range(loops):
            for arr in cached:
                vf = av.VideoFrame.from_ndarray(arr, format="yuv420p")
                vf.pts = n
                vf.time_base = Fraction(1) / Fraction(rate)
                for pkt in os_.encode(vf):
                    out.mux(pkt)
                n += 1
        for pkt in os_.encode(None):
            out.mux(pkt)
    return n


def _a3gan_cmd(stage_json: Path, inputs: list[str], out: Path, model: Path, extra: list[str]) -> list[str]:
    return [
        str(Path(__import__("sys").executable)),
        str(STAGES_PY),
        str(stage_json),
        "anonymize",
        *inputs,
        "-o",
        str(out),
        "--model",
        str(model),
        *extra,
    ]


def _deface_cmd(inputs: list[str], out: Path | None) -> list[str]:
    cmd = [str(VENV_BIN / "deface"), *inputs]
    return cmd + (["-o", str(out)] if out is not None else [])


def _stage_rows(stages: dict[str, float], cpu: dict[str, float], wall: float, n: int) -> list[list[object]]:
    rows = []
    for s in STAGES:
        v = stages.get(s, 0.0)
        rows.append([s, v, cpu.get(s, 0.0), f"{100 * v / wall:.0f}%", 1000 * v / max(n, 1)])
    other = max(0.0, wall - sum(stages.get(s, 0.0) for s in STAGES))
    rows.append(
        [
            "other (start-up, model load, tracking, glue)",
            other,
            float("nan"),
            f"{100 * other / wall:.0f}%",
            1000 * other / max(n, 1),
        ]
    )
    return rows


def _compare(name: str, ours, theirs, st: dict, n: int, unit: str, extra: list | None = None) -> str:
    one = unit[:-1] if unit.endswith("s") else unit
    rows = [
        ["a3gan anonymize", ours.wall, ours.cpu, n / ours.wall, ours.peak_rss_mib, ours.returncode, "1.00x"],
        [
            "deface",
            theirs.wall,
            theirs.cpu,
            n / theirs.wall,
            theirs.peak_rss_mib,
            theirs.returncode,
            f"{theirs.cpu / ours.cpu:.2f}x",
        ],
    ]
    for label, r in extra or []:
        rows.append(
            [label, r.wall, r.cpu, n / r.wall, r.peak_rss_mib, r.returncode, f"{r.cpu / ours.cpu:.2f}x"]
        )
    lines = [
        table(["tool", "wall s", "CPU s", f"{unit}/s", "peak RSS MiB", "exit", "CPU vs a3gan default"], rows),
        "",
        f"**{name}: a3gan / deface = {ours.wall / theirs.wall:.2f}x wall time, {ours.cpu / theirs.cpu:.2f}x CPU "
        f"time** (target for video: <= 1.5x). CPU time (user + system of the process tree) is the steadier number "
        "on a shared machine.",
        "",
        f"Where a3gan's time goes ({n} {unit}; exclusive time per stage inside the same run; CPU s counts all "
        "threads):",
        "",
        table(
            ["stage", "wall s", "CPU s", "% of wall", f"wall ms per {one}"],
            _stage_rows(st["stages"], st.get("stages_cpu", {}), ours.wall, n),
        ),
        "",
        f"Calls per stage: {', '.join(f'{k} {v}' for k, v in sorted(st.get('calls', {}).items()))}.",
    ]
    return "\n".join(lines)


def _check(res, what: str) -> None:
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {res.returncode}):\n{res.output[-2000:]}")


def run_photos(quick: bool = False, log=print) -> str:
    photos = sorted((SHARED / "photos").glob("*.jpg"))
    if not photos:
        return f"_skipped: no photos under {SHARED / 'photos'}_"
    if quick:
        photos = photos[:1]
    with tempfile.TemporaryDirectory(prefix="a3gan-bench-") as t:
        tmp = Path(t)
        model, model_note = model_path(tmp)
        ours_in, theirs_in = tmp / "in_a3gan", tmp / "in_deface"
        ours_in.mkdir(), theirs_in.mkdir()
        for p in photos:
            shutil.copy(p, ours_in / p.name)
            shutil.copy(p, theirs_in / p.name)
        sj = tmp / "stages.json"
        log(f"  a3gan on {len(photos)} photos ...")
        ours = run_measured(_a3gan_cmd(sj, [str(ours_in)], tmp / "out", model, []), cwd=ROOT)
        _check(ours, "a3gan anonymize (photos)")
        st = json.loads(sj.read_text())
        log(f"  a3gan {ours.wall:.1f} s; deface ...")
        # deface writes <name>_anonymized.jpg beside each input (a copy here)
        theirs = run_measured(_deface_cmd([str(p) for p in sorted(theirs_in.iterdir())], None), cwd=tmp)
        _check(theirs, "deface (photos)")
        log(f"  deface {theirs.wall:.1f} s")
        names = ", ".join(p.name for p in photos)
        head = (
            f"Inputs: {len(photos)} photos ({names}); model: {model_note}; a3gan defaults (CenterFace "
            f"multi-scale, verification with dlib, mask a3gan-0); deface defaults (blur)."
        )
        return head + "\n\n" + _compare("Photos", ours, theirs, st, len(photos), "images")


VARIANTS = [
    ("a3gan, OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}, []),
    ("a3gan --no-verify", {}, ["--no-verify"]),
    ("a3gan --no-verify, OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}, ["--no-verify"]),
]


def run_video(quick: bool = False, log=print, frames: int | None = None, variants: bool = False) -> str:
    src = SHARED / "video" / "street.mp4"
    if not src.is_file():
        return f"_skipped: {src} is missing_"
    n_req = 3 if quick else (25 if frames is None else (None if frames == 0 else frames))
    with tempfile.TemporaryDirectory(prefix="a3gan-bench-") as t:
        tmp = Path(t)
        model, model_note = model_path(tmp)
        clip = tmp / "clip.mp4"
        n = make_clip(src, clip, n_req, width=640 if quick else None)
        sj = tmp / "stages.json"
        log(f"  clip of {n} frames; a3gan ...")
        ours = run_measured(_a3gan_cmd(sj, [str(clip)], tmp / "a3gan.mp4", model, []), cwd=ROOT)
        _check(ours, "a3gan anonymize (video)")
        st = json.loads(sj.read_text())
        log(f"  a3gan {ours.wall:.1f} s; deface ...")
        theirs = run_measured(_deface_cmd([str(clip)], tmp / "deface.mp4"), cwd=tmp)
        _check(theirs, "deface (video)")
        log(f"  deface {theirs.wall:.1f} s")
        extra = []
        for label, env, args in VARIANTS if variants else []:
            r = run_measured(
                _a3gan_cmd(tmp / "v.json", [str(clip)], tmp / "v.mp4", model, [*args, "--overwrite"]),
                env=env,
                cwd=ROOT,
            )
            _check(r, label)
            log(f"  {label}: {r.wall:.1f} s wall, {r.cpu:.1f} s CPU")
            extra.append((label, r))
        import av

        with av.open(str(clip)) as c:
            w, h = c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height
        head = (
            f"Input: the first {n} frames of `street.mp4` ({w}x{h}, re-encoded without audio so both tools "
            f"see the same file); model: {model_note}; both tools with their defaults."
        )
        return head + "\n\n" + _compare("Video", ours, theirs, st, n, "frames", extra)
