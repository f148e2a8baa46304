"""``a3gan anonymize INPUT... -o OUT``: anonymize every face in photos, folders and videos (issue 4).

Fail closed: a file that cannot be processed gets no output and an ``error: <file>: <reason>`` line, the run goes
on, and the exit code is 1 at the end. An image without any detected face is copied (metadata still stripped) with
a visible warning, or is an error under ``--strict``. Outputs are written atomically and never over an input.
Heavy modules (torch, onnxruntime, PyAV) are imported inside the command so ``a3gan --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from a3gan.errors import A3GANError, InputError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")  # = a3gan.pipeline.io.IMAGE_EXTS
VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm")  # = a3gan.pipeline.io.VIDEO_EXTS
_VIDEO_OUT_KEEP = (".mp4", ".mov", ".mkv")  # containers we write; .avi/.webm inputs become .mp4
METHOD_NAMES = ("a3gan", "pixelate", "blur", "blackout")


class RunFailed(A3GANError):
    """Some inputs failed (each already reported on its own line): exit code 1."""

    exit_code = 1


@dataclass
class Job:
    src: Path
    dst: Path
    kind: str  # "image" | "video"


@dataclass
class Plan:
    jobs: list[Job]
    failed: list[tuple[Path, str]] = field(default_factory=list)  # inputs rejected while planning
    skipped: dict[str, int] = field(default_factory=dict)  # extension -> count of non-media files in folders
    out_dir: Path | None = None  # None when OUT is a single file


def _kind(p: Path) -> str | None:
    ext = p.suffix.lower()
    return "image" if ext in IMAGE_EXTS else "video" if ext in VIDEO_EXTS else None


def _video_dst(p: Path) -> Path:
    return p if p.suffix.lower() in _VIDEO_OUT_KEEP else p.with_suffix(".mp4")


def _inside(a: Path, b: Path) -> bool:
    """Whether ``a`` is ``b`` or inside it (both resolved)."""
    return a == b or b in a.parents


def _walk(folder: Path, skipped: dict[str, int]) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder, onerror=None):
        dirs.sort()
        for n in sorted(names):
            p = Path(root) / n
            if _kind(p) is None:
                ext = p.suffix.lower() or "(none)"
                skipped[ext] = skipped.get(ext, 0) + 1
            elif p.is_file():
                files.append(p)
    return files


def plan_jobs(inputs: list[Path], output: Path, overwrite: bool) -> Plan:
    """Map inputs to outputs; refuse nesting of OUT and input folders, an existing non-empty OUT, collisions."""
    if not inputs:
        raise InputError("no INPUT given")
    out_res = output.resolve()
    exists = [p for p in inputs if p.exists()]
    for p in exists:
        rp = p.resolve()
        if p.is_dir() and (_inside(out_res, rp) or _inside(rp, out_res)):
            raise InputError(f"{output}: the output must not be inside the input folder {p}, or contain it")
        if p.is_file() and rp == out_res:
            raise InputError(f"{output}: refusing to write over an input file")

    single = len(inputs) == 1 and inputs[0].is_file() and _kind(inputs[0]) is not None
    single_file_out = single and _kind(output) is not None and _kind(output) == _kind(inputs[0])
    if single and _kind(output) is not None and not single_file_out:
        raise InputError(f"{output}: an {_kind(inputs[0])} input needs an {_kind(inputs[0])} output name")
    if single_file_out:
        if output.is_dir():
            raise InputError(f"{output}: is a folder")
        if output.exists() and not overwrite:
            raise InputError(f"{output}: already exists; pass --overwrite to replace it")
        if _kind(output) == "video" and output.suffix.lower() not in _VIDEO_OUT_KEEP:
            raise InputError(f"{output}: write videos as one of {', '.join(_VIDEO_OUT_KEEP)}")
        return Plan([Job(inputs[0], output, _kind(inputs[0]))])

    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a folder")
    if _kind(output) is not None and not output.is_dir():
        raise InputError(f"{output}: looks like a file name, but the inputs need an output folder")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise InputError(f"{output}: folder exists and is not empty; pass --overwrite to write into it")
    plan = Plan([], out_dir=output)
    one_folder = len(inputs) == 1 and inputs[0].is_dir()
    for p in inputs:
        if not p.exists() and not p.is_symlink():
            plan.failed.append((p, "no such file or folder"))
        elif p.is_dir():
            base = output if one_folder else output / p.resolve().name
            for f in _walk(p, plan.skipped):
                rel = f.relative_to(p)
                k = _kind(f)
                plan.jobs.append(Job(f, _video_dst(base / rel) if k == "video" else base / rel, k))
        elif not p.is_file():
            plan.failed.append((p, "not a regular file or folder"))
        elif _kind(p) is None:
            plan.failed.append(
                (
                    p,
                    f"unsupported file type {p.suffix or '(no extension)'!r}; images: "
                    f"{' '.join(IMAGE_EXTS)}; videos: {' '.join(VIDEO_EXTS)}",
                )
            )
        else:
            k = _kind(p)
            plan.jobs.append(Job(p, _video_dst(output / p.name) if k == "video" else output / p.name, k))
    seen: dict[Path, Path] = {}
    for j in plan.jobs:
        key = j.dst.resolve()
        if key in seen:
            raise InputError(f"{j.src} and {seen[key]} would both be written to {j.dst}; rename one of them")
        seen[key] = j.src
    return plan


def resolve_mask(change: str | None, preset: str | None) -> str:
    """--change / --preset -> a mask spec for the Anonymizer; one-line InputError listing valid names."""
    from a3gan.attributes import FIG7_PRESETS, PRESETS, MaskError, parse_mask

    if change is not None and preset is not None:
        raise InputError("--change and --preset are mutually exclusive; give one of them")
    if preset is not None:
        names = {**PRESETS, **FIG7_PRESETS}
        key = preset.strip().lower()
        if key not in names:
            raise InputError(f"unknown preset {preset!r}; valid presets: {', '.join(names)}")
        return key
    spec = "a3gan-0" if change is None else change
    try:
        parse_mask(spec)
    except MaskError as e:
        raise InputError(str(e)) from None
    return spec


def _msg(path: Path, e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if text.startswith(str(path)) else f"{path}: {text}"


class _Console:
    """Plain one-line messages (no markup, no wrapping) that cooperate with the progress bar."""

    def __init__(self) -> None:
        from rich.console import Console

        self.err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
        self.out = Console(highlight=False, soft_wrap=True)

    def line(self, text: str) -> None:
        self.err.print(text, markup=False, highlight=False, soft_wrap=True)


def run(
    inputs: list[Path],
    output: Path,
    *,
    model: Path | None = None,
    change: str | None = None,
    preset: str | None = None,
    seed: int = 0,
    method: str = "a3gan",
    threshold: float = 0.35,
    device: str = "cpu",
    report: Path | None = None,
    overwrite: bool = False,
    strict: bool = False,
    verify: bool = True,
    keep_metadata: bool = False,
    max_resample: int = 4,
    max_frames: int | None = None,
    anonymizer: Any = None,
    smooth: float | None = None,
) -> dict[str, Any]:
    """The command's body (also usable from Python). Returns the report dict; raises RunFailed if a file failed."""
    method = method.strip().lower()
    if method not in METHOD_NAMES:
        raise InputError(f"unknown --method {method!r}; choose one of {', '.join(METHOD_NAMES)}")
    if not 0.0 < threshold < 1.0:
        raise InputError(f"--threshold must be in (0, 1), got {threshold}")
    if max_resample < 0:
        raise InputError(f"--max-resample must be >= 0, got {max_resample}")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {max_frames}")
    if smooth is not None and not smooth >= 0:
        raise InputError(f"--smooth must be >= 0, got {smooth}")
    mask = resolve_mask(change, preset)
    plan = plan_jobs(inputs, output, overwrite)
    if not plan.jobs and not plan.failed:  # e.g. an empty folder or a mistyped one: say so instead of "0 files, ok"
        found = f" (only {sum(plan.skipped.values())} other file(s): {', '.join(sorted(plan.skipped))})" if plan.skipped else ""
        raise InputError(
            f"{', '.join(map(str, inputs))}: no image or video files found{found}; images: {' '.join(IMAGE_EXTS)}; "
            f"videos: {' '.join(VIDEO_EXTS)}"
        )
    input_files = [j.src for j in plan.jobs]
    if report is not None:
        if report.exists() and not overwrite:
            raise InputError(f"{report}: report already exists; pass --overwrite to replace it")
        if any(report.resolve() == p.resolve() for p in input_files if p.exists()):
            raise InputError(f"{report}: refusing to write the report over an input file")

    con = _Console()
    for p, why in plan.failed:
        con.line(f"error: {p}: {why}")
    if plan.skipped:
        n = sum(plan.skipped.values())
        con.line(
            f"warning: skipped {n} file(s) that are not images or videos ({', '.join(sorted(plan.skipped))})"
        )

    anon = (
        anonymizer
        if anonymizer is not None
        else _build_anonymizer(
            con,
            model=model,
            mask=mask,
            seed=seed,
            method=method,
            threshold=threshold,
            device=device,
            verify=verify,
            max_resample=max_resample,
            smooth=smooth,
        )
    )

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from a3gan.pipeline import io as pio

    pio.protect(input_files)  # every write checks against these (by inode, so links count too)
    t0 = time.perf_counter()
    records: list[dict[str, Any]] = [
        {"input": str(p), "output": None, "status": "failed", "error": why} for p, why in plan.failed
    ]
    stats = {
        "ok": 0,
        "failed": len(plan.failed),
        "copied_no_faces": 0,
        "faces": 0,
        "fell_back": 0,
        "frames": 0,
    }
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=con.err,
        transient=True,
        disable=not con.err.is_terminal,
    )
    with progress:
        files_task = progress.add_task("files", total=len(plan.jobs))
        for job in plan.jobs:
            rec: dict[str, Any] = {"input": str(job.src), "output": None, "type": job.kind}
            try:
                if job.kind == "image":
                    _do_image(job, anon, rec, stats, con, strict, keep_metadata, pio)
                else:
                    _do_video(job, anon, rec, stats, con, strict, max_frames, progress)
            except A3GANError as e:
                rec.update(status="failed", error=_msg(job.src, e), output=None)
                stats["failed"] += 1
                con.line(f"error: {_msg(job.src, e)}")
            except Exception as e:  # a bug, not the user's input: still fail closed and go on
                if os.environ.get("A3GAN_DEBUG"):
                    raise
                rec.update(status="failed", error=f"internal error: {type(e).__name__}: {e}", output=None)
                stats["failed"] += 1
                con.line(f"error: {job.src}: internal error ({type(e).__name__}: {' '.join(str(e).split())})")
            records.append(rec)
            progress.advance(files_task)
    elapsed = time.perf_counter() - t0

    doc = {
        "settings": anon.describe() if hasattr(anon, "describe") else {"method": method},
        "summary": {**stats, "files": len(plan.jobs) + len(plan.failed), "seconds": round(elapsed, 3)},
        "files": records,
    }
    _print_summary(con, stats, len(plan.jobs) + len(plan.failed), elapsed)
    if report is not None:
        data = json.dumps(doc, indent=2).encode()
        pio.atomic_write(report, lambda f: f.write(data))
    if stats["failed"]:
        total = len(plan.jobs) + len(plan.failed)
        raise RunFailed(f"{stats['failed']} of {total} input file(s) failed; they have no output (see above)")
    return doc


