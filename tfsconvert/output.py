"""Rendering: rich tables for people, JSON for machines. Data on stdout, progress on stderr: a spinner
or bar on a terminal, plain timestamped lines otherwise (CI logs), nothing with --quiet."""

from __future__ import annotations

import json
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from tfsconvert.documents import document
from tfsconvert.errors import TfsConvertError
from tfsconvert.model import Finding, ModelDescription, Signature, VersionInfo

# Piped output (CI logs, files) gets wide lines instead of rich's 80-column default.
stdout = Console(soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, soft_wrap=True, highlight=False)

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_settings = {"quiet": False}
_PLAIN_EVERY = 15.0  # seconds between plain progress lines of one step that goes on


def set_quiet(quiet: bool) -> None:
    """--quiet: no progress on stderr (errors are still printed)."""
    _settings["quiet"] = quiet


def _plain_line(started: float, text: str) -> None:
    sys.stderr.write(f"tfsconvert [{time.monotonic() - started:6.1f} s] {text}\n")
    sys.stderr.flush()


@contextmanager
def status(first: str) -> Iterator[Callable[[str], None]]:
    """Progress of long work on stderr; yields `update(phase)`. A spinner on a terminal, else one plain
    line per phase with the time elapsed (so CI logs are not silent), nothing with --quiet."""
    if _settings["quiet"]:
        yield lambda phase: None
    elif stderr.is_terminal:
        with stderr.status(first) as spinner:
            yield lambda phase: spinner.update(phase)
    else:
        with _PlainStatus(first) as plain:
            yield plain.update


class _PlainStatus:
    """Plain progress lines: one per phase, and `still <phase>` when a phase is quiet for _PLAIN_EVERY s."""

    def __init__(self, first: str) -> None:
        self.started = self.last = time.monotonic()
        self.phase = first
        self.ended = threading.Event()
        self.watcher = threading.Thread(target=self._watch, name="progress", daemon=True)

    def __enter__(self) -> "_PlainStatus":
        self.update(self.phase)
        self.watcher.start()
        return self

    def __exit__(self, *exc) -> None:
        self.ended.set()
        self.watcher.join()
        if exc[0] is None:
            _plain_line(self.started, "done")

    def update(self, phase: str) -> None:
        self.phase, self.last = phase, time.monotonic()
        _plain_line(self.started, phase)

    def _watch(self) -> None:
        while not self.ended.wait(1.0):
            if time.monotonic() - self.last >= _PLAIN_EVERY:
                self.last = time.monotonic()
                _plain_line(self.started, f"still {self.phase}")


def print_json(data: dict) -> None:
    sys.stdout.write(json.dumps(document(data), indent=2, sort_keys=False) + "\n")


def write_json(data: dict, path) -> None:
    """--json-file: the document print_json would print, into a file."""
    with open(path, "w", encoding="utf-8") as file:
        file.write(json.dumps(document(data), indent=2) + "\n")


def render_error(error: TfsConvertError, as_json: bool) -> None:
    """The one line (plus hint) a user sees for a TfsConvertError."""
    if as_json:
        print_json({"error": error.to_json()})
        return
    line = Text.assemble(("error", "bold red"), f" [{error.code}]: ", error.message)
    stderr.print(line)
    if error.hint:
        stderr.print(Text.assemble(("  fix: ", "bold"), error.hint))


def _tensor_table(title: str, tensors: dict[str, dict], indent: int) -> Padding:
    """A table of aliases -> TensorSpec JSON dicts, indented under its heading."""
    table = Table(title=title, title_justify="left", title_style="bold", show_edge=False, pad_edge=False)
    defaults = any("default" in spec for spec in tensors.values())  # optional inputs show what they fall back to
    for column in ("alias", "dtype", "shape", "tensor", *(["default"] if defaults else [])):
        table.add_column(column, overflow="fold")  # names are copied by users: wrap, never truncate
    for alias, spec in tensors.items():
        shape = "unknown rank" if spec["shape"] is None else "[" + ", ".join(map(str, spec["shape"])) + "]"
        native = spec.get("native_dtype")
        default = [] if not defaults else ["-" if spec.get("default") is None else json.dumps(spec["default"])]
        table.add_row(alias, spec["dtype"] + (f" ({native})" if native else ""), shape, spec["name"] or "", *default)
    return Padding(table, (0, 0, 0, indent), expand=False)


