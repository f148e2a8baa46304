"""Fixtures of the training tests: a tiny synthetic CelebA-layout folder (no ../shared/data needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

_spec = importlib.util.spec_from_file_location(
    "a3gan_tests_celeba_synth", Path(__file__).with_name("celeba_synth.py")
)
celeba_synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(celeba_synth)
make_synthetic_celeba = celeba_synth.make_synthetic_celeba


@pytest.fixture(scope="session")
def synthetic_celeba(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-image synthetic CelebA folder shared by the training tests (its decode cache is reused)."""
    return make_synthetic_celeba(tmp_path_factory.mktemp("celeba_synth"))


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny nets here run fastest on one thread; two threads spin badly on a shared, loaded CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
