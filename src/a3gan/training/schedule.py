"""Small pure pieces of the training loop: learning-rate schedule, EMA of G, training masks, per-step seeds.

None of these values is in the paper (its "Implementation Details" paragraph is cut off); sources are named.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

#: Number of sample seeds drawn per (step, phase); phases: D steps 0..n_critic-1, then the G step.
_SEED_BYTES = 8


def lr_at(step: int, base_lr: float, decay_start: int, total_steps: int) -> float:
    """Constant ``base_lr`` until ``decay_start``, then linear decay to 0 at ``total_steps``.

    Not in paper: STGAN keeps the learning rate for 100 epochs and then decays it (AttGAN: x0.1 at epoch 100);
    we use a linear decay over the second half of training, stylegan/pix2pix style. ``step`` counts G steps.
    """
    if total_steps <= decay_start or step < decay_start:
        return base_lr
    frac = (step - decay_start) / float(total_steps - decay_start)
    return base_lr * max(0.0, 1.0 - frac)


def ema_beta_at(step: int, beta: float) -> float:
    """EMA decay with warm-up: ``min(beta, (1 + step) / (10 + step))``.

    Not in paper: the warm-up of TensorFlow's ``ExponentialMovingAverage(num_updates=...)`` so that a short run's
    EMA generator is not stuck at its random initialisation (stylegan2-ada uses an equivalent ``ema_rampup``).
    """
    if beta <= 0:
        return 0.0
    return min(beta, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """``ema = beta * ema + (1 - beta) * model`` on parameters; buffers (BN statistics) are copied."""
    for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
        p_ema.lerp_(p.detach().to(p_ema.dtype), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)


def step_seed(seed: int, rank: int, step: int, phase: int) -> int:
    """A 63-bit seed for one (run seed, process, G step, phase): every random draw of the loop is keyed by it.

    Keying draws by step (not by a running generator) makes a resumed run draw exactly what an uninterrupted run
    would, and gives each process of a multi-process run its own masks, z and flips.
    """
    h = hashlib.blake2b(f"a3gan/{seed}/{rank}/{step}/{phase}".encode(), digest_size=_SEED_BYTES).digest()
    return int.from_bytes(h, "little") & ((1 << 63) - 1)


def sample_masks(batch: int, n_attrs: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """Training masks m (batch, N): each bit is 1 ("may change") with probability ``p``, independently.

    Not in paper: the paper trains with masks but does not say how they are drawn; ``p = 0.5`` covers every
    preset of Appendix D (0 to 10 changed attributes) with all masks equally likely.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"train.mask_p must be in [0, 1], got {p}")
    return (torch.rand(batch, n_attrs, generator=generator) < p).float()
