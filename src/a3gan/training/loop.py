"""The A3GAN training loop (stylegan2-ada style split: networks in ``a3gan.nets``, losses in ``a3gan.losses``,
the loop here).

One iteration = ``n_critic`` D steps, then one G step (WGAN-GP, STGAN practice; ``step`` counts G steps):

- D step (``losses.d_loss``): D minimises L_cls (Eq. 14, WGAN-GP with λ_gp) + λ1 L_att1 (Eq. 9) on a fresh batch;
  the fake is G(x, m, z) without gradient.
- G step (``losses.g_loss``): G (with SCUs and AINet) minimises λ4 L_adv (Eq. 15) + λ2 L_att2 (Eq. 11)
  + λ3 L_deid (Eq. 12) on a fresh batch, with the frozen identity network on real and fake; D is frozen.

Masks m are drawn per sample, each bit 1 with probability ``train.mask_p`` (not in paper). Adam (lr 2e-4, betas
(0.5, 0.999), STGAN/AttGAN), linear LR decay from ``lr_decay_start`` to ``total_steps`` and an EMA of G
(``ema_beta`` with warm-up; the EMA copy is what inference loads).

Augmentation (not in paper, off by default): ``train.flip`` mirrors training images; ``train.diffaug`` passes
every image D sees, real or generated, in both steps, through DiffAugment (:mod:`a3gan.training.augment`),
drawn from the phase's generator like every other draw.

Devices and processes come from Hugging Face Accelerate: the same command runs on CPU, one GPU, or N processes
started by ``torchrun --nproc_per_node N -m a3gan.cli train ...`` or ``accelerate launch --multi_gpu
--num_processes N -m a3gan.cli train ...`` (multi-node: the same plus the launcher's node options, with RUN_DIR
on a shared file system). ``train.batch_size`` is the GLOBAL batch: each process takes ``batch_size // N``
images of every batch. Gradients are averaged by an explicit all-reduce (see :mod:`a3gan.training.distributed`),
so replicas stay bit-identical. Mixed precision (``train.mixed_precision`` = fp16 | bf16) is Accelerate's
autocast + gradient scaler; prefer bf16 on GPUs that have it (the GP's double backward is not loss-scaled).

Reproducibility: every random draw of the loop (masks, z, the GP's interpolation weights) comes from a generator
keyed by (seed, process, step, phase), the data order from (seed, epoch), and the initial weights from the
seed. So the same seed gives the same steps on CPU, and a resumed run draws exactly what an uninterrupted run
would have.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.data import Dataset

from a3gan import __version__
from a3gan.config import Config, ConfigError
from a3gan.errors import DataError, InputError, ModelError
from a3gan.nets.projected import build_projected, proj_taps_for, projection_net
from a3gan.training import augment
from a3gan.training import distributed as dist_utils
from a3gan.training.batches import BatchStream, per_process_batch
from a3gan.training.metrics import MetricsLog, RunningMean
from a3gan.training.rundir import RunDir, atomic_write, atomic_write_text
from a3gan.training.samples import fixed_z, render_grid, save_grid
from a3gan.training.schedule import ema_beta_at, ema_update, lr_at, sample_masks, step_seed
from a3gan.training.state import capture_rng, load_state, restore_rng, save_state

#: Rows of the sample grid (the first K images of the training set).
SAMPLE_ROWS = 8


@dataclasses.dataclass
class TrainResult:
    """What a finished (or stopped) run reports."""

    step: int
    start_step: int
    is_main: bool
    out_dir: Path
    last_checkpoint: Path | None
    logs: dict[str, float]
    seconds: float
    g_steps_per_s: float
    images_per_s: float
    state_hash: str


def _make_accelerator(cfg: Config, device: str):
    from accelerate import Accelerator

    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    # Accelerate only sets up multi-process CPU training (gloo) when told the run is on CPU.
    cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    mp = cfg.train.mixed_precision
    # YAML reads a bare `no` (--set train.mixed_precision=no) as the boolean False
    mp = "no" if mp in (False, None) or str(mp).lower() in ("false", "off", "none", "") else str(mp)
    try:
        return Accelerator(mixed_precision=mp, log_with=None, cpu=cpu)
    except ValueError as e:
        raise InputError(f"train.mixed_precision={mp!r}: {e}") from None


def _check_same_model(saved: Config, cfg: Config, run: RunDir) -> None:
    if saved.to_dict()["model"] != cfg.to_dict()["model"]:
        raise InputError(
            f"cannot resume: the model config differs from the run's {run.config_path}; "
            "resume without --config (or with the same model settings)"
        )


def _read_init_from(path: str, cfg: Config) -> tuple[dict[str, torch.Tensor], Config, bool]:
    """Read ``train.init_from`` and check it against the run's model before anything is written; returns the
    file's tensors, its config and whether its model has to be grown (a smaller width, see below)."""
    from a3gan.checkpoint import module_state, read_checkpoint
    from a3gan.nets.grow import growable

    tensors, init_cfg, _ = read_checkpoint(path)
    grow = False
    if init_cfg.to_dict()["model"] != cfg.to_dict()["model"]:
        grow = growable(init_cfg.model, cfg.model)
        if not grow:
            diff = sorted(
                k for k, v in cfg.to_dict()["model"].items() if init_cfg.to_dict()["model"].get(k) != v
            )
            raise InputError(
                f"train.init_from {path}: its model config differs from this run's ({', '.join(diff)}); "
                "only a larger model.width / model.ainet_width may differ (the model is then grown)"
            )
    if not (module_state(tensors, "G_ema") or module_state(tensors, "G")):
        raise ModelError(f"train.init_from {path}: the file holds no generator weights (G or G_ema)")
    return tensors, init_cfg, grow


