"""Spark ML -> PMML through pyspark2pmml (JPMML-SparkML, in the Spark driver's JVM).

The PMML is built from the schema of the input and label columns (JPMML needs the label column
to define the target field) and the whole fitted pipeline. The written PMML is checked with the
same evaluators as scikit-learn's (tfsconvert.runtimes.pmml); JPMML-SparkML names a classifier's
fields as our response fields already (`predicted_<label column>`, `probability(<class>)`); a
regressor's value is its `prediction` output field.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tfsconvert.convert import pmml_writer
from tfsconvert.convert.spark_session import debug_log, quiet, translate_skew
from tfsconvert.convert.sklearn_source import probability_field
from tfsconvert.convert.spark_source import SparkSource, java_message
from tfsconvert.errors import EnvironmentProblem, InputError, missing_dependency
from tfsconvert.model import Signature

_NOT_SUPPORTED = re.compile(r"class ([\w.$]+) is not supported")
_SUPPORTED_LIST = "https://github.com/jpmml/jpmml-sparkml#supported-libraries"


def write_pmml(source: SparkSource, dest: Path) -> list[str]:
    """Write `dest` with pyspark2pmml; one-line errors for what JPMML-SparkML refuses. Returns notes."""
    try:
        with quiet():
            import pyspark2pmml
            from pyspark2pmml import PMMLBuilder
    except ImportError as error:
        raise missing_dependency(error.name or "pyspark2pmml", "spark") from None
    version = pyspark2pmml.__version__
    try:
        with quiet():
            # Absolute: the JVM resolves relative paths against its own start-up directory.
            PMMLBuilder(source.struct(with_labels=True), source.model).buildFile(str(dest.resolve()))
    except Exception as error:  # noqa: BLE001 - py4j carries every JPMML failure
        raise _jpmml_error(source, error, version) from None
    if not dest.is_file():
        raise InputError("pmml-conversion-failed", f"pyspark2pmml wrote no PMML for {source.path}",
                         "re-run with --debug")
    notes = [f"model.pmml: JPMML-SparkML (pyspark2pmml {version}); target field {source.label_column}"]
    if source.has_proba and not serve_probabilities(dest, {probability_field(c) for c in source.classes}):
        source.has_proba = False  # the signature and golden requests promise only what the PMML serves
        notes.append(f"JPMML-SparkML wrote no probability fields for {source.predictor.uid}: the PMML serves the "
                     "label only, and so do its signature and golden requests")
    return notes


def serve_probabilities(path: Path, wanted: set[str]) -> bool:
    """Whether the PMML has the `wanted` probability fields where the evaluators return them: in the
    top-level Output, or in the last segment of a model chain, where JPMML-SparkML puts a
    GBTClassifier's (both engines return that segment's output fields; the file is left as written)."""
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.parse(path).getroot()
    namespace = root.tag[:-len("PMML")]

    def names(model) -> set[str]:
        output = None if model is None else model.find(f"{namespace}Output")
        return set() if output is None else {f.get("name") for f in output.findall(f"{namespace}OutputField")}

    model = next((child for child in root if child.tag.endswith("Model")), None)
    chain = None if model is None else model.find(f"{namespace}Segmentation")
    segments = [] if chain is None or chain.get("multipleModelMethod") != "modelChain" else \
        chain.findall(f"{namespace}Segment")
    last = next((child for child in segments[-1] if child.tag.endswith("Model")), None) if segments else None
    return wanted <= names(model) or wanted <= names(last)


def _jpmml_error(source: SparkSource, error: Exception, version: str):
    message = java_message(error)
    debug_log(f"pyspark2pmml failed: {error}")
    if "JPMML-SparkML not found on classpath" in str(error):
        return EnvironmentProblem("missing-dependency", "the Spark session has no JPMML-SparkML jars on its class "
                                  "path (it was started without pyspark2pmml's jars)",
                                  "let tfsconvert start Spark (leave out --spark-master), or add "
                                  "pyspark2pmml.spark_jars() to the cluster's spark.jars")
    skew = translate_skew(message, version)
    if skew is not None:
        return skew
    unsupported = _NOT_SUPPORTED.search(message)
    if unsupported:
        cls = unsupported.group(1)
        stages = [s.describe() for s in source.plan.stages if s.cls == cls] or [cls]
        return InputError("unsupported-stage", f"JPMML-SparkML (pyspark2pmml {version}) has no converter for "
                          f"{', '.join(stages)} in {source.path}",
                          f"replace the stage with one JPMML-SparkML supports ({_SUPPORTED_LIST}), or try the "
                          f"other format: tfsconvert onnx {source.path}")
    return InputError("pmml-conversion-failed", f"pyspark2pmml could not convert {source.path}: {message}",
                      "re-run with --debug for the details")


def served_signature(source: SparkSource) -> Signature:
    """pmml_writer's signature; a regressor's value is JPMML's `prediction` output field (the
    predictor's predictionCol), a classifier's label the target field (the label column)."""
    field = source.predictor.getPredictionCol() if source.task == "regressor" else source.label_column
    return pmml_writer.served_signature(source, field)


def pmml_outputs(source: SparkSource, model_file: Path, rows: list[dict], engine: str) -> list[dict[str, np.ndarray]]:
    """The written PMML's answers through `engine` (tfsconvert.runtimes.pmml) as response fields."""
    return pmml_writer.pmml_outputs(source.features, model_file, rows, engine)
