"""Serving: `serve`, `serving-config` and `bench`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from tfsconvert.cli.app import JSON, QUIET, app, pmml_evaluator_choice, run


@app.command("serve", context_settings={"ignore_unknown_options": True})
def serve(arguments: list[str] = typer.Argument(None, metavar="[BASE_PATH] [--server_flag=VALUE ...]",
                                                help="A TF Serving model base path (numbered version dirs), and "
                                                     "tensorflow_model_server flags for the server."),
          model_name: str = typer.Option(None, "--model-name", "--name",
                                         help="Model name in the URLs; default: the base path's name."),
          model_config_file: Path = typer.Option(None, "--model-config-file",
                                                 help="A text model_config_list file instead of BASE_PATH."),
          port: int = typer.Option(8500, "--port", help="gRPC port."),
          rest_api_port: int = typer.Option(8501, "--rest-api-port", help="REST port (0 disables REST)."),
          host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: loopback only)."),
          enable_batching: bool = typer.Option(False, "--enable-batching",
                                               help="Batch concurrent requests to TF and ONNX models as TF Serving "
                                                    "does (its defaults, or --batching-parameters-file)."),
          batching_parameters_file: Path = typer.Option(None, "--batching-parameters-file",
                                                        help="A text BatchingParameters file (needs "
                                                             "--enable-batching)."),
          pmml_evaluator: str = typer.Option("jpmml", "--pmml-evaluator",
                                             help="Engine for PMML versions: jpmml (JPMML-Evaluator, default) or "
                                                  "pypmml."),
          as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout once serving (the "
                                                             "addresses and the models' versions), or the error "
                                                             "document if start-up fails.")) -> None:
    """Serve SavedModel, ONNX and PMML versions over TF Serving's REST and gRPC APIs (docs/serve.md).

    Other --flag=value arguments go to the server as tensorflow_model_server flags; an unknown one is an error."""
    from tfsconvert.server.main import FAILED_EXIT
    from tfsconvert.server.main import main as serve_main

    reports = _json_reports() if as_json else {}

    def start() -> int:
        source, server_flags = _served_models(arguments or [], model_name, model_config_file)
        evaluator = pmml_evaluator_choice(pmml_evaluator, "jpmml")
        batching = ["--enable_batching"] if enable_batching else []
        if batching_parameters_file is not None:  # refused without --enable-batching (docs/tf-serving.md §7 case 27)
            batching.append(f"--batching_parameters_file={batching_parameters_file.resolve()}")
        return serve_main([*source, f"--port={port}", f"--rest_api_port={rest_api_port}", f"--host={host}",
                           *batching, f"--pmml_evaluator={evaluator}", *server_flags], **reports)

    code = run(start, as_json)
    raise typer.Exit(1 if code == FAILED_EXIT else code)  # a model that does not load is a deployment error


def _json_reports() -> dict:
    """serve_main's on_ready and on_failure for `serve --json`: one document on stdout either way."""
    from tfsconvert import output

    def ready(options, models: dict[str, list[int]]) -> None:
        rest = options.rest_api_port and options.rest_api_port != options.port
        output.print_json({"serving": True, "grpc_address": f"{options.host}:{options.port}",
                           "rest_url": f"http://{options.host}:{options.rest_api_port}" if rest else None,
                           "models": models})
        sys.stdout.flush()

    def failed(error) -> None:
        output.print_json({"error": {"code": "serve-failed", "message": f"Failed to start server. Error: {error}",
                                     "hint": "the server's log lines on stderr name the model and the cause; "
                                             "tfsconvert validate BASE_PATH checks a model before serving it"}})

    return {"on_ready": ready, "on_failure": failed}


def _served_models(arguments: list[str], model_name: str | None,
                   model_config_file: Path | None) -> tuple[list[str], list[str]]:
    """(the server flags that name the models, the pass-through server flags) of `tfsconvert serve`;
    InputError for an unknown flag, not exactly one BASE_PATH or config file, or a path that does not exist."""
    from tfsconvert.errors import InputError
    from tfsconvert.server import flags

    server_flags, positionals, unknown = flags.split(arguments)
    if unknown:
        raise InputError("bad-option", f"{unknown[0]}: not an option of tfsconvert serve nor a "
                                       "tensorflow_model_server flag it knows",
                         "tfsconvert serve --help; python -m tfsconvert.server --help lists the flags")
    if len(positionals) + (model_config_file is not None) != 1:
        raise InputError("bad-option", "give one BASE_PATH or --model-config-file",
                         "tfsconvert serve ./models/mymodel  (or --model-config-file models.config)")
    if model_config_file is not None:
        if not model_config_file.is_file():
            raise InputError("path-not-found", f"{model_config_file}: no such model config file",
                             "give a text model_config_list file (tfsconvert serving-config writes one)")
        return [f"--model_config_file={model_config_file.resolve()}"], server_flags
    base_path = Path(positionals[0])
    if not base_path.is_dir():
        raise InputError("path-not-found", f"{base_path}: no such directory; expected a model base path",
                         "give the directory that holds the numbered version directories, "
                         "e.g. tfsconvert serve ./models/mymodel")
    return [f"--model_name={model_name or base_path.resolve().name}",
            f"--model_base_path={base_path.resolve()}"], server_flags


