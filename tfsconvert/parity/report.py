"""What `parity` found: per output field the figures, whether it passed, and the worst rows; as JSON,
as JUnit XML (one testcase per output field, as `validate` writes its checks) and as text."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from tfsconvert.parity.stats import BIN_LABELS, FieldStats, PartitionStats, _finite


@dataclass
class FieldReport:
    name: str
    dtype: str
    stats: FieldStats
    allowed: int  # rows that may be outside the tolerance (--allow-flips)

    @property
    def ok(self) -> bool:
        return self.stats.problem is None and self.stats.rows_over <= self.allowed

    def summary(self) -> str:
        s = self.stats
        rate = s.rows_over / s.rows if s.rows else 0.0
        text = f"{s.rows_over:,} of {s.rows:,} rows outside the tolerance ({rate:.4%})"
        if s.flips is not None:
            text += f", {s.flips:,} label flips ({(s.flips / s.rows if s.rows else 0.0):.4%})"
        figures = f"max abs {s.max_abs:.3g}" + ("" if s.max_rel is None else f", max rel {s.max_rel:.3g}")
        return f"{self.name}: {s.problem + '; ' if s.problem else ''}{text}; {figures}"

    def to_json(self) -> dict:
        s = self.stats
        return {"name": self.name, "dtype": self.dtype, "ok": self.ok, "rows": s.rows, "rows_over": s.rows_over,
                "rate_over": s.rows_over / s.rows if s.rows else 0.0, "flips": s.flips,
                "flip_rate": None if s.flips is None else (s.flips / s.rows if s.rows else 0.0),
                "max_abs": _finite(s.max_abs), "max_rel": _finite(s.max_rel), "problem": s.problem,
                "histogram": dict(zip(BIN_LABELS, s.histogram))}


@dataclass
class ParityReport:
    source: str
    source_format: str
    artifact: str
    artifact_format: str
    data: str
    master: str
    atol: float
    rtol: float
    allow_flips: float
    rows: int
    partitions: int
    seconds: float
    fields: list[FieldReport]
    worst: list = field(default_factory=list)  # [(key, record)] largest first
    golden: str | None = None  # the golden file written
    golden_records: int = 0
    evaluator: str | None = None

    @property
    def ok(self) -> bool:
        return self.rows > 0 and all(f.ok for f in self.fields)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict:
        return {"ok": self.ok, "source": self.source, "source_format": self.source_format, "artifact": self.artifact,
                "artifact_format": self.artifact_format, "evaluator": self.evaluator, "data": self.data,
                "spark_master": self.master, "atol": self.atol, "rtol": self.rtol, "allow_flips": self.allow_flips,
                "rows": self.rows, "partitions": self.partitions, "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rows_per_second, 1), "outputs": [f.to_json() for f in self.fields],
                "worst_rows": [dict(record, outside=key[0], score=_finite(key[1])) for key, record in self.worst],
                "golden": self.golden, "golden_records": self.golden_records}

    def lines(self) -> list[str]:
        """The text report."""
        out = [f"parity {self.source} ({self.source_format}) vs {self.artifact} ({self.artifact_format}"
               + (f", {self.evaluator}" if self.evaluator else "") + ")",
               f"  {self.rows:,} rows of {self.data} in {self.partitions} partitions on {self.master}: "
               f"{self.seconds:.1f} s, {self.rows_per_second:,.0f} rows/s; tolerance atol {self.atol:g} + rtol "
               f"{self.rtol:g}*|expected|" + (f", --allow-flips {self.allow_flips:g}" if self.allow_flips else "")]
        for report in self.fields:
            out.append(f"  {'ok    ' if report.ok else 'FAILED'} {report.summary()}")
            shown = [f"{label} {count:,}" for label, count in zip(BIN_LABELS, report.stats.histogram) if count]
            out.append(f"         |error| per row: {', '.join(shown) or 'no rows'}")
        if self.worst:
            out.append("  worst rows (partition:row):")
            for key, record in self.worst:
                outside = f" outside the tolerance in {key[0]} output(s)" if key[0] else ""
                out.append(f"    {record['row']}{outside}: inputs {record['inputs']}")
                out.append(f"      source {record['expected']}")
                out.append(f"      artifact {record['actual']}")
        if self.golden:
            out.append(f"  golden: {self.golden_records} records written to {self.golden}")
        out.append("PASSED" if self.ok else "FAILED" + ("" if self.rows else ": no rows in --data"))
        return out


def junit_xml(report: ParityReport) -> str:
    """One testsuite, one testcase per output field (failure: the summary, figures in system-out)."""
    from tfsconvert.validate.report import count_cases

    root = ET.Element("testsuites", name="tfsconvert parity")
    suite = ET.SubElement(root, "testsuite", name=f"{report.source} vs {report.artifact}")
    for field_report in report.fields:
        case = ET.SubElement(suite, "testcase", classname="parity", name=f"output/{field_report.name}",
                             time=f"{report.seconds:.3f}")
        if not field_report.ok:
            ET.SubElement(case, "failure", message=field_report.summary()[:1000], type="parity-failed").text = (
                field_report.summary())
        ET.SubElement(case, "system-out").text = "\n".join(
            [field_report.summary()] + [f"|error| {label}: {count}" for label, count
                                        in zip(BIN_LABELS, field_report.stats.histogram)])
    count_cases(suite)
    count_cases(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(report: ParityReport, path: Path) -> None:
    Path(path).write_text(junit_xml(report), encoding="utf-8")


def field_reports(total: PartitionStats, fields: dict[str, str], allow_flips: float) -> list[FieldReport]:
    allowed = int(allow_flips * total.rows)
    return [FieldReport(name, dtype, total.fields.get(name, FieldStats()), allowed) for name, dtype in fields.items()]
