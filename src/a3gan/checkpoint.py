"""Model checkpoints: one safetensors file, tensors prefixed by module name (``G.``, ``G_ema.``, ``D.``), the full
config as JSON in the metadata. Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from a3gan import __version__
from a3gan.config import Config, ConfigError
from a3gan.errors import ModelError

DEFAULT_MODEL_NAME = "a3gan-small-celeba.safetensors"


def default_model_path() -> Path:
    """The model shipped inside the package (``a3gan/assets``)."""
    return Path(str(resources.files("a3gan") / "assets" / DEFAULT_MODEL_NAME))


def atomic_write_bytes(path: Path, write_fn) -> None:
    """Write via ``write_fn(tmp_path)`` to a temp file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a saved model is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(
    path: str | Path,
    modules: dict[str, nn.Module],
    cfg: Config,
    meta: dict[str, Any] | None = None,
    float_dtype: torch.dtype | None = None,
):
    """Save ``modules`` (e.g. {"G": G, "G_ema": G_ema, "D": D}) with ``cfg`` and ``meta`` in the metadata.

    ``float_dtype`` (e.g. ``torch.float16``) stores every floating-point tensor in that type (half the file size);
    loading casts back to the modules' float32 (``load_state_dict`` copies values into the existing parameters)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for name, mod in modules.items():
        for k, v in mod.state_dict().items():
            t = v.detach().to("cpu")
            if float_dtype is not None and t.is_floating_point():
                t = t.to(float_dtype)
            tensors[f"{name}.{k}"] = t.contiguous()
    metadata = {
        "format": "a3gan-checkpoint-v1",
        "a3gan_version": __version__,
        "config": cfg.to_json(),
        "modules": ",".join(modules),
        "meta": json.dumps(meta or {}, sort_keys=True, default=str),
    }
    atomic_write_bytes(Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_weights_file(path: str | Path, what: str) -> Any:
    """A weights file the user gives: safetensors, or ``torch.save`` output read with ``weights_only=True`` (no code
    runs). ``what`` names the weights in the one-line ModelError ("ArcFace", "Inception", ...)."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{what} weights not found: {p}")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(p))
        return torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"cannot read {what} weights {p}: {msg[:200]}") from None


def read_config(path: str | Path) -> tuple[Config, dict[str, Any]]:
    """(config, meta) of an a3gan checkpoint, from its metadata alone (the tensors are not read)."""
    return _parse_metadata(Path(path), _read_metadata(Path(path)))


def _read_metadata(p: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    if not p.is_file():
        raise ModelError(f"{p}: no such model file")
    try:
        with safe_open(str(p), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(f"{p}: not a readable safetensors file ({str(e).splitlines()[0][:120]})") from None


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], Config, dict[str, Any]]:
    """(tensors, config, meta). Clear ModelError for anything that is not an a3gan safetensors checkpoint."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    md = _read_metadata(p)
    try:
        tensors = load_file(str(p))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(f"{p}: not a readable safetensors file ({str(e).splitlines()[0][:120]})") from None
    cfg, meta = _parse_metadata(p, md)
    return tensors, cfg, meta


def _parse_metadata(p: Path, md: dict[str, str]) -> tuple[Config, dict[str, Any]]:
    if "config" not in md:
        raise ModelError(f"{p}: safetensors file without an a3gan config in its metadata")
    try:
        cfg = Config.from_json(md["config"])
    except (ConfigError, ValueError, TypeError) as e:
        raise ModelError(f"{p}: bad config in metadata ({e})") from None
    meta = json.loads(md.get("meta", "{}"))
    meta["a3gan_version"] = md.get("a3gan_version")
    return cfg, meta


def module_state(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    prefix = name + "."
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_generator(path: str | Path, device: str | torch.device = "cpu", prefer_ema: bool = True):
    """Load the generator (the EMA copy when present and ``prefer_ema``) in eval mode: (G, cfg, meta)."""
    from a3gan.nets import Generator

    tensors, cfg, meta = read_checkpoint(path)
    names = ["G_ema", "G"] if prefer_ema else ["G", "G_ema"]
    for name in names:
        state = module_state(tensors, name)
        if state:
            break
    else:
        raise ModelError(f"{path}: checkpoint holds no generator weights (G or G_ema)")
    G = Generator(cfg.model)
    try:
        G.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelError(f"{path}: weights do not match the config's architecture ({str(e).splitlines()[0]})") from None
    meta["generator_weights"] = name
    # the shipped model's recommended post-filter (pipeline.blend.smooth_crop), 0 = none; see MODEL_CARD.md
    G.inference_smooth = float(meta.get("inference_smooth", 0.0) or 0.0)
    return G.to(device).eval().requires_grad_(False), cfg, meta
