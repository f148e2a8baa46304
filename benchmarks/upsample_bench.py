"""The generator's x2 upsampling, side by side: ``a3gan.filters.Upsample2x`` (channels-last bilinear, broadcast
nearest) against ``torch.nn.Upsample`` (plain ``F.interpolate``) in the same generator, forward + backward, on
one device, with the ratio. Also checks that both give the same output.

    python benchmarks/upsample_bench.py                                     # shipped model's config, CPU, batch 16
    python benchmarks/upsample_bench.py --device cuda --batches 128,512     # where the CUDA kernel mattered most

On one H200 the plain NCHW bilinear kernel was 231 of the 300 GPU-ms of a training step at batch 128
(docs/performance.md); this isolates that part.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _util import best_of, table


def _swap_to_torch(G):
    """The same generator with every Upsample2x replaced by the nn.Upsample it stands for."""
    import torch

    from a3gan.filters import Upsample2x

    for mod in G.modules():
        for name, child in list(mod.named_children()):
            if isinstance(child, Upsample2x):
                kw = {"align_corners": False} if child.mode == "bilinear" else {}
                setattr(mod, name, torch.nn.Upsample(scale_factor=2, mode=child.mode, **kw))
    return G


def run(argv: list[str] | None = None) -> str:
    import copy

    import torch

    from a3gan.checkpoint import default_model_path
    from a3gan.config import load_config
    from a3gan.errors import InputError
    from a3gan.nets import Generator

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(default_model_path()), help="preset, YAML file or checkpoint")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="key=value (repeatable)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", default="16")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    try:
        batches = [int(b) for b in a.batches.split(",")]
    except ValueError:
        raise InputError(f"--batches must be comma-separated integers, got {a.batches!r}") from None
    cfg = load_config(a.config, a.overrides)
    mc = cfg.model
    torch.manual_seed(0)
    ours = Generator(mc).to(a.device).train()
    plain = _swap_to_torch(copy.deepcopy(ours))
    r = mc.resolution
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    rows = []
    for b in batches:
        g = torch.Generator().manual_seed(b)
        x = (torch.rand(b, 3, r, r, generator=g) * 2 - 1).to(a.device)
        m = (torch.rand(b, mc.n_attrs, generator=g) < 0.5).float().to(a.device)
        z = torch.randn(b, mc.z_dim, generator=g).to(a.device)
        with torch.no_grad():
            same = torch.allclose(ours(x, m, z), plain(x, m, z), atol=1e-5)

        def step(G, x=x, m=m, z=z):
            def f():
                G.zero_grad(set_to_none=True)
                G(x, m, z).square().mean().backward()
                sync()

            return f

        t_plain = best_of(step(plain), a.repeats)
        t_ours = best_of(step(ours), a.repeats)
        rows.append([b, f"{t_plain * 1e3:.1f}", f"{t_ours * 1e3:.1f}", f"{t_plain / t_ours:.2f}x", "yes" if same else "NO"])
    dev = torch.cuda.get_device_name() if a.device.startswith("cuda") else f"cpu, {torch.get_num_threads()} threads"
    report = "\n".join(
        [
            f"generator fwd+bwd, {mc.resolution} px, width {mc.width}, upsample {mc.upsample} / last "
            f"{mc.upsample_last or mc.upsample}, device {a.device} ({dev}), torch {torch.__version__}",
            "",
            table(["batch", "nn.Upsample ms", "Upsample2x ms", "speed-up", "same output"], rows),
        ]
    )
    print(report)
    if a.out:
        a.out.write_text(report + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    from a3gan.errors import report_errors

    return report_errors(run, argv)


if __name__ == "__main__":
    sys.exit(main())
