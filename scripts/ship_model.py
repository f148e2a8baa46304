"""Make the shipped default model from a training checkpoint: keep only the EMA generator (what inference uses),
float32, with the run's config and provenance in the safetensors metadata.

    python scripts/ship_model.py runs/small-deid10/checkpoints/step_002525.safetensors \
        src/a3gan/assets/a3gan-small-celeba.safetensors --note "..."
"""

from __future__ import annotations

import argparse
import json

from a3gan.checkpoint import load_generator, read_checkpoint, save_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--note", default="")
    ap.add_argument(
        "--smooth", type=float, default=0.0, help="recommended post-filter sigma (inference_smooth), 0 = none"
    )
    a = ap.parse_args()
    G, cfg, meta = load_generator(a.checkpoint, prefer_ema=True)
    _, _, full_meta = read_checkpoint(a.checkpoint)
    keep = {k: full_meta[k] for k in ("step", "images_seen", "identity", "a3gan_version") if k in full_meta}
    keep.update(
        {
            "source_checkpoint": a.checkpoint.split("/")[-1],
            "weights": meta["generator_weights"],
            "note": a.note,
            "inference_smooth": a.smooth,
        }
    )
    save_checkpoint(a.out, {"G_ema": G}, cfg, keep)
    print(json.dumps(keep, indent=1, default=str))


if __name__ == "__main__":
    main()
