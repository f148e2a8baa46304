"""The ``a3gan`` console script. Each command lives in ``a3gan.commands.<name>`` and registers itself here."""

from __future__ import annotations

import os
import sys

# OpenMP threads that spin-wait while another process holds the cores made the video pipeline 1.6x slower on a
# shared 2-core machine (docs/performance.md). Passive waiting must be set before torch loads; users can override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer

from a3gan.commands import anonymize, evaluate, misc, train
from a3gan.errors import A3GANError

app = typer.Typer(
    name="a3gan",
    help="Attribute-aware face de-identification (A3GAN). Replace every face with one of nobody, "
    "choosing which facial attributes may change.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)



@app.callback()
def _root() -> None:
    """Attribute-aware face de-identification (A3GAN)."""


for module in (anonymize, train, evaluate, misc):
    module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point. User errors print one line and return a non-zero code instead of a traceback."""
    try:
        rc = app(args=argv, standalone_mode=False)
    except A3GANError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:  # typer/click exit codes (usage errors, --help)
        return int(e.code or 0)
    except Exception as e:
        # click's (typer-vendored) usage errors carry show() and exit_code; anything else is a bug: re-raise.
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            return int(e.exit_code)
        if type(e).__name__ == "Abort":
            print("error: aborted", file=sys.stderr)
            return 1
        raise
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
