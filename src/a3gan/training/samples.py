"""Sample grids written during training: rows = fixed inputs, columns = input, A3GAN-0, A3GAN-5, A3GAN-10.

The inputs are the first K images of the training set and each row has its own fixed z (seeded from the run
seed), shared by the three mask columns, so a column differs from its neighbour only by the mask of Appendix D.
Written with Pillow (torchvision is not installable beside this torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from a3gan.attributes import mask_tensor
from a3gan.training.rundir import atomic_write

GRID_MASKS: tuple[str, ...] = ("a3gan-0", "a3gan-5", "a3gan-10")
PAD = 2
HEADER = 12


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B,3,H,W) in [-1,1] -> (B,H,W,3) uint8."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def fixed_z(g: nn.Module, count: int, seed: int, device: torch.device | str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(int(seed) + 1_000_000)
    return g.sample_z(count, generator=gen, device="cpu").to(device)  # type: ignore[operator]


@torch.no_grad()
def render_grid(
    g: nn.Module,
    x: torch.Tensor,
    z: torch.Tensor,
    masks: Sequence[str] = GRID_MASKS,
) -> Image.Image:
    """Run ``g`` (eval mode) on the fixed inputs for each mask and tile input + outputs into one image."""
    was_training = g.training
    g.eval()
    try:
        cols = [x] + [g(x, mask_tensor(spec, x.shape[0], x.device), z) for spec in masks]
    finally:
        g.train(was_training)
    tiles = [to_uint8(c) for c in cols]
    b, h, w, _ = tiles[0].shape
    ncol = len(tiles)
    width = ncol * w + (ncol + 1) * PAD
    height = HEADER + b * h + (b + 1) * PAD
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(["input", *[m.upper() for m in masks]]):
        if len(label) * 6 > w:  # Pillow's default font is ~6 px per character
            label = label.replace("A3GAN", "")
        draw.text((PAD + j * (w + PAD), 1), label, fill=(0, 0, 0))
    for i in range(b):
        for j in range(ncol):
            canvas.paste(Image.fromarray(tiles[j][i]), (PAD + j * (w + PAD), HEADER + PAD + i * (h + PAD)))
    return canvas


def save_grid(image: Image.Image, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
