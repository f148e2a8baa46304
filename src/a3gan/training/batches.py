"""A resumable, sharded stream of training batches.

The data order is a function of (seed, epoch) only: each epoch is a fresh permutation of the dataset, cut into
global batches of ``batch_size`` images; process ``rank`` of ``world`` takes its ``batch_size // world`` slice of
each global batch (so ``train.batch_size`` is the GLOBAL batch, as in stylegan2-ada, and the per-process batch
shrinks as processes are added). The stream records (epoch, batches consumed in the epoch); a resumed run restarts
the data loader exactly there, without reading the skipped images.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from a3gan.errors import DataError, InputError


def per_process_batch(batch_size: int, world: int) -> int:
    if batch_size < 1:
        raise InputError(f"train.batch_size must be positive, got {batch_size}")
    if batch_size % world:
        raise InputError(
            f"train.batch_size {batch_size} (the global batch) is not divisible by the {world} processes"
        )
    return batch_size // world


class ShardedBatchSampler(Sampler[list[int]]):
    """Yields this process's index lists of one epoch, starting at batch ``start``. Drops the last partial batch."""

    def __init__(self, n: int, batch_size: int, rank: int, world: int, seed: int) -> None:
        self.n, self.batch_size, self.rank, self.world, self.seed = n, batch_size, rank, world, seed
        self.local = per_process_batch(batch_size, world)
        if n < batch_size:
            raise DataError(f"the training set has {n} images, fewer than one batch of {batch_size}")
        self.epoch = 0
        self.start = 0

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def set_position(self, epoch: int, start: int) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) & ((1 << 63) - 1))
        return torch.randperm(self.n, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        perm = self.permutation(self.epoch)
        for b in range(self.start, self.batches_per_epoch):
            lo = b * self.batch_size + self.rank * self.local
            yield perm[lo : lo + self.local].tolist()

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start


class BatchStream:
    """Endless iterator of ``(x, a_s)`` batches over epochs, with a resumable position."""

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        rank: int = 0,
        world: int = 1,
        seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        self.sampler = ShardedBatchSampler(len(dataset), batch_size, rank, world, seed)  # type: ignore[arg-type]
        self.loader = DataLoader(
            dataset,
            batch_sampler=self.sampler,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=num_workers > 0,
        )
        self.epoch = 0
        self.position = 0  # batches of the current epoch already handed out
        self._it: Iterator[Any] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.sampler.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if int(state.get("seed", self.sampler.seed)) != self.sampler.seed:
            raise InputError("cannot resume: the run's data seed differs from train.seed")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        if self.position >= self.sampler.batches_per_epoch:
            self.epoch, self.position = self.epoch + 1, 0
        self._it = None

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Any:
        if self._it is None:
            self.sampler.set_position(self.epoch, self.position)
            self._it = iter(self.loader)
        try:
            batch = next(self._it)
        except StopIteration:
            self.epoch, self.position = self.epoch + 1, 0
            self.sampler.set_position(self.epoch, 0)
            self._it = iter(self.loader)
            batch = next(self._it)
        self.position += 1
        return batch
