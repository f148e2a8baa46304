"""Section 1: the generator alone on CPU (faces/s, GFLOP/s vs the measured float32 matmul peak, variants)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from _util import best_of, matmul_peak_gflops, table


def _inputs(cfg, batch: int):
    import torch

    g = torch.Generator().manual_seed(0)
    r, n = cfg.model.resolution, cfg.model.n_attrs
    x = torch.rand(batch, 3, r, r, generator=g) * 2 - 1
    m = torch.bernoulli(torch.full((batch, n), 0.5), generator=g)
    z = torch.randn(batch, cfg.model.z_dim, generator=g)
    return x, m, z


def _eager(G, x, m, z, channels_last: bool = False):
    import torch

    if channels_last:
        G = G.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def f():
        with torch.inference_mode():
            return G(x, m, z)

    return f


def _onnx_session(G, cfg, tmp: Path, threads: int):
    import onnxruntime as ort

    from a3gan.checkpoint import save_checkpoint
    from a3gan.export import export_onnx

    ckpt, onnx_path = tmp / f"{cfg.preset}.safetensors", tmp / f"{cfg.preset}.onnx"
    save_checkpoint(ckpt, {"G": G}, cfg, {"note": "random weights (benchmark)"})
    stats = export_onnx(ckpt, onnx_path)  # includes the parity check against PyTorch (raises above 1e-4)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"]), stats


def run(quick: bool = False, log=print, compile: bool = False) -> str:
    import torch
    from gpu import generator_flops

    from a3gan.config import load_config
    from a3gan.nets import Generator

    threads = torch.get_num_threads()
    presets = ["tiny"] if quick else ["small", "paper"]
    batches = [1, 2] if quick else [1, 8, 32]
    big = batches[-1]
    repeats = 1 if quick else 3
    mm = 256 if quick else 2048
    peak = matmul_peak_gflops(mm, 0.05 if quick else 1.0)
    log(f"  matmul peak {peak:.1f} GFLOP/s ({threads} threads)")

    out = [f"Measured float32 matmul peak ({mm}x{mm}x{mm}, {threads} threads): **{peak:.1f} GFLOP/s**.", ""]
    rows, variant_rows = [], []
    with tempfile.TemporaryDirectory(prefix="a3gan-bench-") as tmp:
        for preset in presets:
            cfg = load_config(preset)
            torch.manual_seed(0)
            G = Generator(cfg.model).eval().requires_grad_(False)
            flops = generator_flops(G, cfg.model.resolution, cfg.model.n_attrs, torch.device("cpu"))
            base_dt = {}
            for b in batches:
                x, m, z = _inputs(cfg, b)
                dt = best_of(_eager(G, x, m, z), repeats=repeats)
                base_dt[b] = dt
                gf = flops * b / dt / 1e9
                rows.append([preset, f"{flops / 1e9:.3f}", b, b / dt, gf, f"{100 * gf / peak:.0f}%"])
                log(f"  {preset} b{b}: {b / dt:.1f} faces/s, {gf:.1f} GFLOP/s")

            # variants at the largest batch, measured against the eager baseline just above
            x, m, z = _inputs(cfg, big)
            variants: list[tuple[str, float, str]] = [
                ("eager fp32, inference_mode (baseline)", base_dt[big], "")
            ]
            try:
                dt = best_of(_eager(G, x, m, z, channels_last=True), repeats=repeats)
                variants.append(("channels_last", dt, ""))
            finally:
                G.to(memory_format=torch.contiguous_format)
            try:
                sess, stats = _onnx_session(G, cfg, Path(tmp), threads)
                feeds = {"x": x.numpy(), "m": m.numpy(), "z": z.numpy()}
                dt = best_of(lambda sess=sess, feeds=feeds: sess.run(None, feeds), repeats=repeats)
                variants.append(
                    ("ONNX Runtime (a3gan.export)", dt, f"parity max abs diff {stats['max_abs_diff']:.1e}")
                )
            except Exception as e:  # report, do not abort the whole benchmark
                variants.append(
                    ("ONNX Runtime (a3gan.export)", float("nan"), f"failed: {type(e).__name__}: {e}")
                )
            if threads > 1 and not quick:
                torch.set_num_threads(1)
                try:
                    dt = best_of(_eager(G, x, m, z), repeats=repeats)
                    variants.append(("eager, 1 thread", dt, ""))
                finally:
                    torch.set_num_threads(threads)
            if not quick:
                for env_name, env in (
                    ("subprocess, default OpenMP", {}),
                    ("subprocess, OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}),
                ):
                    variants.append((env_name, big / _child_faces_s(preset, big, env, repeats), ""))
            if compile and preset == "small":
                variants.append(_compiled(G, x, m, z, repeats))
            for name, dt, note in variants:
                gf = flops * big / dt / 1e9 if dt == dt else float("nan")
                variant_rows.append(
                    [
                        preset,
                        name,
                        big,
                        big / dt if dt == dt else float("nan"),
                        gf,
                        f"{100 * gf / peak:.0f}%" if gf == gf else "n/a",
                        f"{base_dt[big] / dt:.2f}x" if dt == dt else "n/a",
                        note,
                    ]
                )
                log(f"  {preset} b{big} {name}: {big / dt if dt == dt else float('nan'):.1f} faces/s {note}")

    peak2 = matmul_peak_gflops(mm, 0.05 if quick else 1.0)  # again after the runs: the best of both counts
    log(f"  matmul peak again {peak2:.1f} GFLOP/s")
    if peak2 > peak:
        scale = peak / peak2
        for r in rows:
            r[5] = f"{float(r[5].rstrip('%')) * scale:.0f}%"
        for r in variant_rows:
            if r[5] != "n/a":
                r[5] = f"{float(r[5].rstrip('%')) * scale:.0f}%"
        peak = peak2
    out[0] = (
        f"Measured float32 matmul peak ({mm}x{mm}x{mm}, {threads} threads, best of a run before and after): "
        f"**{peak:.1f} GFLOP/s**."
    )
    out += [table(["preset", "GFLOP/face", "batch", "faces/s", "GFLOP/s", "% of matmul peak"], rows), ""]
    out += [f"Variants at batch {big} (speed-up vs the eager baseline measured in the same run):", ""]
    out += [
        table(
            ["preset", "variant", "batch", "faces/s", "GFLOP/s", "% of peak", "speed-up", "note"],
            variant_rows,
            "llrrrrrl",
        ),
        "",
    ]
    return "\n".join(out)


def _child_faces_s(preset: str, batch: int, env: dict[str, str], repeats: int) -> float:
    """faces/s of the eager generator in a fresh process with ``env`` (OpenMP settings apply at start-up only)."""
    import os
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, __file__, "child", preset, str(batch), str(repeats)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def _child(preset: str, batch: int, repeats: int) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import torch

    from a3gan.config import load_config
    from a3gan.nets import Generator

    cfg = load_config(preset)
    torch.manual_seed(0)
    G = Generator(cfg.model).eval().requires_grad_(False)
    x, m, z = _inputs(cfg, batch)
    print(batch / best_of(_eager(G, x, m, z), repeats=repeats))


def _compiled(G, x, m, z, repeats: int) -> tuple[str, float, str]:
    import time

    import torch

    name = "torch.compile (inductor)"
    try:
        Gc = torch.compile(G, dynamic=False)
        t0 = time.perf_counter()
        with torch.inference_mode():
            Gc(x, m, z)
        compile_s = time.perf_counter() - t0

        def f():
            with torch.inference_mode():
                return Gc(x, m, z)

        return name, best_of(f, repeats=repeats, warmup=1), f"first call (compile) {compile_s:.0f} s"
    except Exception as e:
        return name, float("nan"), f"failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}"


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 5 and sys.argv[1] == "child":
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
