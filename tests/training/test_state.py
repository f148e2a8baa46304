from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from a3gan.errors import ModelError
from a3gan.training.state import capture_rng, load_state, restore_rng, save_state


def draw() -> tuple[float, float, float]:
    return torch.rand(()).item(), float(np.random.rand()), random.random()


def test_rng_roundtrip_through_weights_only_file(tmp_path: Path) -> None:
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    saved = capture_rng()
    expected = [draw() for _ in range(3)]
    save_state(tmp_path / "s.pt", {"step": 7, "rng": [saved]})
    loaded = torch.load(tmp_path / "s.pt", weights_only=True)  # plain types only
    assert loaded["step"] == 7
    restore_rng(load_state(tmp_path / "s.pt")["rng"][0])
    assert [draw() for _ in range(3)] == expected


def test_load_state_rejects_bad_files(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="junk.pt: cannot read training state"):
        load_state(tmp_path / "junk.pt")
    torch.save({"step": 1}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not an a3gan training state"):
        load_state(tmp_path / "other.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"format": 1, "x": Evil()}, f, protocol=2)
    with pytest.raises(ModelError, match="cannot read training state"):
        load_state(tmp_path / "evil.pt")
