"""Small commands: version, export-onnx, demo."""

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def version() -> None:
        """Print the package version."""
        from a3gan import __version__

        typer.echo(__version__)

    @app.command("export-onnx")
    def export_onnx_cmd(
        out: Path = typer.Argument(..., help="Where to write the .onnx file."),
        model: Path | None = typer.Option(None, "--model", help="Checkpoint (default: the shipped model)."),
        opset: int = typer.Option(17, help="ONNX opset."),
    ) -> None:
        """Export the generator to ONNX and check it against PyTorch (max abs difference)."""
        from a3gan.checkpoint import default_model_path
        from a3gan.export import export_onnx

        stats = export_onnx(model or default_model_path(), out, opset=opset)
        typer.echo(f"wrote {stats['path']} (max abs diff vs PyTorch: {stats['max_abs_diff']:.2e})")
