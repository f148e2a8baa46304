"""Data-parallel training: helpers in one process, and a real 2-process CPU run (gloo) through torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from a3gan.checkpoint import module_state, read_checkpoint
from a3gan.nets import Discriminator, Generator
from a3gan.training import distributed as du

ROOT = Path(__file__).resolve().parents[2]


def test_state_hash_sees_every_bit_and_buffers() -> None:
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    b = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    b.load_state_dict(a.state_dict())
    assert du.state_hash(a) == du.state_hash(b)
    with torch.no_grad():
        w = b[0].weight.view(-1)
        w[0] = torch.nextafter(w[0], torch.tensor(1.0))  # one ulp
    assert du.state_hash(a) != du.state_hash(b)
    b.load_state_dict(a.state_dict())
    b[1].running_mean[2] += 1  # a buffer
    assert du.state_hash(a) != du.state_hash(b)
    assert len(du.state_hash(a)) == 64


def test_helpers_are_no_ops_without_a_process_group() -> None:
    m = nn.Linear(2, 2)
    m(torch.ones(1, 2)).sum().backward()
    g = m.weight.grad.clone()
    du.all_reduce_grads(m)
    du.average_buffers(m)
    du.broadcast_module(m)
    assert torch.equal(m.weight.grad, g)
    assert du.mean_over_processes({"a": 1.5}, torch.device("cpu")) == {"a": 1.5}
    assert not du.is_distributed()


def test_two_process_training_keeps_replicas_identical(tmp_path: Path, synthetic_celeba: Path) -> None:
    """torchrun --nproc_per_node 2 (gloo on CPU): the unchanged `a3gan train` command trains 2 replicas.

    Each rank hashes its G, D and G_ema at every checkpoint; the loop gathers the hashes (and would stop if they
    differed); the test checks them against the hash of the saved weights.
    """
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "a3gan.cli", "train", "--config", "tiny", "--data", str(synthetic_celeba), "--out", str(out),
        "--steps", "3", "--set", "train.ckpt_every=3", "--set", "train.sample_every=1000", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 3 G steps") == 1  # only the main process reports
    ckpt = out / "checkpoints" / "step_000003.safetensors"
    with safe_open(str(ckpt), framework="pt") as f:
        meta = json.loads(f.metadata()["meta"])
    assert meta["world_size"] == 2
    hashes = meta["replica_hashes"]
    assert len(hashes) == 2 and hashes[0] == hashes[1]
    tensors, cfg, _ = read_checkpoint(ckpt)
    mods = [Generator(cfg.model), Discriminator(cfg.model), Generator(cfg.model)]
    for name, mod in zip(("G", "D", "G_ema"), mods, strict=True):
        mod.load_state_dict(module_state(tensors, name))
    assert du.state_hash(*mods) == hashes[0]
    st = torch.load(out / "checkpoints" / "step_000003.state.pt", weights_only=True)
    assert st["world_size"] == 2 and len(st["rng"]) == 2
    # masks, z and GP weights come from generators keyed by (seed, rank, step), not from the global RNG
    assert torch.equal(st["rng"][0]["torch"], st["rng"][1]["torch"])
    # the global batch (4) was split 2 + 2: 3 steps x (1 critic + 1 G) x 4 images = the 24 images of one epoch
    assert meta["images_seen"] == 24 and st["data"] == {"epoch": 0, "position": 6, "seed": 0}
