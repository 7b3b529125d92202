"""How an ONNX model is loaded and run, the one place for conversion parity and the embedded server.

`OnnxModel(path)` is an ONNX Runtime CPU session. `run(feeds)` runs the graph by input and output
names. A model written by `tfsconvert onnx` from a scikit-learn or Spark source carries
`tfsconvert.task` metadata; `predict(columns)` then answers in the served response fields
(docs/tabular.md): one value per row and feature in, `label` + `probability(<class>)` (columns of
`probabilities` in `tfsconvert.classes` order) or `prediction` out, one [N] array per field.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tfsconvert.errors import missing_dependency
from tfsconvert.naming import LABEL, PREDICTION, probability_field

TASK_KEY = "tfsconvert.task"
CLASSES_KEY = "tfsconvert.classes"
PROBABILITIES = "probabilities"


class OnnxModel:
    """An ONNX Runtime CPU session; `task`/`classes` from the tfsconvert metadata (None/[] for other models)."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        """`threads`: ONNX Runtime's intra- and inter-op pool sizes, 0 for its choice (one per core)."""
        try:
            import onnxruntime
        except ImportError:
            raise missing_dependency("onnxruntime", "onnx") from None
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: ORT's warnings are not the user's concern here
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_types = {i.name: i.type for i in self._session.get_inputs()}
        self.output_names = [o.name for o in self._session.get_outputs()]
        meta = self._session.get_modelmeta().custom_metadata_map
        self.task = meta.get(TASK_KEY)
        self.classes = json.loads(meta.get(CLASSES_KEY, "[]"))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every graph output by name; string inputs may be bytes or str (ONNX Runtime wants str)."""
        feeds = {name: _to_feed(value, self.input_types.get(name)) for name, value in feeds.items()}
        return dict(zip(self.output_names, self._session.run(self.output_names, feeds)))

    def fields(self, label_dtype: str) -> dict[str, str]:
        """A tabular model's response fields -> TF dtype (`label_dtype`: the label output's)."""
        if self.task == "regressor":
            return {PREDICTION: "DT_FLOAT"}
        fields = {LABEL: label_dtype}
        if PROBABILITIES in self.output_names:
            fields.update({probability_field(c): "DT_FLOAT" for c in self.classes})
        return fields

    def predict(self, columns: dict[str, np.ndarray | list]) -> dict[str, np.ndarray]:
        """A tabular model's answer for a batch: one value per row per feature in, one [N] array per field out."""
        feeds = {}
        for name, values in columns.items():
            kind = self.input_types.get(name)
            array = np.asarray(values, dtype=np.float32 if kind == "tensor(float)" else None)
            feeds[name] = array.reshape(-1, 1)
        results = self.run(feeds)
        if self.task == "regressor":
            prediction = np.asarray(results[PREDICTION])
            return {PREDICTION: prediction.reshape(len(prediction), -1)[:, 0]}
        label = np.asarray(results[LABEL])
        out = {LABEL: label.reshape(len(label))}
        if PROBABILITIES in results:
            proba = np.asarray(results[PROBABILITIES])
            out.update({probability_field(c): proba[:, j] for j, c in enumerate(self.classes)})
        return out

    def close(self) -> None:
        self._session = None


def _to_feed(array: np.ndarray, native: str | None) -> np.ndarray:
    """ONNX Runtime wants `str` elements for string tensors; requests carry bytes."""
    array = np.asarray(array)
    if native != "tensor(string)":
        return array
    out = np.empty(array.shape, dtype=object)
    out.ravel()[:] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in array.ravel().tolist()]
    return out
