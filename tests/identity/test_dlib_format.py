from __future__ import annotations

import numpy as np
import pytest

from a3gan.errors import ModelError
from a3gan.identity.dlib_format import _Reader, read_dlib_net
from a3gan.identity.dlib_resnet import default_dlib_weights


def test_integer_string_float_bool_encoding():
    # dlib: control byte (count | 0x80 if negative) + little-endian bytes
    data = bytes([0x01, 0x00, 0x01, 0x96, 0x02, 0x00, 0x01, 0x81, 0x04, 0x01, 0x03]) + b"abc"
    r = _Reader(data, "x")
    assert [r.int(), r.int(), r.int(), r.int()] == [0, 150, 256, -4]
    assert r.string() == "abc"
    # float = mantissa * 2**exponent: 0xa3d70a * 2**-28 is dlib's stored metric margin 0.04
    r = _Reader(bytes([0x03, 0x0A, 0xD7, 0xA3, 0x81, 0x1C, ord("1"), ord("0")]), "x")
    assert r.float() == pytest.approx(0.04, abs=1e-8)
    assert r.bool() is True and r.bool() is False


def test_tensor_encoding():
    vals = np.array([1.5, -2.0, 0.25], dtype="<f4")
    data = bytes([0x01, 0x02, 0x01, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01]) + vals.tobytes()
    t = _Reader(data, "x").tensor()
    assert t.shape == (3, 1, 1, 1)
    np.testing.assert_array_equal(t.reshape(-1), vals)


def test_bad_bytes_raise_model_error():
    with pytest.raises(ModelError, match="bad integer control byte"):
        _Reader(bytes([0x3F]), "x").int()
    with pytest.raises(ModelError, match="end of file"):
        _Reader(b"", "x").int()
    with pytest.raises(ModelError, match="past end"):
        _Reader(bytes([0x01, 0x02, 0x01, 0x09, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0, 0]), "x").tensor()


@pytest.fixture(scope="module")
def net():
    try:
        return read_dlib_net(default_dlib_weights())
    except ModelError as e:
        pytest.skip(str(e))


def test_real_file_structure(net):
    kinds = net.kinds()
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("fc") == 1
    n_params = sum(v.size for layer in net.layers for v in layer.tensors.values())
    assert n_params == 5_614_592  # "5.6M parameters"
    assert net.input_size == (150, 150)
    np.testing.assert_allclose(net.input_mean, (122.782, 117.001, 104.298), atol=1e-4)
    assert net.dist_thresh == pytest.approx(0.6, abs=1e-6) and net.margin == pytest.approx(0.04, abs=1e-6)
    stem = net.layers[0]
    assert stem.tensors["weight"].shape == (32, 3, 7, 7)
    assert (stem.ints["stride_y"], stem.ints["padding_y"]) == (2, 0)
    downs = [layer for layer in net.layers if layer.kind == "con" and layer.ints["stride_y"] == 2][1:]
    assert [d.ints["num_filters"] for d in downs] == [64, 128, 256, 256]
    assert all(d.ints["padding_y"] == 0 for d in downs)
    assert net.layers[-1].tensors["weight"].shape == (256, 128)


def test_not_a_dlib_file(tmp_path):
    p = tmp_path / "x.dat"
    p.write_bytes(b"\x01\x01\x01\x05hello")
    with pytest.raises(ModelError, match="loss_metric_2"):
        read_dlib_net(p)
    with pytest.raises(ModelError, match="cannot read"):
        read_dlib_net(tmp_path / "missing.dat")


def test_truncated_file(tmp_path):
    data = default_dlib_weights().read_bytes()
    p = tmp_path / "cut.dat"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="not a dlib face-recognition network"):
        read_dlib_net(p)
