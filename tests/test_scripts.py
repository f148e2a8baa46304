"""scripts/: select_model.py (the shipping rule of MODEL_CARD.md) and the probes (controls, loss balance, D memorisation)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def sel():
    return _script("select_model")


def _summary(
    mobile, dlib, det, brisque, orig=16.0, step=1, grid=2.0, grid_orig=2.0, colour=0.01, kid=3.0, kept=0.87
):
    s = {"brisque_orig": orig, "step": step, "grid_orig": grid_orig, "colour_orig": 0.005}
    for m in ("a3gan-0", "a3gan-5"):
        s[f"ver_mobileface_{m}"] = mobile
        s[f"ver_dlib_{m}"] = dlib
        s[f"det_{m}"] = det
        s[f"brisque_{m}"] = brisque
        s[f"grid_{m}"] = grid
        s[f"colour_{m}"] = colour
        s[f"kid_{m}"] = kid
        s[f"lattice_{m}"] = 2.0
        s[f"changed_{m}"] = 0.1
        s[f"kept_{m}"] = kept
    return s


def test_lowest_verification_among_eligible_wins(sel):
    rows, winner = sel.rank(
        {
            "a": _summary(mobile=20.0, dlib=4.0, det=95.0, brisque=22.0),
            "b": _summary(mobile=10.0, dlib=9.0, det=93.0, brisque=25.9),
            # most anonymous, but not realistic enough: BRISQUE 26.5 > 16 + 10
            "c": _summary(mobile=1.0, dlib=0.0, det=99.0, brisque=26.5),
            # anonymous, but faces no longer found: 85% < 90%
            "d": _summary(mobile=2.0, dlib=0.0, det=85.0, brisque=18.0),
        },
        brisque_margin=10.0,
        min_detection=0.90,
    )
    assert winner == "b"
    by = {r["name"]: r for r in rows}
    assert by["c"]["eligible"] is False and "BRISQUE" in by["c"]["why"]
    assert by["d"]["eligible"] is False and "detection" in by["d"]["why"]
    assert by["a"]["score"] == (20.0, 4.0)


def test_dlib_breaks_ties_and_nothing_eligible_gives_none(sel):
    _, winner = sel.rank(
        {"a": _summary(10.0, 5.0, 95.0, 20.0), "b": _summary(10.0, 3.0, 95.0, 20.0)}, 10.0, 0.9
    )
    assert winner == "b"
    _, winner = sel.rank({"a": _summary(10.0, 5.0, 50.0, 20.0)}, 10.0, 0.9)
    assert winner is None


def test_grid_guard_excludes_checkerboard_faces(sel):
    rows, winner = sel.rank(
        {
            "clean": _summary(mobile=8.0, dlib=1.0, det=95.0, brisque=20.0, grid=3.0),  # 1.5x originals
            "grid": _summary(mobile=2.0, dlib=0.0, det=95.0, brisque=20.0, grid=17.0),  # 8.5x
            "old": {**_summary(mobile=1.0, dlib=0.0, det=95.0, brisque=20.0), "grid_orig": None},
        },
        10.0,
        0.9,
        max_grid_ratio=2.0,
    )
    by = {r["name"]: r for r in rows}
    assert winner == "clean"
    assert by["clean"]["grid"] == pytest.approx(1.5)
    assert "grid 8.5x" in by["grid"]["why"]
    assert "not measured" in by["old"]["why"]
    _, winner = sel.rank({"grid": _summary(2.0, 0.0, 95.0, 20.0, grid=17.0)}, 10.0, 0.9, max_grid_ratio=10.0)
    assert winner == "grid"


def test_colour_noise_guard(sel):
    sums = {
        "smooth": _summary(mobile=8.0, dlib=1.0, det=95.0, brisque=20.0, colour=0.04),
        "speckled": _summary(mobile=2.0, dlib=0.0, det=95.0, brisque=20.0, colour=0.28),
        "old": {**_summary(mobile=1.0, dlib=0.0, det=95.0, brisque=20.0), "colour_a3gan-0": None},
    }
    rows, winner = sel.rank(sums, 10.0, 0.9, max_colour_noise=None)
    assert winner == "old"  # without the guard the colour score is only shown
    rows, winner = sel.rank(sums, 10.0, 0.9)
    assert winner == "smooth"  # default guard 0.05
    rows, winner = sel.rank(sums, 10.0, 0.9, max_colour_noise=0.1)
    by = {r["name"]: r for r in rows}
    assert winner == "smooth"
    assert by["smooth"]["colour"] == pytest.approx(0.04)
    assert "colour noise 0.280 > 0.1" in by["speckled"]["why"]
    assert "colour noise not measured" in by["old"]["why"]
    assert "colour noise" in sel.table(rows, winner)


def test_kid_guard_keeps_checkpoints_near_the_most_realistic(sel):
    sums = {
        "real": _summary(mobile=9.5, dlib=3.0, det=95.0, brisque=20.0, kid=2.0),
        "ok": _summary(mobile=9.0, dlib=2.0, det=95.0, brisque=20.0, kid=3.9),  # 1.95x the best
        "template": _summary(mobile=2.0, dlib=0.0, det=95.0, brisque=20.0, kid=6.0),  # 3x: too far
        # the lowest KID of all, but it fails another guard, so it does not set the bar
        "blocky": _summary(mobile=1.0, dlib=0.0, det=95.0, brisque=20.0, kid=0.5, colour=0.3),
        "old": {**_summary(mobile=1.0, dlib=0.0, det=95.0, brisque=20.0), "kid_a3gan-5": None},
    }
    rows, winner = sel.rank(sums, 10.0, 0.9)
    by = {r["name"]: r for r in rows}
    assert winner == "ok"
    assert by["ok"]["kid"] == pytest.approx(3.9) and by["ok"]["eligible"]
    assert by["template"]["why"] == "KID-MF 6.00 > 2 x best 2.00"
    assert "colour noise" in by["blocky"]["why"] and "KID" not in by["blocky"]["why"]
    assert "KID-MF not measured" in by["old"]["why"]
    assert "KID-MF" in sel.table(rows, winner)
    _, winner = sel.rank(sums, 10.0, 0.9, max_kid_ratio=None)
    assert winner == "old"  # without the guard KID is only shown
    # the bar never drops below the floor: a near-perfect best does not exclude everything else
    _, winner = sel.rank(
        {"a": _summary(5.0, 1.0, 95.0, 20.0, kid=0.01), "b": _summary(4.0, 1.0, 95.0, 20.0, kid=0.45)},
        10.0,
        0.9,
    )
    assert winner == "b"


def test_verification_guard_keeps_a_leaky_model_from_setting_the_realism_bar(sel):
    sums = {
        # realistic because it barely changes the face: 40% of outputs still verify as the input's person
        "leaky": _summary(mobile=40.0, dlib=20.0, det=99.0, brisque=20.0, kid=1.3),
        "anon": _summary(mobile=2.0, dlib=0.0, det=99.0, brisque=20.0, kid=2.8),  # 2.15x leaky, 1.4x soft
        "soft": _summary(mobile=4.0, dlib=0.0, det=99.0, brisque=20.0, kid=2.0),
    }
    rows, winner = sel.rank(sums, 10.0, 0.9)
    by = {r["name"]: r for r in rows}
    assert winner == "anon"
    assert by["leaky"]["why"] == "verification 40.0% > 10%: not anonymous"
    assert by["anon"]["eligible"] and by["soft"]["eligible"]
    # without the guard the leaky model sets the bar (2 x 1.3 = 2.6) and the most anonymous one is dropped
    rows, winner = sel.rank(sums, 10.0, 0.9, max_verification=None)
    by = {r["name"]: r for r in rows}
    assert winner == "soft"
    assert by["anon"]["why"] == "KID-MF 2.80 > 2 x best 1.30"


def test_kept_guard_drops_a_checkpoint_that_ignores_the_mask(sel):
    sums = {
        "obeys": _summary(mobile=2.0, dlib=0.0, det=99.0, brisque=20.0, kept=0.87),
        "edge": _summary(mobile=1.5, dlib=0.0, det=99.0, brisque=20.0, kept=0.841),  # 2.9 points below
        "ignores": _summary(mobile=0.2, dlib=0.0, det=99.0, brisque=20.0, kept=0.82),  # 5 points below
        # keeps the most, but fails another guard, so it does not set the bar
        "leaky": _summary(mobile=40.0, dlib=20.0, det=99.0, brisque=20.0, kept=0.95),
        "old": {**_summary(mobile=0.1, dlib=0.0, det=99.0, brisque=20.0), "kept_a3gan-0": None},
    }
    rows, winner = sel.rank(sums, 10.0, 0.9)
    by = {r["name"]: r for r in rows}
    assert by["obeys"]["kept"] == pytest.approx(87.0) and by["edge"]["eligible"]
    assert by["ignores"]["why"] == "attributes kept 82.0% < best 87.0 - 3"
    assert "kept" not in by["leaky"]["why"]
    assert by["old"]["eligible"] and by["old"]["kept"] is None  # reports without it are not judged on it
    assert winner == "old"
    del sums["old"]
    assert sel.rank(sums, 10.0, 0.9)[1] == "edge"
    assert sel.rank(sums, 10.0, 0.9, max_kept_drop=None)[1] == "ignores"
    assert "attr. kept (m=0)" in sel.table(rows, winner) and "| 82.0 |" in sel.table(rows, winner)


def test_wilson_interval_matches_hand_computation(sel):
    # k=3, n=300, z=1.959964: centre (0.01 + z^2/600) / (1 + z^2/300) = 0.016195,
    # half-width z * sqrt(0.01 * 0.99 / 300 + z^2 / 360000) / (1 + z^2/300) = 0.012789
    lo, hi = sel.wilson_interval(3, 300)
    assert lo == pytest.approx(0.3406, abs=1e-3) and hi == pytest.approx(2.8984, abs=1e-3)
    lo, hi = sel.wilson_interval(0, 150)  # no leak seen is not "0% for sure"
    assert lo == pytest.approx(0.0, abs=1e-9) and hi == pytest.approx(100 * 3.841459 / (150 + 3.841459), abs=1e-3)
    with pytest.raises(ValueError):
        sel.wilson_interval(0, 0)


def test_paired_test_counts_discordant_faces_only(sel):
    a = [1] * 5 + [0] * 10 + [1, 1]
    b = [0] * 5 + [1] + [0] * 9 + [1, 1]
    # 5 faces leak only under a, 1 only under b; the 2 both leak do not count. p = 2 * (1 + 6) / 2^6
    assert sel.paired_test(a, b) == (5, 1, pytest.approx(14 / 64))
    assert sel.paired_test(b, a) == (1, 5, pytest.approx(14 / 64))
    assert sel.paired_test([0, 1], [0, 1]) == (0, 0, 1.0)
    with pytest.raises(ValueError):
        sel.paired_test([0, 1], [0])


def test_selection_table_shows_interval_and_paired_comparison(sel):
    n = 150
    flags = {
        "w": ([1] * 3 + [0] * (n - 3), [0] * n),  # 3 of 300 pairs verified
        "r": ([1] * 6 + [0] * (n - 6), [1] + [0] * (n - 1)),  # 7 of 300
    }
    sums = {}
    for name, (f0, f5) in flags.items():
        s = _summary(mobile=100 * (sum(f0) + sum(f5)) / (2 * n), dlib=0.0, det=99.0, brisque=20.0)
        s["flags_mobileface_a3gan-0"], s["flags_mobileface_a3gan-5"] = f0, f5
        sums[name] = s
    sums["old"] = _summary(mobile=4.0, dlib=0.0, det=99.0, brisque=20.0)  # a report from before the flags
    rows, winner = sel.rank(sums, 10.0, 0.9)
    assert winner == "w"
    text = sel.table(rows, winner)
    assert "| 1.00 (0.3-2.9) |" in text  # 3 / 300 with its Wilson interval
    assert "| 4.00 |" in text  # no flags: no interval
    lines = sel.paired_lines(rows, winner)
    # r leaks on faces 0-5 at A3GAN-0 and face 0 at A3GAN-5, w on faces 0-2: 0 faces only under w, 4 only under r
    assert f"same {2 * n} (face" in lines and "- r: 0 / 4, p = 0.12" in lines and "old" not in lines
    assert sel.paired_lines(rows, None) == ""


def test_checkpoint_name(sel):
    assert sel.checkpoint_name(Path("runs/r1/checkpoints/step_000250.safetensors")) == "r1-step_000250"
    assert sel.checkpoint_name(Path("x/model.safetensors")) == "x-model"


def test_summarize_reads_a_report(sel):
    def row(method, ver, det, brisque):
        return {
            "method": method,
            "verification": {
                rec: {"far=0.001": {"same_image": ver, "other_images": 0.0, "same_image_verified": [1, 0, 0, 0, 0]}}
                for rec in ("dlib", "mobileface")
            },
            "detection": {"centerface": {"rate": det}},
            "brisque": {"mean": brisque},
            "grid": {"score": 4.0},
            "colour": {"score": 0.2},
            "kid": {"score": 4.5},
            "spectrum": {"power": [3.0, 1.0, 0.5 * brisque / 21.0]},
            "attributes": {"changed_mean": 0.25, "preserved_mean": 0.8 if method == "a3gan-0" else 0.9},
        }

    report = {
        "settings": {"models": {"a3gan": {"meta": {"step": 7}}}},
        "rows": [
            {
                "method": "Original",
                "brisque": {"mean": 16.5},
                "grid": {"score": 2.0},
                "colour": {"score": 0.005},
                "spectrum": {"power": [4.0, 2.0, 0.25]},
            },
            row("a3gan-0", 0.2, 0.95, 21.0),
            row("a3gan-5", 0.1, 0.9, 23.0),
        ],
    }
    s = sel.summarize(json.loads(json.dumps(report)))
    assert s["step"] == 7 and s["brisque_orig"] == 16.5 and s["grid_orig"] == 2.0 and s["grid_a3gan-0"] == 4.0
    assert s["colour_orig"] == 0.005 and s["colour_a3gan-5"] == 0.2 and s["kid_a3gan-0"] == 4.5
    assert s["ver_mobileface_a3gan-0"] == pytest.approx(20.0)
    assert s["ver_dlib_a3gan-5"] == pytest.approx(10.0)
    assert s["det_a3gan-5"] == pytest.approx(90.0)
    assert s["flags_mobileface_a3gan-0"] == [1, 0, 0, 0, 0]
    assert s["kept_a3gan-0"] == 0.8 and s["kept_a3gan-5"] == 0.9
    # lattice: last ring over the originals' (0.5 / 0.25 = 2, 0.5 * 23 / 21 / 0.25); reported, not a guard
    assert s["lattice_a3gan-0"] == pytest.approx(2.0) and s["lattice_a3gan-5"] == pytest.approx(2.0 * 23 / 21)
    rows, winner = sel.rank({"x": s}, 10.0, 0.85, max_colour_noise=None, max_verification=None)
    assert winner == "x" and rows[0]["lattice"] == pytest.approx((2.0 + 2.0 * 23 / 21) / 2)
    assert rows[0]["kept"] == pytest.approx(85.0)
    assert f"| {rows[0]['lattice']:.2f} |" in sel.table(rows, winner)
    # a report from before the lattice score: not measured, shown as "-"
    del report["rows"][0]["spectrum"]
    s_old = sel.summarize(json.loads(json.dumps(report)))
    assert s_old["lattice_a3gan-0"] is None
    rows, _ = sel.rank({"x": s_old}, 10.0, 0.85)
    assert rows[0]["lattice"] is None


def test_probe_controls_sees_an_ignored_mask():
    """The w/o-mask ablation cannot react to m (Δ exactly 0); the full model at random init does."""
    import torch

    from a3gan.config import load_config
    from a3gan.nets import Discriminator, Generator

    probe = _script("probe_controls").probe
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    a_s = torch.bernoulli(torch.full((4, 10), 0.5))
    torch.manual_seed(0)
    no_mask = Generator(load_config("tiny", ["model.use_mask=false"]).model).eval()
    r = probe(no_mask, None, x, a_s)
    assert r["mask_delta"] == 0.0 and r["z_delta"] > 0 and "flip_a3gan-0" not in r
    cfg = load_config("tiny").model
    r = probe(Generator(cfg).eval(), Discriminator(cfg).eval(), x, a_s)
    assert r["mask_delta"] > 0 and len(r["flip_a3gan-5"]) == 10
    assert all(0.0 <= v <= 1.0 for v in r["flip_a3gan-5"])


def test_ship_model_keeps_g_ema_and_optionally_d(tmp_path: Path) -> None:
    """scripts/ship_model.py: EMA generator only by default; --with-d adds D, which train.init_from then loads."""
    import subprocess
    import sys

    import torch

    from a3gan.checkpoint import load_generator, module_state, read_checkpoint, save_checkpoint
    from a3gan.config import load_config
    from a3gan.nets import Discriminator, Generator
    from a3gan.training.loop import _init_from

    cfg = load_config("tiny")
    torch.manual_seed(0)
    G, G_ema, D = Generator(cfg.model), Generator(cfg.model), Discriminator(cfg.model)
    ckpt = tmp_path / "step_000002.safetensors"
    cfg.train.init_from = "/home/someone/runs/prev.safetensors"
    cfg.train.identity_weights = "/home/someone/dlib.safetensors"
    ident = {"name": "dlib", "weights": "/home/someone/.venv/models/dlib_v1.dat", "sha256": "ab"}
    save_checkpoint(ckpt, {"G": G, "D": D, "G_ema": G_ema}, cfg, {"step": 2, "images_seen": 96, "identity": ident})
    script = str(ROOT / "scripts" / "ship_model.py")

    def ship(src: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, script, str(src), str(out), "--note", "t", *flags], capture_output=True, text=True
        )

    plain, with_d = tmp_path / "plain.safetensors", tmp_path / "with_d.safetensors"
    assert ship(ckpt, plain).returncode == 0
    assert ship(ckpt, with_d, "--with-d").returncode == 0
    t_plain, _, meta = read_checkpoint(plain)
    t_d, _, _ = read_checkpoint(with_d)
    assert {k.split(".")[0] for k in t_plain} == {"G_ema"}
    assert {k.split(".")[0] for k in t_d} == {"G_ema", "D"}
    assert meta["step"] == 2 and meta["weights"] == "G_ema" and meta["note"] == "t"
    # the shipped file names its provenance by file name, not by the training machine's paths
    assert meta["identity"] == {**ident, "weights": "dlib_v1.dat"}
    assert read_checkpoint(plain)[1].train.init_from == "prev.safetensors"
    assert read_checkpoint(plain)[1].train.identity_weights is None  # a path of the training machine
    for k, v in D.state_dict().items():
        assert torch.equal(module_state(t_d, "D")[k], v)
    D2 = Discriminator(cfg.model)
    assert _init_from(str(with_d), cfg, Generator(cfg.model), D2, Generator(cfg.model)) == ["G", "G_ema", "D"]
    assert all(torch.equal(v, D.state_dict()[k]) for k, v in D2.state_dict().items())
    # --half: float16 on disk (about half the bytes), loaded back into float32 modules with the same output
    half = tmp_path / "half.safetensors"
    assert ship(ckpt, half, "--with-d", "--half").returncode == 0
    t_h, _, meta_h = read_checkpoint(half)
    assert meta_h["stored_dtype"] == "float16" and meta["stored_dtype"] == "float32"
    assert all(v.dtype == torch.float16 for v in t_h.values() if v.is_floating_point())
    assert half.stat().st_size < 0.6 * with_d.stat().st_size
    G32, _, _ = load_generator(plain)
    G16, _, _ = load_generator(half)
    assert all(p.dtype == torch.float32 for p in G16.parameters())
    x, m, z = torch.rand(2, 3, 32, 32) * 2 - 1, torch.ones(2, 10), torch.randn(2, cfg.model.z_dim)
    y32, y16 = G32(x, m, z), G16(x, m, z)
    assert 0 < (y32 - y16).abs().max() < 0.02  # rounded weights, same image to within 1% of the range
    assert _init_from(str(half), cfg, Generator(cfg.model), Discriminator(cfg.model), Generator(cfg.model)) == [
        "G",
        "G_ema",
        "D",
    ]
    # --init-from-label records where the run really started when its init file was renamed in transit
    labelled = tmp_path / "labelled.safetensors"
    assert ship(ckpt, labelled, "--init-from-label", "gw38m83 step 10,000").returncode == 0
    assert read_checkpoint(labelled)[1].train.init_from == "gw38m83 step 10,000"
    # --d-from: G_ema of one checkpoint, D of another of the same model (provenance in the metadata)
    D_other = Discriminator(cfg.model)
    ck_d = tmp_path / "step_000003.safetensors"
    save_checkpoint(ck_d, {"G": G, "D": D_other, "G_ema": G_ema}, cfg, {"step": 3})
    mixed = tmp_path / "mixed.safetensors"
    assert ship(plain, mixed, "--with-d", "--d-from", str(ck_d)).returncode == 0
    t_m, _, meta_m = read_checkpoint(mixed)
    assert meta_m["d_source_checkpoint"] == ck_d.name and meta_m["d_step"] == 3
    assert all(torch.equal(module_state(t_m, "D")[k], v) for k, v in D_other.state_dict().items())
    assert all(torch.equal(module_state(t_m, "G_ema")[k], v) for k, v in module_state(t_plain, "G_ema").items())
    other_cfg = load_config("tiny", ["model.width=0.5"])
    ck_x = tmp_path / "step_000004.safetensors"
    save_checkpoint(ck_x, {"D": Discriminator(other_cfg.model)}, other_cfg, {"step": 4})
    r = ship(plain, tmp_path / "y.safetensors", "--with-d", "--d-from", str(ck_x))
    assert r.returncode != 0 and "different model" in r.stderr and "Traceback" not in r.stderr
    r = ship(plain, tmp_path / "y.safetensors", "--d-from", str(ck_d))
    assert r.returncode != 0 and "needs --with-d" in r.stderr
    # a file without D cannot be shipped --with-d: one clear line, non-zero exit
    r = ship(plain, tmp_path / "x.safetensors", "--with-d")
    assert r.returncode != 0 and "holds no discriminator" in r.stderr and "Traceback" not in r.stderr


def test_probe_loss_balance_term_gradients_by_hand():
    import torch

    tg = _script("probe_loss_balance").term_gradients
    fake = torch.tensor([[1.0, -2.0], [0.5, 2.0]], requires_grad=True)
    other = torch.ones(3, requires_grad=True)
    r = tg({"sq": (2.0, (fake**2).sum()), "lin": (0.5, fake.sum()), "off": (1.0, other.sum())}, fake)
    # d(2 * sum x^2)/dx = 4x -> 4 * ||x|| = 4 * sqrt(1 + 4 + 0.25 + 4); d(0.5 * sum x)/dx = 0.5 -> 0.5 * sqrt(4)
    assert r["sq"] == (2.0, pytest.approx(9.25), pytest.approx(4 * 9.25**0.5))
    assert r["lin"] == (0.5, pytest.approx(1.5), pytest.approx(1.0))
    assert r["off"][2] == 0.0  # a term that does not read the image asks nothing of it
    with pytest.raises(ValueError):
        tg({"sq": (1.0, fake.detach().sum())}, fake.detach())


def test_probe_loss_balance_measures_each_active_term():
    import torch

    from a3gan.config import load_config
    from a3gan.nets import Discriminator, Generator

    probe = _script("probe_loss_balance").probe
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    a_s = torch.bernoulli(torch.full((4, 10), 0.5))
    identity = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=4), torch.nn.Flatten())
    cfg = load_config("tiny", ["loss.lambda_div=1", "loss.lambda_spectral=0"])
    G, D = Generator(cfg.model), Discriminator(cfg.model).eval()
    r = probe(G, D, identity, cfg, x, a_s)
    assert set(r) == {"adv", "att2", "div", "deid"}
    assert all(gn > 0 for _, _, gn in r.values())
    assert r["att2"][0] == cfg.loss.lambda_att2 and r["deid"][0] == cfg.loss.lambda_deid
    cfg2 = load_config("tiny", ["loss.lambda_div=1", "loss.lambda_spectral=0"])
    cfg2.loss.lambda_att2 = 2 * cfg.loss.lambda_att2  # same draws, twice the weight: twice the pull
    r2 = probe(G, D, identity, cfg2, x, a_s)
    assert r2["att2"][2] == pytest.approx(2 * r["att2"][2], rel=1e-5)
    assert r2["adv"][2] == pytest.approx(r["adv"][2], rel=1e-5)
    assert "deid" not in probe(G, D, None, cfg, x, a_s)
    # the projected D's term is measured through the network it reads (here O-Net: no identity network needed)
    from a3gan.nets.projected import build_projected, projection_net

    cfg3 = load_config("tiny", ["loss.lambda_spectral=0", "loss.lambda_proj=2", "loss.proj_net=onet"])
    onet = projection_net("onet", None)
    r3 = probe(G, D, None, cfg3, x, a_s, Dp=build_projected(onet, (1, 2, 3)), proj_net=onet)
    assert set(r3) == {"adv", "att2", "proj"} and r3["proj"][0] == 2.0 and r3["proj"][2] > 0


def test_select_model_refuses_reports_of_another_sample(sel, tmp_path, capsys):
    ckpt = tmp_path / "r1" / "checkpoints" / "step_000001.safetensors"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not read: the report exists")
    out = tmp_path / "sel"
    (out / "r1-step_000001").mkdir(parents=True)
    (out / "r1-step_000001" / "report.json").write_text(json.dumps({"settings": {"limit": 150, "seed": 0}, "rows": []}))
    assert sel.report_sample(out / "r1-step_000001" / "report.json") == (150, 0)
    assert sel.main([str(ckpt), "--data", str(tmp_path), "--out", str(out), "--limit", "600"]) == 2
    err = capsys.readouterr().err
    assert "--limit 150 --seed 0, not 600 / 0" in err and "use another --out" in err
    assert sel.report_sample(tmp_path / "missing.json") is None


def test_pair_lines_compares_any_two_checkpoints(sel):
    n = 20
    sums = {}
    for name, f0 in {"a": [1] * 4 + [0] * (n - 4), "b": [0] * n, "c": [1] * 4 + [0] * (n - 4)}.items():
        s = _summary(mobile=100 * sum(f0) / (2 * n), dlib=0.0, det=99.0, brisque=20.0)
        s["flags_mobileface_a3gan-0"], s["flags_mobileface_a3gan-5"] = f0, [0] * n
        sums[name] = s
    sums["old"] = _summary(mobile=1.0, dlib=0.0, det=99.0, brisque=20.0)
    rows, _ = sel.rank(sums, 10.0, 0.9)
    text = sel.pair_lines(rows, [("a", "b"), ("a", "c")])
    # a leaks on 4 faces b hides: p = 2 / 2^4; a and c leak on the same faces: nothing to tell them apart
    assert "- a vs b: 4 / 0 faces" in text and "p = 0.12" in text
    assert "- a vs c: 0 / 0 faces" in text and "p = 1" in text
    with pytest.raises(ValueError, match="no checkpoint named x"):
        sel.pair_lines(rows, [("a", "x")])
    with pytest.raises(ValueError, match="without per-face flags"):
        sel.pair_lines(rows, [("a", "old")])


def test_select_model_rejects_a_malformed_pair(sel, tmp_path, capsys):
    assert sel.main(["x.safetensors", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--pair", "a"]) == 2
    assert "--pair takes two checkpoint names" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_probe_loss_balance_bad_inputs_get_one_line(tmp_path, capsys):
    main = _script("probe_loss_balance").main
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    assert main(["--data", str(tmp_path), str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a readable safetensors file" in err and "Traceback" not in err


class _MemorisingD:
    """Knows the attributes of exactly the images it was shown; predicts all-0 (score -1) for anything else."""

    def __init__(self, x, a_s):
        self.x, self.a_s = x, a_s

    def __call__(self, img):
        import torch

        known = torch.tensor([torch.equal(img[i], self.x[i]) for i in range(img.shape[0])])
        logits = torch.where(known[:, None], 2 * self.a_s - 1, -torch.ones_like(self.a_s))
        return known.float() * 2 - 1, logits


def test_probe_d_memorization_by_hand():
    import torch

    mod = _script("probe_d_memorization")
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    a_s = torch.tensor([[1.0] * 3 + [0.0] * 7, [1.0] * 5 + [0.0] * 5])  # 8 of 20 bits are 1
    r = mod.measure(_MemorisingD(x, a_s), x, a_s, shift=2, fake=x.flip(-2))
    # as trained: all right, score 1; mirrored/shifted: all-0 guesses are right on the 12 zero bits, score -1
    assert r["seen"] == (1.0, 1.0)
    assert r["mirrored"] == (pytest.approx(12 / 20), -1.0) and r["shifted"] == (pytest.approx(12 / 20), -1.0)
    assert r["gap"] == pytest.approx(8 / 20) and r["fake"] == -1.0
    v = mod.views(x, 2)
    assert torch.equal(v["shifted"][..., 2:], x[..., :-2]) and (v["shifted"][..., :2] == 0).all()
    assert torch.equal(v["mirrored"], x.flip(-1))
    # a D that generalises (reads only per-image means, which mirroring keeps) shows no gap
    mean_d = lambda img: (img.mean(dim=(1, 2, 3)), img.mean(dim=(2, 3)).repeat(1, 4)[:, :10])  # noqa: E731
    assert mod.measure(mean_d, x, a_s, shift=0)["gap"] == 0.0


@pytest.mark.parametrize("script", ["probe_d_memorization", "probe_controls"])
def test_probes_bad_inputs_get_one_line(script, tmp_path, capsys):
    main = _script(script).main
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    assert main(["--data", str(tmp_path), str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert main(["--data", str(tmp_path / "none"), str(ROOT / "src/a3gan/assets/a3gan-small-celeba.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1


def test_ckpt_transfer_split_and_merge_are_lossless(tmp_path, capsys):
    """scripts/ckpt_transfer.py: parts stay under the limit, merge gives back the same tensors, dtypes and metadata,
    and refuses incomplete sets and parts of another file."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    ct = _script("ckpt_transfer")
    g = torch.Generator().manual_seed(0)
    tensors = {f"G_ema.w{i}": torch.randn(256, 256, generator=g).half() for i in range(5)}  # 128 KiB each
    tensors["D.b"] = torch.arange(7, dtype=torch.int64)
    src = tmp_path / "ck.safetensors"
    save_file(tensors, str(src), metadata={"config": "{}", "step": "5"})
    parts = ct.split(src, tmp_path / "out", max_mb=0.3)  # two 128 KiB tensors per part at most
    assert len(parts) == 3 and all(p.stat().st_size < 0.3 * 2**20 + 4096 for p in parts)
    merged = ct.merge(tmp_path / "m.safetensors", *reversed(parts))  # any order
    back = load_file(str(merged))
    assert back.keys() == tensors.keys()
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v)
    with safe_open(str(merged), framework="pt") as f:
        assert f.metadata() == {"config": "{}", "step": "5"}
    with pytest.raises(ValueError, match="missing"):
        ct.merge(tmp_path / "x.safetensors", *parts[:2])
    other = tmp_path / "other.safetensors"
    save_file({"a": torch.zeros(3)}, str(other), metadata={"step": "9"})
    (o,) = ct.split(other, tmp_path / "out2")
    with pytest.raises(ValueError, match="another checkpoint"):
        ct.merge(tmp_path / "x.safetensors", parts[0], o)
    with pytest.raises(ValueError, match="over --max-mb"):
        ct.split(src, tmp_path / "out3", max_mb=0.1)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 50)
    assert ct.main(["split", str(junk), str(tmp_path / "o4")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


@pytest.mark.parametrize("script", ["prepare_devcarry.sh", "gpu_train.sh"])
def test_device_scripts_are_valid_bash(script):
    import subprocess

    rc = subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)], capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr


