"""`tfsconvert bench`: throughput and latency of a served model, with and without batching.

PATH: the model's latest version is served in sandboxed embedded servers (one per batching
mode, all started first, then the runs interleaved: for each concurrency, every mode in turn, so
load from other processes hits the modes alike). URL: an already running server, as it is. Each
run is closed-loop: `concurrency` keep-alive connections, each sending its next request when the
previous answer is in (tfsconvert.serving.loadgen). `limit_qps` (PATH only) is the model's own
batched throughput with no server (tfsconvert.serving.limit).
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from tfsconvert.errors import CheckFailed, InfrastructureError, InputError
from tfsconvert.naming import GOLDEN_FILE
from tfsconvert.server import hardware
from tfsconvert.serving import limit, loadgen, tuning, workload
from tfsconvert.server.batching_config import BatchingParameters, format_batching_parameters, \
    read_batching_parameters
from tfsconvert.serving.commands import SESSION_FLAG
from tfsconvert.serving.bench_target import Target, grpc_signatures, parse_url, rest_signatures
from tfsconvert.server.sandbox import Limits, Sandbox, ServerStartFailed

BATCHING_MODES = {"on": (True,), "off": (False,), "both": (False, True)}
Progress = Callable[[str, int, "int | None"], None]
# A server's setting: (batching: None against a URL, its parameters, its session parallelism if bench set it).
Mode = tuple["bool | None", "BatchingParameters | None", "int | None"]


@dataclass
class BenchOptions:
    """The command's options (see `tfsconvert bench --help`)."""

    concurrency: tuple[int, ...] = (1, 8, 32, 64)
    requests: int | None = 1000
    duration: float | None = None
    protocol: str | None = None  # PATH: rest unless given; URL: its scheme
    batching: str | None = None  # PATH: both unless given; URL: not ours to choose
    golden: Path | None = None
    model_name: str | None = None
    batching_parameters_file: Path | None = None
    batch_timeouts: tuple[int, ...] = ()
    batch_threads: tuple[int, ...] = ()
    session_parallelism: tuple[int, ...] = ()  # PATH: --tensorflow_session_parallelism of the batched servers
    server_flags: tuple[str, ...] = ()  # PATH: tensorflow_model_server flags for every server started
    latency_budget_ms: float = 100.0
    timeout: float = 30.0
    client_processes: int = 1
    limit_seconds: float = 2.0
    limits: Limits = field(default_factory=lambda: Limits(cpu_seconds=3600))

    def __post_init__(self) -> None:
        problems = [(not self.concurrency or min(self.concurrency) < 1, "--concurrency: positive integers (1,8,32)"),
                    (self.requests is None and self.duration is None, "--requests or --duration: one bound is needed"),
                    (any(bound is not None and bound <= 0 for bound in (self.requests, self.duration)),
                     "--requests and --duration: positive"),
                    (self.protocol not in (None, "rest", "grpc"), f"--protocol {self.protocol}: rest or grpc"),
                    (self.batching not in (None, *BATCHING_MODES), f"--batching {self.batching}: on, off or both"),
                    (self.latency_budget_ms <= 0 or self.timeout <= 0, "--latency-budget-ms and --timeout: positive"),
                    (self.client_processes < 1, "--client-processes: at least 1"),
                    (any(threads < 1 for threads in self.batch_threads), "--batch-threads: positive integers (1,2,5)"),
                    (any(threads < 0 for threads in self.session_parallelism),
                     "--session-parallelism: integers from 0 (TensorFlow's choice), e.g. 0,1"),
                    (any(not flag.startswith("--") for flag in self.server_flags),
                     "--server-flag: a tensorflow_model_server flag, e.g. "
                     "--server-flag=--tensorflow_intra_op_parallelism=1"),
                    (self.golden is not None and not Path(self.golden).is_file(), f"--golden {self.golden}: no such "
                                                                                  "file")]
        for bad, message in problems:
            if bad:
                raise InputError("bad-option", message, "see tfsconvert bench --help")


