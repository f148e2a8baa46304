"""Move a checkpoint through a channel with a per-file size limit (the lent GPU machine returns files of at most
16 MiB): ``split`` writes the tensors of one safetensors checkpoint as N parts of at most ``--max-mb`` each, every
part with the file's metadata plus ``part`` = "i/N" and ``source_sha`` (so parts of two files cannot be mixed);
``merge`` joins the parts back into one checkpoint (same tensors, dtypes and metadata). Lossless.

    python scripts/ckpt_transfer.py split CKPT OUT_DIR [--max-mb 15]   # OUT_DIR/<name>.part0of2.safetensors ...
    python scripts/ckpt_transfer.py merge OUT_FILE PART...
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from a3gan.checkpoint import atomic_write_bytes


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def split(ckpt: str | Path, out_dir: str | Path, max_mb: float = 15.0) -> list[Path]:
    ckpt = Path(ckpt)
    with safe_open(str(ckpt), framework="pt") as f:
        md = dict(f.metadata() or {})
    tensors = load_file(str(ckpt))
    limit = max_mb * 2**20
    parts: list[dict] = [{}]
    size = 0
    for k in sorted(tensors):
        v = tensors[k]
        nbytes = v.numel() * v.element_size()
        if nbytes > limit:
            raise ValueError(f"{k}: one tensor of {nbytes / 2**20:.1f} MiB is over --max-mb {max_mb}")
        if size + nbytes > limit and parts[-1]:
            parts.append({})
            size = 0
        parts[-1][k] = v
        size += nbytes
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sha, n, paths = _sha(ckpt), len(parts), []
    for i, p in enumerate(parts):
        path = out_dir / f"{ckpt.stem}.part{i}of{n}.safetensors"
        save_file(p, str(path), metadata={**md, "part": f"{i}/{n}", "source_sha": sha})
        paths.append(path)
    return paths


def merge(out_file: str | Path, *parts: str | Path) -> Path:
    tensors: dict = {}
    md: dict | None = None
    seen: set[int] = set()
    total = None
    for p in parts:
        with safe_open(str(p), framework="pt") as f:
            m = dict(f.metadata() or {})
        if "part" not in m:
            raise ValueError(f"{p}: not a part written by ckpt_transfer split")
        i, n = (int(x) for x in m.pop("part").split("/"))
        if md is not None and (m != md or n != total):
            raise ValueError(f"{p}: a part of another checkpoint (metadata differs from the first part's)")
        md, total = m, n
        seen.add(i)
        tensors.update(load_file(str(p)))
    if md is None or seen != set(range(total or 0)):
        raise ValueError(f"parts {sorted(seen)} of {total}: some are missing")
    md.pop("source_sha", None)
    out_file = Path(out_file)
    atomic_write_bytes(out_file, lambda tmp: save_file(tensors, tmp, metadata=md))
    return out_file


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("ckpt")
    s.add_argument("out_dir")
    s.add_argument("--max-mb", type=float, default=15.0)
    m = sub.add_parser("merge")
    m.add_argument("out_file")
    m.add_argument("parts", nargs="+")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "split":
            for p in split(a.ckpt, a.out_dir, a.max_mb):
                print(p)
        else:
            print(merge(a.out_file, *a.parts))
    except Exception as e:  # noqa: BLE001 - a bad file of any kind: one line, exit 2
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
