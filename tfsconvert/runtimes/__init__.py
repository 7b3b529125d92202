"""One runtime per artifact format (tf, onnx, pmml): how an artifact is loaded and run, shared by the
conversion parity check, the embedded server's backends and bench's in-process limit. Nothing else
opens a TensorFlow serving session, an ONNX Runtime session or a PMML evaluator; runtimes import only
core modules (docs/architecture.md "Layers")."""

from __future__ import annotations

import numpy as np


def per_row(fields: dict[str, np.ndarray], count: int) -> list[dict[str, np.ndarray]]:
    """A batch answer (field -> [N] array) as one dict of one-element arrays per row (compare.compare's unit)."""
    return [{name: np.asarray(values)[i:i + 1] for name, values in fields.items()} for i in range(count)]