@dataclass
class Run:
    """One (server, concurrency) measurement; `batching` is None against a URL (the server's own setting).
    `session_parallelism` is the batched server's --tensorflow_session_parallelism when bench set it."""

    batching: bool | None
    batching_parameters: BatchingParameters | None
    session_parallelism: int | None
    concurrency: int
    requests: int
    seconds: float
    errors: int
    error_samples: list[str]
    latencies_ms: dict[str, float]
    vs_unbatched: float | None = None
    vs_limit: float | None = None

    @property
    def qps(self) -> float:
        return self.requests / self.seconds

    def to_json(self) -> dict:
        data = {"batching": self.batching, "concurrency": self.concurrency, "qps": round(self.qps, 1),
                **{key: _round(value) for key, value in self.latencies_ms.items()}, "errors": self.errors,
                "requests": self.requests, "seconds": round(self.seconds, 3),
                "batching_parameters": self.batching_parameters.to_json() if self.batching_parameters else None,
                "session_parallelism": self.session_parallelism,
                "vs_unbatched": _round(self.vs_unbatched), "vs_limit": _round(self.vs_limit)}
        if self.error_samples:
            data["error_samples"] = self.error_samples
        return data


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass
class BenchResult:
    """Every run, the in-process limit, and the best run within the latency budget."""

    target: str
    model: str
    protocol: str
    requests_from: str
    runs: list[Run]
    latency_budget_ms: float
    limit: limit.Limit | None = None
    notes: list[str] = field(default_factory=list)
    server_flags: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """A benchmark with failed requests is not a valid measurement."""
        return all(run.errors == 0 for run in self.runs)

    def best(self) -> Run | None:
        """The highest-throughput error-free run whose p99 is within the budget."""
        fitting = [r for r in self.runs if not r.errors and r.requests and
                   r.latencies_ms["p99_ms"] <= self.latency_budget_ms]
        return max(fitting, key=lambda r: r.qps, default=None)

    def recommendation(self) -> str:
        best = self.best()
        if best is None:
            answered = [r for r in self.runs if not r.errors and r.requests]
            if not answered:
                return "none: every run had failed requests"
            lowest = min(answered, key=lambda r: r.latencies_ms["p99_ms"])
            return (f"none: no error-free run kept p99 within {self.latency_budget_ms:g} ms (lowest p99: "
                    f"{lowest.latencies_ms['p99_ms']:.1f} ms at {lowest.concurrency} concurrent requests)")
        how = {None: "this server as configured", False: "no batching"}.get(best.batching)
        if how is None:
            how = "batching with " + describe(best.batching_parameters)
            if best.session_parallelism is not None:
                how += f", {SESSION_FLAG}={best.session_parallelism}"
        if self.server_flags and best.batching is not None:
            how += f" (server flags {' '.join(self.server_flags)})"
        return (f"{how}: {best.qps:.0f} QPS at {best.concurrency} concurrent requests, p99 "
                f"{best.latencies_ms['p99_ms']:.1f} ms (budget {self.latency_budget_ms:g} ms)")

    def to_json(self) -> dict:
        best = self.best()
        return {"target": self.target, "model": self.model, "protocol": self.protocol,
                "requests_from": self.requests_from, "runs": [run.to_json() for run in self.runs],
                "limit_qps": round(self.limit.qps, 1) if self.limit else None,
                "limit": self.limit.to_json() if self.limit else None, "latency_budget_ms": self.latency_budget_ms,
                "recommendation": None if best is None else {**best.to_json(), "text": self.recommendation()},
                "server_flags": list(self.server_flags), "ok": self.ok, "notes": self.notes}


def describe(params: BatchingParameters) -> str:
    """The fields a tuning changes, on one line."""
    sizes = ",".join(map(str, params.allowed_batch_sizes)) or "any"
    return (f"max_batch_size {params.max_batch_size}, batch_timeout_micros {params.batch_timeout_micros}, "
            f"num_batch_threads {params.num_batch_threads}, max_enqueued_batches {params.max_enqueued_batches}, "
            f"allowed_batch_sizes {sizes}")


def bench(target: str, options: BenchOptions, progress: Progress = lambda *_: None) -> BenchResult:
    """Measure PATH (sandboxed servers we start) or URL (a running server)."""
    if "://" in target:
        return _bench_url(target, options, progress)
    return _bench_path(Path(target), options, progress)


def _bench_url(url: str, options: BenchOptions, progress: Progress) -> BenchResult:
    if options.batching is not None or options.batching_parameters_file or options.batch_timeouts or \
            options.batch_threads or options.session_parallelism or options.server_flags:
        raise InputError("bad-option", "--batching, --batching-parameters-file, --batch-timeout-micros, "
                         "--batch-threads, --session-parallelism and --server-flag need a model PATH: a running "
                         "server keeps its own configuration",
                         "bench the server as it is (leave them out), or give the model's base path")
    found = parse_url(url, options.model_name, options.protocol)
    progress(f"reading the signatures of {found.model} at {url}", 0, None)
    signatures = (grpc_signatures(found, options.timeout) if found.protocol == "grpc"
                  else rest_signatures(found, options.timeout))
    records, source = workload.records(signatures, options.golden)
    result = BenchResult(url, found.model, found.protocol, source, [], options.latency_budget_ms)
    job = load_job(found, records, signatures)
    for concurrency in options.concurrency:
        result.runs.append(measure(job, (None, None, None), concurrency, options, progress, url_mode=True))
    return result


