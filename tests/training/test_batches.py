from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from a3gan.errors import DataError, InputError
from a3gan.training.batches import BatchStream, ShardedBatchSampler, per_process_batch


def ids_dataset(n: int) -> TensorDataset:
    return TensorDataset(torch.arange(n), torch.arange(n) * 10)


def test_per_process_batch() -> None:
    assert per_process_batch(32, 1) == 32
    assert per_process_batch(32, 4) == 8
    with pytest.raises(InputError, match="not divisible by the 3 processes"):
        per_process_batch(32, 3)
    with pytest.raises(InputError, match="positive"):
        per_process_batch(0, 1)


def test_shards_partition_each_global_batch() -> None:
    n, batch, world = 23, 6, 3  # 3 full global batches, 5 images dropped per epoch
    shards = [list(ShardedBatchSampler(n, batch, r, world, seed=1)) for r in range(world)]
    assert all(len(s) == 3 and all(len(b) == 2 for b in s) for s in shards)
    perm = ShardedBatchSampler(n, batch, 0, world, seed=1).permutation(0).tolist()
    for k in range(3):  # global batch k = the union of the ranks' k-th batches, in rank order
        assert sum((shards[r][k] for r in range(world)), []) == perm[k * batch : (k + 1) * batch]
    every = [i for s in shards for b in s for i in b]
    assert len(set(every)) == 18 and set(every) <= set(range(n))
    # a new epoch, a new order; the same seed, the same order
    s = ShardedBatchSampler(n, batch, 0, 1, seed=1)
    assert not torch.equal(s.permutation(0), s.permutation(1))
    assert torch.equal(s.permutation(3), ShardedBatchSampler(n, batch, 0, 1, seed=1).permutation(3))
    with pytest.raises(DataError, match="5 images, fewer than one batch of 6"):
        ShardedBatchSampler(5, 6, 0, 1, 0)


def test_stream_crosses_epochs_and_resumes_exactly() -> None:
    ds = ids_dataset(10)
    a = BatchStream(ds, 4, seed=3)  # 2 batches per epoch
    seq = [next(a)[0].tolist() for _ in range(7)]
    assert a.epoch == 3 and a.position == 1
    assert sorted(seq[0] + seq[1]) == sorted(set(seq[0] + seq[1]))  # no repeats within an epoch
    b = BatchStream(ds, 4, seed=3)
    for _ in range(3):
        next(b)
    state = b.state_dict()
    assert state == {"epoch": 1, "position": 1, "seed": 3}
    c = BatchStream(ds, 4, seed=3)
    c.load_state_dict(state)
    assert [next(c)[0].tolist() for _ in range(4)] == seq[3:]
    d = BatchStream(ds, 4, seed=3)
    d.load_state_dict({"epoch": 0, "position": 2, "seed": 3})  # end of an epoch -> start of the next
    assert (d.epoch, d.position) == (1, 0) and next(d)[0].tolist() == seq[2]
    with pytest.raises(InputError, match="seed"):
        BatchStream(ds, 4, seed=4).load_state_dict(state)


def test_stream_with_worker_processes_matches_in_process() -> None:
    ds = ids_dataset(12)
    a = BatchStream(ds, 4, seed=0, num_workers=0)
    b = BatchStream(ds, 4, seed=0, num_workers=1)
    assert [next(a)[0].tolist() for _ in range(5)] == [next(b)[0].tolist() for _ in range(5)]
