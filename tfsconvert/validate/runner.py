"""`tfsconvert validate`: static checks, then the served versions in sandboxed servers (one process
per group of tfsconvert.validate.plan, or one per version) with their golden requests replayed over
REST and gRPC. A version that fails in a shared server is served again alone: its findings are
exactly those of a server of its own, and the others are served again without it."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from tfsconvert.errors import InfrastructureError, InputError
from tfsconvert.findings import finding
from tfsconvert.golden import read_golden
from tfsconvert.model import Finding
from tfsconvert.naming import GOLDEN_FILE
from tfsconvert.validate.checks import ServedModel, ServedVersion, static_check
from tfsconvert.validate import engines, plan
from tfsconvert.validate.client import GrpcClient, RestClient, model_path
from tfsconvert.validate.replay import (Replayer, Tolerance, serving_graph_def, signatures_from_metadata,
                                        synthesized_records)
from tfsconvert.validate.report import ValidationReport, VersionReport
from tfsconvert.server.status import finding_code
from tfsconvert.server.sandbox import EMBEDDED, Limits, Sandbox, Served, ServerStartFailed, server_program
from tfsconvert.server.staging import UnsafeFile

PROTOCOLS = {"rest": ("rest",), "grpc": ("grpc",), "both": ("rest", "grpc")}
# The fix for each cause of a load failure (the cause from server.status.finding_code).
_LOAD_HINTS = {
    "unknown-op": "the server's TensorFlow lacks this op: export without custom ops, or serve with a build that "
                  "has them",
    "missing-serve-tag": "re-export with tags {serve}: tfsconvert saved-model <version dir> --base-path <new base>",
    "not-a-savedmodel": "convert the model: tfsconvert saved-model <model file> --version <n>",
    "bad-warmup-file": "fix or delete assets.extra/tf_serving_warmup_requests (tfsconvert saved-model writes a "
                       "valid one)",
    "corrupt-model-file": "the model file is damaged: export or copy it again",
    "missing-variables": "copy the whole variables/ directory (variables.index and every variables.data-*)",
    "signature-not-found": "the warmup requests name a signature the model lacks: fix or delete them",
}


@dataclass
class ValidateOptions:
    """The command's options (see `tfsconvert validate --help`)."""

    golden: Path | None = None
    model_name: str | None = None
    rtol: float | None = None
    atol: float | None = None
    static_only: bool = False
    protocol: str = "both"
    server: str = EMBEDDED
    server_bin: Path | None = None
    timeout: float = 60.0
    strict: bool = False
    limits: Limits = field(default_factory=Limits)
    require_isolation: bool = False
    request_timeout: float | None = None
    pmml_evaluator: str = "both"  # jpmml, pypmml or both (each replays the golden file)
    jobs: int = field(default_factory=plan.default_jobs)  # server processes at once
    server_per_version: bool = False  # one server process per version (and PMML engine)

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise InputError("bad-option", f"--jobs {self.jobs}: must be at least 1", "e.g. --jobs 2")
        if self.protocol not in PROTOCOLS:
            raise InputError("bad-option", f"--protocol {self.protocol}: expected rest, grpc or both",
                             "use --protocol rest, --protocol grpc or --protocol both")
        if self.golden is not None and not Path(self.golden).is_file():
            raise InputError("path-not-found", f"--golden {self.golden}: no such file",
                             "pass a golden.jsonl written by tfsconvert (assets.extra/golden.jsonl)")
        if self.timeout <= 0:
            raise InputError("bad-option", f"--timeout {self.timeout:g}: must be positive", "e.g. --timeout 60")
        if self.request_timeout is not None and self.request_timeout <= 0:
            raise InputError("bad-option", f"--request-timeout {self.request_timeout:g}: must be positive",
                             "e.g. --request-timeout 10")


