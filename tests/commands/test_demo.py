"""`a3gan demo` (the `make demo` job) on a small random checkpoint: writes input and output, reports similarity."""

import numpy as np
from PIL import Image

from a3gan.checkpoint import save_checkpoint
from a3gan.commands.misc import run_demo
from a3gan.config import load_config
from a3gan.nets import Generator


def test_demo_writes_output_and_reports_similarity(tmp_path):
    cfg = load_config("tiny")
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(ckpt, {"G": Generator(cfg.model)}, cfg)
    res = run_demo(tmp_path / "out", ckpt, "a3gan-5", seed=0)
    src, dst = np.asarray(Image.open(res["input"])), np.asarray(Image.open(res["output"]))
    assert src.shape == dst.shape == (512, 512, 3)
    assert len(res["faces"]) == 1  # the astronaut
    face = res["faces"][0]
    assert face["before"] > face["threshold"]  # the recognizer matches the unmodified face
    assert face["after"] < face["threshold"] or face["fell_back"]  # verified: never a face that still matches
    assert (src != dst).any() and (src[-20:] == dst[-20:]).all()  # face changed, bottom rows untouched


def test_comparison_grid(tmp_path):
    from a3gan.commands.misc import GRID_METHODS, comparison_grid

    cfg = load_config("tiny")
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(ckpt, {"G": Generator(cfg.model)}, cfg)
    path = comparison_grid(tmp_path, ckpt, seed=0, size=64)
    grid = np.asarray(Image.open(path))
    assert grid.shape == (64 + 22, 64 * len(GRID_METHODS), 3)
    tiles = [grid[22:, i * 64 : (i + 1) * 64] for i in range(len(GRID_METHODS))]
    assert all((t != tiles[0]).any() for t in tiles[1:])  # every method changed the face
