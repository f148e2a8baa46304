from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from a3gan.attributes import mask_tensor
from a3gan.training.samples import HEADER, PAD, render_grid, save_grid, to_uint8


class MaskPainter(nn.Module):
    """A fake generator: paints the image with the fraction of mask bits set (so columns are checkable)."""

    def forward(self, x: torch.Tensor, m: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        assert z.shape == (x.shape[0], 4)
        return (m.mean(1) * 2 - 1).view(-1, 1, 1, 1).expand_as(x)


def test_to_uint8_hand_values() -> None:
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    assert to_uint8(x)[0, 0, :, 0].tolist() == [0, 128, 255, 255]


def test_grid_layout_and_columns(tmp_path: Path) -> None:
    x = torch.full((3, 3, 16, 16), -1.0)
    g = MaskPainter().train()
    img = render_grid(g, x, torch.zeros(3, 4))
    assert g.training  # mode restored
    assert img.size == (4 * 16 + 5 * PAD, HEADER + 3 * 16 + 4 * PAD)
    a = np.asarray(img)
    row1 = HEADER + PAD + (16 + PAD) + 8  # the middle of the second row
    cols = [a[row1, PAD + j * (16 + PAD) + 8, 0] for j in range(4)]
    # input (black), A3GAN-0 (no bit), A3GAN-5 (5 of 10 bits), A3GAN-10 (all bits)
    assert cols == [0, 0, 128, 255]
    assert mask_tensor("a3gan-5").sum() == 5
    p = save_grid(img, tmp_path / "s" / "step_000001.png")
    assert Image.open(p).size == img.size
