"""`serving-config --calibrate`: a short sweep of batching settings against the embedded server, on this machine.

A setting is what a sweep changes: the batching parameters file's num_batch_threads, max_batch_size (with
allowed_batch_sizes ending at it) and batch_timeout_micros, and TF Serving's --tensorflow_session_parallelism
(the size of TensorFlow's intra- and inter-op thread pools; 0 is TensorFlow's choice). The sweep is a
coordinate search from the uncalibrated defaults (tfsconvert.serving.tuning): one axis at a time, every other
value of the axis with the rest of the best setting so far. The best setting's server stays up; a challenger's
server is started (sandboxed, as `bench` starts them), measured with the version's golden requests, and the best
is measured in turn with it (twice each), so load from other processes hits both alike. A challenger with a
failed request loses; one within the p99 budget beats one over it; else 3% more requests per second wins. A
trial that would end after the time budget is not started.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from tfsconvert.errors import CheckFailed, InputError
from tfsconvert.naming import GOLDEN_FILE
from tfsconvert.server.batching_config import BatchingParameters
from tfsconvert.server.hardware import Hardware
from tfsconvert.serving import bench, tuning, workload
from tfsconvert.serving.bench_target import Target, rest_signatures

RUN_SECONDS = 0.75  # per measurement: thousands of answers on the ranker, enough for a p99
WIN_MARGIN = 1.03  # a challenger must beat the best by 3%: noise alone should not move it
CONCURRENCY, BUDGET_SECONDS = tuning.CALIBRATE_CONCURRENCY, tuning.CALIBRATE_SECONDS
LATENCY_BUDGET_MS = 100.0
Say = Callable[[str], None]


@dataclass(frozen=True)
class Setting:
    """Batching parameters and the session parallelism a server runs with."""

    params: BatchingParameters
    session_parallelism: int = 0

    def label(self) -> str:
        p = self.params
        return (f"num_batch_threads {p.num_batch_threads}, session parallelism {self.session_parallelism}, "
                f"max_batch_size {p.max_batch_size}, batch_timeout_micros {p.batch_timeout_micros}")

    def to_json(self) -> dict:
        return {"batching_parameters": self.params.to_json(), "session_parallelism": self.session_parallelism}


@dataclass(frozen=True)
class Trial:
    """One measurement of a setting: answers per second, p99 (ms), failed requests."""

    setting: Setting
    qps: float
    p99_ms: float | None
    errors: int

    def fits(self, latency_budget_ms: float) -> bool:
        return self.errors == 0 and self.p99_ms is not None and self.p99_ms <= latency_budget_ms

    def to_json(self) -> dict:
        return {**self.setting.to_json(), "qps": round(self.qps, 1),
                "p99_ms": None if self.p99_ms is None else round(self.p99_ms, 2), "errors": self.errors}


def axes(cpus: int, concurrency: int) -> list[tuple[str, list]]:
    """The values swept per axis, most telling first."""
    sizes, size = [], tuning.SMALLEST_ALLOWED_BATCH
    while size < concurrency:
        sizes.append(size)
        size *= 2
    return [("num_batch_threads", sorted({1, cpus, 2 * cpus + 1})), ("session_parallelism", [0, 1]),
            ("max_batch_size", [*sizes, concurrency]), ("batch_timeout_micros", [0, 2000])]


def with_value(setting: Setting, axis: str, value: int) -> Setting:
    """`setting` with one axis changed (a max_batch_size brings its allowed_batch_sizes)."""
    if axis == "session_parallelism":
        return replace(setting, session_parallelism=value)
    params = replace(setting.params, **{axis: value})
    if axis == "max_batch_size":
        params = replace(params, allowed_batch_sizes=tuning.allowed_sizes(value))
    return replace(setting, params=params)


class Servers:
    """Sandboxed embedded servers of one model version, one per setting, measured with the same requests."""

    def __init__(self, path: Path, model_name: str | None, concurrency: int, run_seconds: float,
                 golden: Path | None = None) -> None:
        self.model, self.served = bench.served_version(path, model_name)
        self.golden = golden or Path(self.served.path) / GOLDEN_FILE
        if self.served.format == "pmml":
            raise InputError("bad-option", f"{self.served.path} is PMML, which the server does not batch: there "
                             "is nothing to calibrate", "leave --calibrate out for PMML models")
        if not self.golden.is_file():
            raise InputError("no-golden-requests", f"{self.served.path} has no golden requests ({GOLDEN_FILE}): "
                             "calibration replays them against the server",
                             "convert the model with tfsconvert saved-model / onnx (they write golden requests), "
                             "or leave --calibrate out for the measured defaults")
        self.options = bench.BenchOptions(concurrency=(concurrency,), requests=None, duration=run_seconds)
        self._work = tempfile.TemporaryDirectory(prefix="tfsconvert-calibrate-")
        self._stops: list[threading.Thread] = []
        self._job = None
        self.requests_from = ""
        self.start_seconds = 0.0

    def __enter__(self) -> "Servers":
        return self

    def __exit__(self, *exc) -> None:
        for thread in self._stops:
            thread.join()
        self._work.cleanup()

    def start(self, setting: Setting) -> tuple[contextlib.ExitStack, bench.Sandbox]:
        """A server for `setting` (stop it with `stop`)."""
        stack = contextlib.ExitStack()
        mode = (True, setting.params, setting.session_parallelism or None)
        params_file = Path(self._work.name) / f"batching{len(self._stops)}-{time.monotonic_ns()}.txt"
        try:
            box = stack.enter_context(bench.sandboxed_server(self.served, self.model, mode, params_file, self.options))
        except CheckFailed as failure:  # the model, not the setting: name the version to look at
            raise CheckFailed(failure.code, f"{self.served.path}: {failure.message}",
                              f"run tfsconvert validate {self.served.path} for the finding and its fix") from None
        self.start_seconds = box.load_seconds
        if self._job is None:
            target = Target("rest", "127.0.0.1", box.rest_port, self.model, None)
            signatures = rest_signatures(target, self.options.timeout)
            records, self.requests_from = workload.records(signatures, self.golden)
            self._job = bench.load_job(target, records, signatures)
        return stack, box

    def measure(self, setting: Setting, box) -> Trial:
        job = replace(self._job, port=box.rest_port)
        mode = (True, setting.params, setting.session_parallelism or None)
        run = bench.measure(job, mode, self.options.concurrency[0], self.options, lambda *_: None, box=box)
        return Trial(setting, run.qps, run.latencies_ms["p99_ms"], run.errors)

    def compare(self, first: Setting, first_box, second: Setting, second_box, pairs: int = 2) -> tuple[Trial, Trial]:
        """Both servers measured in turn `pairs` times: mean QPS, worst p99, errors summed."""
        runs = [(self.measure(first, first_box), self.measure(second, second_box)) for _ in range(pairs)]
        return _pooled([a for a, _ in runs]), _pooled([b for _, b in runs])

    def stop(self, stack: contextlib.ExitStack) -> None:
        """Stop a server in the background (its graceful stop overlaps the next start)."""
        thread = threading.Thread(target=stack.close, daemon=True)
        thread.start()
        self._stops.append(thread)


def _beats(challenger: Trial, best: Trial, latency_budget_ms: float) -> bool:
    if challenger.errors or best.errors:
        return not challenger.errors
    if challenger.fits(latency_budget_ms) != best.fits(latency_budget_ms):
        return challenger.fits(latency_budget_ms)
    return challenger.qps > best.qps * WIN_MARGIN


def _pooled(trials: list[Trial]) -> Trial:
    p99s = [t.p99_ms for t in trials if t.p99_ms is not None]
    return Trial(trials[0].setting, sum(t.qps for t in trials) / len(trials), max(p99s) if p99s else None,
                 sum(t.errors for t in trials))


@dataclass
class Calibration:
    """The sweep's trials (each challenger with the best measured right after it) and the winner."""

    model: str
    version: int
    requests_from: str
    hardware: Hardware
    concurrency: int
    budget_seconds: float
    latency_budget_ms: float
    best: Trial
    trials: list[tuple[Trial, Trial | None]] = field(default_factory=list)
    not_measured: list[Setting] = field(default_factory=list)
    seconds: float = 0.0

    def swept(self) -> list[Setting]:
        return [trial.setting for trial, _ in self.trials]

    def comment(self) -> str:
        """The file's header: what was measured, how, and each trial."""
        best = self.best
        lines = [f"Calibrated on this machine ({self.hardware.cpus} CPU(s)) by `tfsconvert serving-config "
                 f"--calibrate` in {self.seconds:.0f} s:",
                 f"model {self.model} version {self.version} in the embedded server, its golden requests over REST,",
                 f"{self.concurrency} concurrent requests, {RUN_SECONDS:g} s per measurement, two per setting "
                 f"and trial.",
                 f"best: {best.qps:.0f} QPS, p99 {best.p99_ms:.1f} ms ({best.setting.label()})"]
        if not best.fits(self.latency_budget_ms):
            lines.append(f"p99 is over the {self.latency_budget_ms:g} ms budget in every setting measured: lower the "
                         f"load per server.")
        if best.setting.session_parallelism:
            lines.append(f"Start the server with --tensorflow_session_parallelism={best.setting.session_parallelism}"
                         " (in the commands serving-config prints).")
        lines.append("trials (QPS, p99 ms; vs the best so far, measured in turn with it):")
        for trial, incumbent in self.trials:
            against = f" vs {incumbent.qps:.0f}" if incumbent else " (start)"
            p99 = "-" if trial.p99_ms is None else f"{trial.p99_ms:.1f}"
            errors = f", {trial.errors} errors" if trial.errors else ""
            lines.append(f"  {trial.qps:6.0f} {p99:>6}{against}{errors}: {trial.setting.label()}")
        if self.not_measured:
            lines.append(f"not measured within the {self.budget_seconds:g} s budget (--calibrate-seconds):")
            lines += [f"  {setting.label()}" for setting in self.not_measured]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"model": self.model, "version": self.version, "requests_from": self.requests_from,
                "concurrency": self.concurrency, "budget_seconds": self.budget_seconds,
                "latency_budget_ms": self.latency_budget_ms, "seconds": round(self.seconds, 1),
                "best": self.best.to_json(),
                "trials": [{**t.to_json(), "best_after": b.to_json() if b else None} for t, b in self.trials],
                "not_measured": [s.to_json() for s in self.not_measured]}


