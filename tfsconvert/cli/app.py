"""The command line's frame: the app, its global options, and the one error boundary (exceptions -> exit
codes). The commands are in the modules next to this one, by group."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Callable, NoReturn, TypeVar

import typer

from tfsconvert import __version__
from tfsconvert.errors import TfsConvertError, optional_packages_named
from tfsconvert.quiet import DEBUG_ENV

T = TypeVar("T")

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Convert, inspect and validate models for TensorFlow Serving, PMML and ONNX runtimes.",
)
_state = {"debug": False}

BUG_EXIT_CODE = 4
# Options every command that has them spells the same way.
JSON = typer.Option(False, "--json", help="Print the result as JSON on stdout (with schema_version and "
                                          "tfsconvert_version).")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress lines on stderr (errors are still printed).")


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
    from tfsconvert import output

    try:
        with optional_packages_named():
            return action()
    except TfsConvertError as error:
        if _state["debug"]:
            raise
        output.render_error(error, as_json)
        raise typer.Exit(error.exit_code) from None
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as error:  # a bug: one line unless --debug (the {"error": ...} object with --json)
        if _state["debug"]:
            raise
        if as_json:
            output.print_json({"error": {"code": "internal-error", "message": f"{type(error).__name__}: {error}",
                                         "hint": "run with --debug for the traceback"}})
        else:
            output.stderr.print(f"[bold red]internal error[/]: {type(error).__name__}: {error} (run with --debug "
                                "for the traceback)", markup=True, highlight=False)
        raise typer.Exit(BUG_EXIT_CODE) from None


def gate_exit(result, as_json: bool, json_file: Path | None, junit: Path | None,
              write_junit: Callable, render: Callable) -> NoReturn:
    """A gate's report where it was asked for (JUnit, a JSON file, JSON or the tables on stdout), then
    exit 0 when it passed, 1 when not."""
    from tfsconvert import output

    if junit is not None:
        write_junit(result, junit)
    if json_file is not None:
        output.write_json(result.to_json(), json_file)
    if as_json:
        output.print_json(result.to_json())
    else:
        render(result)
    raise typer.Exit(0 if result.ok else 1)


def pmml_evaluator_choice(value: str, default: str) -> str:
    """`--pmml-evaluator` checked against the choices (before anything loads)."""
    from tfsconvert.errors import InputError

    choices = ("jpmml", "pypmml", "both") if default == "both" else ("jpmml", "pypmml")
    if value not in choices:
        raise InputError("bad-option", f"--pmml-evaluator {value!r} is not one of {', '.join(choices)}",
                         f"use --pmml-evaluator {default}")
    return value


def _interrupt(signum: int, _frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    """Console-script entry point. SIGTERM and SIGHUP stop a command as Ctrl-C (SIGINT) does: the
    same cleanup runs (no half-published version, no staged copy left in the temp dir)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    app()