def _build_anonymizer(
    con: _Console, *, mask: str, model, seed, method, threshold, device, verify, max_resample, smooth=None
):
    from a3gan.errors import ModelError
    from a3gan.pipeline.anonymizer import Anonymizer

    kw = dict(
        model=model,
        change=mask,
        seed=seed,
        method=method,
        threshold=threshold,
        device=device,
        max_resample=max_resample,
        smooth=smooth,
    )
    try:
        return Anonymizer(verify=verify, **kw)
    except ModelError as e:
        if method == "a3gan" or not verify:
            raise
        # baselines only *report* the identity similarity: go on without it rather than refuse to run
        con.line(f"warning: no identity network, similarities will not be reported ({e})")
        return Anonymizer(verify=False, **kw)


def _face_records(res) -> list[dict[str, Any]]:
    out = []
    for f in res.faces:
        d = f.to_dict() if hasattr(f, "to_dict") else {}
        out.append(
            {
                "box": d.get("box", [round(float(v), 2) for v in f.box]),
                "score": d.get("score", round(float(f.score), 4)),
                "similarity": d.get("similarity", f.similarity),
                "attempts": d.get("attempts", int(f.attempts)),
                "fell_back": d.get("fell_back", bool(f.fell_back)),
                "method": d.get("method_used", f.method_used),
            }
        )
    return out