def test_prepare_devcarry_rejects_a_folder_that_is_not_celeba(tmp_path):
    import subprocess

    (tmp_path / "photos").mkdir()
    r = subprocess.run(["bash", str(ROOT / "scripts" / "prepare_devcarry.sh"), str(tmp_path / "photos")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.startswith("error:") and r.stderr.count("\n") == 1
    assert not (tmp_path / "photos" / ".devcarry").exists()


def test_ship_model_with_d_keeps_the_projected_d(tmp_path: Path) -> None:
    """A checkpoint of a loss.lambda_proj run: --with-d ships its Dp beside D (float16 with --half), and
    train.init_from loads it back into a fresh Dp."""
    import subprocess
    import sys

    import torch

    from a3gan.checkpoint import module_state, read_checkpoint, save_checkpoint
    from a3gan.config import load_config
    from a3gan.nets import Discriminator, Generator
    from a3gan.nets.projected import ProjectedD
    from a3gan.training.loop import _init_from

    cfg = load_config("tiny", ["train.identity=dlib", "loss.lambda_proj=1"])
    torch.manual_seed(0)
    G, D, Dp = Generator(cfg.model), Discriminator(cfg.model), ProjectedD([32, 64], seed=3)
    ckpt = tmp_path / "step_000002.safetensors"
    save_checkpoint(ckpt, {"G": G, "D": D, "G_ema": Generator(cfg.model), "Dp": Dp}, cfg, {"step": 2})
    out = tmp_path / "shipped.safetensors"
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "ship_model.py"), str(ckpt), str(out), "--with-d", "--half"],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    t, _, _ = read_checkpoint(out)
    assert {k.split(".")[0] for k in t} == {"G_ema", "D", "Dp"}
    assert set(module_state(t, "Dp")) == set(Dp.state_dict())
    fresh = ProjectedD([32, 64], seed=0)
    assert _init_from(str(out), cfg, Generator(cfg.model), Discriminator(cfg.model), Generator(cfg.model), Dp=fresh)[-1] == "Dp"
    for k, v in Dp.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v, atol=2e-3, rtol=2e-3)  # float16 on disk


