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

    @app.command()
    def demo(
        out: Path = typer.Option(
            Path("demo_out"), "--out", "-o", help="Folder for the input and output images."
        ),
        model: Path | None = typer.Option(None, "--model", help="Checkpoint (default: the shipped model)."),
        preset: str = typer.Option("a3gan-0", "--preset", help="Attribute mask (preset, names or bits)."),
        seed: int = typer.Option(0, "--seed"),
        grid: bool = typer.Option(
            False, "--grid", help="Also write a comparison grid of all presets and baselines."
        ),
    ) -> None:
        """Anonymize a public-domain sample photo (scikit-image's astronaut) and print per-face identity similarity."""
        run_demo(out, model, preset, seed)
        if grid:
            path = comparison_grid(out, model, seed)
            typer.echo(f"grid:   {path}")


GRID_METHODS = (
    ("original", None, None),
    ("A3GAN-0", "a3gan", "a3gan-0"),
    ("A3GAN-5", "a3gan", "a3gan-5"),
    ("A3GAN-10", "a3gan", "a3gan-10"),
    ("blur 9x9", "blur", None),
    ("pixelate 8x8", "pixelate", None),
)


def comparison_grid(out: Path, model: Path | None, seed: int, size: int = 192) -> Path:
    """Original, A3GAN-0/5/10, blur and pixelation of the sample photo's face, side by side with labels."""
    import numpy as np
    from PIL import Image, ImageDraw
    from skimage import data as skdata

    from a3gan.pipeline.anonymizer import Anonymizer
    from a3gan.pipeline.io import write_image

    image = np.ascontiguousarray(skdata.astronaut())
    tiles = []
    box = None
    for label, method, preset in GRID_METHODS:
        if method is None:
            result_img = image
        else:
            anon = Anonymizer(model=model, change=preset, seed=seed, method=method, verify=method == "a3gan")
            res = anon.anonymize(image)
            result_img = res.image
            if res.faces and res.faces[0].fell_back:
                label += " (pixelated: still matched)"
            if box is None and res.faces:
                box = res.faces[0].box
        tiles.append((label, result_img))
    if box is None:
        raise RuntimeError("no face found on the sample photo")
    x0, y0, x1, y1 = box
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.8 * max(x1 - x0, y1 - y0)
    crop = tuple(int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
    sheet = Image.new("RGB", (size * len(tiles), size + 22), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, arr) in enumerate(tiles):
        sheet.paste(Image.fromarray(arr).crop(crop).resize((size, size), Image.LANCZOS), (i * size, 22))
        draw.text((i * size + 6, 5), label, fill="black")
    path = out / "comparison_grid.png"
    write_image(path, np.asarray(sheet))
    return path


def run_demo(out: Path, model: Path | None, preset: str, seed: int) -> dict:
    """The ``make demo`` job. Returns the per-face numbers it prints."""
    import io

    import numpy as np
    from PIL import Image
    from rich.console import Console
    from rich.table import Table
    from skimage import data as skdata

    from a3gan.attributes import mask_names, parse_mask
    from a3gan.pipeline.anonymizer import Anonymizer
    from a3gan.pipeline.io import write_image

    console = Console()
    image = np.ascontiguousarray(skdata.astronaut())  # public domain (NASA), ships with scikit-image
    out.mkdir(parents=True, exist_ok=True)
    src, dst = out / "astronaut.png", out / f"astronaut_{preset.replace(',', '+')}.png"
    write_image(src, image)
    anon = Anonymizer(model=model, change=preset, seed=seed)
    result = anon.anonymize(image)
    write_image(dst, result.image)
    net = anon.identity
    # "before": the recognizer on the unmodified face after a JPEG round trip (q=75) -- it must still match;
    # "after": the same face position in the anonymized photo.
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=75)
    recompressed = np.asarray(Image.open(buf).convert("RGB"))
    table = Table(
        title=f"{len(result.faces)} face(s), mask {preset} (may change: {', '.join(mask_names(parse_mask(preset))) or 'nothing'})"
    )
    for col in ("face", "box", "similarity before", "similarity after", "threshold", "result"):
        table.add_column(col)
    rows = []
    for i, f in enumerate(result.faces):
        e0 = net.embed_from_landmarks(image, f.landmarks)
        before = float(np.dot(e0, net.embed_from_landmarks(recompressed, f.landmarks)))
        after = float(np.dot(e0, net.embed_from_landmarks(result.image, f.landmarks)))
        verdict = (
            "pixelated (fallback)"
            if f.fell_back
            else ("anonymized" if after < net.threshold_cos else "STILL MATCHES")
        )
        rows.append(
            {
                "face": i,
                "before": before,
                "after": after,
                "threshold": net.threshold_cos,
                "fell_back": f.fell_back,
            }
        )
        table.add_row(
            str(i),
            "(" + ", ".join(str(round(v)) for v in f.box) + ")",
            f"{before:.3f}",
            f"{after:.3f}",
            f"{net.threshold_cos:.3f}",
            verdict,
        )
    console.print(table)
    console.print(
        f"identity network: {net.name}; similarity = cosine of face embeddings, a match is >= threshold"
    )
    console.print(f"input:  {src}\noutput: {dst}")
    return {"input": str(src), "output": str(dst), "faces": rows}
