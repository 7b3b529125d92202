"""Shared data: tensor specs, signatures, findings and model descriptions (all JSON-ready)."""

from __future__ import annotations

from dataclasses import dataclass, field

SEVERITIES = ("error", "warning", "info")


@dataclass
class TensorSpec:
    """One input or output: TF dtype name, shape (-1 unknown dim, None unknown rank), tensor name."""

    dtype: str
    shape: list[int] | None
    name: str | None = None
    native_dtype: str | None = None

    def to_json(self) -> dict:
        out = {"dtype": self.dtype, "shape": self.shape, "name": self.name}
        if self.native_dtype is not None:
            out["native_dtype"] = self.native_dtype
        return out


@dataclass
class Signature:
    """A named entry point: method name and aliased inputs/outputs."""

    method: str | None
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "inputs": {k: v.to_json() for k, v in self.inputs.items()},
            "outputs": {k: v.to_json() for k, v in self.outputs.items()},
        }


@dataclass
class Finding:
    """A diagnostic with a stable code (docs/architecture.md "Finding codes") and a hint that is the exact fix.

    `tf_serving` is what TF Serving would do: its log line or error status (docs/tf-serving.md §7), when known.
    """

    code: str
    severity: str
    message: str
    hint: str
    path: str | None = None
    tf_serving: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"bad severity {self.severity!r}")

    def to_json(self) -> dict:
        out = {"code": self.code, "severity": self.severity, "message": self.message, "hint": self.hint}
        if self.path is not None:
            out["path"] = self.path
        if self.tf_serving is not None:
            out["tf_serving"] = self.tf_serving
        return out


@dataclass
class VersionInfo:
    """One servable version (or the single model of a non-versioned format)."""

    version: int | None
    path: str
    tags: list[list[str]] = field(default_factory=list)
    signatures: dict[str, Signature] = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {
            "version": self.version,
            "path": self.path,
            "tags": self.tags,
            "signatures": {k: v.to_json() for k, v in self.signatures.items()},
        }
        if self.details:
            out["details"] = self.details
        return out


@dataclass
class ModelDescription:
    """What `inspect` found at a path (docs/architecture.md "inspect --json")."""

    path: str
    format: str
    versions: list[VersionInfo] = field(default_factory=list)
    diagnostics: list[Finding] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)

    @classmethod
    def single(cls, path, fmt: str, *, signatures=None, details=None, diagnostics=None) -> "ModelDescription":
        """A description of one unversioned model file or directory."""
        info = VersionInfo(version=None, path=str(path), signatures=signatures or {}, details=details or {})
        return cls(path=str(path), format=fmt, versions=[info], diagnostics=diagnostics or [])

    def to_json(self) -> dict:
        out = {
            "path": self.path,
            "format": self.format,
            "versions": [v.to_json() for v in self.versions],
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }
        if self.ignored:
            out["ignored"] = self.ignored
        return out

    def to_dict(self) -> dict:
        """The JSON document `--json` prints for this result."""
        from tfsconvert.documents import document

        return document(self.to_json())
