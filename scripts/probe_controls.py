"""Does a checkpoint's generator use its controls? Mask m and f_z sensitivity on CelebA crops.

Prints, per checkpoint, the mean |Δ| (images in [-1, 1]) between G(x, m=0, z) and G(x, m=1, z), between two f_z
draws G(x, m, z1) and G(x, m, z2), and between G's output and its input; then how often the checkpoint's own
discriminator sees each attribute flipped for A3GAN-0/-5/-10. A generator that ignores m (or f_z) shows |Δ| near 0
- what Eq. 11's summed-inverse L_att2 produced (README, "Reading the paper").

    python scripts/probe_controls.py --data ../shared/data/celeba runs/RUN/checkpoints/step_005000.safetensors
"""

from __future__ import annotations

import argparse
import sys

import torch

from a3gan.attributes import mask_tensor
from a3gan.checkpoint import load_generator, module_state, read_checkpoint
from a3gan.data.celeba import CelebA
from a3gan.errors import report_errors
from a3gan.nets.discriminator import Discriminator


def probe(G, D, x: torch.Tensor, a_s: torch.Tensor, seed: int = 0) -> dict:
    n = x.shape[0]
    g = torch.Generator().manual_seed(seed)
    z1, z2 = G.sample_z(n, generator=g), G.sample_z(n, generator=g)
    out = {}
    with torch.no_grad():
        y = {name: G(x, mask_tensor(name, n), z1) for name in ("a3gan-0", "a3gan-5", "a3gan-10")}
        out["mask_delta"] = (y["a3gan-0"] - y["a3gan-10"]).abs().mean().item()
        out["z_delta"] = (y["a3gan-0"] - G(x, mask_tensor("a3gan-0", n), z2)).abs().mean().item()
        out["input_delta"] = (y["a3gan-0"] - x).abs().mean().item()
        if D is not None:
            for name, img in y.items():
                _, logits = D(img)
                out[f"flip_{name}"] = ((logits > 0).float() != a_s).float().mean(0).tolist()
    return out


def main(argv: list[str] | None = None) -> int:
    return report_errors(_run, argv)  # bad checkpoint or data folder: one line, no traceback


def _run(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=64, help="images (the last n of the training partition)")
    ap.add_argument("--raw", action="store_true", help="probe the raw G instead of the EMA generator")
    a = ap.parse_args(argv)
    torch.set_printoptions(precision=2, sci_mode=False)
    ds = CelebA(a.data, 64, "train", progress=False)
    idx = range(len(ds) - a.n, len(ds))
    for path in a.checkpoints:
        G, cfg, _ = load_generator(path, prefer_ema=not a.raw)
        if cfg.model.resolution != ds.resolution:
            ds = CelebA(a.data, cfg.model.resolution, "train", progress=False)
        x = torch.stack([ds[i][0] for i in idx])
        a_s = torch.stack([ds[i][1] for i in idx])
        tensors, _, _ = read_checkpoint(path)
        D = None
        if any(k.startswith("D.") for k in tensors):
            D = Discriminator(cfg.model).eval()
            D.load_state_dict(module_state(tensors, "D"))
        r = probe(G.eval(), D, x, a_s)
        print(f"{path} ({'raw G' if a.raw else 'EMA G'})")
        print(
            f"  |G(m=0) - G(m=1)| {r['mask_delta']:.4f}   |G(z1) - G(z2)| {r['z_delta']:.4f}   |G - x| {r['input_delta']:.4f}"
        )
        for name in ("a3gan-0", "a3gan-5", "a3gan-10"):
            if f"flip_{name}" in r:
                flips = " ".join(f"{v:.2f}" for v in r[f"flip_{name}"])
                print(f"  {name:9s} D_att flip rate per attribute: {flips}")


if __name__ == "__main__":
    sys.exit(main())
