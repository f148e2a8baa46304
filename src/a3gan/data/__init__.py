"""Datasets: CelebA for training (:mod:`a3gan.data.celeba`) and identity-labelled sets for evaluation
(:mod:`a3gan.data.identity_sets`).

Names are imported lazily so that decode worker processes (which import :mod:`a3gan.data._decode`) do not pay
for importing torch.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "CelebA": "a3gan.data.celeba",
    "make_loader": "a3gan.data.celeba",
    "read_attr_file": "a3gan.data.celeba",
    "read_label_file": "a3gan.data.celeba",
    "PARTITIONS": "a3gan.data.celeba",
    "IdentitySet": "a3gan.data.identity_sets",
    "load_identity_set": "a3gan.data.identity_sets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'a3gan.data' has no attribute {name!r}")