@app.command("serving-config")
def serving_config(
    paths: list[Path] = typer.Argument(..., help="Base paths (numbered version dirs) or a model repository."),
    out: Path = typer.Option(Path("serving"), "--out", help="Directory for models.config, models.docker.config "
                                                            "and batching_parameters.txt."),
    cpus: int = typer.Option(None, "--cpus", help="CPU cores to tune for (default: detected)."),
    gpus: int = typer.Option(0, "--gpus", help="GPUs to tune for; >0 switches to the GPU recipe and image."),
    model_name: str = typer.Option(None, "--model-name", "--name",
                                   help="Name of the one model (default: its directory)."),
    force: bool = typer.Option(False, "--force", help="Replace existing files in --out."),
    calibrate: bool = typer.Option(False, "--calibrate", help="Measure a short sweep of batching settings on this "
                                                             "machine with the model's golden requests and write the "
                                                             "best (docs/serving.md)."),
    calibrate_seconds: float = typer.Option(60.0, "--calibrate-seconds", help="Time budget of --calibrate."),
    calibrate_concurrency: int = typer.Option(32, "--calibrate-concurrency",
                                              help="Concurrent requests --calibrate measures at."),
    batching_defaults: str = typer.Option("measured", "--batching-defaults",
                                          help="Without --calibrate: measured (best across our fixtures on small "
                                               "machines) or field-rule (2 x CPUs + 1 batch threads)."),
    as_json: bool = JSON,
    quiet: bool = QUIET,
) -> None:
    """Write a TF Serving model config, batching parameters and the commands to serve checked base paths."""
    from tfsconvert import output
    from tfsconvert.serving.config_writer import BatchingChoice, serving_config as write_config

    output.set_quiet(quiet)
    with output.status(f"checking {len(paths)} path(s) and writing {out}") as say:
        choice = BatchingChoice(batching_defaults, calibrate, calibrate_seconds, calibrate_concurrency, say)
        result = run(lambda: write_config(paths, out, cpus, gpus, model_name, force, choice), as_json)
    if as_json:
        output.print_json(result.to_json())
    else:
        for line in result.summary():
            output.stdout.print(line, markup=False)
        if result.findings:
            output.render_findings(result.findings)
    raise typer.Exit(0 if result.ok else 1)


def _ints(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r}: comma-separated integers, e.g. 1,8,32", param_hint=option) from None


@app.command()
def bench(
    target: str = typer.Argument(..., help="A model base path (or version dir) to serve in sandboxed servers, or "
                                           "a running server: http://HOST:PORT[/v1/models/NAME] or grpc://HOST:PORT."),
    concurrency: str = typer.Option("1,8,32,64", "--concurrency", help="Concurrent requests per run, comma-separated."),
    requests: int = typer.Option(None, "--requests", help="Answers per run (default 1000 when --duration is not "
                                                          "given)."),
    duration: float = typer.Option(None, "--duration", help="Seconds per run; with --requests, whichever comes first."),
    protocol: str = typer.Option(None, "--protocol", help="rest or grpc (PATH: default rest; URL: its scheme)."),
    batching: str = typer.Option(None, "--batching", help="PATH only: on, off or both (default both)."),
    batching_parameters_file: Path = typer.Option(None, "--batching-parameters-file",
                                                  help="Batching parameters for 'on' (default: what serving-config "
                                                       "recommends for this machine)."),
    batch_timeouts: str = typer.Option(None, "--batch-timeout-micros",
                                       help="Try these batch_timeout_micros values, e.g. 0,2000,5000 (one server "
                                            "each)."),
    batch_threads: str = typer.Option(None, "--batch-threads",
                                      help="Try these num_batch_threads values, e.g. 1,2,5 (one server each; with "
                                           "--batch-timeout-micros, one per pair)."),
    session_parallelism: str = typer.Option(None, "--session-parallelism",
                                            help="PATH only: try these --tensorflow_session_parallelism values on "
                                                 "the batched servers, e.g. 0,1 (0: TensorFlow's choice; one server "
                                                 "each). The unbatched server keeps TF Serving's default."),
    server_flags: list[str] = typer.Option([], "--server-flag",
                                           help="PATH only: a tensorflow_model_server flag for every server "
                                                "started, e.g. --server-flag=--tensorflow_intra_op_parallelism=1 "
                                                "(repeatable)."),
    golden: Path = typer.Option(None, "--golden", help="Requests to send (default: the version's "
                                                      "assets.extra/golden.jsonl, else synthesized)."),
    model_name: str = typer.Option(None, "--model-name", help="Model name (URL: when the URL has no "
                                                              "/v1/models/NAME)."),
    latency_budget_ms: float = typer.Option(100.0, "--latency-budget-ms", help="p99 budget of the recommendation."),
    client_processes: int = typer.Option(1, "--client-processes", help="Load-generator processes."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for each answer."),
    as_json: bool = JSON,
    quiet: bool = QUIET,
) -> None:
    """Measure throughput and latency of a served model with and without batching (docs/bench.md)."""
    from tfsconvert import output
    from tfsconvert.serving.bench import BenchOptions, bench as run_bench

    output.set_quiet(quiet)

    def action():
        options = BenchOptions(
            _ints(concurrency, "--concurrency"), 1000 if requests is None and duration is None else requests,
            duration, protocol, batching, golden, model_name, batching_parameters_file,
            _ints(batch_timeouts or "", "--batch-timeout-micros"), _ints(batch_threads or "", "--batch-threads"),
            _ints(session_parallelism or "", "--session-parallelism"), tuple(server_flags), latency_budget_ms,
            timeout, client_processes)
        with output.progress_bar() as progress:
            return run_bench(target, options, progress)

    result = run(action, as_json)
    if as_json:
        output.print_json(result.to_json())
    else:
        output.render_bench(result)
    raise typer.Exit(0 if result.ok else 1)  # a run with failed requests is not a valid measurement
