"""Move a generator checkpoint through a channel with a per-file size limit (the lent GPU machine returns files of
at most 16 MiB): ``split`` keeps the EMA generator of a run's latest checkpoint and writes it as N parts;
``merge`` joins the parts back into one a3gan checkpoint (same tensors, config and metadata). Lossless.

    python scripts/ckpt_transfer.py split RUN_DIR OUT_DIR [--max-mb 15]
    python scripts/ckpt_transfer.py merge OUT_FILE PART...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file


def split(run_dir: str, out_dir: str, max_mb: float = 15.0) -> None:
    latest = json.loads((Path(run_dir) / "checkpoints" / "latest").read_text())
    weights = Path(latest["weights"])
    if not weights.is_absolute():
        weights = Path(run_dir) / "checkpoints" / weights.name
    with safe_open(str(weights), framework="pt") as f:
        md = dict(f.metadata() or {})
    tensors = {k: v for k, v in load_file(str(weights)).items() if k.startswith("G_ema.")}
    md["modules"] = "G_ema"
    parts: list[dict] = [{}]
    size = 0
    for k, v in tensors.items():
        nbytes = v.numel() * v.element_size()
        if size + nbytes > max_mb * 2**20 and parts[-1]:
            parts.append({})
            size = 0
        parts[-1][k] = v
        size += nbytes
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(parts):
        save_file(
            p, str(Path(out_dir) / f"gema_part{i}.safetensors"), metadata={**md, "part": f"{i}/{len(parts)}"}
        )
    print(f"{weights.name}: {len(tensors)} tensors in {len(parts)} parts")


def merge(out_file: str, *parts: str) -> None:
    tensors, md = {}, None
    for p in parts:
        with safe_open(p, framework="pt") as f:
            m = dict(f.metadata() or {})
        md = md or {k: v for k, v in m.items() if k != "part"}
        tensors.update(load_file(p))
    save_file(tensors, out_file, metadata=md)
    print(f"{out_file}: {len(tensors)} tensors")


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "split":
        split(args[0], args[1], *(float(a) for a in args[2:3]))
    elif cmd == "merge":
        merge(args[0], *args[1:])
    else:
        sys.exit(__doc__)
