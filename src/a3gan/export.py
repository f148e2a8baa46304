"""Export the generator to ONNX (``a3gan export-onnx``) and check numerical parity with PyTorch."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from a3gan.checkpoint import atomic_write_bytes, load_generator
from a3gan.errors import A3GANError


def export_onnx(
    model: str | Path, out: str | Path, opset: int = 17, check: bool = True, tol: float = 1e-4
) -> dict:
    """Write the generator (inputs x (B,3,R,R), m (B,N), z (B,z_dim); output y) to ``out``; returns parity stats."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise A3GANError("export-onnx needs the 'onnx' package: pip install onnx") from None
    G, cfg, _ = load_generator(model)
    r, n, zd = cfg.model.resolution, cfg.model.n_attrs, cfg.model.z_dim
    args = (torch.zeros(1, 3, r, r), torch.zeros(1, n), torch.zeros(1, zd))
    axes = {k: {0: "batch"} for k in ("x", "m", "z", "y")}

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                G,
                args,
                tmp,
                input_names=["x", "m", "z"],
                output_names=["y"],
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )

    atomic_write_bytes(Path(out), write)
    stats = {"path": str(out), "resolution": r, "n_attrs": n, "z_dim": zd}
    if check:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        g = torch.Generator().manual_seed(0)
        x = torch.rand(4, 3, r, r, generator=g) * 2 - 1
        m = torch.bernoulli(torch.full((4, n), 0.5), generator=g)
        z = torch.randn(4, zd, generator=g)
        with torch.inference_mode():
            ref = G(x, m, z).numpy()
        got = sess.run(None, {"x": x.numpy(), "m": m.numpy(), "z": z.numpy()})[0]
        diff = float(np.abs(ref - got).max())
        stats["max_abs_diff"] = diff
        if diff > tol:
            raise A3GANError(f"ONNX export differs from PyTorch by {diff:.2e} (> {tol:.0e})")
    return stats