def _is_tensor_map(value) -> bool:
    return isinstance(value, dict) and bool(value) and all(
        isinstance(v, dict) and "dtype" in v for v in value.values())


def render_signature(key: str, sig: Signature) -> None:
    stdout.print(Text.assemble("  signature ", (key, "bold"), f"  method: {sig.method or '-'}"))
    data = sig.to_json()
    stdout.print(_tensor_table("inputs", data["inputs"], 4))
    stdout.print(_tensor_table("outputs", data["outputs"], 4))


def _render_details(details: dict) -> None:
    for key, value in details.items():
        if _is_tensor_map(value):
            stdout.print(_tensor_table(key, value, 2))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            stdout.print(f"  {key}:")
            for item in value:
                stdout.print("    - " + ", ".join(f"{k}={v}" for k, v in item.items()))
        else:
            stdout.print(f"  {key}: {_short(value)}")


def _short(value) -> str:
    if isinstance(value, (list, tuple, dict)):
        text = ", ".join(map(str, value)) or "-"
        return text if len(text) <= 200 else text[:197] + "..."
    return str(value)


def _render_version(v: VersionInfo) -> None:
    label = f"version {v.version}" if v.version is not None else "model"
    stdout.print(Text.assemble((label, "bold green"), f"  {v.path}"))
    if v.tags:
        stdout.print("  tag-sets: " + "; ".join("{" + ", ".join(t) + "}" for t in v.tags))
    for key, sig in v.signatures.items():
        render_signature(key, sig)
    _render_details(v.details)


def render_findings(findings: list[Finding]) -> None:
    if not findings:
        stdout.print(Text("no problems found", style="green"))
        return
    for f in findings:
        stdout.print(Text.assemble((f"{f.severity:<7}", _SEVERITY_STYLE[f.severity]), f" {f.code}: ", f.message))
        stdout.print(Text.assemble("        ", ("fix: ", "bold"), f.hint))


def render_description(desc: ModelDescription) -> None:
    """Human view of `inspect`."""
    stdout.print(Text.assemble((desc.path, "bold"), "  format: ", (desc.format, "bold magenta")))
    for v in desc.versions:
        _render_version(v)
    for item in desc.ignored:
        stdout.print(f"not a version: {item['name']!r} ({item['reason']})")
    render_findings(desc.diagnostics)


