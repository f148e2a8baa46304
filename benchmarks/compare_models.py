"""Generator speed of two (or more) checkpoints side by side, on this CPU, in one run: faces/s at batch 1 and at a
larger batch, and each model's ratio to the first. For a model change (e.g. a wider shipped model), run it with the
old and the new file:

    git show HEAD~1:src/a3gan/assets/a3gan-small-celeba.safetensors > /tmp/old.safetensors
    python benchmarks/compare_models.py /tmp/old.safetensors src/a3gan/assets/a3gan-small-celeba.safetensors

Threads: ``--threads`` (default 1, the setting the other CPU benchmarks report as this machine's best per core).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _util import best_of, table


def measure(path: Path, batches: tuple[int, ...], repeats: int) -> dict:
    import torch

    from a3gan.checkpoint import load_generator

    G, cfg, _ = load_generator(path, prefer_ema=True)
    G.eval()
    r, n = cfg.model.resolution, cfg.model.n_attrs
    out = {"params": sum(p.numel() for p in G.parameters()), "width": cfg.model.width, "res": r}
    g = torch.Generator().manual_seed(0)
    for b in batches:
        x = torch.rand(b, 3, r, r, generator=g) * 2 - 1
        m = torch.zeros(b, n)
        z = torch.randn(b, cfg.model.z_dim, generator=g)

        def f(x=x, m=m, z=z):
            with torch.inference_mode():
                G(x, m, z)

        out[b] = b / best_of(f, repeats=repeats)
    return out


def run(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--batches", default="1,16", help="comma-separated batch sizes (default 1,16)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    batches = tuple(int(b) for b in a.batches.split(","))
    res = [measure(p, batches, a.repeats) for p in a.models]
    rows = []
    for p, r in zip(a.models, res, strict=True):
        row = [p.name, f"{r['params'] / 1e6:.2f} M", f"{r['width']:g}", str(r["res"])]
        for b in batches:
            row.append(f"{r[b]:.1f} ({r[b] / res[0][b]:.2f}x)")
        rows.append(row)
    head = ["model", "G params", "width", "px"] + [f"faces/s at batch {b} (vs first)" for b in batches]
    report = f"{a.threads} thread(s), best of {a.repeats}\n\n" + table(head, rows)
    print(report)
    return report


def main(argv: list[str] | None = None) -> int:
    from a3gan.errors import report_errors

    return report_errors(run, argv)  # a missing or foreign model file: one line, no traceback


if __name__ == "__main__":
    sys.exit(main())
