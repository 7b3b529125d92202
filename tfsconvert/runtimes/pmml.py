"""How a PMML document is evaluated, the one place for conversion parity and the embedded server.

Two engines: JPMML-Evaluator (the `jpmml-evaluator` package, in-process JVM through JPype; what
JPMML-based production servers run) and pypmml (a JVM behind py4j). Either way the answer is the
served response fields (docs/tabular.md): `label` + `probability(<class>)` for a classification
model, `prediction` for a regression model, one 1-D array per field over the batch.

`PmmlModel(path, engine).predict(columns)` is what the server calls, and what the conversion calls
through `evaluate`: in this process for jpmml (JPype's JVM starts once per process and is reused),
in a child process for pypmml (`python -m tfsconvert.runtimes.pmml`), whose py4j gateway JVM
outlives `Model.close()` and is killed with the child's process group.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from tfsconvert import pmml_document
from tfsconvert.errors import CheckFailed, EnvironmentProblem
from tfsconvert.naming import LABEL, PREDICTION

ENGINES = ("jpmml", "pypmml")
CHOICES = (*ENGINES, "both")
EVALUATE_TIMEOUT = 600.0
_PACKAGES = {"jpmml": ("jpmml_evaluator", "jpmml-evaluator==0.16.0 jpype1==1.7.1"),
             "pypmml": ("pypmml", "pypmml==1.5.8")}
_DTYPES = {"string": "DT_STRING", "integer": "DT_INT64", "double": "DT_DOUBLE", "float": "DT_DOUBLE",
           "boolean": "DT_BOOL"}
_PROBABILITY = re.compile(r"^probability\((.*)\)$")


def engines(choice: str) -> tuple[str, ...]:
    """`both` -> both engines, else the one named."""
    return ENGINES if choice == "both" else (choice,)


def check_installed(engine: str) -> None:
    """EnvironmentProblem `missing-dependency` (exit 3) with the pip line when `engine` is not installed."""
    import importlib.util

    module, pip = _PACKAGES[engine]
    if importlib.util.find_spec(module) is None:
        raise EnvironmentProblem("missing-dependency", f"--pmml-evaluator {engine} needs the Python package "
                                 f"'{module}', which is not installed",
                                 f"pip install {pip}  (or pip install 'tfsconvert[pmml]'), or choose another "
                                 f"--pmml-evaluator ({', '.join(CHOICES)})")


class PmmlModel:
    """One PMML document loaded in one engine."""

    def __init__(self, path: Path, engine: str, threads: int = 0) -> None:
        """`threads`: JPMML-Evaluator's threads per batch, 0 for one per core (pypmml uses one)."""
        document = pmml_document.read(path)
        self.inputs = document.inputs  # active fields, TensorSpecs
        fields = {field["name"]: field for field in document.dictionary}
        self._target = (document.targets or [""])[0]
        self._engine = _Jpmml(path, threads) if engine == "jpmml" else _Pypmml(path)
        declared = _output_fields(document.root)
        outputs = self._engine.output_names
        # A model whose predicted value is an OutputField of its own (JPMML-SparkML regressors) may get no
        # target value from the engine; that field stands in for it.
        self._predicted = next((n for n in outputs if declared.get(n) == "predictedValue"), None)
        if document.model.get("functionName") == "regression":
            self.fields = {PREDICTION: "DT_DOUBLE"}
        else:
            self.fields = {LABEL: _label_dtype(fields.get(self._target, {}))}
            self.fields.update({n: "DT_DOUBLE" for n in outputs
                                if declared.get(n) == "probability" and _PROBABILITY.match(n)})

    def predict(self, columns: dict[str, list]) -> dict[str, np.ndarray]:
        """The response fields for a batch: `columns` maps each active field to its values (None or NaN
        for a missing value)."""
        count = len(next(iter(columns.values()), []))
        names = list(self.inputs)
        rows = [[_value(columns[n][i]) if n in columns else None for n in names] for i in range(count)]
        results = self._engine.evaluate(names, rows, self._target)
        out = {}
        for name, dtype in self.fields.items():
            if name in (LABEL, PREDICTION):
                values = [r.get(self._predicted) if r.get(self._target) is None else r[self._target]
                          for r in results]
            else:
                values = [r.get(name) for r in results]
            out[name] = _labels(values, dtype) if name == LABEL else np.asarray(
                [np.nan if v is None else v for v in values], dtype=np.float64)
        return out

    def close(self) -> None:
        self._engine.close()


def _label_dtype(field: dict) -> str:
    """The served dtype of the predicted class: the target DataField's, except that classes coded as whole
    doubles (Spark ML's label indexes 0.0, 1.0, ...) are integers, as the source's labels are."""
    dtype = _DTYPES.get(field.get("dataType"), "DT_STRING")
    values = field.get("values") or []
    if dtype == "DT_DOUBLE" and values and all(_whole(v) for v in values):
        return "DT_INT64"
    return dtype


def _whole(text: str) -> bool:
    try:
        return float(text).is_integer()
    except ValueError:
        return False


def _value(value):
    """A PMML argument: text for bytes, None for NaN, plain Python numbers otherwise."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _labels(values: list, dtype: str) -> np.ndarray:
    """Predicted classes in the target field's dtype (JSON and py4j blur int/float/str)."""
    if dtype == "DT_STRING":
        out = np.empty(len(values), dtype=object)
        out[:] = [v if isinstance(v, str) else str(v) for v in values]
        return out
    if dtype == "DT_INT64":
        return np.asarray([int(float(v)) for v in values], dtype=np.int64)
    if dtype == "DT_BOOL":
        return np.asarray([v in (True, "true", "True", 1) for v in values], dtype=bool)
    return np.asarray(values, dtype=np.float64)


