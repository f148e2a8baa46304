"""``a3gan train``: train A3GAN on a CelebA folder (issue 3). The loop is :mod:`a3gan.training.loop`."""

from __future__ import annotations

from pathlib import Path

import typer

from a3gan.errors import InputError


def build_config(
    config: str | None,
    out: Path,
    resume: bool,
    overrides: list[str],
    steps: int | None,
    identity: str | None,
    identity_weights: str | None,
):
    """The run's config: ``--config`` (or, when resuming without it, the run's own config.yaml) + overrides."""
    from a3gan.attributes import MaskError
    from a3gan.config import ConfigError, load_config

    extra = list(overrides)
    if steps is not None:
        extra.append(f"train.total_steps={steps}")
    if identity is not None:
        extra.append(f"train.identity={identity}")
    if identity_weights is not None:
        extra.append(f"train.identity_weights={identity_weights}")
    try:
        if config is None:
            if not resume:
                raise InputError(
                    "--config is required for a new run (a preset: paper, small, tiny; or a YAML file)"
                )
            from a3gan.training.loop import load_run_config

            return load_run_config(out).override(extra)
        return load_config(config, extra)
    except (ConfigError, MaskError) as e:
        raise InputError(str(e)) from None


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        out: Path = typer.Option(..., "--out", "-o", help="Run folder (checkpoints, samples, metrics)."),
        data: Path = typer.Option(None, "--data", "-d", help="CelebA folder in its official layout."),
        config: str = typer.Option(
            None,
            "--config",
            "-c",
            help="Preset (paper, small, tiny) or YAML file. Default with --resume: the run's.",
        ),
        resume: bool = typer.Option(
            False, "--resume", help="Continue the run in --out from its latest checkpoint."
        ),
        set_: list[str] = typer.Option(
            [], "--set", help="Override a config value, e.g. --set train.batch_size=16 (repeatable)."
        ),
        steps: int = typer.Option(None, "--steps", help="Shortcut for --set train.total_steps=N (G steps)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        identity: str = typer.Option(
            None, "--identity", help="Identity network for L_deid: dlib, arcface, none."
        ),
        identity_weights: str = typer.Option(
            None, "--identity-weights", help="Weights file: ArcFace .pth/.safetensors, or dlib .dat/converted .safetensors."
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
    ) -> None:
        """Train A3GAN on CelebA. Same command on CPU, one GPU, or N processes (torchrun / accelerate launch)."""
        cfg = build_config(config, out, resume, set_, steps, identity, identity_weights)
        if data is None:
            raise InputError("--data is required (a CelebA folder in its official layout)")
        from a3gan.training.loop import train as run_training

        result = run_training(cfg, data, out, resume=resume, device=device, progress=progress)
        if result.is_main:
            done = result.step - result.start_step
            typer.echo(
                f"trained {done} G steps ({result.start_step} -> {result.step}) in {result.seconds:.1f} s, "
                f"{result.images_per_s:.1f} images/s; latest checkpoint: {result.last_checkpoint}"
            )