def _do_image(job: Job, anon, rec, stats, con: _Console, strict, keep_metadata, pio) -> None:
    loaded = pio.load_image(job.src)
    res = anon.anonymize(loaded.rgb)
    rec.update(
        width=int(loaded.rgb.shape[1]),
        height=int(loaded.rgb.shape[0]),
        faces=_face_records(res),
        too_small=int(getattr(res, "too_small", 0)),
    )
    too_small = int(getattr(res, "too_small", 0))
    if not res.faces:
        why = "no face found"
        if too_small:
            why += f" ({too_small} smaller than the detector's minimum size)"
        if strict:
            raise InputError(f"{job.src}: {why} (--strict)")
    elif too_small:
        msg = f"{job.src}: {too_small} face(s) smaller than the detector's minimum size were left unchanged"
        if strict:
            raise InputError(msg + " (--strict)")
        con.line(f"warning: {msg}")
    pio.write_image(
        job.dst, res.image, like=loaded.format, alpha=loaded.alpha, keep_metadata=keep_metadata, source=loaded
    )
    rec["output"] = str(job.dst)
    if not res.faces:
        con.line(f"warning: {job.src}: {why}; copied unchanged (metadata stripped)")
        rec["status"] = "copied-no-faces"
        stats["copied_no_faces"] += 1
    else:
        rec["status"] = "ok"
        stats["ok"] += 1
    stats["faces"] += len(res.faces)
    fell = sum(bool(f.fell_back) for f in res.faces)
    stats["fell_back"] += fell
    if fell:
        con.line(f"warning: {job.src}: {fell} face(s) still matched the original and fell back to pixelation")


