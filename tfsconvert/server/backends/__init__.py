"""One backend per runtime behind the same small interface (`Servable`), chosen by the file a
version directory holds: `model.onnx` -> ONNX Runtime, `model.pmml` -> JPMML-Evaluator or pypmml
(tfsconvert.runtimes), anything else -> TensorFlow (which reports a directory without
`saved_model.pb` the way TF Serving does)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class Servable(Protocol):
    """A loaded version: SignatureDef protos by key, and a run by signature with feeds by alias."""

    signatures: dict
    batchable: bool  # whether --enable_batching puts its runs through a batch scheduler (docs/tf-serving.md §6.4)

    def run(self, signature_name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output of the signature, by alias; raises ServingError for a failed run."""

    def close(self) -> None:
        """Release the runtime's resources."""


def load(version_dir: Path, tags: tuple[str, ...], tf_threads: tuple[int, int] = (0, 0),
         pmml_evaluator: str = "jpmml") -> Servable:
    """Load the version in `version_dir`; ServingError (TF Serving's status) if it cannot be loaded.
    `tf_threads`: a SavedModel session's (intra-op, inter-op) pool sizes, 0 for TensorFlow's choice;
    `pmml_evaluator`: jpmml or pypmml (tfsconvert.runtimes.pmml)."""
    if (version_dir / "model.onnx").is_file():
        from tfsconvert.server.backends.onnx import OnnxServable

        return OnnxServable(version_dir / "model.onnx")
    if (version_dir / "model.pmml").is_file():
        from tfsconvert.server.backends.pmml import PmmlServable

        return PmmlServable(version_dir / "model.pmml", pmml_evaluator)
    from tfsconvert.server.backends.tf import TfServable

    return TfServable(version_dir, tags, tf_threads)
