"""A scikit-learn estimator or Pipeline as a conversion source: load it, name its features, predict.

The pickle is read with inspect's restricted unpickler (`--trust-pickle` lifts it). Predictions
come back as the named fields of a served response (docs/tabular.md): `label` and
`probability(<class>)` for a classifier, `prediction` for a regressor, each a one-element array
per row so that `compare.compare` can check them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfsconvert.convert.split_thresholds import add_thresholds, is_column_transformer, tree_ranges
from tfsconvert.dtypes import label_array, label_dtype
from tfsconvert.errors import InputError
from tfsconvert.inspect import sklearn_model
from tfsconvert.naming import LABEL, PREDICTION, feature_names, not_fitted, probability_field, response_fields

NUMERIC = "numeric"
STRING = "string"

Row = dict[str, Any]  # feature name -> float or str


@dataclass
class Feature:
    """One input column: its name, kind, and how to make up plausible values for it.

    `categories` (when known) are the values an encoder was fitted on; numeric columns without
    them are drawn from `distribution` "normal" (a=mean, b=std) or "uniform" (a=low, b=high).
    `thresholds` are the tree splits on the column (in its own units), `accepts_unseen` says the
    encoder takes an unknown category, `accepts_missing` that an imputer fills a blank.
    """

    name: str
    kind: str = NUMERIC
    categories: list = field(default_factory=list)
    distribution: str = "normal"
    a: float = 0.0
    b: float = 1.0
    thresholds: list[float] = field(default_factory=list)
    accepts_unseen: bool = False
    accepts_missing: bool = False

    @property
    def dtype(self) -> str:
        """The TF dtype name of the column as the source sees it."""
        return "DT_STRING" if self.kind == STRING else "DT_DOUBLE"


@dataclass
class SklearnSource:
    """A loaded classifier or regressor, its features and what it predicts."""

    path: Path
    model: Any
    features: list[Feature]
    task: str  # "classifier" | "regressor"
    classes: list | None  # classifier: Python scalars in `classes_` order
    named: bool  # fitted on a DataFrame with these column names
    has_proba: bool

    @property
    def class_name(self) -> str:
        return sklearn_model.class_name(self.model)

    @property
    def final_estimator(self):
        return last_step(self.model)

    def label_dtype(self) -> str:
        return label_dtype(self.classes)

    def output_dtypes(self) -> dict[str, str]:
        """Response field -> TF dtype of the source's value (the golden and parity fields, in order)."""
        return response_fields(self.task, self.classes, self.has_proba)

    def frame(self, rows: list[Row]):
        """The rows as the model was fitted: a DataFrame with its column names, else a float matrix."""
        import pandas as pd

        columns = {f.name: pd.Series([np.nan if row[f.name] is None else row[f.name] for row in rows],
                                     dtype=object if f.kind == STRING else np.float64) for f in self.features}
        frame = pd.DataFrame(columns)
        if self.named:
            return frame
        return frame.to_numpy(dtype=object if any(f.kind == STRING for f in self.features) else np.float64)

    def predict(self, rows: list[Row]) -> list[dict[str, np.ndarray]]:
        """The source's answer for every row, as response field -> one-element array."""
        x = self.frame(rows)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = np.asarray(self.model.predict(x))
                proba = np.asarray(self.model.predict_proba(x), dtype=np.float64) if self.has_proba else None
        except Exception as error:  # noqa: BLE001 - any estimator error means these rows do not fit it
            first = (str(error).splitlines() or [""])[0][:200]
            raise InputError("predict-failed",
                             f"{self.path} cannot predict the sample rows: {type(error).__name__}: {first}",
                             "pass rows the model accepts with --sample-data FILE (CSV or Parquet with one "
                             "column per feature)") from None
        if values.ndim > 1 and values.shape[1:] != (1,):
            raise _unsupported(self.path, self.class_name, "it predicts several outputs per row")
        values = values.reshape(len(rows))
        out = []
        for i in range(len(rows)):
            if self.task == "regressor":
                out.append({PREDICTION: np.asarray([values[i]], dtype=np.float64)})
                continue
            fields = {LABEL: label_array([values[i]], self.label_dtype())}
            if proba is not None:
                fields.update({probability_field(c): proba[i, j:j + 1] for j, c in enumerate(self.classes)})
            out.append(fields)
        return out


def last_step(model):
    """The estimator at the end of a (nested) Pipeline, or the model itself."""
    while hasattr(model, "steps"):
        model = model.steps[-1][1]
    return model


def _unsupported(path: Path, class_name: str, why: str) -> InputError:
    return InputError("unsupported-estimator", f"{path} holds a {class_name}: {why}",
                      "tfsconvert pmml / onnx convert fitted classifiers and single-output regressors "
                      "(an estimator or a Pipeline ending in one)")


def _public_name(qualified: str) -> str:
    """`sklearn.semi_supervised._label_propagation.LabelSpreading` -> `sklearn.semi_supervised.LabelSpreading`."""
    *module, name = qualified.split(".")
    return ".".join([part for part in module if not part.startswith("_")] + [name])


def _step_path(model, class_name: str, prefix: str = "") -> str | None:
    """The pipeline step ('spread', 'preprocess/cat') whose class is `class_name`, if any."""
    children = []
    if hasattr(model, "steps"):
        children = [(n, s) for n, s in model.steps]
    elif hasattr(model, "transformers_") or hasattr(model, "transformers"):
        children = [(n, s) for n, s, _ in getattr(model, "transformers_", model.transformers)]
    elif hasattr(model, "transformer_list"):
        children = list(model.transformer_list)
    for name, step in children:
        if isinstance(step, str):
            continue
        if f"{type(step).__module__}.{type(step).__qualname__}" == class_name:
            return prefix + name
        found = _step_path(step, class_name, prefix + name + "/")
        if found:
            return found
    return None


