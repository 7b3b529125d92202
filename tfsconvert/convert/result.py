"""The result every converter returns: what it wrote and how closely it matches the source."""

from __future__ import annotations

from dataclasses import dataclass, field

from tfsconvert import golden
from tfsconvert.model import Finding, Signature


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
    parity: list[golden.OutputDiff]
    samples: int
    files: dict[str, str]
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "source": self.source, "source_format": self.source_format, "target": self.target,
            "model_name": self.model_name, "base_path": self.base_path, "version": self.version,
            "artifact": self.artifact, "signature_name": self.signature_name,
            "signature": self.signature.to_json(),
            "parity": {"samples": self.samples, "ok": all(d.ok for d in self.parity),
                       "outputs": [d.to_json() for d in self.parity]},
            "files": self.files, "findings": [f.to_json() for f in self.findings], "notes": self.notes,
        }
