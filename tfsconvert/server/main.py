"""The process: flags, load every model with ports closed, then gRPC, then REST, until SIGTERM (docs/tf-serving.md §0).

Exit codes: 0 after SIGTERM/SIGINT or `--version`; 255 with `Failed to start server. Error:
<status>` on stdout when start-up fails, as `tensorflow_model_server` does. A caller may take the
start-up's outcome instead (`on_ready`, `on_failure`: `tfsconvert serve --json`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

from tfsconvert import __version__
from tfsconvert.server import backends, config, flags, logs, monitoring
from tfsconvert.server.batching import Batching
from tfsconvert.server.flags import Options
from tfsconvert.server.manager import Manager, startup_error
from tfsconvert.server.status import ServingError, invalid
from tfsconvert.server.warmup import run_warmup

FAILED_EXIT = 255  # main.cc returns -1


def _models(options: Options) -> list[config.ModelConfig]:
    if options.model_config_file:
        return config.read_file(options.model_config_file)
    if not options.model_base_path:
        raise invalid("Both server_options.model_base_path and server_options.model_config_file are empty!")
    return config.single_model(options.model_name, options.model_base_path)


def _batching(options: Options) -> Batching | None:
    """docs/tf-serving.md §6.1, §6.4: TF Serving's defaults without a file (its binary names the pool
    `model_server_batch_threads` then); a file it cannot parse, or a thread count its scheduler
    refuses, stops start-up; other refused values fail every load (§7 cases 27, 28)."""
    path = options.batching_parameters_file
    if path and not options.enable_batching:
        raise invalid("server_options.batching_parameters_file is set without setting "
                      "server_options.enable_batching to true.")
    if not options.enable_batching:
        return None
    from tfsconvert.server.batching_config import BadBatchingParameters, BatchingParameters, read_batching_parameters

    try:
        params = read_batching_parameters(path) if path else BatchingParameters(
            thread_pool_name="model_server_batch_threads")
    except BadBatchingParameters as error:
        logs.error("util/proto_util.h", error.message)
        statuses = [ServingError.from_text(status) for status in error.tf_serving]
        at_start = [s for s in statuses if "Invalid protobuf file" in s.message or "num_batch_threads" in s.message]
        if at_start:
            raise at_start[0] from None
        return Batching(None, refusal=statuses[0])
    if params.pad_variable_length_inputs or params.enable_large_batch_splitting:
        logs.warning("batching/batching_session.cc", "tfsconvert's server implements neither "
                     "pad_variable_length_inputs nor enable_large_batch_splitting: tensors merged into a batch must "
                     "have equal shapes, and a task larger than a batch is refused")
    return Batching(params)


def _check_parallelism(options: Options) -> None:
    """server.cc refuses all three TensorFlow thread flags at once (docs/tf-serving.md §6.1)."""
    if min(options.tensorflow_intra_op_parallelism, options.tensorflow_inter_op_parallelism,
           options.tensorflow_session_parallelism) > 0:
        raise invalid("Either configure server_options.tensorflow_session_parallelism or "
                      "(server_options.tensorflow_intra_op_parallelism, "
                      "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure all.")


def _loader(options: Options, batching: Batching | None):
    def load(version_dir: Path) -> backends.Servable:
        servable = backends.load(version_dir, options.tags, options.tf_threads, options.pmml_evaluator)
        try:
            # Warmup runs after the batching wrap, as in TF Serving (docs/tf-serving.md §2.1 steps 7-8).
            if batching is not None and servable.batchable:
                servable = batching.wrap(servable)
            if options.enable_model_warmup:
                run_warmup(version_dir, servable, options.num_request_iterations_for_warmup)
        except BaseException:
            servable.close()
            raise
        return servable

    return load


def _read_if_there(path: Path) -> str:
    """A /proc file of a thread, or "" once that thread has ended."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _stop_children(grace: float = 5.0) -> None:
    """Stop the processes this one started (pypmml's JVM gateway outlives Model.close())."""
    children = [int(pid) for task in Path(f"/proc/{os.getpid()}/task").glob("*/children")
                for pid in _read_if_there(task).split()]
    for pid in children:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pid in children:
        while not _reaped(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _reaped(pid):
            _signal(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:  # already reaped by whoever started it
        return True


def _print_version() -> None:
    try:
        tf_version = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        tf_version = "not installed"
    print(f"TensorFlow ModelServer: tfsconvert-{__version__}")
    print(f"TensorFlow Library: {tf_version}")


def main(argv: list[str], on_ready: Callable[[Options, dict[str, list[int]]], None] | None = None,
         on_failure: Callable[[ServingError], None] | None = None) -> int:
    """Serve until SIGTERM/SIGINT. `on_ready(options, {model: available versions})` runs once the ports
    are open; `on_failure(error)` replaces the `Failed to start server` line."""
    options = flags.parse(argv)
    if options.version:
        _print_version()
        return 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    manager = batching = None
    stoppers: list = []
    try:
        _check_parallelism(options)
        metrics_path = _metrics_path(options)
        models = _models(options)
        config.check_labels(models, options.allow_version_labels_for_unavailable_models)
        batching = _batching(options)
        manager = Manager(models, _loader(options, batching), options.max_num_load_retries,
                          options.load_retry_interval_micros / 1e6, stop)
        failures = _start_stoppable(manager, options.file_system_poll_wait_seconds, stop)
        if stop.is_set():
            return 0
        if failures:
            raise startup_error(failures)
        stoppers = _serve(options, manager, metrics_path)
        if on_ready is not None:
            on_ready(options, {model.name: [version for version, state in manager.status(model.name)
                                            if state.state == "AVAILABLE"] for model in models})
        while not stop.wait(0.5):
            pass
        return 0
    except ServingError as error:
        if on_failure is None:
            print(f"Failed to start server. Error: {error}", flush=True)
        else:
            on_failure(error)
        return FAILED_EXIT
    finally:
        for stop_server in stoppers:
            stop_server()
        if manager is not None:
            manager.close()
        if batching is not None:
            batching.close()
        _stop_children()


def _metrics_path(options: Options) -> str | None:
    """The Prometheus page's path if --monitoring_config_file enables it (counting starts then)."""
    if not options.monitoring_config_file:
        return None
    path = monitoring.read_config(options.monitoring_config_file)
    if path is not None:
        monitoring.enable()
    return path


def _start_stoppable(manager: Manager, poll_wait: int, stop: threading.Event) -> list:
    """`manager.start` in a thread, so that SIGTERM/SIGINT stop the process even while a load or a
    warmup request hangs inside TensorFlow (which holds the thread, not the signal handler): then
    the process exits at once, as there is nothing to unload yet."""
    result: list = []

    def load() -> None:
        try:
            result.append(manager.start(poll_wait))
        except BaseException as error:  # noqa: BLE001 - raised again in the main thread
            result.append(error)

    loading = threading.Thread(target=load, name="load", daemon=True)
    loading.start()
    while loading.is_alive():
        if stop.wait(0.1) and loading.is_alive():
            logs.info("model_servers/server.cc", "Stopped while loading: exiting without unloading")
            _stop_children()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def _serve(options: Options, manager: Manager, metrics_path: str | None) -> list:
    """Open gRPC, then REST (docs/tf-serving.md §0.3, §4.1); returns the calls that stop them."""
    from tfsconvert.server import grpc_service, http_server, rest

    if options.port == 0:
        raise invalid("At least one of server_options.grpc_port or server_options.grpc_socket_path must be set.")
    grpc_server = grpc_service.start(options.host, options.port, manager)
    stoppers = [lambda: grpc_server.stop(1).wait()]
    logs.info("model_servers/server.cc:434", f"Running gRPC ModelServer at {options.host}:{options.port} ...")
    if options.rest_api_port == options.port:
        logs.error("model_servers/server.cc:445", "server_options.http_port cannot be same as grpc_port. Please use a "
                   "different port for HTTP/REST API. Skipped exporting HTTP/REST API.")
    elif options.rest_api_port:
        http = http_server.start(options.host, options.rest_api_port, rest.RestApi(manager),
                                 options.rest_api_num_threads or http_server.default_workers(), options.limits,
                                 metrics_path)
        if http is not None:
            stoppers.append(http.shutdown)
            logs.info("model_servers/server.cc:466",
                      f"Exporting HTTP/REST API at:localhost:{options.rest_api_port} ...")
    return stoppers