def validate(path: Path, options: ValidateOptions, progress: Callable[[str], None] = lambda _: None
             ) -> ValidationReport:
    """Run every check on PATH; the report says what failed (the CLI turns it into the exit code)."""
    started = time.monotonic()
    program = None if options.static_only else server_program(options.server, options.server_bin)
    progress("static checks")
    static = static_check(path, options.model_name)
    report = ValidationReport(str(path), static.kind, options.strict)
    placed: set[int] = set()
    work: list[Work] = []
    for model in static.models:
        for served in model.versions:
            version = _version_report(model, served, static.findings, placed)
            report.versions.append(version)
            if options.static_only:
                version.not_served_because = "--static-only"
            elif served.errors:
                version.not_served_because = "static errors"
            else:
                work += [Work(version, served, engine) for engine in
                         engines.for_version(served.format, options.server, options.pmml_evaluator)]
    if work:
        report.servers, report.jobs = _serve_all(work, options, program, progress)
    for item in work:
        item.merge()
    for version in report.versions:
        if sum(item.version is version for item in work) > 1:  # a PMML version served by both engines
            version.findings += engines.disagreement(version)
    report.findings = [f for i, f in enumerate(static.findings) if i not in placed]
    report.seconds = time.monotonic() - started
    return report


def _version_report(model: ServedModel, served: ServedVersion, findings: list[Finding], placed: set[int]
                    ) -> VersionReport:
    """A version's report with the static findings located inside its directory."""
    version = VersionReport(model.name, served.version, served.path, served.format)
    root = Path(served.path).resolve()
    for index, found in enumerate(findings):
        if found.path and (Path(found.path).resolve() == root or root in Path(found.path).resolve().parents):
            version.findings.append(found)
            placed.add(index)
    return version


@dataclass
class Work:
    """One version to serve with one PMML engine (None: not PMML); `result` collects what its server found,
    merged into the version's report in a fixed order once every server is done."""

    version: VersionReport
    served: ServedVersion
    engine: str | None
    result: VersionReport | None = None

    def fresh(self) -> VersionReport:
        """A new, empty result (a version served again alone starts over)."""
        self.result = VersionReport(self.version.model, self.version.version, self.version.path, self.version.format)
        return self.result

    def merge(self) -> None:
        found, version = self.result, self.version
        version.findings += found.findings
        version.golden += found.golden
        version.served = version.served or found.served
        version.load_seconds = found.load_seconds if found.load_seconds is not None else version.load_seconds
        version.golden_source = found.golden_source or version.golden_source
        version.not_served_because = found.not_served_because or version.not_served_because


class _Pass:
    """The servers of one `validate` run: what they share, and how many were started."""

    def __init__(self, options: ValidateOptions, program: list[str], progress: Callable[[str], None]) -> None:
        self.options, self.program = options, program
        self.servers = 0
        self._lock = threading.Lock()
        self._progress = progress

    def progress(self, message: str) -> None:
        with self._lock:
            self._progress(message)

    def count_server(self) -> None:
        with self._lock:
            self.servers += 1


def _serve_all(work: list[Work], options: ValidateOptions, program: list[str], progress: Callable[[str], None]
               ) -> tuple[int, int]:
    """Serve every version in the planned processes, `jobs` at a time; (servers started, jobs)."""
    run = _Pass(options, program, progress)
    items = [plan.Item(w.version.model, w.version.version, w.served.path, w.served.format, w.engine) for w in work]
    planned = plan.groups(items, options.jobs, options.limits.memory_mb, options.server_per_version)
    jobs, why = plan.parallel(planned, options.jobs)
    if why is not None:
        run.progress(why)
        planned = plan.groups(items, jobs, options.limits.memory_mb, options.server_per_version)
    run.progress(f"{len(work)} version(s) in {len(planned)} server process(es), {jobs} at a time")
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="validate") as pool:
        for done in [pool.submit(_serve_group, [work[i] for i in group.items], group.engine, run)
                     for group in planned]:
            done.result()
    return run.servers, jobs


def _serve_group(work: list[Work], engine: str | None, run: _Pass) -> None:
    """Serve `work` in one process; whatever fails there is served again alone, the rest again together."""
    while len(work) > 1:
        alone, work = _try_together(work, engine, run)
        for item in alone:
            _serve_and_replay(item, run)
    for item in work:
        _serve_and_replay(item, run)


