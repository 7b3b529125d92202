"""What `validate` found: the report object, its JSON form and its JUnit XML form.

JUnit: one testsuite per served version (plus `layout` for findings about the path as a whole),
one testcase per check (`static/<code>` for each static check, `load`) and per golden request
and protocol (`golden/<id>/<protocol>`). A failed testcase carries the message and the hint, so
GitLab, GitHub and Jenkins show them natively. Schema of the JSON form: docs/validate.md.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from tfsconvert.model import Finding
from tfsconvert.validate.replay import GoldenResult

# The checks decided from files alone; each is a JUnit testcase per version, passed or failed.
STATIC_CHECKS = ("not-a-savedmodel", "missing-serve-tag", "missing-default-signature", "unnamed-signature-io",
                 "missing-variables", "corrupt-model-file", "bad-warmup-file", "breaking-signature-change",
                 "bad-golden-file")
# Findings the server and the replay produce.
LOAD_CODES = ("load-failed", "unknown-op", "sandbox-limit", "server-timeout")


@dataclass
class VersionReport:
    """One version of one model: its findings, how it loaded and its golden results."""

    model: str
    version: int | None
    path: str
    format: str
    findings: list[Finding] = field(default_factory=list)
    served: bool = False
    not_served_because: str | None = None
    load_seconds: float | None = None
    golden_source: str | None = None  # the golden file, "synthesized", or None when nothing was replayed
    golden: list[GoldenResult] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.model}/{self.version}" if self.version is not None else self.model

    def to_json(self) -> dict:
        return {"model": self.model, "version": self.version, "path": self.path, "format": self.format,
                "served": self.served, "not_served_because": self.not_served_because,
                "load_seconds": None if self.load_seconds is None else round(self.load_seconds, 3),
                "golden_source": self.golden_source,
                "golden_passed": sum(r.ok for r in self.golden), "golden_failed": sum(not r.ok for r in self.golden),
                "findings": [f.to_json() for f in self.findings],
                "golden": [r.to_json() for r in self.golden]}


@dataclass
class ValidationReport:
    """Everything `validate PATH` found."""

    path: str
    kind: str  # what PATH is: base-path, version-dir, model-repository, model-config, ...
    strict: bool = False
    findings: list[Finding] = field(default_factory=list)  # about the path as a whole
    versions: list[VersionReport] = field(default_factory=list)
    seconds: float = 0.0
    servers: int = 0  # server processes started (versions retried alone included)
    jobs: int = 0  # how many of them ran at once

    def all_findings(self) -> list[Finding]:
        return self.findings + [f for v in self.versions for f in v.findings]

    def failing(self) -> list[Finding]:
        """Findings that fail the run: errors, and warnings too under --strict."""
        bad = ("error", "warning") if self.strict else ("error",)
        return [f for f in self.all_findings() if f.severity in bad]

    @property
    def ok(self) -> bool:
        return not self.failing()

    def counts(self) -> dict[str, int]:
        found = self.all_findings()
        return {severity: sum(f.severity == severity for f in found) for severity in ("error", "warning", "info")}

    def to_json(self) -> dict:
        golden = [r for v in self.versions for r in v.golden]
        return {"path": self.path, "kind": self.kind, "ok": self.ok, "strict": self.strict,
                "seconds": round(self.seconds, 3), "servers": self.servers, "jobs": self.jobs,
                "summary": {**self.counts(), "versions": len(self.versions),
                            "golden_passed": sum(r.ok for r in golden),
                            "golden_failed": sum(not r.ok for r in golden)},
                "findings": [f.to_json() for f in self.findings],
                "versions": [v.to_json() for v in self.versions]}

    def to_dict(self) -> dict:
        """The JSON document `--json` prints for this report."""
        from tfsconvert.documents import document

        return document(self.to_json())


def _testcase(suite: ET.Element, classname: str, name: str, seconds: float, problems: list[Finding],
              strict: bool, note: str | None = None) -> None:
    case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")
    failing = [f for f in problems if f.severity == "error" or (strict and f.severity == "warning")]
    for problem in failing:
        failure = ET.SubElement(case, "failure", message=problem.message[:1000], type=problem.code)
        failure.text = _finding_text(problem)
    shown = [_finding_text(f) for f in problems if f not in failing] + ([note] if note else [])
    if shown:
        ET.SubElement(case, "system-out").text = "\n\n".join(shown)


def _finding_text(found: Finding) -> str:
    lines = [f"[{found.severity}] {found.code}: {found.message}", f"fix: {found.hint}"]
    if found.path:
        lines.append(f"path: {found.path}")
    tf_serving = getattr(found, "tf_serving", None)
    if tf_serving:
        lines.append(f"TF Serving: {tf_serving}")
    return "\n".join(lines)


def junit_xml(report: ValidationReport) -> str:
    """The report as JUnit XML (one testsuite per version, one testcase per check and golden request)."""
    root = ET.Element("testsuites", name="tfsconvert validate")
    if report.findings or not report.versions:
        suite = ET.SubElement(root, "testsuite", name="layout")
        by_code: dict[str, list[Finding]] = {}
        for found in report.findings:
            by_code.setdefault(found.code, []).append(found)
        for code, found in by_code.items():
            _testcase(suite, "layout", code, 0.0, found, report.strict)
        if not by_code:
            _testcase(suite, "layout", "models found", 0.0, [], report.strict)
    for version in report.versions:
        suite = ET.SubElement(root, "testsuite", name=version.name)
        static = [f for f in version.findings if f.code in STATIC_CHECKS]
        for code in STATIC_CHECKS:
            _testcase(suite, version.name, f"static/{code}", 0.0, [f for f in static if f.code == code], report.strict)
        loading = [f for f in version.findings if f.code in LOAD_CODES and not _from_golden(f, version)]
        if version.served or loading:
            _testcase(suite, version.name, "load", version.load_seconds or 0.0, loading, report.strict)
        for result in version.golden:
            note = None if result.values_checked else "synthesized request: output names, dtypes and shapes checked"
            _testcase(suite, version.name, f"golden/{result.id}/{result.protocol}", result.seconds,
                      [result.finding] if result.finding else [], report.strict, note)
        count_cases(suite)
    count_cases(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _from_golden(found: Finding, version: VersionReport) -> bool:
    return any(result.finding is found for result in version.golden)


def count_cases(element: ET.Element) -> None:
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(case.find("failure") is not None for case in cases)))
    element.set("errors", "0")


def write_junit(report: ValidationReport, path: Path) -> None:
    Path(path).write_text(junit_xml(report), encoding="utf-8")