_SUPPORTED_LISTS = {"pmml": "https://github.com/jpmml/jpmml-sklearn#supported-packages",
                    "onnx": "https://onnx.ai/sklearn-onnx/supported.html"}


def unsupported_estimator(source: SklearnSource, class_name: str, converter: str, target: str) -> InputError:
    """InputError `unsupported-estimator` naming the class and the pipeline step that holds it."""
    step = _step_path(source.model, class_name)
    where = f" (step '{step}')" if step else ""
    other = "onnx" if target == "pmml" else "pmml"
    return InputError("unsupported-estimator", f"{converter} {_public_name(class_name)}{where} in {source.path}",
                      f"replace it with an estimator the converter supports ({_SUPPORTED_LISTS[target]}), "
                      f"or try the other format: tfsconvert {other} {source.path}")


def load(path: Path, given_names: list[str] | None, trust_pickle: bool = False) -> SklearnSource:
    """Load a pickled estimator and settle its feature names (never x1..xN)."""
    with warnings.catch_warnings():  # unpickling chatter (version warnings) stays off stderr
        warnings.simplefilter("ignore")
        model = sklearn_model.load_model(path, trust_pickle)
    from sklearn.base import BaseEstimator, is_classifier, is_regressor

    if not isinstance(model, BaseEstimator):
        raise InputError("unsupported-format",
                         f"{path} holds a {type(model).__module__}.{type(model).__qualname__}, not a scikit-learn "
                         "estimator",
                         "pickle the fitted estimator or Pipeline itself: joblib.dump(pipeline, 'model.joblib')")
    class_name = sklearn_model.class_name(model)
    classes = getattr(model, "classes_", None)
    if is_classifier(model):
        if classes is None:
            raise not_fitted(path, class_name)
        if isinstance(classes, list) or np.asarray(classes).ndim != 1:
            raise _unsupported(path, class_name, "it is a multi-output classifier")
        task, has_proba = "classifier", hasattr(model, "predict_proba")
        classes = np.asarray(classes).tolist()
    elif is_regressor(model):
        task, has_proba, classes = "regressor", False, None
    else:
        raise _unsupported(path, class_name, "it is neither a classifier nor a regressor")
    names, named = feature_names(path, model, class_name, given_names)
    return SklearnSource(path, model, describe_features(model, names), task, classes, named, has_proba)


# ---------------------------------------------------------------------------------------------
# Column kinds and value ranges, read from the fitted steps that first touch the raw columns


def describe_features(model, names: list[str]) -> list[Feature]:
    """One Feature per input column, with categories, a value range and split thresholds when the model
    reveals them."""
    features = [Feature(name) for name in names]
    front = _front(model)
    if is_column_transformer(front):
        index_map = getattr(front, "_transformer_to_input_indices", {})
        for name, step, _ in getattr(front, "transformers_", []):
            if isinstance(step, str):
                continue
            for position, index in enumerate(index_map.get(name, [])):
                _apply_stats(features[int(index)], step, position)
    elif not tree_ranges(front, features):  # a tree model splits the raw columns themselves
        for position, feature in enumerate(features):
            _apply_stats(feature, front, position)
    add_thresholds(model, features)
    return features


def _front(model):
    """The step that receives the raw columns (nested Pipelines unwrapped)."""
    while hasattr(model, "steps") and model.steps:
        model = model.steps[0][1]
    return model


def _stats_step(step):
    """The first step of a (sub-)pipeline that holds per-column statistics, skipping imputers."""
    while hasattr(step, "steps"):
        inner = [s for _, s in step.steps if not isinstance(s, str)]
        while len(inner) > 1 and _is_imputer(inner[0]):  # keeps columns in place
            inner = inner[1:]
        if not inner:
            return None
        step = inner[0]
    return step


def _is_imputer(step) -> bool:
    return type(step).__name__ == "SimpleImputer"


def _first_step(step):
    while hasattr(step, "steps") and step.steps:
        step = step.steps[0][1]
    return step


def _apply_stats(feature: Feature, column_step, position: int) -> None:
    feature.accepts_missing = _is_imputer(_first_step(column_step))
    step = _stats_step(column_step)
    if step is None:
        return
    categories = getattr(step, "categories_", None)
    if categories is not None and position < len(categories):
        values = [c.item() if isinstance(c, np.generic) else c for c in categories[position]]
        values = [c for c in values if c is not None and not (isinstance(c, float) and np.isnan(c))]
        if values:
            feature.categories = values
            feature.kind = STRING if any(isinstance(c, str) for c in values) else NUMERIC
            feature.accepts_unseen = getattr(step, "handle_unknown", "error") in (
                "ignore", "infrequent_if_exist", "use_encoded_value", "warn")
        return
    mean, scale = getattr(step, "mean_", None), getattr(step, "scale_", None)
    if mean is not None and scale is not None and position < len(mean):
        feature.distribution, feature.a, feature.b = "normal", float(mean[position]), float(scale[position] or 1.0)
        return
    low, high = getattr(step, "data_min_", None), getattr(step, "data_max_", None)
    if low is not None and high is not None and position < len(low):
        feature.distribution, feature.a, feature.b = "uniform", float(low[position]), float(high[position])