def _try_together(work: list[Work], engine: str | None, run: _Pass) -> tuple[list[Work], list[Work]]:
    """One process for all of `work`: replay each version it serves; (items to serve alone, items to
    serve again together)."""
    names = ", ".join(item.version.name for item in work[:3]) + (f" and {len(work) - 3} more" if len(work) > 3 else "")
    run.progress(f"starting a sandboxed server for {len(work)} versions ({names}){', ' + engine if engine else ''}")
    run.count_server()
    box = _sandbox([Served(w.version.model, w.served.version, Path(w.served.path)) for w in work], engine, run.options,
                   run.program)
    alone = []
    try:
        with box:
            run.progress(f"{len(work)} versions loaded in {box.load_seconds:.1f} s")
            times = box.load_times()
            for index, item in enumerate(work):
                if not _available(box, item):  # a lower version that failed to load does not stop the server
                    alone.append(item)
                    continue
                result = item.fresh()
                _add_weakness(result, box)
                result.served, result.load_seconds = True, times.get((item.version.model, item.served.version))
                _replay(result, box, run.options, run.progress, engine)
                if box.exit_problem() is not None:  # it died serving this version: the rest need a new server
                    return alone + [item], work[index + 1:]
            return alone, []
    except ServerStartFailed as failure:
        suspects = _culprits(failure, box, work) or work
        run.progress(f"the shared server failed ({failure.kind}): serving "
                     f"{', '.join(item.version.name for item in suspects)} alone")
        return suspects, [item for item in work if item not in suspects]
    except UnsafeFile as unsafe:
        refused = []
        for item in work:
            mine = [(path, what) for path, what in unsafe.problems
                    if Path(item.served.path).resolve() in Path(path).parents]
            if mine:
                _unsafe_findings(item.fresh(), mine)
                refused.append(item)
        return [], [item for item in work if item not in refused]


def _sandbox(servables: list[Served], engine: str | None, options: ValidateOptions, program: list[str]) -> Sandbox:
    limits = replace(options.limits, start_timeout=options.timeout)
    flags = (f"--pmml_evaluator={engine}",) if engine else ()
    return Sandbox(servables=servables, limits=limits, program=program, require_isolation=options.require_isolation,
                   extra_flags=flags)


def _available(box: Sandbox, item: Work) -> bool:
    """Whether the shared server lists this version AVAILABLE (a lower version's failed load does not stop it)."""
    rest = RestClient(box.rest_port, 10)
    try:
        answer = rest.get(model_path(item.version.model, item.served.version))
    finally:
        rest.close()
    states = (answer.body or {}).get("model_version_status", []) if answer.ok else []
    return any(state.get("state") == "AVAILABLE" for state in states)


# `N servable(s) did not become available: {{name: m version: v} due to error: ...}, ...` (manager.startup_error)
_FAILED_SERVABLE = re.compile(r"\{\{name: (.*?) version: (-?\d+)\} due to error: ")


def _culprits(failure: ServerStartFailed, box: Sandbox, work: list[Work]) -> list[Work]:
    """The items a failed start names (load errors), or the one loading when it stopped; [] if unknown."""
    named = {(name, int(version)) for name, version in _FAILED_SERVABLE.findall(failure.message)}
    if not named and box.loading() is not None:
        named = {box.loading()}
    return [item for item in work if (item.version.model, item.served.version) in named]


def _add_weakness(version: VersionReport, box: Sandbox) -> None:
    if box.weakness:
        ran = "with resource limits only" if not box.isolated else "in its namespaces, but weaker"
        version.findings.append(finding("sandbox-weak", f"{version.name}: the server ran {ran}: {box.weakness}",
                                        "install bubblewrap (apt-get install bubblewrap) and allow namespaces, "
                                        "or pass --require-isolation to refuse to run without them", version.path))


def _unsafe_findings(version: VersionReport, problems: list[tuple[Path, str]]) -> None:
    version.findings += [finding("unsafe-file", f"{version.name}: {path} is {what}: not staged, the version was "
                                 "not served", "replace it with a regular file inside the version dir", str(path))
                         for path, what in problems]
    version.not_served_because = "unsafe files"


