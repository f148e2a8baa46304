"""Fixtures of the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from celeba_fakes import make_celeba


@pytest.fixture
def fake_celeba(tmp_path: Path) -> Path:
    """12 random-noise JPEGs at 178x218 in the official CelebA layout, hand-written labels."""
    return make_celeba(tmp_path / "celeba")
