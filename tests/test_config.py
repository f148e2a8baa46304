import pytest

from a3gan.config import Config, ConfigError, load_config


def test_presets_and_overrides(tmp_path):
    c = load_config("paper")
    assert (c.model.resolution, c.model.width, c.loss.lambda_gp) == (128, 1.0, 10.0)
    s = load_config("small", ["model.width=0.5", "lr_g=1e-4"])
    assert s.model.width == 0.5 and s.train.lr_g == 1e-4 and s.model.resolution == 64
    assert Config.from_json(s.to_json()) == s
    y = tmp_path / "c.yaml"
    y.write_text("base: small\nmodel:\n  skip: stu\ntrain:\n  batch_size: 8\n")
    c = load_config(y)
    assert c.model.skip == "stu" and c.train.batch_size == 8 and c.model.resolution == 64


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no preset or config file"):
        load_config("nope")
    with pytest.raises(ConfigError, match="unknown"):
        load_config("small", ["model.nonexistent=1"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config("small", ["width"])
    with pytest.raises(ConfigError, match="inject"):
        load_config("small", ["inject=sum"])
    with pytest.raises(ConfigError, match="att2_form"):
        load_config("small", ["loss.att2_form=sum"])
    with pytest.raises(ConfigError, match="lambda_div"):
        load_config("small", ["loss.lambda_div=-1"])
    with pytest.raises(ConfigError, match="div_tau"):
        load_config("small", ["loss.div_tau=0"])
    with pytest.raises(ConfigError, match="div_pool"):
        load_config("small", ["loss.div_pool=0"])
    with pytest.raises(ConfigError, match="train.guard must be one of"):
        load_config("tiny", ["train.guard=vgg"])
    with pytest.raises(ConfigError, match="must differ from train.identity"):
        load_config("small", ["train.guard=dlib"])
    with pytest.raises(ConfigError, match="guard_weights=PATH.*convert_faceres"):
        load_config("tiny", ["train.guard=faceres"])
    with pytest.raises(ConfigError, match="guard_margin"):
        load_config("tiny", ["loss.guard_margin=1.5"])
    with pytest.raises(ConfigError, match="lambda_guard"):
        load_config("tiny", ["loss.lambda_guard=-1"])
    assert load_config("tiny", ["train.identity=none", "train.guard=dlib"]).train.guard == "dlib"
    with pytest.raises(ConfigError, match="deid_margin"):
        load_config("small", ["loss.deid_margin=1.5"])
    with pytest.raises(ConfigError, match="deid_margin"):
        load_config("small", ["loss.deid_margin=close"])
    assert load_config("small", ["loss.deid_margin=0.8"]).loss.deid_margin == 0.8
    assert load_config("small", ["loss.deid_margin=null"]).loss.deid_margin is None
    with pytest.raises(ConfigError, match="deid_lowpass"):
        load_config("small", ["loss.deid_lowpass=0"])
    with pytest.raises(ConfigError, match="deid_blur"):
        load_config("small", ["loss.deid_blur=-1"])
    with pytest.raises(ConfigError, match="set only one"):
        load_config("small", ["loss.deid_blur=1", "loss.deid_lowpass=2"])
    assert load_config("small", ["loss.deid_blur=1.0"]).loss.deid_blur == 1.0
    with pytest.raises(ConfigError, match="lambda_spectral"):
        load_config("small", ["loss.lambda_spectral=-1"])
    with pytest.raises(ConfigError, match="spectral_from"):
        load_config("small", ["loss.spectral_from=0.5"])
    assert load_config("small", ["loss.lambda_spectral=2"]).loss.lambda_spectral == 2.0
    bad = tmp_path / "b.yaml"
    bad.write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_override_types_are_coerced():
    c = load_config("small", ["lr_d=1e-4", "batch_size=8", "use_mask=false", "identity_weights=null"])
    assert c.train.lr_d == 1e-4 and isinstance(c.train.lr_d, float)
    assert c.train.batch_size == 8 and c.model.use_mask is False and c.train.identity_weights is None
    with pytest.raises(ConfigError, match="must be of type int"):
        load_config("small", ["batch_size=abc"])


def test_string_overrides_keep_their_text():
    c = load_config("small", ["train.mixed_precision=no", "identity=none"])
    assert c.train.mixed_precision == "no" and c.train.identity == "none"


def test_config_from_a_checkpoint(tmp_path):
    """--config CKPT.safetensors: the config in its metadata (fine-tuning the shipped model with its own settings)."""
    import torch
    from safetensors.torch import save_file

    from a3gan.checkpoint import save_checkpoint
    from a3gan.nets import Generator

    cfg = load_config("tiny", ["model.width=0.125", "loss.deid_margin=0.83"])
    ck = tmp_path / "m.safetensors"
    save_checkpoint(ck, {"G_ema": Generator(cfg.model)}, cfg, {"step": 1})
    back = load_config(ck)
    assert back.to_dict() == cfg.to_dict()
    assert load_config(ck, ["train.batch_size=3"]).train.batch_size == 3
    # bad files: the checkpoint reader's one-line user errors (the CLI prints them as `error: ...`)
    from a3gan.errors import A3GANError

    with pytest.raises(A3GANError, match="no such model file"):
        load_config(tmp_path / "none.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x07" * 40)
    with pytest.raises(A3GANError, match="not a readable safetensors"):
        load_config(junk)
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(1)}, str(bare))
    with pytest.raises(A3GANError, match="without an a3gan config"):
        load_config(bare)
