"""One-shot GPU benchmark (issue 7): generator faces/s and training images/s on a CUDA card.

Self-contained: needs only torch and the a3gan package (``PYTHONPATH=src``), no data files, no network. Prints
one markdown report and finishes in under ~3 minutes on an H100/H200:

    PYTHONPATH=src python3 benchmarks/gpu.py                   # on the GPU machine
    PYTHONPATH=src python3 benchmarks/gpu.py --quick --device cpu   # smoke run anywhere

Sections:
- matmul peak: 8192^3 products in fp32 (no TF32), TF32 and bf16, TFLOP/s (the card's reachable ceiling);
- generator: faces/s for the ``small`` and ``paper`` presets at batch 1/8/32/128 in fp32, TF32, bf16 autocast and
  bf16 autocast + channels_last (``torch.inference_mode``, cuDNN autotuning on), with achieved TFLOP/s counted
  by ``torch.utils.flop_counter.FlopCounterMode`` and its fraction of the matching matmul peak;
- training: images/s of real WGAN-GP steps (n_critic D steps with the gradient penalty + 1 G step, Adam, losses
  from ``a3gan.losses``) for the paper preset at batch 32 in bf16 autocast (and TF32 for reference), counted as
  the training loop does: (n_critic + 1) * batch images per G step. L_deid is left out (no identity weights
  travel to the machine), so the identity network's cost is not in these numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

try:  # PYTHONPATH=src, or an installed package
    import a3gan  # noqa: F401
except ImportError:  # pragma: no cover - running from a fresh clone without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from a3gan import losses
from a3gan.config import load_config
from a3gan.nets import Discriminator, Generator

MODES = ("fp32", "tf32", "bf16", "bf16+cl")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timeit(
    fn: Callable[[], object], device: torch.device, min_time: float, warmup: int = 3, max_iters: int = 1000
):
    """Seconds per call: ``warmup`` calls, then repeated calls until ``min_time`` seconds have passed."""
    for _ in range(warmup):
        fn()
    sync(device)
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        if n >= max_iters or (n % 2 == 0 and time.perf_counter() - t0 >= min_time):
            sync(device)
            el = time.perf_counter() - t0
            if el >= min_time or n >= max_iters:
                return el / n


@contextlib.contextmanager
def precision(mode: str, device: torch.device):
    """fp32: true fp32 matmuls/convs; tf32: TF32 tensor cores; bf16*: bf16 autocast (TF32 for the rest)."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    tf32 = mode != "fp32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        if mode.startswith("bf16"):
            with torch.autocast(device.type, dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def matmul_peak(device: torch.device, n: int, min_time: float) -> dict[str, float]:
    """TFLOP/s of an n x n x n product per precision."""
    out = {}
    for mode in ("fp32", "tf32", "bf16"):
        if device.type == "cpu" and mode == "tf32":
            continue
        dtype = torch.bfloat16 if mode == "bf16" else torch.float32
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        with precision("tf32" if mode == "tf32" else "fp32", device):
            dt = timeit(lambda a=a, b=b: a @ b, device, min_time)
        out[mode] = 2 * n**3 / dt / 1e12
    return out


def generator_flops(G: torch.nn.Module, res: int, n_attrs: int, device: torch.device) -> float:
    """FLOPs (2 x multiply-adds of conv, deconv, linear) of one face through G."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, res, res, device=device)
    m = torch.zeros(1, n_attrs, device=device)
    z = torch.zeros(1, G.cfg.z_dim, device=device)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        G(x, m, z)
    return float(fc.get_total_flops())


def bench_generator(preset: str, batches: list[int], modes: list[str], device: torch.device, min_time: float):
    cfg = load_config(preset)
    res, n = cfg.model.resolution, cfg.model.n_attrs
    G = Generator(cfg.model).to(device).eval().requires_grad_(False)
    flops = generator_flops(G, res, n, device)
    rows = []
    for mode in modes:
        if device.type == "cpu" and mode == "tf32":
            continue
        cl = mode.endswith("+cl")
        Gm = G.to(memory_format=torch.channels_last) if cl else G.to(memory_format=torch.contiguous_format)
        for b in batches:
            g = torch.Generator(device="cpu").manual_seed(0)
            x = (torch.rand(b, 3, res, res, generator=g) * 2 - 1).to(device)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            m = torch.bernoulli(torch.full((b, n), 0.5), generator=g).to(device)
            z = torch.randn(b, cfg.model.z_dim, generator=g).to(device)

            def step(Gm=Gm, x=x, m=m, z=z, mode=mode):
                with torch.inference_mode(), precision(mode, device):
                    return Gm(x, m, z)

            dt = timeit(step, device, min_time)
            rows.append(
                {
                    "preset": preset,
                    "mode": mode,
                    "batch": b,
                    "faces_s": b / dt,
                    "tflops": flops * b / dt / 1e12,
                }
            )
    G.to(memory_format=torch.contiguous_format)
    return flops, rows


def train_step_fn(
    preset: str,
    batch: int,
    mode: str,
    device: torch.device,
    n_critic: int | None = None,
    identity: torch.nn.Module | None = None,
    sync_logs: bool = True,
    fused_adam: bool = False,
):
    """A closure running one real training iteration (n_critic D steps + 1 G step), and images per call.

    As ``a3gan.training.loop``: D steps on detached fakes with the gradient penalty, then one G step with D frozen;
    ``identity`` (a frozen face-embedding network) adds L_deid to the G step as the loop does.
    ``sync_logs=False`` computes the same losses from the same ``a3gan.losses`` terms without the ``.item()`` calls
    of ``d_loss``/``g_loss`` (each one a host-device sync); ``fused_adam`` uses Adam's fused CUDA kernel."""
    cfg = load_config(preset)
    tc, mc = cfg.train, cfg.model
    k = tc.n_critic if n_critic is None else n_critic
    G = Generator(mc).to(device).train()
    D = Discriminator(mc).to(device).train()
    extra = {"fused": True} if fused_adam else {}
    opt_g = torch.optim.Adam(G.parameters(), lr=tc.lr_g, betas=(tc.beta1, tc.beta2), **extra)
    opt_d = torch.optim.Adam(D.parameters(), lr=tc.lr_d, betas=(tc.beta1, tc.beta2), **extra)
    d_loss, g_loss = (losses.d_loss, losses.g_loss) if sync_logs else (_d_loss_nosync, _g_loss_nosync)
    g = torch.Generator(device="cpu").manual_seed(0)
    pool = [
        (
            (torch.rand(batch, 3, mc.resolution, mc.resolution, generator=g) * 2 - 1).to(device),
            torch.bernoulli(torch.full((batch, mc.n_attrs), 0.5), generator=g).to(device),
            torch.bernoulli(torch.full((batch, mc.n_attrs), 0.5), generator=g).to(device),
        )
        for _ in range(2)
    ]

    def step() -> None:
        for phase in range(k + 1):
            x, a_s, m = pool[phase % 2]
            z = torch.randn(batch, mc.z_dim, device=device)
            if phase < k:  # D step
                with torch.no_grad(), precision(mode, device):
                    fake = G(x, m, z)
                with precision(mode, device):
                    loss_d, _ = d_loss(D, x, fake, a_s, cfg.loss)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            else:  # G step
                D.requires_grad_(False)
                with precision(mode, device):
                    fake = G(x, m, z)
                    emb_real = emb_fake = None
                    if identity is not None:
                        with torch.no_grad():
                            emb_real = identity(x)
                        emb_fake = identity(fake)
                    loss_g, _ = g_loss(D, fake, a_s, m, emb_real, emb_fake, cfg.loss)
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                D.requires_grad_(True)

    return step, (k + 1) * batch


def _d_loss_nosync(D, real, fake, a_s, cfg):
    """``losses.d_loss`` without its logging ``.item()`` calls (same terms, same value)."""
    fake = fake.detach()
    adv_real, att_real = D(real)
    adv_fake, _ = D(fake)
    gp = losses.gradient_penalty(D.critic, real, fake)
    return losses.cls(adv_real, adv_fake, gp, cfg.lambda_gp) + cfg.lambda_att1 * losses.att1(
        att_real, a_s
    ), {}


def _g_loss_nosync(D, fake, a_s, m, emb_real, emb_fake, cfg):
    """``losses.g_loss`` without its logging ``.item()`` calls (same terms, same value)."""
    adv_fake, att_fake = D(fake)
    loss = cfg.lambda_adv * losses.adv(adv_fake) + cfg.lambda_att2 * losses.att2(att_fake, a_s, m, cfg.eps)
    if emb_real is not None and emb_fake is not None:
        loss = loss + cfg.lambda_deid * losses.deid(emb_real.detach(), emb_fake)
    return loss, {}


def bench_train(
    preset: str,
    batch: int,
    mode: str,
    device: torch.device,
    min_time: float,
    n_critic=None,
    identity=None,
    warmup: int = 2,
    sync_logs: bool = True,
    fused_adam: bool = False,
):
    step, imgs = train_step_fn(preset, batch, mode, device, n_critic, identity, sync_logs, fused_adam)
    dt = timeit(step, device, min_time, warmup=warmup, max_iters=200)
    return {"preset": preset, "mode": mode, "batch": batch, "img_s": imgs / dt, "s_per_g_step": dt}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and times (smoke test)")
    ap.add_argument("--out", type=Path, help="also write the markdown report here")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: CUDA is not available; use --device cpu", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    if args.quick:
        presets, batches, modes = ["tiny"], [1, 2], ["fp32", "bf16"]
        mm_n, t_gen, t_mm, t_train, train_presets, train_batch = 128, 0.02, 0.02, 0.02, ["tiny"], 2
    else:
        presets, batches, modes = ["small", "paper"], [1, 8, 32, 128], list(MODES)
        mm_n, t_gen, t_mm, t_train, train_presets, train_batch = 8192, 0.4, 0.5, 3.0, ["paper", "small"], 32

    t_start = time.perf_counter()
    lines: list[str] = []
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    lines += [
        f"# a3gan GPU benchmark ({dev_name})",
        "",
        f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, device `{device}`",
        "",
    ]

    peak = matmul_peak(device, mm_n, t_mm)
    lines += [
        "## Matmul peak",
        "",
        f"{mm_n}x{mm_n}x{mm_n} product.",
        "",
        "| precision | TFLOP/s |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.1f} |" for k, v in peak.items()] + [""]
    print("\n".join(lines), flush=True)

    gen_lines = [
        "## Generator (inference)",
        "",
        "faces/s; TFLOP/s achieved and % of the matmul peak of the same precision (fp32 -> fp32, tf32 -> "
        "tf32, bf16 -> bf16).",
        "",
        "| preset | GFLOP/face | mode | batch | faces/s | TFLOP/s | % of peak |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for preset in presets:
        flops, rows = bench_generator(preset, batches, modes, device, t_gen)
        for r in rows:
            p = peak.get(r["mode"].split("+")[0], peak["fp32"])
            gen_lines.append(
                f"| {preset} | {flops / 1e9:.2f} | {r['mode']} | {r['batch']} | {r['faces_s']:.0f} | "
                f"{r['tflops']:.2f} | {100 * r['tflops'] / p:.1f}% |"
            )
    gen_lines.append("")
    print("\n".join(gen_lines), flush=True)
    lines += gen_lines

    tr_lines = [
        "## Training (D+G iterations, WGAN-GP)",
        "",
        "images/s = (n_critic + 1) x batch / seconds per G step (the training loop's count); n_critic from "
        "the preset; gradient penalty included; no identity network.",
        "",
        "| preset | mode | batch | variant | images/s | s per G step |",
        "|---|---|---:|---|---:|---:|",
    ]
    cuda = device.type == "cuda"
    for preset in train_presets:
        variants = [("bf16", True, False), ("tf32", True, False)] if cuda else [("fp32", True, False)]
        variants += [("bf16" if cuda else "fp32", False, False)]
        if cuda:
            variants += [("bf16", False, True)]
        for mode, sync, fused in variants:
            r = bench_train(preset, train_batch, mode, device, t_train, sync_logs=sync, fused_adam=fused)
            name = "as the loop (losses log with .item())" if sync else "no .item() syncs"
            name += ", fused Adam" if fused else ""
            tr_lines.append(
                f"| {preset} | {mode} | {train_batch} | {name} | {r['img_s']:.0f} | {r['s_per_g_step']:.3f} |"
            )
    tr_lines.append("")
    print("\n".join(tr_lines), flush=True)
    lines += tr_lines
    lines.append(f"Total benchmark time: {time.perf_counter() - t_start:.0f} s.")
    print(lines[-1])
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
