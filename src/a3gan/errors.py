"""User-facing errors. The CLI prints ``error: <message>`` on one line and exits non-zero, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable


class A3GANError(Exception):
    """An error caused by input the user gave (bad file, bad option, missing weights). Message is one line."""

    exit_code = 2


class InputError(A3GANError):
    """A file that cannot be read or is not what it claims to be."""


class DataError(A3GANError):
    """A malformed dataset (missing labels, corrupt images, malformed attribute file)."""


class ModelError(A3GANError):
    """A checkpoint or weight file that cannot be loaded safely."""


def report_errors(fn: Callable[..., object], *args: object) -> int:
    """Run ``fn(*args)`` for a script's ``main``: 0, or for an :class:`A3GANError` one ``error: <message>`` line on
    stderr and its exit code (what ``a3gan``'s own entry point does for the CLI)."""
    try:
        fn(*args)
    except A3GANError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0
