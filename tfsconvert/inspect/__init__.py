"""`inspect`: detect what a path is and describe it with one reader per format.

Readers for SavedModel, GraphDef, checkpoints, ONNX, PMML and Spark never import TensorFlow,
Spark or scikit-learn; the Keras and sklearn readers import their framework only when called.
Every reader module exposes `describe(path) -> ModelDescription`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from tfsconvert.inspect.detect import detect
from tfsconvert.model import ModelDescription

_READERS = {
    "base-path": "base_path",
    "savedmodel": "savedmodel",
    "frozen-graph": "graphdef",
    "tf1-checkpoint": "checkpoint",
    "keras": "keras_model",
    "onnx": "onnx_model",
    "pmml": "pmml",
    "sklearn": "sklearn_model",
    "spark-pipeline": "spark_model",
}


def inspect_path(path: Path | str, *, trust_pickle: bool = False) -> ModelDescription:
    """Describe the model at `path`; raises InputError when it is missing or unreadable."""
    path = Path(path)
    fmt = detect(path)
    reader = importlib.import_module(f"tfsconvert.inspect.{_READERS[fmt]}")
    if fmt == "sklearn":
        return reader.describe(path, trust_pickle=trust_pickle)
    return reader.describe(path)
