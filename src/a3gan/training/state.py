"""Training state for resuming, in a form ``torch.load(path, weights_only=True)`` reads.

The state file holds only tensors, dicts, lists, ints, floats, bools, strings and None: optimizer state dicts,
the step, the data order (epoch and position in it) and the RNG states of torch (CPU and CUDA), numpy and Python's
``random`` for every process. Nothing in it needs code to be unpickled.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from a3gan.errors import ModelError

STATE_FORMAT = 1


def capture_rng() -> dict[str, Any]:
    """The global RNG states of this process, as plain tensors/lists/ints."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {
            "version": int(py_state[0]),
            "state": [int(v) for v in py_state[1]],
            "gauss_next": None if py_state[2] is None else float(py_state[2]),
        },
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return out


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"].to(torch.uint8))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in cuda])


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """``torch.save`` a state dict (call through :func:`a3gan.training.rundir.atomic_write`)."""
    torch.save({"format": STATE_FORMAT, **state}, str(path))


def load_state(path: str | Path) -> dict[str, Any]:
    """Load a training state safely (``weights_only=True``); a corrupt file is a ModelError."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read is reported as a bad checkpoint
        raise ModelError(f"{path}: cannot read training state ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ModelError(f"{path}: not an a3gan training state (format {STATE_FORMAT})")
    return state
