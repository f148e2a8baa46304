import numpy as np
import pytest

from a3gan.checkpoint import save_checkpoint
from a3gan.config import load_config
from a3gan.errors import ModelError
from a3gan.export import export_onnx
from a3gan.nets import Generator

pytest.importorskip("onnx")


# deconv (tiny's default) and the shipped model's upsampling (bilinear, nearest in the output layer: a3gan.filters)
@pytest.mark.parametrize("over", [[], ["model.upsample=bilinear", "model.upsample_last=resize"]])
def test_export_parity_and_batch_axis(tmp_path, over):
    cfg = load_config("tiny", over)
    ckpt = tmp_path / "g.safetensors"
    save_checkpoint(ckpt, {"G": Generator(cfg.model)}, cfg)
    stats = export_onnx(ckpt, tmp_path / "g.onnx")
    assert stats["max_abs_diff"] < 1e-4
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    y = sess.run(
        None,
        {
            "x": np.zeros((3, 3, 32, 32), np.float32),
            "m": np.zeros((3, 10), np.float32),
            "z": np.zeros((3, 16), np.float32),
        },
    )[0]
    assert y.shape == (3, 3, 32, 32)


def test_export_bad_model(tmp_path):
    with pytest.raises(ModelError):
        export_onnx(tmp_path / "none.safetensors", tmp_path / "g.onnx")
