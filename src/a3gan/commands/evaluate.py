"""``a3gan evaluate``: the paper's evaluation protocol (Table 5, Table 1, Fig. 4-6) on an identity-labelled set.

Heavy modules (torch, dlib, onnxruntime) are imported inside the command so ``a3gan --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

DEFAULT_METHODS = "a3gan-0,a3gan-1,a3gan-3,a3gan-5,a3gan-10,pixelate,blur,blackout"


def _floats(spec: str) -> list[float]:
    from a3gan.errors import InputError

    try:
        return [float(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--far takes comma-separated numbers like 1e-3,1e-2, got {spec!r}") from None


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        data: Path = typer.Option(
            ..., "--data", help="CelebA-layout folder (identity_CelebA.txt) or person/*.jpg"
        ),
        out: Path = typer.Option(..., "--out", help="report folder: report.md, report.json, plots, cache/"),
        model: list[Path] = typer.Option(
            [],
            "--model",
            help="A3GAN checkpoint for the a3gan-* methods; repeat it to add ablation checkpoints",
        ),
        models: list[str] = typer.Option(
            [],
            "--models",
            help="ablation checkpoints name=path[,name=path] (Table 1; run with the A3GAN-5 mask)",
        ),
        methods: str = typer.Option(DEFAULT_METHODS, "--methods", help="comma-separated methods"),
        limit: int | None = typer.Option(300, "--limit", help="at most this many images (whole identities)"),
        seed: int = typer.Option(0, "--seed", help="identity choice, f_z sampling and impostor pairs"),
        device: str = typer.Option("cpu", "--device", help="torch device for the generator and recognizers"),
        recognizer: list[str] = typer.Option(
            [],
            "--recognizer",
            help="repeatable: dlib, mobileface, or a weights path (.onnx, FaceRes or ArcFace .safetensors, "
            "ArcFace .pth); "
            "default: dlib + the shared mobileface_v2.onnx",
        ),
        detector: list[str] = typer.Option(
            [],
            "--detector",
            help="repeatable: centerface, dlib-hog, dlib-cnn (default: centerface + dlib-hog)",
        ),
        inception: Path | None = typer.Option(
            None, "--inception", help="torch-fidelity Inception-v3 weights (pt_inception-2015-12-05) for FID"
        ),
        attr_classifier: Path | None = typer.Option(
            None, "--attr-classifier", help="a trained evaluation attribute classifier (.safetensors)"
        ),
        min_per_identity: int = typer.Option(
            3, "--min-per-identity", help="identities need this many images"
        ),
        far: str = typer.Option("1e-3,1e-2", "--far", help="false-accept rates of the calibrated thresholds"),
        no_progress: bool = typer.Option(False, "--no-progress", help="no progress bars"),
    ) -> None:
        """Measure anonymity, realism, controllability and quality of A3GAN and the baselines."""
        from a3gan.evaluate import DEFAULT_DETECTORS, run_evaluation
        from a3gan.metrics.report import main_far_key

        extra = [f"{p.stem}={p}" for p in model[1:]]
        report = run_evaluation(
            data=data,
            model=model[0] if model else None,
            methods=methods,
            out=out,
            limit=limit if limit and limit > 0 else None,
            seed=seed,
            device=device,
            recognizers=recognizer or None,
            inception=inception,
            models=(extra + list(models)) or None,
            detectors=detector or DEFAULT_DETECTORS,
            attr_classifier=attr_classifier,
            min_per_identity=min_per_identity,
            fars=_floats(far),
            progress=not no_progress,
        )
        key = main_far_key(report)
        recs = [r["name"] for r in report["recognizers"]]
        typer.echo(
            f"{report['settings']['n_images']} images; verification at {key} (lower = more anonymous):"
        )
        for row in report["rows"]:
            which = "other_images" if row["kind"] == "original" else "same_image"
            ver = ", ".join(f"{r} {100 * float(row['verification'][r][key][which]):.2f}%" for r in recs)
            typer.echo(f"  {row['method']:<24} {ver}")
        typer.echo(f"report: {Path(out) / 'report.md'}")
