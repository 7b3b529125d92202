"""The command line: thin commands and the one error boundary (exceptions -> exit codes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, TypeVar

import typer

from tfsconvert import __version__, output
from tfsconvert.errors import TfsConvertError
from tfsconvert.quiet import DEBUG_ENV

T = TypeVar("T")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Convert, inspect and validate models for TensorFlow Serving, PMML and ONNX runtimes.",
)
_state = {"debug": False}

BUG_EXIT_CODE = 4


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tfsconvert {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks and tool output on failure."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    _state["debug"] = debug
    if debug:  # also lets native libraries' start-up logs through (tfsconvert.quiet)
        os.environ[DEBUG_ENV] = "1"


def run(action: Callable[[], T], as_json: bool) -> T:
    """Run a library call; render a TfsConvertError as one line and exit with its code."""
    try:
        return action()
    except TfsConvertError as error:
        if _state["debug"]:
            raise
        output.render_error(error, as_json)
        raise typer.Exit(error.exit_code) from None
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as error:  # a bug: one line unless --debug
        if _state["debug"]:
            raise
        output.stderr.print(
            f"[bold red]internal error[/]: {type(error).__name__}: {error} (run with --debug for the traceback)",
            markup=True,
        )
        raise typer.Exit(BUG_EXIT_CODE) from None


@app.command()
def inspect(
    path: Path = typer.Argument(..., help="A base path, SavedModel, .pb/.pbtxt, .keras/.h5, checkpoint, "
                                          ".onnx, .pmml, sklearn pickle or Spark PipelineModel dir."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (DESIGN.md §4.5)."),
    trust_pickle: bool = typer.Option(
        False, "--trust-pickle",
        help="Allow a pickle to load classes outside scikit-learn/numpy/scipy (this runs its code)."),
) -> None:
    """Show what a model artifact is, its signatures, and what will break when it is deployed."""
    from tfsconvert.inspect import inspect_path

    description = run(lambda: inspect_path(path, trust_pickle=trust_pickle), as_json)
    if as_json:
        output.print_json(description.to_json())
    else:
        output.render_description(description)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
