"""The result every converter returns: what it wrote and how closely it matches the source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from tfsconvert.compare import OutputDiff, compare, merge
from tfsconvert.errors import CheckFailed
from tfsconvert.model import Finding, Signature

Progress = Callable[[str], None]  # reports the phase a long conversion is in


@dataclass
class ConversionResult:
    """What a conversion wrote and how closely it matches the source."""

    source: str
    source_format: str
    target: str
    model_name: str
    base_path: str
    version: int
    artifact: str
    signature_name: str
    signature: Signature
    parity: list[OutputDiff]
    samples: int
    files: dict[str, str]
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signatures: dict[str, Signature] = field(default_factory=dict)  # every written one, the converted first
    parity_rows: str | None = None  # tabular sources: "synthesized" or "sample-data"

    def to_json(self) -> dict:
        return {
            "source": self.source, "source_format": self.source_format, "target": self.target,
            "model_name": self.model_name, "base_path": self.base_path, "version": self.version,
            "artifact": self.artifact, "signature_name": self.signature_name,
            "signature": self.signature.to_json(),
            "signatures": {key: sig.to_json() for key, sig in (self.signatures or
                                                               {self.signature_name: self.signature}).items()},
            "parity": {"samples": self.samples, "ok": all(d.ok for d in self.parity),
                       **({"rows": self.parity_rows} if self.parity_rows else {}),
                       "outputs": [d.to_json() for d in self.parity]},
            "files": self.files, "findings": [f.to_json() for f in self.findings], "notes": self.notes,
        }

    def to_dict(self) -> dict:
        """The JSON document `--json` prints for this result."""
        from tfsconvert.documents import document

        return document(self.to_json())


def check_parity(expected: list[dict], actual: list[dict], atol: float, rtol: float, *, what: str,
                 hint: str) -> list[OutputDiff]:
    """One row per output over all samples; CheckFailed (exit 1) naming every output that differs."""
    diffs = merge([compare(e, a, atol, rtol) for e, a in zip(expected, actual)])
    refuse_differences([_failure(d) for d in diffs if not d.ok], f"{len(expected)} samples", what=what, hint=hint)
    return diffs


def refuse_differences(failures: list[str], checked: str, *, what: str, hint: str) -> None:
    """CheckFailed (exit 1) naming every output that differs (`failures`), when there is one."""
    if failures:
        raise CheckFailed("parity-failed", f"{what} does not reproduce the source on {checked}: "
                          f"{'; '.join(failures)}; nothing was published", hint)


def _failure(diff: OutputDiff) -> str:
    figures = "" if diff.max_abs is None else f"max abs {diff.max_abs:.3g}" + (
        "" if diff.max_rel is None else f", max rel {diff.max_rel:.3g} (atol {diff.atol:g}, rtol {diff.rtol:g})")
    return f"{diff.alias}: " + ", ".join(part for part in (diff.problem, figures) if part)
