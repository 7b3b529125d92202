"""Split thresholds of fitted tree models (scikit-learn, XGBoost, LightGBM), for sample rows that reach the
branches: the range each column is split in, and each split traced back to the input column's units."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from tfsconvert.convert.sklearn_source import Feature


def is_column_transformer(step) -> bool:
    return hasattr(step, "transformers_")


def _trees(model) -> list:
    if hasattr(model, "tree_"):
        return [model]
    estimators = getattr(model, "estimators_", None)
    if estimators is None:
        return []
    return [t for t in np.asarray(estimators, dtype=object).ravel() if hasattr(t, "tree_")]


def _splits(model) -> list[tuple[int, float]]:
    """(column index, threshold) of every numeric split of a fitted tree model (sklearn trees and forests,
    gradient boosting, histogram gradient boosting, XGBoost and LightGBM)."""
    out = _booster_splits(model)
    for tree in _trees(model):
        inner = tree.tree_.feature >= 0
        out += zip(tree.tree_.feature[inner].tolist(), tree.tree_.threshold[inner].tolist())
    for predictors in getattr(model, "_predictors", None) or []:
        for predictor in predictors:
            nodes = predictor.nodes
            split = ~nodes["is_leaf"].astype(bool) & ~nodes["is_categorical"].astype(bool)
            out += zip(nodes["feature_idx"][split].tolist(), nodes["num_threshold"][split].tolist())
    return out


def _booster_splits(model) -> list[tuple[int, float]]:
    """XGBoost (`x < Split`, float32) and LightGBM (`x <= threshold`) numeric splits, read from the booster's own
    tree table; features by position in the booster's feature names."""
    precision = np.float64
    if hasattr(model, "get_booster"):  # xgboost.XGBModel; its table prints float32 splits to 9 digits
        booster, precision = model.get_booster(), np.float32
        table, feature, value = booster.trees_to_dataframe(), "Feature", "Split"
        names = booster.feature_names
        table = table[table[feature] != "Leaf"]
        if "Category" in table:
            table = table[table["Category"].isna()]
    elif hasattr(model, "booster_"):  # lightgbm.LGBMModel
        booster = model.booster_
        table, feature, value = booster.trees_to_dataframe(), "split_feature", "threshold"
        names = booster.feature_name()
        table = table[table["decision_type"] == "<="]
    else:
        return []
    index = {name: i for i, name in enumerate(names or [])}
    out = []
    for name, threshold in zip(table[feature].tolist(), table[value].tolist()):
        column = index.get(name, _position(name))
        if column is not None:
            out.append((column, float(precision(threshold))))
    return out


def _position(name: str) -> int | None:
    """The column of a default feature name: XGBoost's `f3`, LightGBM's `Column_3`."""
    for prefix in ("f", "Column_"):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return int(name[len(prefix):])
    return None


def tree_ranges(model, features: list[Feature]) -> bool:
    """Uniform ranges spanning each column's split thresholds (10% margin); False if not a tree model."""
    splits = _splits(model)
    if not splits:
        return False
    for index, feature in enumerate(features):
        thresholds = [t for column, t in splits if column == index]
        if thresholds:
            low, high = min(thresholds), max(thresholds)
            margin = max(0.1 * (high - low), 0.5 if high == low else 0.0)
            feature.distribution, feature.a, feature.b = "uniform", low - margin, high + margin
    return True


# ---------------------------------------------------------------------------------------------
# Split thresholds in the input columns' units: each column the final tree model splits is traced
# back through the preprocessing when it is one input column scaled (or passed through).

Inverse = Callable[[float], float]


def add_thresholds(model, features: list[Feature]) -> None:
    """Each split of the final tree model, in its input column's units, appended to that Feature's thresholds."""
    steps = [s for _, s in model.steps] if hasattr(model, "steps") else [model]
    splits = _splits(steps[-1])
    if not splits:
        return
    columns = _chain_map(steps[:-1], len(features))
    for column, threshold in splits:
        mapped = columns[column] if columns is not None and column < len(columns) else None
        if mapped is not None:
            index, inverse = mapped
            features[index].thresholds.append(float(inverse(threshold)))


def _identity(value: float) -> float:
    return value


def _chain_map(steps: list, width: int) -> list | None:
    """Per output column of `steps` applied in turn: (input column, inverse) or None."""
    current: list | None = [(i, _identity) for i in range(width)]
    for step in steps:
        if step is None or step == "passthrough":
            continue
        inner = _column_map(step, len(current))
        if inner is None:
            return None
        current = [None if m is None or current[m[0]] is None else
                   (current[m[0]][0], _compose(current[m[0]][1], m[1])) for m in inner]
    return current


def _compose(outer: Inverse, inner: Inverse) -> Inverse:
    return lambda value: outer(inner(value))


def _column_map(step, width: int) -> list | None:
    """Per output column of one fitted step: (input column, inverse) when it is one input column
    monotonically rescaled, else None; None for the whole step when its output width is unknown."""
    if isinstance(step, str):
        return [(i, _identity) for i in range(width)] if step == "passthrough" else []
    if hasattr(step, "steps"):
        return _chain_map([s for _, s in step.steps], width)
    if is_column_transformer(step):
        return _column_transformer_map(step)
    name = type(step).__name__
    if name == "SimpleImputer":  # keeps the columns in place unless it adds indicators or drops empty ones
        stats = np.asarray(step.statistics_)
        drops = not step.keep_empty_features and stats.dtype.kind == "f" and bool(np.isnan(stats).any())
        return None if step.add_indicator or drops else [(i, _identity) for i in range(width)]
    inverses = {"StandardScaler": lambda i: _affine(_at(step.scale_, i, 1.0), _at(step.mean_, i, 0.0)),
                "MinMaxScaler": lambda i: _affine(1.0 / step.scale_[i], -step.min_[i] / step.scale_[i]),
                "RobustScaler": lambda i: _affine(_at(step.scale_, i, 1.0), _at(step.center_, i, 0.0)),
                "MaxAbsScaler": lambda i: _affine(step.scale_[i], 0.0)}
    if name in inverses:
        return [(i, inverses[name](i)) for i in range(width)]
    return None


def _at(values, index: int, default: float) -> float:
    return default if values is None else float(values[index])


def _affine(scale: float, offset: float) -> Inverse:
    return lambda value: value * scale + offset


def _column_transformer_map(step) -> list:
    out: list = []
    index_map = getattr(step, "_transformer_to_input_indices", {})
    for name, sub, _ in step.transformers_:
        span = step.output_indices_.get(name, slice(0, 0))
        width = span.stop - span.start
        if width == 0:
            continue
        columns = [int(c) for c in index_map.get(name, [])]
        inner = _column_map(sub, len(columns))
        if inner is None or len(inner) != width:
            inner = [None] * width
        out += [None if m is None else (columns[m[0]], m[1]) for m in inner]
    return out