def _do_video(job: Job, anon, rec, stats, con: _Console, strict, max_frames, progress) -> None:
    from a3gan.pipeline.video import anonymize_video, probe_video

    info = probe_video(job.src)
    total = info.frames if max_frames is None else min(info.frames or max_frames, max_frames)
    task = progress.add_task(f"  {job.src.name}", total=total)
    try:
        res = anonymize_video(
            job.src,
            job.dst,
            anon,
            max_frames=max_frames,
            progress=lambda done, _t: progress.update(task, completed=done),
        )
    finally:
        progress.remove_task(task)
    rec.update(output=str(job.dst), width=info.width, height=info.height, **res.report())
    stats["frames"] += res.frames
    stats["faces"] += res.faces
    stats["fell_back"] += res.fell_back
    if res.faces == 0:
        if strict:
            job.dst.unlink(missing_ok=True)
            rec["output"] = None
            raise InputError(f"{job.src}: no face found in any frame (--strict)")
        con.line(f"warning: {job.src}: no face found in any frame; written re-encoded without changes")
        rec["status"] = "copied-no-faces"
        stats["copied_no_faces"] += 1
    else:
        rec["status"] = "ok"
        stats["ok"] += 1
    if res.fell_back:
        con.line(f"warning: {job.src}: {res.fell_back} face-frame(s) fell back to pixelation")


def _print_summary(con: _Console, stats: dict[str, int], files: int, elapsed: float) -> None:
    from rich.table import Table

    t = Table(title="a3gan anonymize", show_header=True)
    t.add_column("files")
    t.add_column("ok", justify="right")
    t.add_column("failed", justify="right")
    t.add_column("copied (no faces)", justify="right")
    t.add_column("faces", justify="right")
    t.add_column("fell back", justify="right")
    t.add_column("time", justify="right")
    t.add_row(
        str(files),
        str(stats["ok"]),
        str(stats["failed"]),
        str(stats["copied_no_faces"]),
        str(stats["faces"]),
        str(stats["fell_back"]),
        f"{elapsed:.1f} s",
    )
    con.out.print(t)


def register(app: typer.Typer) -> None:
    @app.command()
    def anonymize(
        inputs: list[Path] = typer.Argument(..., metavar="INPUT...", help="Image files, folders or videos."),
        output: Path = typer.Option(..., "-o", "--output", help="Output folder (or file, for one input)."),
        model: Path | None = typer.Option(None, "--model", help="Checkpoint (default: the shipped model)."),
        change: str | None = typer.Option(
            None, "--change", help="Attributes that may change, e.g. Male,Young."
        ),
        preset: str | None = typer.Option(
            None, "--preset", help="a3gan-0/1/3/5/10 (exclusive with --change)."
        ),
        seed: int = typer.Option(0, "--seed", help="Same seed, same new faces."),
        method: str = typer.Option("a3gan", "--method", help="a3gan | pixelate | blur | blackout."),
        threshold: float = typer.Option(0.35, "--threshold", help="Face detector confidence in (0, 1)."),
        device: str = typer.Option("cpu", "--device", help="torch device, e.g. cpu or cuda."),
        report: Path | None = typer.Option(None, "--report", help="Write a per-file, per-face JSON report."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Write into an existing non-empty OUT."),
        strict: bool = typer.Option(
            False, "--strict", help="An image without faces is an error, not a copy."
        ),
        no_verify: bool = typer.Option(False, "--no-verify", help="Skip the identity check and re-sampling."),
        keep_metadata: bool = typer.Option(
            False, "--keep-metadata", help="Keep EXIF (incl. GPS!) in images."
        ),
        max_resample: int = typer.Option(4, "--max-resample", help="f_z re-draws before falling back."),
        max_frames: int | None = typer.Option(None, "--max-frames", help="Videos: only the first N frames."),
        smooth: float | None = typer.Option(
            None,
            "--smooth",
            help="Gaussian sigma (model pixels) on each generated face; default: the model's own (0 = off).",
        ),
    ) -> None:
        """Anonymize every face in photos, folders (mirrored into OUT) and videos."""
        run(
            list(inputs),
            output,
            model=model,
            change=change,
            preset=preset,
            seed=seed,
            method=method,
            threshold=threshold,
            device=device,
            report=report,
            overwrite=overwrite,
            strict=strict,
            verify=not no_verify,
            keep_metadata=keep_metadata,
            max_resample=max_resample,
            max_frames=max_frames,
            smooth=smooth,
        )
