"""Convert MTCNN's O-Net weights (Zhang et al. 2016, as packaged by facenet-pytorch, MIT licence) into the safetensors
file a3gan ships (``src/a3gan/assets/mtcnn_onet.safetensors``), read by :mod:`a3gan.nets.onet`.

The shipped file was made with facenet-pytorch 2.6.0 (its ``facenet_pytorch/data/onet.pt``, a plain state dict):

    pip download --no-deps facenet-pytorch==2.6.0 -d /tmp/fnp && unzip -o /tmp/fnp/*.whl -d /tmp/fnp
    python scripts/convert_mtcnn_onet.py /tmp/fnp/facenet_pytorch/data/onet.pt src/a3gan/assets/mtcnn_onet.safetensors

(facenet-pytorch itself is not installed: it requires torchvision, which does not import beside our torch.) The
state dict is read with ``torch.load(weights_only=True)``, so nothing is unpickled but tensors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def convert(onet_pt: Path, out: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from a3gan.checkpoint import atomic_write_bytes
    from a3gan.errors import InputError
    from a3gan.nets.onet import ONet

    if not onet_pt.is_file():
        raise InputError(f"{onet_pt}: no such file")
    try:
        sd = torch.load(onet_pt, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one error line
        raise InputError(f"{onet_pt}: not a readable state dict ({type(e).__name__})") from None
    net = ONet()
    try:
        net.load_state_dict(sd)
    except (RuntimeError, AttributeError, TypeError) as e:
        raise InputError(f"{onet_pt}: not MTCNN's O-Net ({str(e).splitlines()[0]})") from None
    meta = {"source": "facenet-pytorch 2.6.0 data/onet.pt (MIT); MTCNN O-Net, Zhang et al. 2016"}
    tensors = {k: v.detach().contiguous().float() for k, v in net.state_dict().items()}
    atomic_write_bytes(out, lambda tmp: save_file(tensors, tmp, metadata=meta))
    print(f"wrote {out} ({sum(v.numel() for v in tensors.values()):,} values)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onet_pt", type=Path, help="facenet-pytorch's data/onet.pt")
    ap.add_argument("out", type=Path, help="where to write the .safetensors")
    a = ap.parse_args(argv)
    from a3gan.errors import report_errors

    return report_errors(convert, a.onet_pt, a.out)


if __name__ == "__main__":
    raise SystemExit(main())
