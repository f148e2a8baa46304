from __future__ import annotations

import json
from pathlib import Path

import pytest

from a3gan.errors import InputError, ModelError
from a3gan.training.rundir import RunDir, atomic_write, atomic_write_text


def fake_checkpoint(run: RunDir, step: int, latest: bool = True) -> None:
    atomic_write_text(run.weights_path(step), f"w{step}")
    atomic_write_text(run.state_path(step), f"s{step}")
    if latest:
        run.write_latest(step)


def test_atomic_write_replaces_or_leaves_old_file(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "f.txt"
    atomic_write_text(p, "old")
    assert p.read_text() == "old"

    def boom(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise KeyboardInterrupt  # a kill-like interruption in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(p, boom)
    assert p.read_text() == "old"
    assert sorted(x.name for x in p.parent.iterdir()) == ["f.txt"]  # no temporary left


def test_check_can_start(tmp_path: Path) -> None:
    RunDir(tmp_path / "new").check_can_start(resume=False)  # absent: fine
    (tmp_path / "empty").mkdir()
    RunDir(tmp_path / "empty").check_can_start(resume=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(InputError, match="not empty"):
        RunDir(tmp_path / "full").check_can_start(resume=False)
    with pytest.raises(InputError, match="cannot resume.*no config.yaml"):
        RunDir(tmp_path / "full").check_can_start(resume=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="not a folder"):
        RunDir(tmp_path / "file").check_can_start(resume=False)


def test_latest_prune_and_half_written_files(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.latest() is None and run.checkpoint_steps() == []
    for s in (2, 4, 6, 8):
        fake_checkpoint(run, s)
    # a half-written checkpoint of a killed run: weights without state, and a temporary
    atomic_write_text(run.weights_path(10), "w10")
    (run.ckpt_dir / ".step_000010.state.pt.abc.tmp").write_text("partial")
    assert run.checkpoint_steps() == [2, 4, 6, 8]
    ref = run.latest()
    assert ref is not None and ref.step == 8 and ref.weights == run.weights_path(8)
    assert json.loads(run.latest_path.read_text())["state"] == "step_000008.state.pt"
    assert run.prune(2) == [2, 4]
    assert run.checkpoint_steps() == [6, 8]
    assert [p.name for p in run.remove_stale_temporaries()] == [".step_000010.state.pt.abc.tmp"]


def test_prune_never_deletes_latest(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    fake_checkpoint(run, 4)
    fake_checkpoint(run, 6, latest=False)
    fake_checkpoint(run, 8, latest=False)
    run.write_latest(4)
    assert run.prune(1) == [6]
    assert run.checkpoint_steps() == [4, 8]


def test_broken_latest_pointer(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    fake_checkpoint(run, 2)
    run.state_path(2).unlink()
    with pytest.raises(ModelError, match="step_000002.state.pt, which is missing"):
        run.latest()
    run.latest_path.write_text("{not json")
    with pytest.raises(ModelError, match="malformed checkpoint pointer"):
        run.latest()
    run.latest_path.write_text(json.dumps({"step": 2, "weights": "../../etc/passwd", "state": "x"}))
    with pytest.raises(ModelError, match="missing"):
        run.latest()


def test_latest_without_pointer_is_the_newest_complete_checkpoint(tmp_path: Path) -> None:
    """A run folder copied by hand (checkpoints without ``latest``) resumes from its newest checkpoint, not step 0."""
    run = RunDir(tmp_path)
    fake_checkpoint(run, 250, latest=False)
    fake_checkpoint(run, 1750, latest=False)
    atomic_write_text(run.weights_path(2000), "w2000")  # no state: incomplete
    ref = run.latest()
    assert ref is not None and ref.step == 1750
    assert ref.weights == run.weights_path(1750) and ref.state == run.state_path(1750)