def _figure(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def render_conversion(result) -> None:
    """Human view of a conversion (tfsconvert.convert.tf_convert.ConversionResult)."""
    stdout.print(Text.assemble(("wrote ", "bold green"), (result.artifact, "bold"),
                               f"  ({result.target}, version {result.version} of '{result.model_name}', "
                               f"from {result.source_format} {result.source})"))
    for key, signature in (result.signatures or {result.signature_name: result.signature}).items():
        render_signature(key, signature)
    rows = getattr(result, "parity_rows", None)  # tabular sources: per-row counts and label flips
    what = {"synthesized": "synthesized rows", "sample-data": "rows of --sample-data"}.get(rows, "samples")
    table = Table(title=f"parity on {result.samples} {what}", title_justify="left", title_style="bold",
                  show_edge=False, pad_edge=False)
    columns = ["output", "dtype", "max abs", "max rel", "tolerance", *(["rows over", "flips"] if rows else []),
               "result"]
    for column in columns:
        table.add_column(column)
    for diff in result.parity:
        tolerance = f"atol {diff.atol:g}, rtol {diff.rtol:g}" if diff.dtype in ("DT_FLOAT", "DT_DOUBLE", "DT_HALF") \
            else "exact"
        counts = [str(diff.rows_over), "-" if diff.flips is None else f"{diff.flips} ({diff.flip_rate:.2%})"] \
            if rows else []
        table.add_row(diff.alias, diff.dtype, _figure(diff.max_abs), _figure(diff.max_rel), tolerance, *counts,
                      Text("ok", "green") if diff.ok else Text(diff.problem or "FAILED", "bold red"))
    stdout.print(Padding(table, (0, 0, 0, 2), expand=False))
    for label, path in result.files.items():
        stdout.print(f"  {label}: {path}")
    for note in result.notes:
        stdout.print(f"  note: {note}")
    if result.findings:
        render_findings(result.findings)


def render_validation(report) -> None:
    """Human view of `validate` (tfsconvert.validate.report.ValidationReport)."""
    stdout.print(Text.assemble(("validate ", "bold"), (report.path, "bold"), f"  ({report.kind})"))
    table = Table(show_edge=False, pad_edge=False)
    for column in ("model/version", "format", "load", "golden", "errors", "warnings"):
        table.add_column(column)
    for version in report.versions:
        errors = sum(f.severity == "error" for f in version.findings)
        warnings = sum(f.severity == "warning" for f in version.findings)
        load = f"{version.load_seconds:.1f} s" if version.load_seconds is not None else (
            version.not_served_because or "not served")
        passed = sum(r.ok for r in version.golden)
        golden = f"{passed}/{len(version.golden)} passed" if version.golden else "-"
        if version.golden_source == "synthesized":
            golden += " (synthesized: values not checked)"
        table.add_row(version.name, version.format, load, Text(golden, "green" if passed == len(version.golden)
                                                                else "bold red"),
                      Text(str(errors), "bold red" if errors else "green"), str(warnings))
    if report.versions:
        stdout.print(Padding(table, (0, 0, 0, 2), expand=False))
    render_findings(report.all_findings())
    counts = report.counts()
    verdict = Text("PASSED", "bold green") if report.ok else Text("FAILED", "bold red")
    stdout.print(Text.assemble(verdict, f"  {counts['error']} error(s), {counts['warning']} warning(s)"
                               + (" (--strict: warnings fail)" if report.strict else "")
                               + f" in {report.seconds:.1f} s"))


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int | None], None]]:
    """A progress bar on stderr; yields `update(label, done, total)` (total None: no known end).
    Transient on a terminal; else plain lines (a new label, and every few seconds), none with --quiet."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if _settings["quiet"] or not stderr.is_terminal:
        yield _plain_progress()
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=stderr, transient=True) as bar:
        task = bar.add_task("", total=None)
        yield lambda label, done, total: bar.update(task, description=label, completed=done, total=total)


def _plain_progress() -> Callable[[str, int, int | None], None]:
    started, last = time.monotonic(), {"label": None, "at": 0.0}

    def update(label: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if _settings["quiet"] or (label == last["label"] and now - last["at"] < _PLAIN_EVERY):
            return
        last.update(label=label, at=now)
        _plain_line(started, f"{label} {done}/{total if total is not None else '?'}")

    return update


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _batching_label(run) -> str:
    """`off`, or `on (0 us, 1 thread[, session 1])`: what a batched server's candidates differ in."""
    if run.batching is not True:
        return {None: "as configured", False: "off"}[run.batching]
    threads = run.batching_parameters.num_batch_threads
    setting = [f"{run.batching_parameters.batch_timeout_micros} us", f"{threads} thread{'s' if threads > 1 else ''}"]
    setting += [f"session {run.session_parallelism}"] if run.session_parallelism is not None else []
    return f"on ({', '.join(setting)})"


def render_bench(result) -> None:
    """Human view of `bench` (tfsconvert.serving.bench.BenchResult)."""
    stdout.print(Text.assemble(("bench ", "bold"), (result.target, "bold"),
                               f"  (model {result.model}, {result.protocol}, requests: {result.requests_from})"))
    table = Table(show_edge=False, pad_edge=False)
    for column in ("batching", "concurrency", "requests", "QPS", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors",
                   "vs unbatched", "vs limit"):
        table.add_column(column, justify="left" if column == "batching" else "right")
    for run in result.runs:
        ms = run.latencies_ms
        table.add_row(_batching_label(run), str(run.concurrency), str(run.requests), f"{run.qps:.0f}",
                      *("-" if ms[key] is None else f"{ms[key]:.1f}" for key in ("p50_ms", "p90_ms", "p99_ms",
                                                                                 "max_ms")),
                      Text(str(run.errors), "bold red" if run.errors else "green"), _ratio(run.vs_unbatched),
                      _ratio(run.vs_limit))
    stdout.print(Padding(table, (0, 0, 0, 2), expand=False))
    if result.limit is not None:
        stdout.print(f"in-process limit: {result.limit.qps:.0f} QPS (batches of {result.limit.batch_requests} "
                     f"request(s), no server)")
    for run in result.runs:
        for sample in run.error_samples:
            stdout.print(Text.assemble(("error", "bold red"), f" (concurrency {run.concurrency}): {sample}"))
    for note in result.notes:
        stdout.print(f"note: {note}")
    stdout.print(Text.assemble(("recommendation: ", "bold"), result.recommendation()))
    if not result.ok:
        stdout.print(Text("INVALID: some requests failed (exit 1)", "bold red"))
