"""Make the shipped default model from a training checkpoint: the EMA generator (what inference uses) and, with
``--with-d``, the discriminator and, if the run had one, the projected discriminator ``Dp`` (so
``train.init_from`` can fine-tune the shipped model with its own trained critics instead of fresh ones), float32 (or float16 with ``--half``), with the run's config and provenance in the
safetensors metadata.

    python scripts/ship_model.py runs/small-deid10/checkpoints/step_002525.safetensors \
        src/a3gan/assets/a3gan-small-celeba.safetensors --note "..."
"""

from __future__ import annotations

import argparse
import json
from pathlib import PurePath

import torch

from a3gan.checkpoint import load_generator, module_state, read_checkpoint, save_checkpoint
from a3gan.nets import Discriminator


class _StateOnly(torch.nn.Module):
    """A module that saves a given state dict as is (for save_checkpoint), e.g. Dp's, which needs no network here."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self._state = state

    def state_dict(self, *args, **kwargs):  # noqa: ARG002 - same signature as nn.Module's
        return dict(self._state)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--note", default="")
    ap.add_argument(
        "--smooth", type=float, default=0.0, help="recommended post-filter sigma (inference_smooth), 0 = none"
    )
    ap.add_argument("--with-d", action="store_true", help="also keep the discriminator (for fine-tuning)")
    ap.add_argument(
        "--d-from",
        default=None,
        metavar="CKPT",
        help="with --with-d: take D from this checkpoint of the same model (e.g. the nearest one that kept its D)",
    )
    ap.add_argument(
        "--half", action="store_true", help="store the weights as float16 (half the size; loaded back as float32)"
    )
    ap.add_argument(
        "--init-from-label",
        default=None,
        help="record this as the config's train.init_from (when the run's init file was renamed, e.g. in transit)",
    )
    a = ap.parse_args()
    G, cfg, meta = load_generator(a.checkpoint, prefer_ema=True)
    tensors, _, full_meta = read_checkpoint(a.checkpoint)
    modules = {"G_ema": G}
    if a.d_from and not a.with_d:
        raise SystemExit("error: --d-from needs --with-d")
    if a.with_d:
        d_src = a.d_from or a.checkpoint
        d_tensors, d_cfg, d_meta = read_checkpoint(d_src) if a.d_from else (tensors, cfg, full_meta)
        if d_cfg.to_dict()["model"] != cfg.to_dict()["model"]:
            raise SystemExit(f"error: {d_src} is a different model than {a.checkpoint}; its D cannot go with this G")
        d_state = module_state(d_tensors, "D")
        if not d_state:
            raise SystemExit(f"error: {d_src} holds no discriminator (D); ship it without --with-d")
        D = Discriminator(cfg.model)
        D.load_state_dict(d_state, strict=True)
        modules["D"] = D
        dp_state = module_state(d_tensors, "Dp")
        if dp_state:  # the projected discriminator (loss.lambda_proj) goes with D
            modules["Dp"] = _StateOnly(dp_state)
    keep = {k: full_meta[k] for k in ("step", "images_seen", "identity", "a3gan_version") if k in full_meta}
    # provenance only (nothing loads them from a shipped model): keep file names, not this machine's paths
    if isinstance(keep.get("identity"), dict) and keep["identity"].get("weights"):
        keep["identity"] = {**keep["identity"], "weights": PurePath(keep["identity"]["weights"]).name}
    if cfg.train.init_from:
        cfg.train.init_from = PurePath(cfg.train.init_from).name
    # the training machine's identity weights file means nothing elsewhere; which weights were used (name, sha256)
    # is in the `identity` metadata. A fine-tune from this config then finds dlib's default weights (or asks for
    # ArcFace's) instead of failing on a missing file.
    cfg.train.identity_weights = None
    if a.init_from_label is not None:
        cfg.train.init_from = a.init_from_label
    keep.update(
        {
            "source_checkpoint": PurePath(a.checkpoint).name,
            "weights": meta["generator_weights"],
            "note": a.note,
            "inference_smooth": a.smooth,
            "stored_dtype": "float16" if a.half else "float32",
        }
    )
    if a.d_from:
        keep["d_source_checkpoint"] = PurePath(a.d_from).name
        if "step" in d_meta:
            keep["d_step"] = d_meta["step"]
    save_checkpoint(a.out, modules, cfg, keep, float_dtype=torch.float16 if a.half else None)
    print(json.dumps(keep, indent=1, default=str))


if __name__ == "__main__":
    main()
