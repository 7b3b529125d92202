"""What to score, settled on the driver before any row is read: the source's family, the artifact's
version dir and format, the input columns the data must have, the output fields to compare and the
tolerances. The `Job` is small and picklable: it is what every Python worker receives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tfsconvert import layout
from tfsconvert.errors import InputError
from tfsconvert.inspect.detect import VERSION_CONTENT, detect
from tfsconvert.naming import DEFAULT_SIGNATURE, LABEL

TABULAR_SOURCES = ("sklearn", "spark-pipeline")
TF_SOURCES = ("frozen-graph", "keras", "tf1-checkpoint", "savedmodel")
ARTIFACT_FILES = {"savedmodel": "saved_model.pb", "onnx": "model.onnx", "pmml": "model.pmml"}
SIGNATURE = DEFAULT_SIGNATURE


@dataclass(frozen=True)
class Column:
    """One input the data must provide: its name, TF dtype and the shape of one row's value (() scalar)."""

    name: str
    dtype: str
    dims: tuple[int, ...] = ()

    @property
    def string(self) -> bool:
        return self.dtype == "DT_STRING"

    @property
    def width(self) -> int:
        count = 1
        for dim in self.dims:
            count *= max(dim, 1)
        return count

    def describe(self) -> str:
        kind = "text" if self.string else "a number"
        return kind if not self.dims else f"a list of {self.width} {'strings' if self.string else 'numbers'}"


@dataclass
class Job:
    """Everything a worker needs to score and compare one partition."""

    source: str
    source_kind: str
    artifact: str  # the version dir
    artifact_format: str  # savedmodel | onnx | pmml
    columns: list[Column]
    fields: dict[str, str]  # output field -> TF dtype (the source's)
    atol: float
    rtol: float
    pmml_engine: str = "jpmml"
    feature_names: list[str] | None = None  # --feature-names, for a model fitted on a plain array
    label_fields: tuple[str, ...] = ()  # fields whose change is a label flip
    spark: dict = field(default_factory=dict)  # Spark source: task, classes, label_dtype, has_proba
    worst: int = 10
    golden: int = 0
    sample: int = 0
    seed: int = 0

    @property
    def tabular(self) -> bool:
        return self.source_kind in TABULAR_SOURCES

    @property
    def model_file(self) -> Path:
        return Path(self.artifact) / ARTIFACT_FILES[self.artifact_format]


def source_kind(src: Path) -> str:
    kind = detect(src)
    if kind in TABULAR_SOURCES or kind in TF_SOURCES:
        return kind
    if kind == "base-path":
        raise InputError("base-path-as-source", f"{src} is a TF Serving base path, not a source model",
                         "give the original model the artifact was converted from (SOURCE), then the artifact")
    raise InputError("unsupported-format", f"{src} is a {kind} model, not a source tfsconvert converts",
                     "SOURCE is a scikit-learn/XGBoost/LightGBM pickle, a Spark PipelineModel directory, a Keras "
                     "file, a SavedModel, a frozen graph or a TF1 checkpoint")


def artifact_version(path: Path) -> tuple[Path, str]:
    """The version dir to score (ARTIFACT itself, or the highest version of a base path) and its format."""
    if not path.is_dir():
        raise InputError("path-not-found" if not path.exists() else "unsupported-format",
                         f"{path}: not a version directory or base path",
                         "give the converted artifact: models/NAME/VERSION or its base path models/NAME")
    version = path
    if not any((path / name).is_file() for name in VERSION_CONTENT):
        versions = layout.versions_by_number(layout.scan_children(path))
        numbers = [n for n in versions if n > 0]
        if not numbers:
            raise InputError("no-version-directory", f"{path} holds no model file and no version directory",
                             "give a version dir holding saved_model.pb, model.onnx or model.pmml, or its base path")
        version = versions[max(numbers)][-1].path
    for fmt, name in ARTIFACT_FILES.items():
        if (version / name).is_file():
            return version, fmt
    raise InputError("unsupported-format", f"{version} holds no saved_model.pb, model.onnx or model.pmml",
                     "give the directory `tfsconvert saved-model`, `onnx` or `pmml` published")


def tolerances(kind: str, artifact_format: str, atol: float | None, rtol: float | None) -> tuple[float, float]:
    """--atol/--rtol, defaulting to what the conversion to that target checked."""
    if kind in TABULAR_SOURCES:
        from tfsconvert.convert.tabular_convert import TOLERANCES
    else:
        from tfsconvert.convert.tf_convert import TOLERANCES
    if artifact_format not in TOLERANCES:
        raise InputError("unsupported-format", f"a {kind} source is not converted to {artifact_format}",
                         "compare a TensorFlow source with a SavedModel or ONNX artifact, a scikit-learn or "
                         "Spark source with a PMML or ONNX artifact")
    default_atol, default_rtol = TOLERANCES[artifact_format]
    return (default_atol if atol is None else atol), (default_rtol if rtol is None else rtol)


def tf_signature(version: Path, artifact_format: str):
    """A TensorFlow source's artifact: its signature (inputs: the data's columns), read without TensorFlow."""
    if artifact_format == "savedmodel":
        from tfsconvert.inspect.savedmodel import read_savedmodel

        signatures = read_savedmodel(version, None)[0].signatures
    else:
        from tfsconvert.inspect import onnx_model

        signatures = onnx_model.describe(version / "model.onnx").versions[0].signatures
    signature = signatures.get(SIGNATURE) or next(iter(signatures.values()), None)
    if signature is None:
        raise InputError("missing-default-signature", f"{version} has no signature to score",
                         "convert the model again with tfsconvert")
    return signature


def tf_columns(version: Path, signature) -> tuple[list[Column], dict[str, str]]:
    """The signature's inputs as data columns, and its outputs as the fields to compare."""
    columns = [Column(alias, spec.dtype, tuple(spec.shape[1:]) if spec.shape else ())
               for alias, spec in signature.inputs.items()]
    unknown = [c.name for c in columns if any(d < 0 for d in c.dims)]
    if unknown:
        raise InputError("unsupported-signature", f"{version}: input(s) {', '.join(unknown)} have unknown "
                         "dimensions besides the batch", "parity on data needs fixed-size inputs per row")
    return columns, {alias: spec.dtype for alias, spec in signature.outputs.items()}


def tabular_source(src: Path, job: Job, names: list[str] | None, trust_pickle: bool) -> None:
    """A pickle or booster file: the pickle gate (inspect's restricted unpickler, unless `trust_pickle`) and the
    column types it reads, then the fields its own framework answers (tfsconvert.parity.oracle)."""
    from tfsconvert.inspect import sklearn_model
    from tfsconvert.parity import oracle

    inputs = sklearn_model.describe(src, trust_pickle=trust_pickle).versions[0].details.get("inputs", {})
    kinds = [spec["dtype"] for spec in inputs.values()]
    source = oracle.load_tabular(src, names)
    job.columns = [Column(name, kinds[i] if i < len(kinds) else "DT_DOUBLE") for i, name in enumerate(source.names)]
    job.fields = source.fields()
    job.label_fields = (LABEL,) if source.task == "classifier" else ()
