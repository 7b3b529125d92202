"""The options of `saved-model`, `onnx` and `pmml` besides SRC, typed, with the family each belongs to."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from tfsconvert.naming import DEFAULT_SIGNATURE

DEFAULT_OPSET = 17  # ONNX, for TensorFlow and scikit-learn sources


@dataclass(frozen=True)
class ConvertOptions:
    """Everything a conversion command accepts besides SRC; a field left at its default was not given."""

    # Every source
    version: str | None = None
    base_path: Path | None = None
    name: str | None = None
    samples: int | None = None  # TF: synthesized inputs (default 256); tabular: rows (default >= 1,024)
    atol: float | None = None
    rtol: float | None = None
    opset: int | None = None  # ONNX; default DEFAULT_OPSET (Spark: the newest onnxmltools supports)
    force: bool = False
    # TensorFlow sources
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    signature_name: str = DEFAULT_SIGNATURE
    source_signature: str | None = None
    sample_inputs: Path | None = None
    # scikit-learn and Spark sources
    sample_data: Path | None = None
    allow_flips: float | None = None  # the share of rows per field that may differ from the source (flips)
    pmml_evaluator: str = "both"  # PMML parity: jpmml, pypmml or both (tfsconvert.runtimes.pmml)
    feature_names: str | None = None  # scikit-learn
    target_name: str | None = None  # scikit-learn
    trust_pickle: bool = False  # scikit-learn
    schema: str | None = None  # Spark: inline JSON or a JSON file, column -> type
    spark_master: str | None = None  # Spark: default local[*]

    def given(self, names: dict[str, str]) -> list[str]:
        """The flags (values of `names`, by field) of the options among `names` that were given."""
        defaults = {f.name: f.default for f in fields(self)}
        return [flag for key, flag in names.items() if getattr(self, key) not in (defaults[key], None, ())]


# Options only one family of sources takes (field -> flag), to refuse them clearly for the others.
TF_ONLY = {"inputs": "--input", "outputs": "--output", "source_signature": "--source-signature",
           "sample_inputs": "--sample-inputs"}
SKLEARN_ONLY = {"feature_names": "--feature-names", "target_name": "--target-name", "trust_pickle": "--trust-pickle"}
SPARK_ONLY = {"schema": "--schema", "spark_master": "--spark-master"}
TABULAR_ONLY = {"sample_data": "--sample-data", "allow_flips": "--allow-flips", **SKLEARN_ONLY, **SPARK_ONLY}