def _bench_path(path: Path, options: BenchOptions, progress: Progress) -> BenchResult:
    model, served = served_version(path, options.model_name)
    base, parallelism = _base(options)
    candidates = _candidates(base, options, parallelism)
    modes = [(batching, *candidate) for batching in BATCHING_MODES[options.batching or "both"]
             for candidate in (candidates if batching else [(None, None)])]
    golden_file = options.golden or Path(served.path) / GOLDEN_FILE
    protocol = options.protocol or "rest"
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tfsconvert-bench-")))
        progress(f"starting {len(modes)} sandboxed server{'s' if len(modes) > 1 else ''} at once", 0, None)
        boxes = [stack.enter_context(sandboxed_server(served, model, mode, work / f"batching{index}.txt", options,
                                                      wait=False)) for index, mode in enumerate(modes)]
        for mode, box in zip(modes, boxes):
            with _start_failures(mode, options):
                box.wait_ready()
        first = Target(protocol, "127.0.0.1", boxes[0].grpc_port if protocol == "grpc" else boxes[0].rest_port,
                       model, None)
        signatures = rest_signatures(replace(first, protocol="rest", port=boxes[0].rest_port), options.timeout)
        records, source = workload.records(signatures, golden_file)
        result = BenchResult(str(path), model, protocol, source, [], options.latency_budget_ms,
                             server_flags=options.server_flags)
        progress("measuring the in-process batched limit (no server)", 0, None)
        result.limit = _limit(served.path, records, signatures, base, max(options.concurrency), options)
        jobs = [load_job(replace(first, port=box.grpc_port if protocol == "grpc" else box.rest_port), records, signatures)
                for box in boxes]
        for concurrency in options.concurrency:
            for mode, job, box in zip(modes, jobs, boxes):
                result.runs.append(measure(job, mode, concurrency, options, progress, box=box))
        result.notes += [f"the server ({_label(mode, options)}) exited: {problem.message}"
                         for mode, box in zip(modes, boxes) if (problem := box.exit_problem()) is not None]
    result.runs.sort(key=lambda r: (r.batching is True, _swept(r), r.concurrency))
    _compare(result)
    return result


def served_version(path: Path, model_name: str | None):
    """(model name, the ServedVersion TF Serving would serve: the latest) of one model's PATH."""
    from tfsconvert.validate.checks import static_check

    static = static_check(path, model_name)
    if len(static.models) != 1:
        raise InputError("bad-option", f"{path} is a {static.kind} with {len(static.models)} models: bench takes one",
                         "pass one model's base path (or one version dir)")
    model = static.models[0]
    if not model.versions:
        raise CheckFailed("no-version-directory", f"{path}: TF Serving would serve no version of {model.name}",
                          f"run tfsconvert validate {path} for the reason")
    served = max(model.versions, key=lambda v: v.version)
    if served.errors:
        raise CheckFailed(served.errors[0], f"{served.path} will not serve ({', '.join(served.errors)})",
                          f"run tfsconvert validate {path} for the findings and their fixes")
    return model.name, served


@contextlib.contextmanager
def sandboxed_server(served, model: str, mode: Mode, params_file: Path, options: BenchOptions, wait: bool = True):
    """The server of one mode, with every --server-flag; started (and, unless `wait` is False, loaded)."""
    _, params, parallelism = mode
    flags: tuple[str, ...] = options.server_flags
    if params is not None:
        params_file.write_text(format_batching_parameters(params), encoding="utf-8")
        flags += ("--enable_batching", f"--batching_parameters_file={params_file}")
    if parallelism is not None:
        flags += (f"{SESSION_FLAG}={parallelism}",)
    box = Sandbox(Path(served.path), model, served.version, limits=options.limits, extra_flags=flags,
                  isolate=False)  # limits only: relays would distort the throughput measured
    try:
        with _start_failures(mode, options):
            box.start()
            if wait:
                box.wait_ready()
        yield box
    finally:
        box.stop()


@contextlib.contextmanager
def _start_failures(mode: Mode, options: BenchOptions):
    """A server of `mode` that did not come up, as the error bench exits with."""
    try:
        yield
    except ServerStartFailed as failure:
        if failure.kind in ("crashed", "server-timeout"):
            raise InfrastructureError(failure.kind, f"the sandboxed server ({_label(mode, options)}) did not "
                                      f"start: {failure.message}",
                                      "re-run with --debug; tfsconvert validate PATH shows the server log") from None
        raise CheckFailed(failure.kind, f"the model does not serve ({_label(mode, options)}): {failure.message}",
                          "run tfsconvert validate PATH for the finding and its fix") from None