def _serve_and_replay(item: Work, run: _Pass) -> None:
    """Start a server for the version alone (a PMML one with its engine) and replay its golden requests."""
    version, served, engine, options = item.fresh(), item.served, item.engine, run.options
    run.progress(f"starting a sandboxed server for {version.name} ({served.format}{', ' + engine if engine else ''})")
    run.count_server()
    limits = replace(options.limits, start_timeout=options.timeout)
    try:
        box = _sandbox([Served(version.model, served.version, Path(served.path))], engine, options, run.program)
        _add_weakness(version, box)
        with box:
            version.served, version.load_seconds = True, box.load_seconds
            _replay(version, box, options, run.progress, engine)
    except ServerStartFailed as failure:
        version.findings.append(_start_finding(failure, version, limits))
    except UnsafeFile as unsafe:
        _unsafe_findings(version, unsafe.problems)


def _replay(version: VersionReport, box: Sandbox, options: ValidateOptions, progress, engine: str | None) -> None:
    request_timeout = options.request_timeout or options.timeout
    rest = RestClient(box.rest_port, request_timeout)
    grpc = None
    try:
        metadata = rest.get(model_path(version.model, version.version) + "/metadata")
        if not metadata.ok:
            version.findings.append(finding("load-failed", f"{version.name}: the server loaded the model but its "
                                            f"metadata call failed ({metadata.status}: {metadata.error})",
                                            "see the server log with --debug", version.path))
            return
        signatures = signatures_from_metadata(metadata.body)
        golden_path = options.golden or Path(version.path) / GOLDEN_FILE
        synthesized = not Path(golden_path).is_file()
        records = (synthesized_records(signatures, serving_graph_def(Path(version.path))) if synthesized
                   else read_golden(Path(golden_path)))
        version.golden_source = "synthesized" if synthesized else str(golden_path)
        protocols = PROTOCOLS[options.protocol]
        if "grpc" in protocols:
            grpc = GrpcClient(box.grpc_target, request_timeout)
        progress(f"{version.name}: replaying {len(records)} golden request(s) over {' and '.join(protocols)}")
        replayer = Replayer(version.model, version.version, signatures, rest if "rest" in protocols else None,
                            grpc, Tolerance(options.rtol, options.atol), version.path)
        results = replayer.run(records, synthesized)
        for result in results if engine else []:  # which PMML engine answered, in the report and its findings
            result.engine = engine
            if result.finding is not None:
                result.finding.message = f"[{engine}] {result.finding.message}"
        version.golden += results
        # The first PMML engine is the gate; the second's misses are one pmml-evaluators-disagree warning.
        if engine in (None, engines.chosen(options.pmml_evaluator)[0]):
            version.findings += [r.finding for r in results if r.finding is not None]
        if synthesized:
            version.findings.append(finding("values-not-checked", f"{version.name} has no golden file: one "
                                            "synthesized request per signature was sent; values were not checked",
                                            "convert the model with tfsconvert to record golden requests, or pass "
                                            "--golden FILE", version.path))
        died = box.exit_problem()
        if died is not None:
            version.findings.append(_start_finding(died, version, box.limits, serving=True))
    finally:
        rest.close()
        if grpc is not None:
            grpc.close()


def _start_finding(failure: ServerStartFailed, version: VersionReport, limits: Limits,
                   serving: bool = False) -> Finding:
    """A server that did not come up (or died) -> the finding that names why."""
    if failure.kind == "crashed":
        raise InfrastructureError("server-crashed", f"the sandboxed server for {version.name} {failure.message}: "
                                  f"{_last_line(failure.log)}", "re-run with --debug to see the server log")
    if failure.kind == "sandbox-limit":
        return finding("sandbox-limit", f"{version.name}: {failure.message}",
                       f"the model needs more than --memory-mb {limits.memory_mb} / --cpu-seconds "
                       f"{limits.cpu_seconds}: make it smaller, or raise the limit if that is expected", version.path)
    if failure.kind == "server-timeout":
        return finding("server-timeout", f"{version.name}: {failure.message}" + (
            "" if serving else " (TF Serving waits forever here: its ports stay closed)"),
                       "check the model for a slow or hanging load (huge constants, warmup requests), or raise "
                       "--timeout", version.path)
    code = finding_code(failure.message)
    found = finding(code, f"{version.name} failed to load: {failure.message}",
                    _LOAD_HINTS.get(code, "fix the cause in the message, then validate again"), version.path)
    found.tf_serving = f"Failed to start server. Error: {failure.message}"
    return found


def _last_line(log: str) -> str:
    lines = [line for line in log.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no log"
