"""Looking at models: `inspect` and `validate`."""

from __future__ import annotations

from pathlib import Path

import typer

from tfsconvert.cli.app import JSON, QUIET, app, gate_exit, pmml_evaluator_choice, run


@app.command()
def inspect(
    path: Path = typer.Argument(..., help="A base path, SavedModel, .pb/.pbtxt, .keras/.h5, checkpoint, "
                                          ".onnx, .pmml, sklearn pickle or Spark PipelineModel dir."),
    as_json: bool = JSON,
    trust_pickle: bool = typer.Option(
        False, "--trust-pickle",
        help="Allow a pickle to load classes outside scikit-learn/numpy/scipy (this runs its code)."),
) -> None:
    """Show what a model artifact is, its signatures, and what will break when it is deployed."""
    from tfsconvert import output
    from tfsconvert.inspect import inspect_path

    description = run(lambda: inspect_path(path, trust_pickle=trust_pickle), as_json)
    if as_json:
        output.print_json(description.to_json())
    else:
        output.render_description(description)


@app.command()
def validate(
    path: Path = typer.Argument(..., help="A TF Serving base path, one version dir, a model repository (one base "
                                          "path per child), or a model config file (model_config_list)."),
    golden: Path = typer.Option(None, "--golden", help="Golden requests to replay (default: each version's "
                                                      "assets.extra/golden.jsonl; none: one synthesized request)."),
    model_name: str = typer.Option(None, "--model-name", "--name", help="Model name to serve under (default: the "
                                                                        "base path's directory name)."),
    rtol: float = typer.Option(None, "--rtol", help="Relative tolerance (overrides the golden file's)."),
    atol: float = typer.Option(None, "--atol", help="Absolute tolerance (overrides the golden file's)."),
    static_only: bool = typer.Option(False, "--static-only", help="Only the static checks: no server, no "
                                                                  "TensorFlow import."),
    protocol: str = typer.Option("both", "--protocol", help="Replay over rest, grpc or both."),
    server: str = typer.Option("embedded", "--server", help="embedded (ours) or tensorflow_model_server."),
    server_bin: Path = typer.Option(None, "--server-bin", help="Path of tensorflow_model_server (default: PATH)."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for the server to load, and for "
                                                          "each request."),
    memory_mb: int = typer.Option(8192, "--memory-mb", help="Sandbox: address-space limit of the server."),
    cpu_seconds: int = typer.Option(600, "--cpu-seconds", help="Sandbox: CPU-time limit of the server."),
    request_timeout: float = typer.Option(None, "--request-timeout", help="Seconds to wait for each request "
                                                                         "(default: --timeout)."),
    require_isolation: bool = typer.Option(False, "--require-isolation",
                                           help="Exit 4 instead of running the server without its namespaces "
                                                "(docs/validate.md)."),
    strict: bool = typer.Option(False, "--strict", help="Warnings fail the run too."),
    as_json: bool = JSON,
    json_file: Path = typer.Option(None, "--json-file", help="Write the report as JSON to FILE (as --json prints "
                                                             "it), and still show the table."),
    junit: Path = typer.Option(None, "--junit", help="Write a JUnit XML report to FILE."),
    pmml_evaluator: str = typer.Option("both", "--pmml-evaluator", help="PMML versions: serve them with jpmml "
                                                                        "(JPMML-Evaluator), pypmml, or both "
                                                                        "(default: one server each)."),
    jobs: int = typer.Option(None, "--jobs", "-j", help="Server processes at once (default: the CPU count; fewer "
                                                       "if memory is short)."),
    server_per_version: bool = typer.Option(False, "--server-per-version",
                                            help="One server process per version instead of one for many "
                                                 "(slower; each version isolated from the others)."),
    quiet: bool = QUIET,
) -> None:
    """Check that a model will serve: static checks, then a sandboxed server with golden requests replayed."""
    from tfsconvert import output
    from tfsconvert.validate import report as reports
    from tfsconvert.validate.runner import ValidateOptions, validate as run_validation
    from tfsconvert.server.sandbox import Limits

    output.set_quiet(quiet)

    def action():
        options = ValidateOptions(golden, model_name, rtol, atol, static_only, protocol, server, server_bin, timeout,
                                  strict, Limits(memory_mb, cpu_seconds), require_isolation, request_timeout,
                                  pmml_evaluator_choice(pmml_evaluator, "both"), server_per_version=server_per_version,
                                  **({} if jobs is None else {"jobs": jobs}))
        with output.status(f"validating {path}") as progress:
            return run_validation(path, options, progress)

    gate_exit(run(action, as_json), as_json, json_file, junit, reports.write_junit, output.render_validation)
