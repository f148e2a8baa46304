"""Shared test fixtures. Tests that need ../shared/data or ../shared/models skip cleanly when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("A3GAN_SHARED", ROOT.parent / "shared"))

torch.set_num_threads(1)  # the suite runs on a shared 2-core machine: one thread per test is fastest overall


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (shared data is not part of the repository)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _need(SHARED / "data")


@pytest.fixture(scope="session")
def celeba_dir(shared_data: Path) -> Path:
    return _need(shared_data / "celeba")


@pytest.fixture(scope="session")
def photos_dir(shared_data: Path) -> Path:
    return _need(shared_data / "photos")


@pytest.fixture(scope="session")
def shared_models() -> Path:
    return _need(SHARED / "models")
