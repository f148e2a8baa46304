"""Shared helpers of the CPU benchmarks: timers, the matmul peak, markdown tables, subprocess wall time and RSS."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
if str(SRC) not in sys.path:  # a fresh clone without `pip install -e .`
    sys.path.insert(0, str(SRC))

SHARED = Path(os.environ.get("A3GAN_SHARED_DATA", ROOT.parent / "shared" / "data"))
VENV_BIN = Path(sys.executable).parent


def time_call(
    fn: Callable[[], object],
    min_time: float = 0.5,
    warmup: int = 1,
    min_iters: int = 1,
    max_iters: int = 1000,
) -> float:
    """Median-free simple timer: seconds per call over at least ``min_time`` s (after ``warmup`` calls)."""
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if n >= max_iters or (n >= min_iters and el >= min_time):
            return el / n


def best_of(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Fastest of ``repeats`` single calls (robust against the other tenants of a shared machine)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_peak_gflops(n: int = 2048, min_time: float = 1.0) -> float:
    """Achieved GFLOP/s of an n x n x n float32 matmul with torch's current thread setting (this machine's peak)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    dt = best_of(lambda: torch.mm(a, b, out=out), repeats=max(3, int(min_time / 0.05)), warmup=2)
    return 2 * n**3 / dt / 1e9


def machine_info() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"Python {platform.python_version()}, 1-min load average at start {load:.1f}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A markdown table; ``align`` is one char per column ('l' or 'r'), default: first left, rest right."""
    align = align or "l" + "r" * (len(headers) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(v) for v in r) + " |")
    return "\n".join(lines)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        if v != v:
            return "n/a"
        a = abs(v)
        return f"{v:.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 0.1 else f"{v:.3f}"
    return str(v)


@dataclass
class ProcResult:
    """A finished subprocess: wall seconds, peak RSS in MiB (polled, whole process tree), exit code, output."""

    wall: float
    peak_rss_mib: float
    returncode: int
    cpu: float = float("nan")  # user + system CPU seconds of the process and its waited-for children
    output: str = ""
    samples: list[float] = field(default_factory=list)


def run_measured(
    cmd: Sequence[str],
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    poll: float = 0.05,
    timeout: float | None = None,
) -> ProcResult:
    """Run ``cmd``; wall time and the peak RSS of it and its children (psutil polling every ``poll`` s)."""
    import resource

    import psutil

    full_env = {**os.environ, **(env or {})}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env, cwd=cwd
    )
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    peak, samples = 0.0, []
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
            samples.append(rss / 2**20)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
        if timeout is not None and time.perf_counter() - t0 > timeout:
            proc.kill()
        time.sleep(poll)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    reader.join(5)
    out = b"".join(chunks).decode(errors="replace")
    return ProcResult(wall, peak / 2**20, proc.returncode, cpu, out, samples)
