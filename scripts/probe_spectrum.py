"""Where does a checkpoint's generator put its fine detail? Its luma power spectrum over CelebA's, per ring.

For each checkpoint, G(x, m, z) (A3GAN-0 mask by default) on the last ``--n`` crops of the CelebA training
partition, against the same crops, both at the model's resolution: the ratio of their mean power per ring of
radial frequency (``a3gan.metrics.quality.radial_power_spectrum``), over all directions and on the u/v axes
only (horizontal and vertical lines). Real faces score 1 in every ring. A blurred output falls below 1 at high
frequency; an upsampling lattice shows as an axis ratio above 1 near Nyquist (0.5 cycles/px).

    python scripts/probe_spectrum.py --data ../shared/data/celeba src/a3gan/assets/a3gan-small-celeba.safetensors
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from a3gan.attributes import PRESETS, mask_tensor
from a3gan.checkpoint import load_generator
from a3gan.data.celeba import CelebA
from a3gan.metrics.quality import radial_power_spectrum


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(n, 3, H, W) in [-1, 1] -> (n, H, W, 3) in [0, 255]."""
    return ((t.clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1).numpy()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=256, help="images (the last n of the training partition)")
    ap.add_argument("--bins", type=int, default=8, help="rings from 0 to 0.5 cycles/pixel")
    ap.add_argument("--preset", default="a3gan-0", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    ds = None
    for path in a.checkpoints:
        G, cfg, _ = load_generator(path, prefer_ema=True)
        if ds is None or ds.resolution != cfg.model.resolution:
            ds = CelebA(a.data, cfg.model.resolution, "train", progress=False)
        idx = range(len(ds) - a.n, len(ds))
        x = torch.stack([ds[i][0] for i in idx])
        g = torch.Generator().manual_seed(a.seed)
        with torch.no_grad():
            y = torch.cat(
                [
                    G.eval()(xb, mask_tensor(a.preset, len(xb)), G.sample_z(len(xb), generator=g))
                    for xb in x.split(64)
                ]
            )
        real, fake = to_uint8(x), to_uint8(y)
        print(f"{path} (EMA G, {a.preset}, {a.n} CelebA crops at {cfg.model.resolution} px)")
        print("  ring (cycles/px)     " + " ".join(f"{f:6.3f}" for f in radial_power_spectrum(real, a.bins)["freq"]))
        for label, axes in (("all directions", False), ("u/v axes only", True)):
            r = np.asarray(radial_power_spectrum(real, a.bins, axes)["power"])
            f = np.asarray(radial_power_spectrum(fake, a.bins, axes)["power"])
            print(f"  G / real, {label:14s} " + " ".join(f"{v:6.2f}" for v in f / np.maximum(r, 1e-20)))


if __name__ == "__main__":
    main()
