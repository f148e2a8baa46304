"""Section 3: training throughput on CPU (real D + G iterations with the losses of ``a3gan.losses``)."""

from __future__ import annotations

from _util import table


def run(quick: bool = False, log=print) -> str:
    import torch
    from gpu import bench_train

    cpu = torch.device("cpu")
    # (preset, batch, n_critic, identity, note). The paper preset is ~60x the small one per image: on 2 cores a
    # full iteration at its configured batch 32 / n_critic 5 takes minutes, so it runs a reduced iteration.
    if quick:
        plan = [("tiny", 2, 1, None, "quick")]
    else:
        plan = [
            ("small", 16, 5, None, "preset's batch and n_critic, no L_deid"),
            ("small", 16, 5, "dlib", "as `a3gan train --config small` (dlib L_deid)"),
            ("paper", 4, 1, None, "reduced: batch 4, n_critic 1, no L_deid"),
        ]
    rows = []
    for preset, batch, k, ident, note in plan:
        net = None
        if ident is not None:
            try:
                from a3gan.identity import build_identity

                net = build_identity(ident)
            except Exception as e:  # dlib weights missing: report, go on
                rows.append([preset, batch, k, float("nan"), float("nan"), f"{note}: skipped ({e})"])
                continue
        r = bench_train(preset, batch, "fp32", cpu, 0.0 if quick else 1.0, n_critic=k, identity=net, warmup=1)
        log(f"  {preset} b{batch} k{k} {ident}: {r['img_s']:.1f} img/s")
        rows.append([preset, batch, k, r["img_s"], r["s_per_g_step"], note])
    return "\n".join(
        [
            "images/s = (n_critic + 1) x batch / seconds per iteration (the count `a3gan train` logs as perf/img_per_s);"
            " fp32, random data, Adam, gradient penalty included.",
            "",
            table(["preset", "batch", "n_critic", "images/s", "s per iteration", "note"], rows, "lrrrrl"),
        ]
    )