def _output_fields(root) -> dict[str, str]:
    """OutputField name -> feature, from every model in the document (a model chain's last segment
    declares the probabilities the engines report at the top)."""
    fields = {}
    for element in root.iter():
        if pmml_document.local_name(element.tag) == "OutputField":
            fields.setdefault(element.get("name"), element.get("feature", "predictedValue"))
    return fields


class _Jpmml:
    """JPMML-Evaluator through JPype (the JVM lives in this process)."""

    def __init__(self, path: Path, threads: int) -> None:
        import jpype
        from jpmml_evaluator import _classpath, make_evaluator

        self._parallelism = threads or -1  # -1: the JVM's common pool, one thread per core
        if not jpype.isJVMStarted():
            # as jpmml_evaluator starts it, but the JVM leaves SIGTERM/SIGINT to Python (-Xrs), so the
            # server's own handlers stop it cleanly
            jpype.startJVM("-Xrs", classpath=_classpath([]), interrupt=False)
        self._evaluator = make_evaluator(str(path), backend="jpype")
        self.output_names = [f.getName() for f in self._evaluator.getOutputFields()]

    def evaluate(self, names: list[str], rows: list[list], target: str) -> list[dict]:
        import pandas as pd

        frame = pd.DataFrame(rows, columns=names, dtype=object)
        results, errors = self._evaluator.evaluateAll(frame, error_col=None, parallelism=self._parallelism)
        if errors is not None and any(e is not None for e in errors):
            first = next(e for e in errors if e is not None)
            raise RuntimeError(f"JPMML-Evaluator: {first}")
        return [{k: _plain(v) for k, v in row.items()} for row in results.to_dict("records")]

    def close(self) -> None:
        self._evaluator = None


class _Pypmml:
    """pypmml: one batch call with JSON in TF's `split` layout, parsed without pandas' type guessing."""

    def __init__(self, path: Path) -> None:
        from pypmml import Model

        self._model = Model.load(str(path))
        self._model.setSupplementOutput(True)  # adds predicted_<target> next to the output fields
        self.output_names = list(self._model.outputNames)

    def evaluate(self, names: list[str], rows: list[list], target: str) -> list[dict]:
        answer = json.loads(self._model.call("predict", json.dumps({"columns": names, "data": rows})))
        results = [dict(zip(answer["columns"], row)) for row in answer["data"]]
        return [{**r, target: r.get(f"predicted_{target}", r.get(target))} for r in results]

    def close(self) -> None:
        self._model.close()


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


# ---------------------------------------------------------------------------------------------
# The conversion's side: PmmlModel.predict in a child process


def evaluate(path: Path, engine: str, columns: dict[str, list], timeout: float = EVALUATE_TIMEOUT
             ) -> dict[str, np.ndarray]:
    """`PmmlModel(path, engine).predict(columns)`, pypmml in a child process whose process group is killed
    after; CheckFailed `parity-failed` if the engine cannot evaluate the document."""
    if engine == "jpmml":
        try:
            model = PmmlModel(path, engine)
            return model.predict(columns)
        except Exception as error:  # noqa: BLE001 - JPMML's Java exceptions
            raise CheckFailed("parity-failed", f"jpmml could not evaluate the written PMML: "
                              f"{str(error).strip()[:300]}; nothing was published",
                              "re-run with --debug to see the evaluator's output") from None
    root = str(Path(__file__).resolve().parents[2])  # the child imports the tfsconvert running here
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "tfsconvert.runtimes.pmml", str(path), engine],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    try:
        out, err = proc.communicate(json.dumps({k: [_value(v) for v in vs] for k, vs in columns.items()}),
                                    timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CheckFailed("parity-failed", f"{engine} did not evaluate {path} within {timeout:.0f} s; nothing was "
                          "published", "re-run with --debug; check that Java is not starved of memory") from None
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # a py4j JVM is in the child's process group
        proc.wait()
    if proc.returncode != 0:
        from tfsconvert.quiet import DEBUG_ENV

        if os.environ.get(DEBUG_ENV):
            sys.stderr.write(err)
        last = (err.strip().splitlines() or ["no output"])[-1][:300]
        raise CheckFailed("parity-failed", f"{engine} could not evaluate the written PMML: {last}; nothing was "
                          "published", "re-run with --debug to see the evaluator's output")
    answer = json.loads(out.strip().splitlines()[-1])
    return {name: (_labels(values, answer["fields"][name]) if name == LABEL else
                   np.asarray([np.nan if v is None else v for v in values], dtype=np.float64))
            for name, values in answer["values"].items()}


def _main(argv: list[str]) -> None:
    path, engine = Path(argv[0]), argv[1]
    model = PmmlModel(path, engine)
    values = model.predict(json.load(sys.stdin))
    plain = {name: [_plain(v) for v in array.tolist()] for name, array in values.items()}
    sys.stdout.write("\n" + json.dumps({"fields": model.fields, "values": plain}) + "\n")
    sys.stdout.flush()
    os._exit(0)  # do not wait for the JVM's shutdown


if __name__ == "__main__":
    _main(sys.argv[1:])
