from __future__ import annotations

import pytest

from a3gan.errors import A3GANError, InputError, ModelError
from a3gan.identity import BACKENDS, build_identity


def test_none_raises_clear_error():
    with pytest.raises(ModelError, match="without L_deid"):
        build_identity("none")


def test_unknown_name():
    with pytest.raises(InputError, match="dlib, arcface, faceres, mobileface, none"):
        build_identity("facenet")


def test_errors_are_user_errors():
    with pytest.raises(A3GANError):
        build_identity("arcface", weights="/nonexistent/w.pth")
    assert set(BACKENDS) == {"dlib", "arcface", "faceres", "mobileface", "none"}


def test_dlib_by_name_describe(tmp_path, monkeypatch):
    monkeypatch.setenv("A3GAN_CACHE", str(tmp_path))
    try:
        net = build_identity("DLIB")
    except ModelError as e:
        pytest.skip(str(e))
    d = net.describe()
    assert set(d) >= {"name", "weights", "sha256", "dim", "threshold_cos"}
    assert (d["name"], d["dim"]) == ("dlib", 128)
