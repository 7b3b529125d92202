"""ONNX models served through tfsconvert.runtimes.onnx (ONNX Runtime, CPU), the code the conversion's
parity check runs.

A model written by `tfsconvert onnx` from a scikit-learn or Spark source (it carries
`tfsconvert.task` metadata) is served with the fields of its golden requests (docs/tabular.md):
one [N] input per feature, and `label` + `probability(<class>)` or `prediction` outputs. Any
other model is served as it is: `serving_default` maps the graph's inputs and outputs by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfsconvert.errors import TfsConvertError
from tfsconvert.model import Signature, TensorSpec
from tfsconvert.naming import DEFAULT_SIGNATURE
from tfsconvert.server.signatures import signature_def
from tfsconvert.server.status import ServingError, invalid


class OnnxServable:
    """An ONNX Runtime session with a TF-Serving-style `serving_default` signature."""

    batchable = True

    def __init__(self, path: Path) -> None:
        from tfsconvert.inspect.onnx_model import describe
        from tfsconvert.runtimes.onnx import OnnxModel

        try:
            raw = describe(path).versions[0].signatures[DEFAULT_SIGNATURE]
        except TfsConvertError as error:
            raise ServingError("DATA_LOSS", f"Can't parse {path} as binary proto: {error.message}") from None
        try:
            self._model = OnnxModel(path)
        except TfsConvertError as error:  # onnxruntime missing
            raise ServingError("UNIMPLEMENTED", f"{error.message}: {error.hint}") from None
        except Exception as error:  # noqa: BLE001 - ORT raises its own exception types for every load failure
            raise invalid(f"ONNX Runtime cannot load {path}: {str(error).strip()}") from None
        self._raw = raw
        signature = self._tabular_signature() if self._model.task else raw
        self.signatures = {DEFAULT_SIGNATURE: signature_def(signature)}

    def _tabular_signature(self) -> Signature:
        """Per-row fields, as `tfsconvert onnx` declares them (sklearn_onnx.served_signature)."""
        inputs = {alias: TensorSpec(spec.dtype, [-1], alias, spec.native_dtype)
                  for alias, spec in self._raw.inputs.items()}
        label = self._raw.outputs.get("label")
        fields = self._model.fields(label.dtype if label is not None else "DT_STRING")
        return Signature(None, inputs, {name: TensorSpec(dtype, [-1], name) for name, dtype in fields.items()})

    def run(self, signature_name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return self._model.predict(feeds) if self._model.task else self._model.run(feeds)
        except Exception as error:  # noqa: BLE001 - ORT's InvalidArgument/Fail/RuntimeException
            raise invalid(str(error).strip()) from None

    def close(self) -> None:
        self._model.close()
