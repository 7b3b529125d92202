"""The life of a conversion, the same for every source and target.

1. dispatch detects the source's format once and picks its family (tf_convert, tabular_convert);
2. `plan`: the name, base path and version are settled and checked free, and the tolerances picked,
   before anything heavy loads;
3. the family loads the source, makes or reads samples and records the source's own answers;
4. `publish`: in a hidden temp dir under the base path the family's `Build` writes the target, runs
   it as its server runs it (tfsconvert.runtimes, TensorFlow's loader) and compares; then the golden
   requests and warmup records are written, and one rename publishes the version (tfsconvert.layout);
5. `result`: what was written and how closely it matches, for the CLI and `--json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tfsconvert import layout
from tfsconvert.compare import OutputDiff
from tfsconvert.convert.options import ConvertOptions
from tfsconvert.convert.result import ConversionResult, Progress
from tfsconvert.naming import GOLDEN_FILE, WARMUP_FILE
from tfsconvert.golden import GoldenRecord, write_golden


@dataclass(frozen=True)
class Plan:
    """Where a conversion publishes, and how closely the target must reproduce the source."""

    src: Path
    kind: str  # the source's format (tfsconvert.inspect.detect)
    target: str  # savedmodel, onnx or pmml
    name: str
    base: Path
    version: int
    atol: float
    rtol: float
    force: bool

    @property
    def dest(self) -> Path:
        return self.base / str(self.version)


def plan(src: Path, kind: str, target: str, options: ConvertOptions, tolerances: tuple[float, float],
         default_name: str, default_base: Path | None = None) -> Plan:
    """Settle name, base path (default ./models/<name>), version and tolerances; InputError when the version
    is taken (without --force) or the base path cannot be written."""
    name = options.name or default_name
    base = options.base_path or (default_base if default_base is not None and not options.name
                                 else Path("models") / name)
    version = layout.resolve_version(base, options.version)
    layout.ensure_free(base, version, options.force)
    atol = tolerances[0] if options.atol is None else options.atol
    rtol = tolerances[1] if options.rtol is None else options.rtol
    return Plan(src, kind, target, name, base, version, atol, rtol, options.force)


class Build(Protocol):
    """What a source family does for one target inside the hidden temp dir `dest`, in this order."""

    def write(self, dest: Path, progress: Progress) -> None:
        """Write the target's files (the source's answers are already recorded)."""

    def parity(self, dest: Path, progress: Progress) -> list[OutputDiff]:
        """Run the written target as its server does and compare; CheckFailed (exit 1) when it differs."""

    def golden(self, dest: Path) -> list[GoldenRecord]:
        """The golden requests (docs/architecture.md "Golden requests")."""

    def warmup(self, dest: Path) -> list[bytes]:
        """Serialized PredictionLog warmup records; none for a target TF Serving does not warm up."""


def publish(plan: Plan, build: Build, progress: Progress) -> tuple[Path, list[OutputDiff]]:
    """Build in a hidden temp dir and publish `<base>/<version>/` in one rename: (its path, the parity rows)."""
    parity: list[OutputDiff] = []

    def inside(dest: Path) -> None:
        build.write(dest, progress)
        parity.extend(build.parity(dest, progress))
        progress("writing golden requests")
        (dest / GOLDEN_FILE).parent.mkdir(parents=True, exist_ok=True)
        write_golden(dest / GOLDEN_FILE, build.golden(dest))
        records = build.warmup(dest)
        if records:
            from tfsconvert.warmup import write_logs

            write_logs(dest / WARMUP_FILE, records)

    progress("publishing")
    return layout.publish(plan.base, plan.version, inside, force=plan.force), parity


def result(plan: Plan, artifact: Path, **fields) -> ConversionResult:
    """The ConversionResult of a published plan; `fields` are the family's (signature, parity, files, ...)."""
    return ConversionResult(source=str(plan.src), source_format=plan.kind, target=plan.target, model_name=plan.name,
                            base_path=str(plan.base), version=plan.version, artifact=str(artifact), **fields)
