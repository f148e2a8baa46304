"""Section 4: peak RSS of ``a3gan anonymize`` on a short and a 10x longer video (must stay flat within 10%)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _util import ROOT, SHARED, run_measured, table
from pipeline_bench import make_clip, model_path


def run(quick: bool = False, log=print) -> str:
    src = SHARED / "video" / "street.mp4"
    if not src.is_file():
        return f"_skipped: {src} is missing_"
    base, loops, width = (10, 4, 160) if quick else (100, 10, 320)
    rows, peaks = [], []
    with tempfile.TemporaryDirectory(prefix="a3gan-bench-") as t:
        tmp = Path(t)
        model, model_note = model_path(tmp)
        for n_loops in (1, loops):
            clip = tmp / f"clip{n_loops}.mp4"
            n = make_clip(src, clip, base, width=width, loops=n_loops)
            log(f"  {n} frames ...")
            cmd = [
                sys.executable,
                "-m",
                "a3gan.cli",
                "anonymize",
                str(clip),
                "-o",
                str(tmp / f"out{n_loops}.mp4"),
                "--model",
                str(model),
                "--no-verify",
            ]
            r = run_measured(cmd, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src")}, poll=0.02)
            if r.returncode != 0:
                raise RuntimeError(f"a3gan anonymize failed (exit {r.returncode}):\n{r.output[-2000:]}")
            peaks.append(r.peak_rss_mib)
            rows.append([n, r.peak_rss_mib, r.wall, n / r.wall])
            log(f"  {n} frames: peak RSS {r.peak_rss_mib:.0f} MiB, {r.wall:.1f} s")
    growth = peaks[1] / peaks[0] - 1
    verdict = "flat (target met)" if abs(growth) <= 0.10 else "NOT flat (target missed)"
    return "\n".join(
        [
            f"`a3gan anonymize --no-verify` on the first {base} frames of `street.mp4` scaled to {width} px wide, and "
            f"the same frames looped {loops}x; model: {model_note}. Peak RSS of the whole process, polled every 20 ms.",
            "",
            table(["frames", "peak RSS MiB", "wall s", "frames/s"], rows),
            "",
            f"**RSS growth from {rows[0][0]} to {rows[1][0]} frames: {100 * growth:+.1f}% -> {verdict}.**",
        ]
    )