def _init_from(path: str, cfg: Config, G, D, G_ema, read=None, Dp=None) -> list[str]:
    """Load ``train.init_from`` into a fresh run's networks; returns the names of the modules it set.

    G and G_ema both start from the file's EMA generator when it has one (what inference uses), else from its G.
    D is loaded only when the file holds one (a training checkpoint); a shipped model leaves D fresh. The same
    holds for the projected discriminator ``Dp`` (``loss.lambda_proj``), which is never grown.
    A file whose model is this run's at a smaller ``width`` / ``ainet_width`` is grown to this run's widths
    without changing what it computes (:mod:`a3gan.nets.grow`). ``read``: what :func:`_read_init_from` returned.
    """
    from a3gan.checkpoint import module_state
    from a3gan.nets.grow import widen_state_dict

    tensors, init_cfg, grow = read if read is not None else _read_init_from(path, cfg)
    g_state = module_state(tensors, "G_ema") or module_state(tensors, "G")
    loaded = []
    mods = [("G", G, g_state), ("G_ema", G_ema, g_state), ("D", D, module_state(tensors, "D"))]
    if Dp is not None and not grow:
        mods.append(("Dp", Dp, module_state(tensors, "Dp")))
    for name, mod, sd in mods:
        if not sd:
            continue
        try:
            if grow:
                sd = widen_state_dict(sd, init_cfg.model, mod.state_dict(), cfg.model, "D" if name == "D" else "G")
            mod.load_state_dict(sd, strict=True)
        except (RuntimeError, ValueError) as e:
            raise ModelError(f"train.init_from {path}: {name} does not match ({str(e).splitlines()[0]})") from None
        loaded.append(name)
    return loaded


def load_run_config(out_dir: str | Path) -> Config:
    """The config a run folder was started with (``RUN_DIR/config.yaml``)."""
    p = RunDir(out_dir).config_path
    if not p.is_file():
        raise InputError(f"cannot resume: {p.parent} holds no run (no config.yaml)")
    try:
        return Config.from_dict(yaml.safe_load(p.read_text(encoding="utf-8")))
    except (ConfigError, yaml.YAMLError, TypeError, AttributeError) as e:
        raise InputError(f"{p}: unreadable run config ({e})") from None


def _build_dataset(cfg: Config, data_dir: str | Path, main: bool) -> Dataset:
    from a3gan.data.celeba import CelebA

    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"--data {root}: no such folder (expected CelebA's official layout)")
    cache = os.environ.get("A3GAN_CACHE_DIR")  # explicit choice wins over ROOT/.a3gan_cache
    return CelebA(
        root,
        cfg.model.resolution,
        cache_dir=cache or None,
        partition=cfg.train.partition,
        attributes=cfg.model.attributes,
        flip=False,  # train.flip mirrors in the loop (augment.random_flip), from the step's generator
        progress=main,
    )


def _identity_net(name: str, weights: str | None, device: torch.device):
    if name == "none":
        return None, {"name": "none"}
    from a3gan.identity import build_identity

    net = build_identity(name, weights, device)
    desc = net.describe() if hasattr(net, "describe") else {"name": name}
    return net, desc


