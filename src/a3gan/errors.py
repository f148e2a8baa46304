"""User-facing errors. The CLI prints ``error: <message>`` on one line and exits non-zero, never a traceback."""


class A3GANError(Exception):
    """An error caused by input the user gave (bad file, bad option, missing weights). Message is one line."""

    exit_code = 2


class InputError(A3GANError):
    """A file that cannot be read or is not what it claims to be."""


class DataError(A3GANError):
    """A malformed dataset (missing labels, corrupt images, malformed attribute file)."""


class ModelError(A3GANError):
    """A checkpoint or weight file that cannot be loaded safely."""
