import pytest
import torch

from a3gan.checkpoint import load_generator, read_checkpoint, save_checkpoint
from a3gan.config import load_config
from a3gan.errors import ModelError
from a3gan.nets import Discriminator, Generator


def test_roundtrip_prefers_ema(tmp_path):
    cfg = load_config("tiny")
    G, G_ema, D = Generator(cfg.model), Generator(cfg.model), Discriminator(cfg.model)
    with torch.no_grad():
        for p in G_ema.parameters():
            p.add_(1.0)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, {"G": G, "G_ema": G_ema, "D": D}, cfg, {"step": 7})
    G2, cfg2, meta = load_generator(path)
    assert cfg2 == cfg and meta["step"] == 7 and meta["generator_weights"] == "G_ema"
    assert all(
        torch.equal(a, b) for a, b in zip(G2.state_dict().values(), G_ema.state_dict().values(), strict=True)
    )
    assert G2.inference_smooth == 0.0  # no recommendation in the metadata: no post-filter
    save_checkpoint(tmp_path / "s.safetensors", {"G_ema": G_ema}, cfg, {"inference_smooth": 0.7})
    assert load_generator(tmp_path / "s.safetensors")[0].inference_smooth == 0.7
    G3, _, meta = load_generator(path, prefer_ema=False)
    assert meta["generator_weights"] == "G"
    assert not any(p.requires_grad for p in G3.parameters()) and not G3.training
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temp file


def test_bad_files(tmp_path):
    with pytest.raises(ModelError, match="no such model file"):
        load_generator(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ModelError, match="not a readable safetensors"):
        read_checkpoint(junk)
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(1)}, str(plain))
    with pytest.raises(ModelError, match="without an a3gan config"):
        read_checkpoint(plain)
    cfg = load_config("tiny")
    wrong = tmp_path / "wrong.safetensors"
    save_checkpoint(wrong, {"G": Generator(load_config("tiny", ["width=0.125"]).model)}, cfg)
    with pytest.raises(ModelError, match="do not match"):
        load_generator(wrong)
    nog = tmp_path / "nog.safetensors"
    save_checkpoint(nog, {"D": Discriminator(cfg.model)}, cfg)
    with pytest.raises(ModelError, match="no generator"):
        load_generator(nog)
