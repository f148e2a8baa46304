"""Small commands: version (demo and export-onnx are added by their issues)."""

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def version() -> None:
        """Print the package version."""
        from a3gan import __version__

        typer.echo(__version__)