def _base(options: BenchOptions) -> tuple[BatchingParameters, int | None]:
    """The batched servers' parameters and session parallelism: --batching-parameters-file (TF Serving's pools),
    else serving-config's defaults for this machine with their session parallelism (unless a --server-flag
    sets TensorFlow's pools)."""
    if options.batching_parameters_file:
        return read_batching_parameters(options.batching_parameters_file), None
    params, _, parallelism = tuning.recommend(hardware.detect())
    pools_set = any("_parallelism=" in flag for flag in options.server_flags)
    return params, None if pools_set or not parallelism else parallelism


def _candidates(base: BatchingParameters, options: BenchOptions,
                parallelism: int | None) -> list[tuple[BatchingParameters, int | None]]:
    """(parameters, session parallelism) per (--batch-timeout-micros, --batch-threads, --session-parallelism);
    `base` and `parallelism` fill the rest (None leaves TF Serving's default)."""
    return [(replace(base, batch_timeout_micros=timeout, num_batch_threads=threads), candidate)
            for timeout in options.batch_timeouts or (base.batch_timeout_micros,)
            for threads in options.batch_threads or (base.num_batch_threads,)
            for candidate in options.session_parallelism or (parallelism,)]


def _swept(run: Run) -> tuple[int, int, int]:
    params = run.batching_parameters
    return ((params.batch_timeout_micros, params.num_batch_threads, run.session_parallelism or 0) if params
            else (0, 0, 0))


def _label(mode: Mode, options: BenchOptions) -> str:
    batching, params, parallelism = mode
    if batching is None:
        return "as configured"
    if not batching:
        return "batching off"
    swept = [f"timeout {params.batch_timeout_micros} us"] if len(options.batch_timeouts) > 1 else []
    swept += [f"num_batch_threads {params.num_batch_threads}"] if len(options.batch_threads) > 1 else []
    swept += [f"session_parallelism {parallelism}"] if parallelism is not None else []
    return ", ".join(["batching on", *swept])


def load_job(target: Target, records, signatures) -> loadgen.Job:
    payloads = (workload.grpc_payloads(records, signatures, target.model) if target.protocol == "grpc" else
                workload.rest_payloads(records, target.host, target.port, target.model, target.version))
    return loadgen.Job(target.protocol, target.host, target.port, payloads, 1, None, None)


def measure(job: loadgen.Job, mode: Mode, concurrency: int, options: BenchOptions, progress: Progress,
             box: Sandbox | None = None, url_mode: bool = False) -> Run:
    label = f"{_label(mode, options)}, {concurrency} concurrent"
    job = replace(job, connections=concurrency, requests=options.requests, duration=options.duration,
                  timeout=options.timeout)
    progress(label, 0, options.requests)
    try:
        measured = loadgen.run(job, options.client_processes, lambda done: progress(label, done, options.requests))
    except loadgen.LoadError as error:
        died = box.exit_problem() if box is not None else None
        if url_mode:
            raise InputError("server-unreachable", f"{job.host}:{job.port}: {error}",
                             "check the URL and that the server is up (tfsconvert serve ...)") from None
        raise InfrastructureError("load-failed", f"the load generator failed: {died.message if died else error}",
                                  "re-run with --debug") from None
    latencies = np.frombuffer(measured.latencies, dtype=np.float64) * 1000.0
    figures = {f"p{q}_ms": float(np.percentile(latencies, q)) if len(latencies) else None for q in (50, 90, 99)}
    figures["max_ms"] = float(latencies.max()) if len(latencies) else None
    return Run(*mode, concurrency, len(latencies), measured.seconds, measured.errors, measured.error_samples,
               figures)


def _limit(version_dir: str, records, signatures, params: BatchingParameters, concurrency: int,
           options: BenchOptions) -> limit.Limit:
    """Batches of as many requests as can ever be batched here: the most in flight, up to max_batch_size."""
    same = [r for r in records if r.signature_name == records[0].signature_name]
    rows = workload.rows(same[0], signatures)
    count = max(1, min(concurrency, params.execution_batch_size // max(rows, 1)))
    parts = [workload.tensors(same[i % len(same)], signatures) for i in range(count)]
    batch = {alias: np.concatenate([p[alias] for p in parts]) for alias in parts[0]}
    return limit.measure(Path(version_dir), same[0].signature_name, batch, rows, options.limit_seconds,
                         options.limits)


def _compare(result: BenchResult) -> None:
    """Each batching run against the unbatched run at the same concurrency, and against the limit."""
    unbatched = {r.concurrency: r.qps for r in result.runs if r.batching is False}
    for run in result.runs:
        if run.batching and unbatched.get(run.concurrency):
            run.vs_unbatched = run.qps / unbatched[run.concurrency]
        if result.limit is not None and result.limit.qps > 0:
            run.vs_limit = run.qps / result.limit.qps
