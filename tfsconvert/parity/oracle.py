"""The reference side of `tfsconvert parity`: the source loaded and run by its own framework from the untouched
original file, with nothing of tfsconvert's converters or readers (`tfsconvert.convert`, `tfsconvert.inspect`;
tests/test_architecture.py checks it). A bug in those would otherwise be on both sides and agree with itself.

Tabular sources here: a scikit-learn/XGBoost/LightGBM pickle through `joblib.load` (parity's pickle gate has
checked it on the driver first), XGBoost's JSON/UBJ and LightGBM's text model files through their own libraries,
all answering with `predict`/`predict_proba`; a Spark PipelineModel through `PipelineModel.load` and
`transform`. TensorFlow sources: tfsconvert.parity.oracle_tf.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfsconvert.dtypes import label_array, label_dtype
from tfsconvert.errors import InputError
from tfsconvert.naming import LABEL, PREDICTION, feature_names, probability_field, response_fields

SPARK_TYPES = ("double", "float", "int", "bigint", "string")  # column types a Spark source is given as they are
_LIGHTGBM_CLASSIFIERS = {"binary", "multiclass", "multiclassova", "softmax", "ova", "multi_logloss"}


@dataclass
class TabularModel:
    """A classifier or regressor: its input names, and the response fields it answers."""

    model: Any  # an estimator, or a lightgbm.Booster for a native LightGBM file
    names: list[str]
    named: bool  # fitted on a DataFrame with these columns
    task: str  # classifier | regressor
    classes: list | None
    has_proba: bool
    booster: bool = False

    def fields(self) -> dict[str, str]:
        return response_fields(self.task, self.classes, self.has_proba)

    def answers(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Field -> [n] array for a batch of columns."""
        import pandas as pd

        frame = pd.DataFrame({name: inputs[name] for name in self.names})
        strings = any(frame[name].dtype == object for name in self.names)
        x = frame if self.named and not self.booster else frame.to_numpy(dtype=object if strings else np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.booster:
                values, proba = _booster_answers(self, x)
            else:
                values = np.asarray(self.model.predict(x)).reshape(len(frame))
                proba = np.asarray(self.model.predict_proba(x), dtype=np.float64) if self.has_proba else None
        if self.task == "regressor":
            return {PREDICTION: values.astype(np.float64)}
        out = {LABEL: label_array(list(values), label_dtype(self.classes))}
        if proba is not None:
            out.update({probability_field(c): proba[:, j] for j, c in enumerate(self.classes)})
        return out


def _booster_answers(source: TabularModel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A LightGBM Booster's values (and class probabilities): it predicts P(class 1) for a binary model."""
    raw = np.asarray(source.model.predict(x), dtype=np.float64)
    if source.task == "regressor":
        return raw.reshape(len(x)), None
    proba = np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw
    return np.asarray(source.classes)[np.argmax(proba, axis=1)], proba


def load_tabular(path: Path, given_names: list[str] | None) -> TabularModel:
    """The model of a pickle/joblib or native booster file. A pickle is unpickled as it is: the caller has put it
    through the pickle gate (or the user passed --trust-pickle)."""
    if path.suffix in (".json", ".ubj"):
        return _estimator(path, _xgboost(path), given_names)
    if path.suffix == ".txt":
        return _lightgbm(path, given_names)
    import joblib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _estimator(path, joblib.load(path), given_names)


def _estimator(path: Path, model, given_names: list[str] | None) -> TabularModel:
    from sklearn.base import is_classifier, is_regressor

    name = f"{type(model).__module__}.{type(model).__qualname__}"
    names, named = feature_names(path, model, name, given_names)
    if is_classifier(model):
        classes = np.asarray(model.classes_).tolist()
        return TabularModel(model, names, named, "classifier", classes, hasattr(model, "predict_proba"))
    if is_regressor(model):
        return TabularModel(model, names, named, "regressor", None, False)
    raise InputError("unsupported-estimator", f"{path} holds a {name}: it is neither a classifier nor a regressor",
                     "compare the artifact with the classifier or regressor it was converted from")


def _xgboost(path: Path):
    """XGBoost's scikit-learn estimator for the objective the file names."""
    import json

    import xgboost

    objective = json.loads(xgboost.Booster(model_file=str(path)).save_config())["learner"]["objective"]["name"]
    model = (xgboost.XGBClassifier if objective.startswith(("binary:", "multi:")) else xgboost.XGBRegressor)()
    model.load_model(str(path))
    return model


def _lightgbm(path: Path, given_names: list[str] | None) -> TabularModel:
    """LightGBM's own Booster: classes 0..k-1 for a classification objective."""
    from types import SimpleNamespace

    import lightgbm

    booster = lightgbm.Booster(model_file=str(path))
    objective = str(booster.params.get("objective", "regression")).split()[0]
    stored = booster.feature_name()
    named = not all(re.fullmatch(r"Column_\d+", n) for n in stored)  # LightGBM's names for unnamed columns
    seen = SimpleNamespace(feature_names_in_=stored if named else None, n_features_in_=booster.num_feature())
    names, _ = feature_names(path, seen, "lightgbm.Booster", given_names)
    if objective not in _LIGHTGBM_CLASSIFIERS:
        return TabularModel(booster, names, named, "regressor", None, False, booster=True)
    count = max(int(booster.params.get("num_class", 1)), 2)
    return TabularModel(booster, names, named, "classifier", list(range(count)), True, booster=True)


# ---------------------------------------------------------------------------------------------
# Spark


@dataclass
class SparkModel:
    """A loaded PipelineModel and its predictor (the last classification or regression stage)."""

    model: Any
    predictor: Any
    task: str
    classes: list | None
    has_proba: bool

    def fields(self) -> dict[str, str]:
        return response_fields(self.task, self.classes, self.has_proba)

    def answered(self, frame, prediction: str, probability: str):
        """`frame` transformed by the pipeline: its columns plus Spark's prediction (and probability vector as an
        array) under the names given."""
        from pyspark.ml.functions import vector_to_array
        from pyspark.sql import functions

        answered = self.model.transform(frame)
        extra = [functions.col(self.predictor.getPredictionCol()).alias(prediction)]
        if self.has_proba:
            extra.append(vector_to_array(functions.col(self.predictor.getProbabilityCol())).alias(probability))
        return answered.select(*frame.columns, *extra)


def load_pipeline(path: Path) -> SparkModel:
    """The PipelineModel at `path`, loaded by Spark (a session must be running)."""
    from pyspark.ml import PipelineModel

    try:
        model = PipelineModel.load(str(path.resolve()))  # the JVM has its own working directory
    except Exception as error:  # noqa: BLE001 - a bad stage directory fails in many ways
        first = (str(getattr(error, "desc", None) or error).strip().splitlines() or [""])[0][:300]
        raise InputError("corrupt-model-file", f"Spark cannot load {path}: {first}",
                         "save the PipelineModel again with pipelineModel.write().overwrite().save(path)") from None
    flat = _flatten(model)
    tasks = {"pyspark.ml.classification": "classifier", "pyspark.ml.regression": "regressor"}
    found = [(stage, tasks[type(stage).__module__]) for stage in flat
             if type(stage).__module__ in tasks and hasattr(stage, "getPredictionCol")]
    if not found:
        raise InputError("unsupported-estimator", f"{path} has no classification or regression stage",
                         "compare the artifact with the Spark pipeline it was converted from")
    predictor, task = found[-1]
    if task == "regressor":
        return SparkModel(model, predictor, task, None, False)
    has_proba = hasattr(predictor, "getProbabilityCol") and bool(predictor.getProbabilityCol())
    return SparkModel(model, predictor, task, _classes(flat, predictor), has_proba)


def _flatten(model) -> list:
    out = []
    for stage in model.stages:
        out.extend(_flatten(stage) if hasattr(stage, "stages") else [stage])
    return out


def _classes(flat: list, predictor) -> list:
    """Class j of the prediction index: the label StringIndexer's labels, an IndexToString's labels, else j."""
    from pyspark.ml.feature import IndexToString, StringIndexerModel

    count = int(predictor.numClasses)
    for stage in flat:
        if isinstance(stage, StringIndexerModel):
            outputs = stage.getOutputCols() if stage.isSet("outputCols") else [stage.getOutputCol()]
            if predictor.getLabelCol() in outputs:
                return list(stage.labelsArray[outputs.index(predictor.getLabelCol())])[:count]
        if isinstance(stage, IndexToString) and stage.getInputCol() == predictor.getPredictionCol() \
                and stage.getLabels():
            return list(stage.getLabels())[:count]
    return list(range(count))