def calibrate(path: Path, hardware: Hardware, model_name: str | None = None, budget_seconds: float = BUDGET_SECONDS,
              concurrency: int = CONCURRENCY, latency_budget_ms: float = LATENCY_BUDGET_MS,
              say: Say = lambda line: None) -> Calibration:
    """Sweep from the measured defaults for `hardware`; InputError without golden requests."""
    started = time.monotonic()
    params, _, parallelism = tuning.recommend(hardware)
    start = Setting(params, parallelism)
    with Servers(path, model_name, concurrency, RUN_SECONDS) as servers:
        say(f"calibrate: starting {servers.model} version {servers.served.version} ({start.label()})")
        stack, box = servers.start(start)
        try:
            best = servers.measure(start, box)
            result = Calibration(servers.model, servers.served.version, servers.requests_from, hardware,
                                 concurrency, budget_seconds, latency_budget_ms, best, [(best, None)])
            say(f"calibrate: {best.qps:.0f} QPS, p99 {best.p99_ms:.1f} ms (start)")
            trial_seconds = time.monotonic() - started
            for axis, values in axes(hardware.cpus, concurrency):
                for value in values:
                    candidate = with_value(best.setting, axis, value)
                    if candidate in result.swept() or candidate in result.not_measured:
                        continue
                    if time.monotonic() - started + trial_seconds > budget_seconds:
                        result.not_measured.append(candidate)
                        continue
                    trial_started = time.monotonic()
                    challenger_stack, challenger_box = servers.start(candidate)
                    trial, again = servers.compare(candidate, challenger_box, best.setting, box)
                    result.trials.append((trial, again))
                    won = _beats(trial, again, latency_budget_ms)
                    say(f"calibrate: {axis} {value}: {trial.qps:.0f} QPS, p99 {trial.p99_ms or 0:.1f} ms against "
                        f"{again.qps:.0f}: "
                        + ("new best" if won else "kept the best"))
                    if won:
                        servers.stop(stack)
                        stack, box, best = challenger_stack, challenger_box, trial
                    else:
                        servers.stop(challenger_stack)
                        best = best if again.errors else again  # the latest figures of the same setting
                    trial_seconds = time.monotonic() - trial_started
        finally:
            servers.stop(stack)
    result.best, result.seconds = best, time.monotonic() - started
    if best.errors:
        raise CheckFailed("calibration-failed", f"every setting measured had failed requests (the best: {best.errors} "
                          f"of {best.qps * RUN_SECONDS:.0f} per measurement)",
                          f"run tfsconvert bench {path} --concurrency {concurrency} for the error messages")
    say(f"calibrate: best after {result.seconds:.0f} s: {best.qps:.0f} QPS, p99 {best.p99_ms:.1f} ms "
        f"({best.setting.label()})")
    return result