def _build_identity(cfg: Config, device: torch.device):
    """L_deid's identity network (``train.identity``) and its description, or (None, {"name": "none"})."""
    return _identity_net(cfg.train.identity, cfg.train.identity_weights, device)


def _build_guard(cfg: Config, device: torch.device):
    """The guard's identity network (``train.guard``, loss.lambda_guard) and its description."""
    return _identity_net(cfg.train.guard, cfg.train.guard_weights, device)


def _out_of_time(t0: float, max_minutes: float, dev: torch.device) -> bool:
    """Whether ``train.max_minutes`` of wall time have passed; rank 0 decides for all processes."""
    over = torch.tensor([float(time.perf_counter() - t0 > 60.0 * max_minutes)], device=dev)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.broadcast(over, src=0)
    return bool(over.item())


def train(
    cfg: Config,
    data_dir: str | Path | None,
    out_dir: str | Path,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    dataset: Dataset | None = None,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train A3GAN; see the module docstring. ``dataset`` replaces the CelebA folder (tests).

    Returns a :class:`TrainResult` on every process (``state_hash`` = SHA-256 of G, D, G_ema and, with
    ``loss.lambda_proj``, Dp state dicts).
    """
    from a3gan import losses
    from a3gan.checkpoint import module_state, read_checkpoint, save_checkpoint
    from a3gan.nets import Discriminator, Generator

    cfg.validate()
    tc = cfg.train
    if tc.n_critic < 1:
        raise InputError(f"train.n_critic must be >= 1, got {tc.n_critic}")
    if tc.total_steps < 0:
        raise InputError(f"train.total_steps must be >= 0, got {tc.total_steps}")
    if tc.d_warmup_steps < 0:
        raise InputError(f"train.d_warmup_steps must be >= 0, got {tc.d_warmup_steps}")
    for k in ("log_every", "sample_every", "ckpt_every", "keep_ckpts"):
        if getattr(tc, k) < 1:
            raise InputError(f"train.{k} must be >= 1, got {getattr(tc, k)}")
    if not 0.0 <= tc.mask_p <= 1.0:
        raise InputError(f"train.mask_p must be in [0, 1], got {tc.mask_p}")
    if not 0.0 <= tc.ema_beta < 1.0:
        raise InputError(f"train.ema_beta must be in [0, 1), got {tc.ema_beta}")

    run = RunDir(out_dir)
    accelerator = _make_accelerator(cfg, device)
    main = accelerator.is_main_process
    rank, world = accelerator.process_index, accelerator.num_processes
    dev = accelerator.device
    per_process_batch(tc.batch_size, world)  # the global batch must split evenly

    # ---- run folder ------------------------------------------------------------------------------------------
    run.check_can_start(resume)
    if resume:
        _check_same_model(load_run_config(out_dir), cfg, run)
    if dataset is None:
        if data_dir is None:
            raise InputError("no training data: pass --data DIR")
        with accelerator.main_process_first():  # the main process decodes the image cache once
            dataset = _build_dataset(cfg, data_dir, main)
    identity, identity_desc = _build_identity(cfg, dev)
    guard, guard_desc = _build_guard(cfg, dev)
    proj_taps = proj_taps_for(cfg.loss.proj_net, cfg.loss.proj_taps)
    Dp = opt_p = proj_net = None  # the projected D (loss.lambda_proj; not in paper), checked before anything is written
    if cfg.loss.lambda_proj > 0:
        try:
            proj_net = projection_net(cfg.loss.proj_net, identity, dev)
            Dp = build_projected(proj_net, proj_taps, seed=tc.seed)  # its own seeded draws: G and D init unchanged
        except ValueError as e:
            raise InputError(str(e)) from None
    init_read = _read_init_from(tc.init_from, cfg) if tc.init_from and not resume else None
    accelerator.wait_for_everyone()  # everyone has checked before the main process writes anything
    if main:
        run.root.mkdir(parents=True, exist_ok=True)
        run.remove_stale_temporaries()
        atomic_write_text(run.config_path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    # ---- networks, optimizers --------------------------------------------------------------------------
    stream = BatchStream(
        dataset,
        tc.batch_size,
        rank,
        world,
        tc.seed,
        num_workers=tc.num_workers,
        pin_memory=dev.type == "cuda",
    )
    torch.manual_seed(tc.seed)
    G = Generator(cfg.model).to(dev).train()
    D = Discriminator(cfg.model).to(dev).train()
    dist_utils.broadcast_module(G)
    dist_utils.broadcast_module(D)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    if Dp is not None:
        Dp = Dp.to(dev).train()
        dist_utils.broadcast_module(Dp)
    if tc.init_from and not resume:  # every process reads the same file, so replicas start identical
        _init_from(tc.init_from, cfg, G, D, G_ema, init_read, Dp)
    opt_g = torch.optim.Adam(G.parameters(), lr=tc.lr_g, betas=(tc.beta1, tc.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=tc.lr_d, betas=(tc.beta1, tc.beta2))
    opt_g, opt_d = accelerator.prepare(opt_g, opt_d)
    if Dp is not None:
        opt_p = accelerator.prepare(torch.optim.Adam(Dp.parameters(), lr=tc.lr_d, betas=(tc.beta1, tc.beta2)))
    nets = {"G": G, "D": D, "G_ema": G_ema, **({"Dp": Dp} if Dp is not None else {})}

    step = 0
    ref = run.latest() if resume else None
    seen_at_start = 0  # images seen before this process's first step (carried across resumes)
    if ref is not None:
        tensors, _, ref_meta = read_checkpoint(ref.weights)
        for name, mod in nets.items():
            sd = module_state(tensors, name)
            if name == "Dp" and not sd:  # lambda_proj switched on for a resumed run: Dp starts fresh
                continue
            try:
                mod.load_state_dict(sd, strict=True)
            except RuntimeError as e:
                raise ModelError(
                    f"{ref.weights}: {name} does not match the config ({str(e).splitlines()[0]})"
                ) from None
        state = load_state(ref.state)
        if int(state["step"]) != ref.step:
            raise ModelError(f"{ref.state}: step {state['step']} does not match {ref.weights.name}")
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        if opt_p is not None and state.get("opt_p") is not None and module_state(tensors, "Dp"):
            opt_p.load_state_dict(state["opt_p"])
        if state.get("scaler") is not None and accelerator.scaler is not None:
            accelerator.scaler.load_state_dict(state["scaler"])
        stream.load_state_dict(state["data"])
        rngs = state.get("rng") or []
        if len(rngs) == world:
            restore_rng(rngs[rank])
        step = ref.step
        try:
            seen_at_start = int(ref_meta["images_seen"])
        except (KeyError, TypeError, ValueError):  # older checkpoints: as if every step had today's n_critic
            seen_at_start = step * (tc.n_critic + 1) * tc.batch_size
    start_step = step

    # ---- logging, fixed sample inputs ------------------------------------------------------------------------
    log = (
        MetricsLog(run.metrics_path, run.tb_dir, start_step, tc.total_steps, progress, resume)
        if main
        else None
    )
    sample_x = sample_z_fixed = None
    if main:
        k = min(SAMPLE_ROWS, len(dataset))  # type: ignore[arg-type]
        sample_x = torch.stack([dataset[i][0] for i in range(k)]).to(dev)
        sample_z_fixed = fixed_z(G, k, tc.seed, dev)

    def write_samples(at: int) -> None:
        if main:
            with accelerator.autocast():
                grid = render_grid(G_ema, sample_x, sample_z_fixed)
            save_grid(grid, run.sample_path(at))

    def write_checkpoint(at: int) -> Path:
        rng_all: list[Any] = [capture_rng()]
        hashes: list[Any] = [dist_utils.state_hash(*nets.values())]
        if world > 1:
            rng_all, hashes = [None] * world, [None] * world
            torch.distributed.all_gather_object(rng_all, capture_rng())
            torch.distributed.all_gather_object(hashes, dist_utils.state_hash(*nets.values()))
            if len(set(hashes)) != 1:  # cannot happen unless a process computed something different
                raise RuntimeError(f"replicas diverged at step {at}: weight hashes {hashes}")
        path = run.weights_path(at)
        if main:
            meta = {
                "step": at,
                "identity": identity_desc,
                "guard": guard_desc,
                "world_size": world,
                "replica_hashes": hashes,
                "images_seen": seen_at_start + (at - start_step) * (tc.n_critic + 1) * tc.batch_size,
                "a3gan_version": __version__,
            }
            save_checkpoint(path, nets, cfg, meta)
            st = {
                "step": at,
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "opt_p": opt_p.state_dict() if opt_p is not None else None,
                "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None,
                "data": stream.state_dict(),
                "rng": rng_all,
                "world_size": world,
                "seed": tc.seed,
                "a3gan_version": __version__,
            }
            atomic_write(run.state_path(at), lambda tmp: save_state(tmp, st))
            run.write_latest(at)  # only now is the checkpoint complete
            run.prune(tc.keep_ckpts)
        accelerator.wait_for_everyone()
        return path

    # ---- one iteration ---------------------------------------------------------------------------------------
    n_attrs = cfg.model.n_attrs
    policy = augment.parse_policy(tc.diffaug)

    def seen_by_d(gen: torch.Generator):
        """D as the losses see it: through DiffAugment (draws from this phase's generator) when train.diffaug is set."""
        return augment.AugmentedD(D, policy, gen, tc.diffaug_heads) if policy else D

    def draw(phase: int):
        gen = torch.Generator().manual_seed(step_seed(tc.seed, rank, step, phase))
        x, a_s = next(stream)
        x = x.to(dev, non_blocking=True)
        a_s = a_s.to(dev, non_blocking=True)
        m = sample_masks(x.shape[0], n_attrs, tc.mask_p, gen).to(dev)
        z = G.sample_z(x.shape[0], generator=gen, device=dev)
        if tc.flip:
            x = augment.random_flip(x, gen)
        return gen, x, a_s, m, z

    def check_finite(loss: torch.Tensor, what: str) -> None:
        if not torch.isfinite(loss).all():
            raise FloatingPointError(f"{what} became {loss.item()} at step {step}; lower the learning rate")

    def proj_maps(img: torch.Tensor, gen: torch.Generator) -> list[torch.Tensor]:
        """What Dp reads of ``img``: the proj_net's maps at the taps, seen through DiffAugment like D when train.diffaug is set."""
        return proj_net.feature_maps(augment.diff_augment(img, policy, gen), proj_taps)

    def dp_step(gen: torch.Generator, x: torch.Tensor, fake: torch.Tensor) -> None:
        with accelerator.autocast():
            with torch.no_grad():
                maps_real, maps_fake = proj_maps(x, gen), proj_maps(fake, gen)
            lr_real, lr_fake = Dp(maps_real), Dp(maps_fake)
            loss_p = losses.proj_d(lr_real, lr_fake)
        check_finite(loss_p, "the projected D loss")
        opt_p.zero_grad(set_to_none=True)
        accelerator.backward(loss_p)
        dist_utils.all_reduce_grads(Dp)
        opt_p.step()
        avg.add({"dp/loss": loss_p.item(), "dp/real": lr_real.mean().item(), "dp/fake": lr_fake.mean().item()})

    def d_step(phase: int) -> None:
        gen, x, a_s, m, z = draw(phase)
        with torch.no_grad(), accelerator.autocast():
            fake = G(x, m, z)
        with accelerator.autocast():
            loss_d, logs_d = losses.d_loss(seen_by_d(gen), x, fake, a_s, cfg.loss, generator=gen)
        check_finite(loss_d, "the D loss")
        opt_d.zero_grad(set_to_none=True)
        accelerator.backward(loss_d)
        dist_utils.all_reduce_grads(D)
        opt_d.step()
        avg.add(logs_d)
        if Dp is not None and phase >= tc.n_critic - 1:  # once per G step, and on every warm-up step
            dp_step(gen, x, fake)

    avg = RunningMean()
    last_ckpt: Path | None = ref.weights if ref is not None else None
    if ref is None and tc.total_steps > 0 and tc.d_warmup_steps > 0:
        # D-only warm-up at G step 0 (phases after the iteration's own): G does not move, D learns the current G
        for group in opt_d.param_groups + (opt_p.param_groups if opt_p is not None else []):
            group["lr"] = tc.lr_d
        for i in range(tc.d_warmup_steps):
            d_step(tc.n_critic + 1 + i)
        seen_at_start += tc.d_warmup_steps * tc.batch_size
        warm = dist_utils.mean_over_processes(avg.pop(), dev)
        if log is not None:  # one record at step 0: what D reached before G's first step
            log.log(0, {**warm, "d_warmup_steps": float(tc.d_warmup_steps)})
        # a checkpoint at step 0 keeps the warmed-up D (hours of D steps at a large d_warmup_steps); --resume
        # from it goes straight to G's first step
        last_ckpt = write_checkpoint(0)
    if start_step == 0 and tc.total_steps > 0:
        write_samples(0)
    t0 = time.perf_counter()
    t_interval, cpu_interval, steps_interval = t0, time.process_time(), 0
    logs: dict[str, float] = {}
    try:
        while step < tc.total_steps:
            lr_g = lr_at(step, tc.lr_g, tc.lr_decay_start, tc.total_steps)
            lr_d = lr_at(step, tc.lr_d, tc.lr_decay_start, tc.total_steps)
            for group in opt_g.param_groups:
                group["lr"] = lr_g
            for group in opt_d.param_groups + (opt_p.param_groups if opt_p is not None else []):
                group["lr"] = lr_d

            # D steps
            for phase in range(tc.n_critic):
                d_step(phase)

            # G step
            gen, x, a_s, m, z = draw(tc.n_critic)
            D.requires_grad_(False)
            if Dp is not None:
                Dp.requires_grad_(False)
            try:
                with accelerator.autocast():
                    fake = G(x, m, z)
                    second = None
                    if cfg.loss.lambda_div > 0:
                        z2 = G.sample_z(x.shape[0], generator=gen, device=dev)
                        second = (G(x, m, z2), z, z2)
                    emb_real = emb_fake = None
                    if identity is not None:
                        emb_real, emb_fake = losses.deid_embeddings(identity, x, fake, cfg.loss, gen)
                    guard_emb = losses.deid_embeddings(guard, x, fake, cfg.loss, gen) if guard is not None else None
                    p_fake = Dp(proj_maps(fake, gen)) if Dp is not None else None
                    loss_g, logs_g = losses.g_loss(
                        seen_by_d(gen), fake, a_s, m, emb_real, emb_fake, cfg.loss, second, real=x,
                        proj_logits=p_fake, guard=guard_emb,
                    )
                check_finite(loss_g, "the G loss")
                opt_g.zero_grad(set_to_none=True)
                accelerator.backward(loss_g)
                dist_utils.all_reduce_grads(G)
                opt_g.step()
            finally:
                D.requires_grad_(True)
                if Dp is not None:
                    Dp.requires_grad_(True)
            dist_utils.average_buffers(G)
            ema_update(G_ema, G, ema_beta_at(step, tc.ema_beta))
            avg.add(logs_g)
            step += 1
            steps_interval += 1

            if step % tc.log_every == 0 or step == tc.total_steps:
                logs = dist_utils.mean_over_processes(avg.pop(), dev)
                now = time.perf_counter()
                dt = max(now - t_interval, 1e-9)
                logs["perf/s_per_g_step"] = dt / steps_interval
                logs["perf/img_per_s"] = steps_interval * (tc.n_critic + 1) * tc.batch_size / dt
                cpu_now = time.process_time()  # CPU seconds of this process (all its threads)
                logs["perf/cpu_s_per_g_step"] = (cpu_now - cpu_interval) / steps_interval
                logs["lr/g"], logs["lr/d"] = lr_g, lr_d
                logs["epoch"] = float(stream.epoch)
                t_interval, cpu_interval, steps_interval = now, cpu_now, 0
                if log is not None:
                    log.log(step, logs)
            elif log is not None:
                log.advance(step)
            if step % tc.sample_every == 0 or step == tc.total_steps:
                write_samples(step)
            if step % tc.ckpt_every == 0 or step == tc.total_steps:
                last_ckpt = write_checkpoint(step)
            if on_step is not None:
                on_step(step)
            if tc.max_minutes > 0 and step % tc.log_every == 0 and _out_of_time(t0, tc.max_minutes, dev):
                if step % tc.sample_every != 0:
                    write_samples(step)
                if step % tc.ckpt_every != 0:
                    last_ckpt = write_checkpoint(step)
                break
    finally:
        if log is not None:
            log.close()

    seconds = time.perf_counter() - t0
    done = step - start_step
    return TrainResult(
        step=step,
        start_step=start_step,
        is_main=main,
        out_dir=run.root,
        last_checkpoint=last_ckpt,
        logs=logs,
        seconds=seconds,
        g_steps_per_s=done / seconds if seconds > 0 else 0.0,
        images_per_s=done * (tc.n_critic + 1) * tc.batch_size / seconds if seconds > 0 else 0.0,
        state_hash=dist_utils.state_hash(*nets.values()),
    )
