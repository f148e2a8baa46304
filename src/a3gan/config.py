"""Configuration: model architecture (paper Tables 2-4), loss weights (Eq. 13) and training settings.

Named presets follow stylegan2-ada-pytorch's habit: ``paper`` is the configuration of the paper's Appendix A at
128 px, ``small`` is a CPU-sized one (64 px, 1/4 width). Every value can be overridden (``key=value``) or
loaded from YAML. A config is stored as JSON in every checkpoint's safetensors metadata.

Hyper-parameters the paper does not give (its "Implementation Details" paragraph is cut off) are marked
``# not in paper: <source>``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from a3gan.attributes import ATTRIBUTES
from a3gan.errors import A3GANError


class ConfigError(A3GANError, ValueError):
    """A bad preset, config file or override (a user error: one ``error:`` line from the CLI and the scripts)."""


SKIPS = ("scu", "stu", "none")  # Table 1 ablations: SCU (paper), STU (STGAN), no SCU (plain skip)
INJECTS = ("adain", "concat")  # Table 1 ablation: AdaIN (paper) or concatenation ("w/o AdaIN")
IDENTITY_BACKENDS = ("dlib", "arcface", "none")
GUARD_BACKENDS = ("none", "faceres", "dlib", "arcface")
UPSAMPLES = ("deconv", "resize", "bilinear")  # G's x2 upsampling: Table 2's DeConv(4,2), or resize-convolution
ATT2_FORMS = ("inverse", "target")  # L_att2: Eq. 11 literally, or per-attribute BCE toward the flipped a_m


@dataclass
class ModelConfig:
    resolution: int = 128  # paper: 128x128 aligned CelebA crops
    width: float = 1.0  # channel multiplier on Table 2/3 widths (64..1024)
    attributes: list[str] = field(default_factory=lambda: list(ATTRIBUTES))  # N = len(attributes)
    z_dim: int = 512  # Table 4: FC(512+N, 512) -> f_z is 512-D
    ainet_width: float = 1.0  # multiplier on Table 4 widths (512, 1024)
    n_layers: int = 5  # Table 2: E1..E5 / D1..D5
    skip: str = "scu"  # "scu" | "stu" | "none"
    use_mask: bool = True  # False = "A3GAN w/o mask" (FCNet sees f_z only)
    inject: str = "adain"  # "adain" | "concat" (= "A3GAN w/o AdaIN")
    scu_kernel: int = 3  # W_f kernel; 3x3 reproduces the paper's "SCU has 57.8% of STU's parameters"
    d_fc: int = 1024  # Table 3: FC(16384, 1024)
    # Table 3 puts IN after all five D convs. IN over the last, tiny feature map (4x4 at 128 px, 2x2 at 64 px)
    # cripples the WGAN-GP critic: dividing by the std of 4-16 values makes D's input gradient huge, so the
    # gradient penalty keeps the critic nearly blind (W-distance 1.9 vs 33.5 without it after 60 critic steps
    # against a fixed random G, 64 px; generators then learn noise). Off by default; true = Table 3 literally.
    d_norm_last: bool = False
    # Not in paper: "deconv" = Table 2's DeConv(4,2) everywhere in G; "resize" = nearest x2 + Conv(3,1), which
    # cannot make the checkerboard pattern of stride-2 transposed convolutions (Odena et al. 2016). Trained
    # small-preset generators kept a 2-px grid on every face with "deconv".
    upsample: str = "deconv"
    # Not in paper: the x2 upsampling of the output layer (D5) alone; "" = as ``upsample``. Bilinear everywhere
    # removes the blocky lattice but also the finest detail (a single linear 3x3 conv after a bilinear x2 cannot
    # bring back frequencies near the output's Nyquist: luma power above half Nyquist 0.28-0.38x CelebA's, BRISQUE
    # 35 vs 15); "resize" here with "bilinear" elsewhere keeps both.
    upsample_last: str = ""
    # Not in paper: sigma (px at model.resolution) of a fixed Gaussian blur on the chroma (Cb, Cr) of G's output,
    # luma untouched; 0 = off (paper). Photos carry little fine colour detail (JPEG keeps chroma at half
    # resolution); trained small-preset generators painted a patchwork of coloured pixels (colour-noise score
    # 0.28 vs CelebA's 0.005). Parameter-free, so it can be switched on for a checkpoint trained without it.
    chroma_blur: float = 0.0

    @property
    def n_attrs(self) -> int:
        return len(self.attributes)

    def ch(self, c: int) -> int:
        return max(4, int(round(c * self.width)))

    def validate(self) -> None:
        if self.skip not in SKIPS:
            raise ConfigError(f"model.skip must be one of {SKIPS}, got {self.skip!r}")
        if self.inject not in INJECTS:
            raise ConfigError(f"model.inject must be one of {INJECTS}, got {self.inject!r}")
        if self.upsample not in UPSAMPLES:
            raise ConfigError(f"model.upsample must be one of {UPSAMPLES}, got {self.upsample!r}")
        if self.upsample_last not in ("", *UPSAMPLES):
            raise ConfigError(f"model.upsample_last must be empty or one of {UPSAMPLES}, got {self.upsample_last!r}")
        if "deconv" in (self.upsample, self.upsample_last) and self.upsample_last not in ("", self.upsample):
            raise ConfigError("model.upsample_last: deconv cannot be mixed with resize modes (different weights)")
        if self.resolution % (2**self.n_layers) or self.resolution < 2**self.n_layers:
            raise ConfigError(
                f"model.resolution must be a positive multiple of {2**self.n_layers}, got {self.resolution}"
            )
        if self.width <= 0 or self.ainet_width <= 0:
            raise ConfigError("model.width and model.ainet_width must be positive")
        if not 0.0 <= float(self.chroma_blur) <= 8.0:
            raise ConfigError(f"model.chroma_blur must be in [0, 8] px, got {self.chroma_blur}")
        if self.n_attrs < 1:
            raise ConfigError("model.attributes must not be empty")


@dataclass
class LossConfig:
    lambda_att1: float = 1.0  # λ1, not in paper: STGAN/AttGAN weight of the real-image attribute loss on D
    lambda_att2: float = 10.0  # λ2, not in paper: STGAN/AttGAN weight of the fake-image attribute loss on G
    lambda_deid: float = 1.0  # λ3, not in paper: chosen so L_deid (in [-1, 1]) is on the scale of L_adv
    lambda_adv: float = 1.0  # λ4, not in paper: STGAN/AttGAN
    lambda_gp: float = 10.0  # Appendix B: "λ is a gradient penalty coefficient with default value 10"
    eps: float = 1e-8  # Eq. 11 ε, "a minimal constant"
    # Eq. 11 inverts the BCE SUMMED over the attributes. Every kept attribute (m=0, a_m = 1 - a_s) already adds
    # a large BCE when G changes nothing, so the sum is large and L_att2 ~ 0 without any edit: trained that way
    # (small preset, 2,525 steps) G's output moved 0.0007 between m = 0 and m = 1. "target" enforces every bit:
    # mean over attributes of BCE(D_att(Î), 1 - a_m), i.e. m=1 -> flipped, m=0 -> kept (STGAN/AttGAN's form).
    att2_form: str = "inverse"
    # Not in paper: diversity-sensitive term (Yang et al. 2019, DSGAN), G maximises
    # min(mean|G(x,z1) - G(x,z2)| / mean|z1 - z2|, div_tau). Without it G learned to ignore f_z entirely
    # (outputs 0.0007 apart for two draws), so re-drawing f_z could not give a new face. 0 = off (paper).
    lambda_div: float = 0.0
    div_tau: float = 0.1
    # Compare the two draws after div_pool x div_pool average pooling: 1 = per pixel (DSGAN); > 1 rewards
    # different structure (face shape, hair, skin tone) and not per-pixel texture, which pixel-level diversity
    # can buy with checkerboard noise.
    div_pool: int = 1
    # Not in paper: low-pass both images (k x k average pooling, bilinear back up) before φ in L_deid. 1 = off.
    # With the full-resolution φ, G lowered the dlib similarity with a high-frequency (checkerboard) pattern
    # rather than a new face; a pattern the low-pass removes cannot pay.
    deid_lowpass: int = 1
    # Not in paper: Gaussian blur (sigma px) of both images before φ in L_deid instead of deid_lowpass's pooling.
    # The pooling's gradient is constant on a fixed grid of 2x2 blocks, so every L_deid step pushed G's output
    # toward a 2-px lattice (what model v4's faces carry); a Gaussian is shift-equivariant and its gradient has no
    # grid. 0 = off; cannot be combined with deid_lowpass > 1.
    deid_blur: float = 0.0
    # Not in paper: hinge on L_deid, mean(max(cos - deid_margin, 0)): G stops lowering the similarity once a face
    # is below the margin, so the adversarial and attribute terms, not φ's blind spots, shape it from there. dlib
    # cosine of two different CelebA people at 64 px (deid_lowpass 2, 128 training images): p10 0.82, median
    # 0.87; plain Eq. 12 drove it to 0.72 with a texture no real face has. None = off (Eq. 12).
    deid_margin: float | None = None
    # Not in paper: before φ in L_deid, move the real and the fake face by the same random similarity transform
    # (shift up to deid_jitter px, scale 1 +- deid_jitter/32, rotation +- 2*deid_jitter degrees; "expectation over
    # transformation", Athalye et al. 2018). φ's steepest direction on a 64 px face is a patchwork of coloured
    # 2x2 blocks; a pattern that fools φ only at one exact position cannot pay, a new face can. 0 = off.
    deid_jitter: float = 0.0
    # Not in paper (after Durall et al. 2020, spectral regularisation of generators): G minimises the mean over the
    # rings of radial frequency >= spectral_from cycles/px (8 rings from 0 to Nyquist) of
    # max(log P_fake - log P_real, 0), P = the batch's luma power on the u/v axes (horizontal and vertical lines)
    # in the ring. Targets the line lattice of the nearest-x2 output layer (model v5: 2.3x CelebA's axis power
    # near Nyquist) and nothing else: one-sided, so it never asks G for more high-frequency power. 0 = off.
    lambda_spectral: float = 0.0
    spectral_from: float = 0.375
    # Not in paper (Projected GAN, Sauer et al. 2021; a3gan.nets.projected): weight of G's hinge term against a
    # second discriminator that reads a frozen network's maps at the taps proj_taps. proj_net: "dlib" (the dlib
    # ResNet of L_deid; needs train.identity=dlib) or "onet" (MTCNN's O-Net face detector, shipped with the
    # package); with either, identity leaks to other recognizers (docs/eval/selection.md). proj_taps "" = the
    # net's default (dlib 2,6; onet 1,2,3). Dp is trained with the hinge loss once per G step (on the last critic
    # step's batch) and on every D warm-up step. 0 = off.
    lambda_proj: float = 0.0
    proj_taps: str = ""
    proj_net: str = "dlib"
    # Not in paper: an identity guard. A second, independent recognizer (train.guard, e.g. FaceRes) adds
    # lambda_guard x mean(max(cos_guard(I, Î) - guard_margin, 0)) to L_G, L_deid's hinge in its own embedding space,
    # so G cannot keep what dlib misses. 0.38 = FaceRes's mean cosine of two different CelebA people (3,000
    # images): the guard only acts on fakes closer to their source than a random stranger is. Off while
    # train.guard is "none".
    lambda_guard: float = 1.0
    guard_margin: float = 0.38


@dataclass
class TrainConfig:
    batch_size: int = 32  # not in paper: STGAN/AttGAN
    lr_g: float = 2e-4  # not in paper: STGAN/AttGAN Adam
    lr_d: float = 2e-4  # not in paper: STGAN/AttGAN Adam
    beta1: float = 0.5  # not in paper: STGAN/AttGAN
    beta2: float = 0.999  # not in paper: STGAN/AttGAN
    n_critic: int = 5  # not in paper: STGAN/AttGAN (WGAN-GP) D steps per G step
    total_steps: int = 200_000  # G steps; not in paper: STGAN trains ~100 epochs of CelebA at batch 32
    lr_decay_start: int = 100_000  # not in paper: linear decay to 0 over the second half (STGAN halves at epoch 100)
    ema_beta: float = 0.999  # not in paper: EMA of G weights (stylegan2-ada habit); 0 disables
    mask_p: float = 0.5  # not in paper: each bit of the training mask m is 1 with this probability
    identity: str = "dlib"  # identity network for L_deid: "dlib" | "arcface" | "none"
    identity_weights: str | None = None  # path for arcface
    # A second identity network for the guard term (loss.lambda_guard): "none" | "faceres" (guard_weights = the
    # file scripts/convert_faceres.py writes) | "dlib" | "arcface"; it must differ from train.identity.
    guard: str = "none"
    guard_weights: str | None = None
    max_minutes: float = 0.0  # stop cleanly (samples + checkpoint) after this much wall time; 0 = no limit
    seed: int = 0
    num_workers: int = 2
    mixed_precision: str = "no"  # "no" | "fp16" | "bf16" (Accelerate)
    log_every: int = 10
    sample_every: int = 500
    ckpt_every: int = 1000
    keep_ckpts: int = 3
    partition: str = "train"  # CelebA official partition to train on
    # Fine-tuning (not in paper): a fresh run starts G and G_ema (and D, when the file holds one) from this a3gan
    # model or checkpoint, e.g. the shipped model; its model config must equal this run's. Ignored on --resume.
    init_from: str | None = None
    # D-only steps before the first G step of a fresh run: lets a fresh D catch up with an initialised G (init_from)
    # before its gradients reach G. Not in paper.
    d_warmup_steps: int = 0
    # Augmentation (not in paper: STGAN/AttGAN use none). flip: mirror each training image with probability 1/2
    # (the attributes are left/right symmetric). diffaug: DiffAugment policy for every image D sees, real and
    # generated, in both steps - "" (off), or a comma-separated subset of translation, cutout, color
    # (see a3gan.training.augment).
    flip: bool = False
    diffaug: str = ""
    # which D outputs read the augmented image: "both" (DiffAugment's way) or "critic" (D_att reads the original)
    diffaug_heads: str = "both"


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = "custom"

    def validate(self) -> Config:
        self.model.validate()
        if self.train.identity not in IDENTITY_BACKENDS:
            raise ConfigError(f"train.identity must be one of {IDENTITY_BACKENDS}, got {self.train.identity!r}")
        if self.train.guard not in GUARD_BACKENDS:
            raise ConfigError(f"train.guard must be one of {GUARD_BACKENDS}, got {self.train.guard!r}")
        if self.train.guard != "none" and self.train.guard == self.train.identity:
            raise ConfigError(f"train.guard must differ from train.identity (both {self.train.guard!r})")
        if self.train.guard in ("faceres", "arcface") and not self.train.guard_weights:
            raise ConfigError(
                f"train.guard={self.train.guard} needs train.guard_weights=PATH"
                + (" (scripts/convert_faceres.py writes it)" if self.train.guard == "faceres" else "")
            )
        if self.loss.lambda_guard < 0 or not -1.0 <= float(self.loss.guard_margin) <= 1.0:
            raise ConfigError(
                "loss.lambda_guard must be >= 0 and loss.guard_margin in [-1, 1], got "
                f"{self.loss.lambda_guard} and {self.loss.guard_margin}"
            )
        if self.loss.att2_form not in ATT2_FORMS:
            raise ConfigError(f"loss.att2_form must be one of {ATT2_FORMS}, got {self.loss.att2_form!r}")
        if self.loss.lambda_div < 0 or self.loss.div_tau <= 0 or self.loss.div_pool < 1:
            raise ConfigError("loss.lambda_div must be >= 0, loss.div_tau > 0 and loss.div_pool >= 1")
        if self.loss.deid_margin is not None and not -1.0 <= self.loss.deid_margin <= 1.0:
            raise ConfigError(f"loss.deid_margin must be in [-1, 1] or null, got {self.loss.deid_margin}")
        if not 0.0 <= float(self.loss.deid_jitter) <= 8.0:
            raise ConfigError(f"loss.deid_jitter must be in [0, 8] px, got {self.loss.deid_jitter}")
        if self.loss.lambda_spectral < 0 or not 0.0 <= float(self.loss.spectral_from) < 0.5:
            raise ConfigError(
                "loss.lambda_spectral must be >= 0 and loss.spectral_from in [0, 0.5) cycles/px, got "
                f"{self.loss.lambda_spectral} and {self.loss.spectral_from}"
            )
        if self.loss.deid_lowpass < 1:
            raise ConfigError(f"loss.deid_lowpass must be >= 1, got {self.loss.deid_lowpass}")
        if self.loss.lambda_proj < 0:
            raise ConfigError(f"loss.lambda_proj must be >= 0, got {self.loss.lambda_proj}")
        from a3gan.nets.projected import PROJ_NETS, proj_taps_for

        if self.loss.proj_net not in PROJ_NETS:
            raise ConfigError(f"loss.proj_net must be one of {', '.join(PROJ_NETS)}, got {self.loss.proj_net!r}")
        if self.loss.lambda_proj > 0 and self.loss.proj_net == "dlib" and self.train.identity != "dlib":
            raise ConfigError(
                "loss.lambda_proj with loss.proj_net=dlib reads the dlib ResNet's maps: it needs train.identity=dlib, "
                f"not {self.train.identity!r} (or set loss.proj_net=onet)"
            )
        try:
            proj_taps_for(self.loss.proj_net, self.loss.proj_taps)
        except ValueError as e:
            raise ConfigError(f"loss.proj_taps: {e}") from None
        if not 0.0 <= float(self.loss.deid_blur) <= 8.0:
            raise ConfigError(f"loss.deid_blur must be in [0, 8] px, got {self.loss.deid_blur}")
        if self.loss.deid_blur > 0 and self.loss.deid_lowpass > 1:
            raise ConfigError("loss.deid_blur and loss.deid_lowpass are two low-passes before φ; set only one")
        from a3gan.training.augment import HEADS, parse_policy

        parse_policy(self.train.diffaug)
        if self.train.diffaug_heads not in HEADS:
            raise ConfigError(f"train.diffaug_heads must be one of {HEADS}, got {self.train.diffaug_heads!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        def build(dc, values):
            fields = {f.name: f for f in dataclasses.fields(dc)}
            unknown = set(values) - set(fields)
            if unknown:
                raise ConfigError(f"unknown config keys for {dc.__name__}: {sorted(unknown)}")
            return dc(**{k: _coerce(dc.__name__, k, str(fields[k].type), v) for k, v in values.items()})

        return cls(
            model=build(ModelConfig, d.get("model", {})),
            loss=build(LossConfig, d.get("loss", {})),
            train=build(TrainConfig, d.get("train", {})),
            preset=d.get("preset", "custom"),
        ).validate()

    @classmethod
    def from_json(cls, s: str) -> Config:
        return cls.from_dict(json.loads(s))

    def override(self, assignments: list[str]) -> Config:
        """Apply ``section.key=value`` (or unique ``key=value``) overrides; values are parsed as YAML."""
        d = self.to_dict()
        for a in assignments:
            if "=" not in a:
                raise ConfigError(f"override must look like key=value, got {a!r}")
            key, raw = a.split("=", 1)
            value = _parse_override(key, raw)
            if "." in key:
                sec, k = key.split(".", 1)
                if sec not in ("model", "loss", "train") or k not in d[sec]:
                    raise ConfigError(f"unknown config key {key!r}")
                d[sec][k] = value
            else:
                secs = [s for s in ("model", "loss", "train") if key in d[s]]
                if len(secs) != 1:
                    raise ConfigError(f"unknown or ambiguous config key {key!r}; use section.key")
                d[secs[0]][key] = value
        return Config.from_dict(d)


def _field_types() -> dict[str, str]:
    out = {}
    for sec, dc in (("model", ModelConfig), ("loss", LossConfig), ("train", TrainConfig)):
        for f in dataclasses.fields(dc):
            out[f"{sec}.{f.name}"] = out.setdefault(f.name, str(f.type))
    return out


def _parse_override(key: str, raw: str) -> Any:
    """YAML-parse an override value, except for string fields, which keep the raw text (YAML would read ``no``
    as False); ``null``/``none`` still mean None for optional strings."""
    typ = _field_types().get(key, "")
    if typ.startswith("str"):
        if "None" in typ and raw.strip().lower() in ("null", "none", "~", ""):
            return None
        return raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError(f"override {key}={raw!r}: not a valid value") from None


def _coerce(section: str, key: str, typ: str, value: Any) -> Any:
    """Coerce a parsed value to the field's declared type (YAML reads ``1e-4`` as a string, say)."""
    try:
        if value is None and "None" in typ:
            return None
        if typ.startswith("float"):
            return float(value)
        if typ == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if typ == "bool":
            if isinstance(value, str):
                if value.lower() in ("true", "yes", "1", "on"):
                    return True
                if value.lower() in ("false", "no", "0", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if typ.startswith("str"):
            return str(value)
        if typ.startswith("list"):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            return list(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{section}.{key} must be of type {typ}, got {value!r}") from None
    return value


def _paper() -> Config:
    return Config(preset="paper")


def _small() -> Config:
    c = Config(preset="small")
    c.model.resolution = 64
    c.model.width = 0.25
    c.model.ainet_width = 0.25
    c.model.z_dim = 128
    c.model.d_fc = 256
    c.train.batch_size = 16
    c.train.n_critic = 5
    c.train.sample_every = 250
    c.train.ckpt_every = 250
    c.train.num_workers = 1
    return c


def _tiny() -> Config:
    """For tests only: builds and steps in milliseconds."""
    c = Config(preset="tiny")
    c.model.resolution = 32
    c.model.n_layers = 4  # 32 px / 2^4 = 2x2 bottleneck (InstanceNorm needs more than one spatial element)
    c.model.width = 1 / 16
    c.model.ainet_width = 1 / 16
    c.model.z_dim = 16
    c.model.d_fc = 32
    c.train.batch_size = 4
    c.train.n_critic = 1
    c.train.identity = "none"
    c.train.num_workers = 0
    return c


PRESETS = {"paper": _paper, "small": _small, "tiny": _tiny}


def load_config(name_or_path: str | Path, overrides: list[str] | None = None) -> Config:
    """A preset name (``paper``, ``small``, ``tiny``), a YAML/JSON file, or an a3gan ``.safetensors`` checkpoint (the
    config in its metadata, e.g. to fine-tune the shipped model with its own settings), then ``key=value``
    overrides."""
    s = str(name_or_path)
    if s in PRESETS:
        cfg = PRESETS[s]().validate()
    elif s.lower().endswith(".safetensors"):
        cfg = _config_of_checkpoint(Path(s))
    else:
        p = Path(s)
        if not p.is_file():
            raise ConfigError(f"no preset or config file named {s!r} (presets: {', '.join(PRESETS)})")
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({e.__class__.__name__})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: a config file must hold a mapping")
        base = data.pop("base", None)
        cfg = PRESETS[base]() if base in PRESETS else Config()
        merged = cfg.to_dict()
        for sec in ("model", "loss", "train"):
            merged[sec].update(data.get(sec, {}))
        merged["preset"] = data.get("preset", f"{base or 'custom'}+{p.stem}")
        cfg = Config.from_dict(merged)
    return cfg.override(overrides or [])


def _config_of_checkpoint(p: Path) -> Config:
    """The config in an a3gan checkpoint's metadata (the tensors are not read)."""
    from a3gan.checkpoint import read_config  # checkpoint imports this module

    return read_config(p)[0]
