"""A training run's folder: config, checkpoints, ``latest`` pointer, atomic writes and keep-last-N.

Layout of ``RUN_DIR``::

    config.yaml                        the full config, written at start
    metrics.jsonl                      one JSON object per log step
    tb/                                TensorBoard event files
    samples/step_XXXXXX.png            sample grids
    checkpoints/step_XXXXXX.safetensors  G, D and G_ema weights, config + meta in the metadata
    checkpoints/step_XXXXXX.state.pt     optimizer states, step, RNG and data-order state
    checkpoints/latest                   {"step": ..., "weights": ..., "state": ...}

Every file is written to a temporary name in the same folder and moved into place with ``os.replace``, so a run
killed at any instant leaves either the old file or the new one, never half of one. ``latest`` is rewritten only
after both files of a checkpoint are complete, so it never points at a half-written checkpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from a3gan.errors import InputError, ModelError

_STEP_RE = re.compile(r"^step_(\d+)\.safetensors$")
LATEST = "latest"


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, fsync it and move it over ``path``."""
    from a3gan.checkpoint import atomic_write_bytes

    atomic_write_bytes(Path(path), write)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, write)


@dataclass(frozen=True)
class CheckpointRef:
    """A complete checkpoint: its step and the two files."""

    step: int
    weights: Path
    state: Path


class RunDir:
    """Paths and checkpoint bookkeeping of one run folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def tb_dir(self) -> Path:
        return self.root / "tb"

    @property
    def samples_dir(self) -> Path:
        return self.root / "samples"

    @property
    def ckpt_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def latest_path(self) -> Path:
        return self.ckpt_dir / LATEST

    def weights_path(self, step: int) -> Path:
        return self.ckpt_dir / f"step_{step:06d}.safetensors"

    def state_path(self, step: int) -> Path:
        return self.ckpt_dir / f"step_{step:06d}.state.pt"

    def sample_path(self, step: int) -> Path:
        return self.samples_dir / f"step_{step:06d}.png"

    # -- start-up checks ---------------------------------------------------------------------------------------

    def is_empty(self) -> bool:
        return not self.root.exists() or not any(self.root.iterdir())

    def check_can_start(self, resume: bool) -> None:
        """A fresh run needs an empty (or absent) folder; a resumed one needs a run folder."""
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"--out {self.root} exists and is not a folder")
        if not resume and not self.is_empty():
            raise InputError(
                f"output folder {self.root} is not empty; pass --resume to continue the run in it, "
                "or choose a new --out"
            )
        if resume and not self.config_path.is_file():
            raise InputError(
                f"cannot resume: {self.root} holds no run (no config.yaml); start it without --resume"
            )

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete temporary files a killed run left behind (they are never referenced)."""
        removed = []
        for d in (self.root, self.ckpt_dir, self.samples_dir):
            if d.is_dir():
                for p in d.glob(".*.tmp"):
                    p.unlink(missing_ok=True)
                    removed.append(p)
        return removed

    # -- checkpoints -------------------------------------------------------------------------------------------

    def write_latest(self, step: int) -> None:
        ref = {
            "step": int(step),
            "weights": self.weights_path(step).name,
            "state": self.state_path(step).name,
        }
        atomic_write_text(self.latest_path, json.dumps(ref) + "\n")

    def latest(self) -> CheckpointRef | None:
        """The checkpoint ``latest`` points at; without that pointer (a run folder copied by hand, say) the newest
        complete checkpoint on disk; None if the run has none yet."""
        if not self.latest_path.exists():
            steps = self.checkpoint_steps()
            if not steps:
                return None
            return CheckpointRef(steps[-1], self.weights_path(steps[-1]), self.state_path(steps[-1]))
        try:
            ref = json.loads(self.latest_path.read_text(encoding="utf-8"))
            step = int(ref["step"])
            weights = self.ckpt_dir / str(ref["weights"])
            state = self.ckpt_dir / str(ref["state"])
        except (ValueError, KeyError, TypeError) as e:
            raise ModelError(f"{self.latest_path}: malformed checkpoint pointer ({e})") from None
        for p in (weights, state):
            if p.parent != self.ckpt_dir or not p.is_file():
                raise ModelError(f"{self.latest_path} points at {p.name}, which is missing")
        return CheckpointRef(step, weights, state)

    def checkpoint_steps(self) -> list[int]:
        """Steps of the complete checkpoints on disk (weights and state both present), ascending."""
        steps = []
        if self.ckpt_dir.is_dir():
            for p in self.ckpt_dir.iterdir():
                m = _STEP_RE.match(p.name)
                if m and self.state_path(int(m.group(1))).is_file():
                    steps.append(int(m.group(1)))
        return sorted(steps)

    def prune(self, keep: int) -> list[int]:
        """Delete all but the newest ``keep`` checkpoints (never the one ``latest`` points at)."""
        keep = max(1, int(keep))
        latest = self.latest()
        steps = self.checkpoint_steps()
        doomed = [s for s in steps[:-keep] if latest is None or s != latest.step]
        for s in doomed:
            self.state_path(s).unlink(missing_ok=True)
            self.weights_path(s).unlink(missing_ok=True)
        return doomed