def test_kid_bar_is_set_only_by_checkpoints_as_anonymous_as_the_best(sel):
    """A checkpoint that leaks significantly more faces (paired test) does not set the KID-MF bar: its low KID-MF
    no longer makes the most anonymous checkpoint 'unrealistic'. Level ones (p >= alpha) still do."""
    n = 300

    def flagged(leaks: list[int], kid: float) -> dict:
        f0 = [1 if i in leaks else 0 for i in range(n)]
        s = _summary(mobile=100 * len(leaks) / (2 * n), dlib=0.0, det=99.0, brisque=14.0, kid=kid)
        s["flags_mobileface_a3gan-0"], s["flags_mobileface_a3gan-5"] = f0, [0] * n
        return s

    sums = {
        "anon": flagged([0, 1, 2], kid=1.4),  # 3 of 600 pairs, the most anonymous
        "leaky": flagged(list(range(3, 23)), kid=0.5),  # 20 others leak: 3 / 20, p < 0.001
    }
    rows, winner = sel.rank(sums, 10.0, 0.9)
    by = {r["name"]: r for r in rows}
    assert winner == "anon" and by["anon"]["eligible"] and not by["leaky"]["kid_ref"]
    # the old rule (every passing checkpoint sets the bar): 1.4 > 2 x 0.5 drops the anonymous one
    rows, winner = sel.rank(sums, 10.0, 0.9, kid_ref_alpha=None)
    by = {r["name"]: r for r in rows}
    assert winner == "leaky" and by["anon"]["why"] == "KID-MF 1.40 > 2 x best 0.50"
    # level in anonymity (4 vs 3 faces, p 1.0): it sets the bar as before
    sums["level"] = flagged([0, 1, 5, 6], kid=0.6)
    rows, winner = sel.rank(sums, 10.0, 0.9)
    by = {r["name"]: r for r in rows}
    assert by["level"]["kid_ref"] and winner == "level"
    assert by["anon"]["why"] == "KID-MF 1.40 > 2 x best 0.60 (among those not significantly less anonymous)"
