"""Data-parallel helpers: explicit gradient all-reduce instead of DistributedDataParallel.

DDP cannot follow WGAN-GP's double backward (``autograd.grad(..., create_graph=True)`` through the critic) and
fires its reduction once per backward, while a D step runs the critic three times. Like stylegan2-ada, we keep
the networks unwrapped and average gradients ourselves after each backward, in one flat buffer. Parameters are
broadcast from rank 0 at start, and BatchNorm statistics are averaged after every G step, so all replicas hold
bit-identical weights and buffers.
"""

from __future__ import annotations

import hashlib

import torch
import torch.distributed as dist
from torch import nn


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy parameters and buffers of rank ``src`` to every process."""
    if not is_distributed():
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=src)


@torch.no_grad()
def all_reduce_grads(module: nn.Module) -> None:
    """Average the gradients of ``module`` over all processes (one flat all-reduce)."""
    if not is_distributed():
        return
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat.div_(dist.get_world_size())
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


@torch.no_grad()
def average_buffers(module: nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running mean/var) over all processes."""
    if not is_distributed():
        return
    bufs = [b for b in module.buffers() if b.is_floating_point()]
    if not bufs:
        return
    flat = torch.cat([b.reshape(-1) for b in bufs])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat.div_(dist.get_world_size())
    offset = 0
    for b in bufs:
        n = b.numel()
        b.copy_(flat[offset : offset + n].view_as(b))
        offset += n


def mean_over_processes(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a dict of scalars over processes (same keys on every process)."""
    if not is_distributed() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist(), strict=True))


def state_hash(*modules: nn.Module) -> str:
    """SHA-256 of the modules' state dicts (names, dtypes, shapes and raw bytes): equal iff bit-identical."""
    h = hashlib.sha256()
    for m in modules:
        for k, v in sorted(m.state_dict().items()):
            t = v.detach().cpu().contiguous().reshape(-1)
            h.update(f"{k}:{t.dtype}:{tuple(v.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
