"""The command line (typer): `app` and the console-script entry point `main`. Each module here registers
one group of commands on `app`."""

from tfsconvert.cli import check, convert, parity, serving  # noqa: F401 - registers the commands
from tfsconvert.cli.app import BUG_EXIT_CODE, app, main, run

__all__ = ["BUG_EXIT_CODE", "app", "main", "run"]
