"""The command line: thin commands and the one error boundary (exceptions -> exit codes)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Callable, TypeVar

import typer

from tfsconvert import __version__, output
from tfsconvert.errors import TfsConvertError
from tfsconvert.naming import DEFAULT_SIGNATURE
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


@app.command()
def inspect(
    path: Path = typer.Argument(..., help="A base path, SavedModel, .pb/.pbtxt, .keras/.h5, checkpoint, "
                                          ".onnx, .pmml, sklearn pickle or Spark PipelineModel dir."),
    as_json: bool = typer.Option(False, "--json",
                                 help='Print the result as JSON (docs/architecture.md "inspect --json").'),
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


# Options shared by the converters (one definition, so the commands cannot drift apart).
_SRC = typer.Argument(..., help="A frozen .pb/.pbtxt, Keras .keras/.h5, TF1 checkpoint prefix or .meta, "
                                "or a SavedModel directory.")
_ONNX_SRC = typer.Argument(..., help="A frozen .pb/.pbtxt, Keras .keras/.h5, TF1 checkpoint prefix or .meta, "
                                     "a SavedModel directory, a scikit-learn pickle/joblib file, or a Spark ML "
                                     "PipelineModel directory.")
_PMML_SRC = typer.Argument(..., help="A fitted scikit-learn estimator or Pipeline saved with joblib or pickle, or "
                                     "a Spark ML PipelineModel directory.")
_VERSION = typer.Option(None, "--version", help="Version number to publish (positive integer); default: next free.")
_BASE = typer.Option(None, "--base-path", help="TF Serving model base path; default: ./models/<name>.")
_NAME = typer.Option(None, "--model-name", "--name", help="Model name (warmup model_spec, default base path); "
                                                          "default: source stem.")
_INPUTS = typer.Option(None, "--input", help="ALIAS=TENSOR: name a signature input (repeatable). "
                                            "For a SavedModel source, NEW=OLD renames an input.")
_OUTPUTS = typer.Option(None, "--output", help="ALIAS=TENSOR: name a signature output (repeatable); "
                                              "the outputs are exactly those given.")
_SIGNATURE = typer.Option(DEFAULT_SIGNATURE, "--signature-name", help="Signature key to write.")
_SOURCE_SIGNATURE = typer.Option(None, "--source-signature",
                                 help="SavedModel source: the signature to convert (default serving_default).")
_SAMPLES = typer.Option(None, "--samples", help="Synthesize N sample inputs for parity (default 256); the first 8 "
                                              "become golden requests and warmup records.")
_SAMPLE_INPUTS = typer.Option(None, "--sample-inputs", help="Sample inputs from a JSON or .npz file instead.")
_ATOL = typer.Option(None, "--atol", help="Parity: absolute tolerance for float outputs.")
_RTOL = typer.Option(None, "--rtol", help="Parity: relative tolerance for float outputs.")
_FORCE = typer.Option(False, "--force", help="Replace an existing version (atomically).")
_JSON = typer.Option(False, "--json", help="Print the result as JSON.")
# scikit-learn and Spark sources (pmml, and onnx when SRC is a pickle or a Spark directory).
_ROWS = typer.Option(None, "--samples", help="Rows for parity (default: at least 1,024 synthesized at the model's "
                                            "split thresholds and categories; with --sample-data, its first N rows, "
                                            "default all).")
_ALLOW_FLIPS = typer.Option(None, "--allow-flips", help="scikit-learn and Spark sources: the share of parity rows "
                                                       "whose label may differ from the source's (default 0: a "
                                                       "flipped label fails the conversion).")
_ONNX_SAMPLES = typer.Option(None, "--samples", help="Synthesize N sample inputs for parity (default 256, the first "
                                                    "8 golden; scikit-learn and Spark sources: at least 1,024 "
                                                    "rows).")
_SAMPLE_DATA = typer.Option(None, "--sample-data", help="scikit-learn and Spark sources: rows from a CSV or "
                                                       "Parquet file (one column per feature) instead of "
                                                       "synthesized ones; for Spark also the schema.")
_FEATURE_NAMES = typer.Option(None, "--feature-names", help="scikit-learn sources fitted on a plain array: the "
                                                           "feature names in column order, a,b,c.")
_TARGET_NAME = typer.Option(None, "--target-name", help="scikit-learn sources: the predicted field's name in the "
                                                       "PMML (default y); ONNX outputs are always label, "
                                                       "probabilities or prediction.")
_TRUST_PICKLE = typer.Option(False, "--trust-pickle", help="Allow the pickle to load classes outside "
                                                          "scikit-learn/numpy/scipy/pandas (this runs its code).")
# Spark ML sources.
_SCHEMA = typer.Option(None, "--schema", help="Spark sources: the input columns' types as JSON, inline or a file, "
                                             "e.g. '{\"a\": \"double\", \"color\": \"string\"}' (or "
                                             "--sample-data).")
_SPARK_MASTER = typer.Option(None, "--spark-master", help="Spark sources: the Spark master URL to use "
                                                         "(default: a local session, local[*]).")
_PMML_EVALUATOR = typer.Option("both", "--pmml-evaluator", help="Parity: evaluate the PMML with jpmml "
                                                                "(JPMML-Evaluator), pypmml, or both (default; a "
                                                                "disagreement between them is a finding).")


def _pmml_evaluator(value: str, default: str) -> str:
    """`--pmml-evaluator` checked against the choices (before anything loads)."""
    from tfsconvert.errors import InputError

    choices = ("jpmml", "pypmml", "both") if default == "both" else ("jpmml", "pypmml")
    if value not in choices:
        raise InputError("bad-option", f"--pmml-evaluator {value!r} is not one of {', '.join(choices)}",
                         f"use --pmml-evaluator {default}")
    return value


def _convert(src: Path, target: str, as_json: bool, options) -> None:
    """Run the conversion of `src` with `options` (tfsconvert.convert.options.ConvertOptions)."""
    from tfsconvert.convert.dispatch import convert

    with output.status(f"converting {src}") as progress:
        result = run(lambda: convert(src, target, options, progress), as_json)
    if as_json:
        output.print_json(result.to_json())
    else:
        output.render_conversion(result)


@app.command("saved-model")
def saved_model(src: Path = _SRC, version: str = _VERSION, base_path: Path = _BASE, name: str = _NAME,
                inputs: list[str] = _INPUTS, outputs: list[str] = _OUTPUTS, signature_name: str = _SIGNATURE,
                source_signature: str = _SOURCE_SIGNATURE, samples: int = _SAMPLES,
                sample_inputs: Path = _SAMPLE_INPUTS, atol: float = _ATOL, rtol: float = _RTOL,
                force: bool = _FORCE, as_json: bool = _JSON) -> None:
    """Convert a TensorFlow model into a versioned SavedModel with explicit names, parity-checked."""
    from tfsconvert.convert.options import ConvertOptions

    _convert(src, "savedmodel", as_json, ConvertOptions(
        version=version, base_path=base_path, name=name, inputs=tuple(inputs or ()), outputs=tuple(outputs or ()),
        signature_name=signature_name, source_signature=source_signature, samples=samples,
        sample_inputs=sample_inputs, atol=atol, rtol=rtol, force=force))


@app.command("onnx")
def onnx(src: Path = _ONNX_SRC, version: str = _VERSION, base_path: Path = _BASE, name: str = _NAME,
         inputs: list[str] = _INPUTS, outputs: list[str] = _OUTPUTS,
         opset: int = typer.Option(None, "--opset", help="ONNX opset to target (default 17; Spark sources: the "
                                                         "newest onnxmltools supports, 15)."),
         source_signature: str = _SOURCE_SIGNATURE, samples: int = _ONNX_SAMPLES,
         sample_inputs: Path = _SAMPLE_INPUTS, sample_data: Path = _SAMPLE_DATA, feature_names: str = _FEATURE_NAMES,
         target_name: str = _TARGET_NAME, atol: float = _ATOL, rtol: float = _RTOL,
         allow_flips: float = _ALLOW_FLIPS, force: bool = _FORCE, as_json: bool = _JSON,
         trust_pickle: bool = _TRUST_PICKLE, schema: str = _SCHEMA, spark_master: str = _SPARK_MASTER) -> None:
    """Convert a TensorFlow, scikit-learn or Spark ML model into a versioned model.onnx with explicit names,
    parity-checked."""
    from tfsconvert.convert.options import ConvertOptions

    _convert(src, "onnx", as_json, ConvertOptions(
        version=version, base_path=base_path, name=name, inputs=tuple(inputs or ()), outputs=tuple(outputs or ()),
        opset=opset, source_signature=source_signature, samples=samples, sample_inputs=sample_inputs,
        sample_data=sample_data, feature_names=feature_names, target_name=target_name, atol=atol, rtol=rtol,
        allow_flips=allow_flips, force=force, trust_pickle=trust_pickle, schema=schema, spark_master=spark_master))


@app.command("pmml")
def pmml(src: Path = _PMML_SRC, version: str = _VERSION, base_path: Path = _BASE, name: str = _NAME,
         sample_data: Path = _SAMPLE_DATA, feature_names: str = _FEATURE_NAMES, target_name: str = _TARGET_NAME,
         samples: int = _ROWS, atol: float = _ATOL, rtol: float = _RTOL, allow_flips: float = _ALLOW_FLIPS,
         force: bool = _FORCE,
         as_json: bool = _JSON, trust_pickle: bool = _TRUST_PICKLE, schema: str = _SCHEMA,
         spark_master: str = _SPARK_MASTER, pmml_evaluator: str = _PMML_EVALUATOR) -> None:
    """Convert a scikit-learn or Spark ML model into a versioned model.pmml (sklearn2pmml or pyspark2pmml,
    Java 17+), parity-checked."""
    evaluator = run(lambda: _pmml_evaluator(pmml_evaluator, "both"), as_json)
    from tfsconvert.convert.options import ConvertOptions

    _convert(src, "pmml", as_json, ConvertOptions(
        version=version, base_path=base_path, name=name, sample_data=sample_data, feature_names=feature_names,
        target_name=target_name, samples=samples, atol=atol, rtol=rtol, allow_flips=allow_flips, force=force,
        trust_pickle=trust_pickle, schema=schema, spark_master=spark_master, pmml_evaluator=evaluator))


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
    json_out: str = typer.Option(None, "--json", help="Write the report as JSON to FILE, or - for stdout."),
    junit: Path = typer.Option(None, "--junit", help="Write a JUnit XML report to FILE."),
    pmml_evaluator: str = typer.Option("both", "--pmml-evaluator", help="PMML versions: serve them with jpmml "
                                                                        "(JPMML-Evaluator), pypmml, or both "
                                                                        "(default: one server each)."),
    jobs: int = typer.Option(None, "--jobs", "-j", help="Server processes at once (default: the CPU count; fewer "
                                                       "if memory is short)."),
    server_per_version: bool = typer.Option(False, "--server-per-version",
                                            help="One server process per version instead of one for many "
                                                 "(slower; each version isolated from the others)."),
) -> None:
    """Check that a model will serve: static checks, then a sandboxed server with golden requests replayed."""
    from tfsconvert.validate import report as reports
    from tfsconvert.validate.runner import ValidateOptions, validate as run_validation
    from tfsconvert.server.sandbox import Limits

    as_json = json_out == "-"

    def action():
        options = ValidateOptions(golden, model_name, rtol, atol, static_only, protocol, server, server_bin, timeout,
                                  strict, Limits(memory_mb, cpu_seconds), require_isolation, request_timeout,
                                  _pmml_evaluator(pmml_evaluator, "both"), server_per_version=server_per_version,
                                  **({} if jobs is None else {"jobs": jobs}))
        with output.progress("validating") as progress:
            return run_validation(path, options, progress)

    result = run(action, as_json)
    if junit is not None:
        reports.write_junit(result, junit)
    if json_out and not as_json:
        Path(json_out).write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    if as_json:
        output.print_json(result.to_json())
    else:
        output.render_validation(result)
    raise typer.Exit(0 if result.ok else 1)


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
                                                  "pypmml.")) -> None:
    """Serve SavedModel, ONNX and PMML versions over TF Serving's REST and gRPC APIs (docs/serve.md).

    Other --flag=value arguments go to the server as tensorflow_model_server flags; an unknown one is an error."""
    from tfsconvert.server.main import FAILED_EXIT
    from tfsconvert.server.main import main as serve_main

    def start() -> int:
        source, server_flags = _served_models(arguments or [], model_name, model_config_file)
        evaluator = _pmml_evaluator(pmml_evaluator, "jpmml")
        batching = ["--enable_batching"] if enable_batching else []
        if batching_parameters_file is not None:  # refused without --enable-batching (docs/tf-serving.md §7 case 27)
            batching.append(f"--batching_parameters_file={batching_parameters_file.resolve()}")
        return serve_main([*source, f"--port={port}", f"--rest_api_port={rest_api_port}", f"--host={host}",
                           *batching, f"--pmml_evaluator={evaluator}", *server_flags])

    code = run(start, False)
    raise typer.Exit(1 if code == FAILED_EXIT else code)  # a model that does not load is a deployment error


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
    as_json: bool = _JSON,
) -> None:
    """Write a TF Serving model config, batching parameters and the commands to serve checked base paths."""
    from tfsconvert.serving.config_writer import serving_config as write_config

    result = run(lambda: write_config(paths, out, cpus, gpus, model_name, force), as_json)
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
    as_json: bool = _JSON,
) -> None:
    """Measure throughput and latency of a served model with and without batching (docs/bench.md)."""
    from tfsconvert.serving.bench import BenchOptions, bench as run_bench

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


def _interrupt(signum: int, _frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    """Console-script entry point. SIGTERM and SIGHUP stop a command as Ctrl-C (SIGINT) does: the
    same cleanup runs (no half-published version, no staged copy left in the temp dir)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    app()


if __name__ == "__main__":
    main()
