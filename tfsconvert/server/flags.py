"""`tensorflow_model_server` flags (docs/tf-serving.md §6.1): `--flag=value` or `--flag value`, same defaults.

Flags that change nothing here are accepted so that a TF Serving command line runs unchanged;
unknown ones are reported the way TF Serving reports them and ignored (`tfsconvert serve` refuses
them instead: `split`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one request may take (0: no timeout); the defaults are the flags'."""

    max_body_bytes: int = 64 * 2 ** 20
    header_timeout_ms: int = 30_000
    body_timeout_ms: int = 60_000
    idle_timeout_ms: int = 120_000


@dataclass
class Options:
    """The parsed flags that the server acts on."""

    port: int
    rest_api_port: int
    rest_api_num_threads: int
    rest_api_max_body_bytes: int
    rest_api_header_timeout_in_ms: int
    rest_api_body_timeout_in_ms: int
    rest_api_idle_timeout_in_ms: int
    monitoring_config_file: str
    host: str
    model_name: str
    model_base_path: str
    model_config_file: str
    file_system_poll_wait_seconds: int
    max_num_load_retries: int
    load_retry_interval_micros: int
    saved_model_tags: str
    enable_model_warmup: bool
    num_request_iterations_for_warmup: int
    enable_batching: bool
    batching_parameters_file: str
    allow_version_labels_for_unavailable_models: bool
    tensorflow_intra_op_parallelism: int
    tensorflow_inter_op_parallelism: int
    tensorflow_session_parallelism: int
    pmml_evaluator: str
    version: bool

    @property
    def tf_threads(self) -> tuple[int, int]:
        """(intra-op, inter-op) pool sizes of SavedModel sessions: each flag if set, else
        --tensorflow_session_parallelism for both, else 0 (TensorFlow's choice)."""
        session = max(self.tensorflow_session_parallelism, 0)
        return (self.tensorflow_intra_op_parallelism if self.tensorflow_intra_op_parallelism > 0 else session,
                self.tensorflow_inter_op_parallelism if self.tensorflow_inter_op_parallelism > 0 else session)

    @property
    def limits(self) -> Limits:
        return Limits(self.rest_api_max_body_bytes, self.rest_api_header_timeout_in_ms,
                      self.rest_api_body_timeout_in_ms, self.rest_api_idle_timeout_in_ms)

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(sorted({tag.strip() for tag in self.saved_model_tags.split(",") if tag.strip()}))


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfsconvert.server",
        description="A TensorFlow-Serving-compatible model server (TF SavedModel, ONNX, PMML) for validation.")
    add = parser.add_argument

    def flag(name: str, default: bool, help_text: str) -> None:
        # A bare `--flag` means true, as with TF's flag parser; `--flag=false` turns it off.
        add(f"--{name}", type=_bool, nargs="?", const=True, default=default, help=help_text)

    add("--port", type=int, default=8500, help="gRPC port (default 8500)")
    add("--rest_api_port", type=int, default=0, help="REST port; 0 (the default) disables REST")
    add("--host", default="127.0.0.1", help="address both ports bind to (tfsconvert only; default loopback)")
    add("--model_name", default="default", help="model name in single-model mode")
    add("--model_base_path", default="", help="absolute base path holding numbered version directories")
    add("--model_config_file", default="", help="text ModelServerConfig; overrides --model_name/--model_base_path")
    add("--file_system_poll_wait_seconds", type=int, default=1,
        help="seconds between scans of the base paths while waiting for versions at start-up")
    add("--max_num_load_retries", type=int, default=5, help="retries after a failed version load")
    add("--load_retry_interval_micros", type=int, default=60_000_000, help="wait between load retries")
    add("--saved_model_tags", default="serve", help="comma-separated tag set a SavedModel must have exactly")
    flag("enable_model_warmup", True, "run assets.extra/tf_serving_warmup_requests when a version loads")
    add("--num_request_iterations_for_warmup", type=int, default=0, help="runs per warmup record (0 = 1)")
    flag("enable_batching", False, "batch concurrent runs of TF and ONNX models (TF Serving's defaults)")
    add("--batching_parameters_file", default="", help="text BatchingParameters; requires --enable_batching")
    flag("allow_version_labels_for_unavailable_models", False, "allow labels in the initial config")
    add("--tensorflow_intra_op_parallelism", type=int, default=0,
        help="threads of a SavedModel session's intra-op pool (0: TensorFlow's choice)")
    add("--tensorflow_inter_op_parallelism", type=int, default=0,
        help="threads of a SavedModel session's inter-op pool (0: TensorFlow's choice)")
    add("--tensorflow_session_parallelism", type=int, default=0,
        help="both pools' threads when the two flags above are 0")
    add("--pmml_evaluator", choices=("jpmml", "pypmml"), default="jpmml",
        help="engine that evaluates PMML versions (tfsconvert only; default jpmml)")
    add("--rest_api_timeout_in_ms", type=int, default=30000, help="accepted, not enforced")
    add("--rest_api_num_threads", type=int, default=0, help="workers for unbatched REST runs (0: 4 x CPUs)")
    limits = Limits()  # tfsconvert's own limits of the REST transport, named after TF Serving's flags
    add("--rest_api_max_body_bytes", type=int, default=limits.max_body_bytes,
        help="largest REST request body, also once a gzip body is inflated; larger ones get 413 (default 64 MiB)")
    add("--rest_api_header_timeout_in_ms", type=int, default=limits.header_timeout_ms,
        help="time for a request's head to arrive once it has begun; then 408 (0: none)")
    add("--rest_api_body_timeout_in_ms", type=int, default=limits.body_timeout_ms,
        help="time for a request's body to arrive after its head; then 408 (0: none)")
    add("--rest_api_idle_timeout_in_ms", type=int, default=limits.idle_timeout_ms,
        help="an idle keep-alive connection (or one not reading its answer) is closed after this (0: never)")
    add("--monitoring_config_file", default="", help="text MonitoringConfig: prometheus_config { enable: true } "
        "serves request counts and latencies on the REST port")
    add("--model_config_file_poll_wait_seconds", type=int, default=0, help="accepted, the file is read once")
    add("--version", action="store_true", help="print the version and exit")
    return parser


def split(arguments: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(flags, positionals, unknown flags) of a command line that mixes server flags with other
    arguments. `--flag=value`, `--flag value` and a bare boolean `--flag` (or `--flag true`) are flags."""
    actions = {option: action for action in _parser()._actions for option in action.option_strings}
    flags, positionals, unknown = [], [], []
    i = 0
    while i < len(arguments):
        argument = arguments[i]
        action = actions.get(argument.split("=", 1)[0])
        following = arguments[i + 1] if i + 1 < len(arguments) else None
        if not argument.startswith("-") or argument == "-":
            positionals.append(argument)
        elif action is None:
            unknown.append(argument)
        elif "=" in argument or following is None or action.nargs == 0:
            flags.append(argument)
        elif action.nargs != "?" or following.lower() in ("true", "false", "1", "0"):
            flags += [argument, following]  # the flag's value
            i += 1
        else:
            flags.append(argument)
        i += 1
    return flags, positionals, unknown


def parse(argv: list[str]) -> Options:
    """Parse `argv`; unknown arguments print `unknown argument: ...` and the usage on stdout."""
    parser = _parser()
    known, unknown = parser.parse_known_args(argv)
    for argument in unknown:
        sys.stdout.write(f"unknown argument: {argument}\n{parser.format_usage()}")
    values = vars(known)
    return Options(**{name: values[name] for name in Options.__dataclass_fields__})
