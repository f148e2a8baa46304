"""Training scalars: ``metrics.jsonl`` (one JSON object per log step), TensorBoard, and a rich progress bar.

Only the main process creates a :class:`MetricsLog`. On resume the JSONL file is cut back to the resumed step and
TensorBoard events after it are purged (``purge_step``), so the history of a killed-and-resumed run reads like
that of an uninterrupted one.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from a3gan.training.rundir import atomic_write_text


class RunningMean:
    """Averages each scalar over the steps since the last :meth:`pop`."""

    def __init__(self) -> None:
        self._sum: dict[str, float] = defaultdict(float)
        self._n: dict[str, int] = defaultdict(int)

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self._sum[k] += float(v)
            self._n[k] += 1

    def pop(self) -> dict[str, float]:
        out = {k: self._sum[k] / self._n[k] for k in self._sum}
        self._sum.clear()
        self._n.clear()
        return out


def truncate_jsonl(path: Path, last_step: int) -> int:
    """Drop records with ``step > last_step`` (and a torn last line); returns the number of records kept."""
    if not path.is_file():
        return 0
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if isinstance(rec, dict) and int(rec.get("step", 0)) <= last_step:
            kept.append(json.dumps(rec, sort_keys=True))
    atomic_write_text(path, "".join(k + "\n" for k in kept))
    return len(kept)


class MetricsLog:
    """Writes scalars to JSONL and TensorBoard and shows them on the progress bar."""

    def __init__(
        self,
        jsonl_path: Path,
        tb_dir: Path | None,
        start_step: int,
        total_steps: int,
        progress: bool = True,
        resume: bool = False,
    ) -> None:
        self.jsonl_path = jsonl_path
        if resume:
            truncate_jsonl(jsonl_path, start_step)
        self._jsonl = open(jsonl_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._tb = None
        if tb_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is an optional (train) extra
                SummaryWriter = None  # noqa: N806
            if SummaryWriter is not None:
                self._tb = SummaryWriter(str(tb_dir), purge_step=start_step + 1 if resume else None)
        self._progress = None
        self._task = None
        self._last_line = 0.0
        if progress:
            from rich.console import Console

            console = Console(stderr=True)
            if console.is_terminal:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                )

                self._progress = Progress(
                    TextColumn("[bold]train"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    TextColumn("{task.fields[info]}"),
                    console=console,
                )
                self._task = self._progress.add_task(
                    "train", total=total_steps, completed=start_step, info=""
                )
                self._progress.start()
        self._plain = progress and self._progress is None
        self.total_steps = total_steps

    def log(self, step: int, scalars: dict[str, Any]) -> None:
        rec = {"step": int(step), "time": round(time.time(), 3), **scalars}
        self._jsonl.write(json.dumps(rec, sort_keys=True) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for k, v in scalars.items():
                if isinstance(v, int | float):
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()
        info = self.summary(scalars)
        if self._progress is not None:
            self._progress.update(self._task, completed=step, info=info)
        elif self._plain:
            print(f"step {step}/{self.total_steps} {info}", file=sys.stderr, flush=True)

    def advance(self, step: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=step)

    @staticmethod
    def summary(s: dict[str, Any]) -> str:
        keys = [
            ("d/wdist", "W"),
            ("d/att1", "att1"),
            ("g/adv", "adv"),
            ("g/att2", "att2"),
            ("g/deid", "deid"),
            ("g/div", "div"),
            ("g/spectral", "spec"),
            ("perf/img_per_s", "img/s"),
        ]
        return " ".join(f"{short} {s[k]:.3g}" for k, short in keys if k in s)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._tb is not None:
            self._tb.close()
        self._jsonl.close()
