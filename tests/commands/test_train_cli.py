"""`a3gan train` through the console entry point: a run, a resume with the run's own config, one-line errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from a3gan.cli import main

_spec = importlib.util.spec_from_file_location(
    "a3gan_tests_celeba_synth", Path(__file__).resolve().parents[1] / "training" / "celeba_synth.py"
)
_synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_synth)

QUIET = ["--no-progress", "--set", "train.sample_every=1000"]


@pytest.fixture(scope="module")
def celeba(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _synth.make_synthetic_celeba(tmp_path_factory.mktemp("cli_celeba"), n=12)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_train_then_resume_with_the_runs_config(tmp_path: Path, celeba: Path, capsys) -> None:
    out = tmp_path / "run"
    rc = main(["train", "--config", "tiny", "--data", str(celeba), "--out", str(out), "--steps", "2",
               "--set", "train.ckpt_every=1", "--set", "train.keep_ckpts=1", *QUIET])  # fmt: skip
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "trained 2 G steps (0 -> 2)" in cap.out
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "latest", "step_000002.safetensors", "step_000002.state.pt"
    ]  # fmt: skip
    # --resume without --config: the run's config.yaml (keep_ckpts=1 survives), --steps extends it
    rc = main(
        ["train", "--resume", "--data", str(celeba), "--out", str(out), "--steps", "3", "--no-progress"]
    )
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "(2 -> 3)" in cap.out
    assert json.loads((out / "checkpoints" / "latest").read_text())["step"] == 3
    assert not (out / "checkpoints" / "step_000002.safetensors").exists()
    assert "total_steps: 3" in (out / "config.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "{tmp}/a", "--data", "{data}"], "--config is required"),
        (["--config", "nope", "--out", "{tmp}/a", "--data", "{data}"], "no preset or config file named 'nope'"),
        (["--config", "tiny", "--out", "{tmp}/a", "--data", "{data}", "--set", "train.bogus=1"],
         "unknown config key 'train.bogus'"),
        (["--config", "tiny", "--out", "{tmp}/a", "--data", "{data}", "--identity", "facenet"],
         "train.identity must be one of"),
        (["--config", "tiny", "--out", "{tmp}/a", "--data", "{tmp}/missing"], "no such folder"),
        (["--config", "tiny", "--out", "{tmp}/a"], "--data is required"),
        (["--config", "tiny", "--out", "{tmp}/a", "--data", "{data}", "--device", "tpu"], "--device must be"),
        (["--config", "tiny", "--out", "{tmp}/full", "--data", "{data}"], "not empty; pass --resume"),
        (["--resume", "--out", "{tmp}/a", "--data", "{data}"], "cannot resume"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_error(
    tmp_path: Path, celeba: Path, capsys, args: list[str], message: str
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    argv = ["train", *[a.format(tmp=tmp_path, data=celeba) for a in args], "--no-progress"]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc != 0
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert not (tmp_path / "a").exists()  # nothing written for a run that did not start
