"""PMML documents served with the fields of the golden requests `tfsconvert pmml` writes
(docs/tabular.md): one [N] input per active field, `label` + `probability(<class>)` for a
classification model, `prediction` for a regression model. Evaluation is tfsconvert.runtimes.pmml,
the code the conversion's parity check runs, in the engine `--pmml_evaluator` names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfsconvert.errors import TfsConvertError
from tfsconvert.model import Signature, TensorSpec
from tfsconvert.naming import DEFAULT_SIGNATURE
from tfsconvert.server.signatures import signature_def
from tfsconvert.server.status import ServingError, invalid


class PmmlServable:
    """A PMML document in JPMML-Evaluator or pypmml."""

    batchable = False  # the engines score a batch as separate rows: merging requests would gain little

    def __init__(self, path: Path, engine: str = "jpmml") -> None:
        from tfsconvert.runtimes.pmml import PmmlModel, check_installed

        try:
            check_installed(engine)
        except TfsConvertError as error:
            raise ServingError("UNIMPLEMENTED", f"{error.message}: {error.hint}") from None
        try:
            self._model = PmmlModel(path, engine)
        except TfsConvertError as error:
            raise ServingError("DATA_LOSS", f"Can't parse {path} as PMML: {error.message}") from None
        except Exception as error:  # noqa: BLE001 - the engines' Java and py4j errors
            raise invalid(f"{engine} cannot load {path}: {error}") from None
        signature = Signature(None, self._model.inputs, {name: TensorSpec(dtype, [-1], name)
                                                         for name, dtype in self._model.fields.items()})
        self.signatures = {DEFAULT_SIGNATURE: signature_def(signature)}

    def run(self, signature_name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        columns = {alias: np.asarray(value).reshape(-1).tolist() for alias, value in feeds.items()}
        try:
            return self._model.predict(columns)
        except Exception as error:  # noqa: BLE001 - the engines' Java and py4j errors
            raise invalid(f"PMML evaluation failed: {error}") from None

    def close(self) -> None:
        self._model.close()
