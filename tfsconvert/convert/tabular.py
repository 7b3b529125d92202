"""Rows for tabular models: made up from the model's features or read from `--sample-data`, and
the golden records built from them in TF Serving's REST row form (docs/tabular.md).

A row is a plain dict feature -> float or str, so it can go to pandas, to pypmml (as JSON) and
to ONNX Runtime alike. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tfsconvert import golden
from tfsconvert.errors import EnvironmentProblem, InputError

if TYPE_CHECKING:
    from tfsconvert.convert.sklearn_source import Feature

DEFAULT_SAMPLES = 16
SEED = 0
DECIMALS = 6  # synthesized numbers: readable in golden.jsonl, still unlikely to sit on a split threshold
_DATA_HINT = "pass a .csv or .parquet file with one column per feature (extra columns are ignored)"

Row = dict


def parse_feature_names(text: str | None) -> list[str] | None:
    """`--feature-names a,b,c` -> ["a", "b", "c"]; InputError for empty or repeated names."""
    if text is None:
        return None
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise InputError("bad-feature-names", f"--feature-names {text!r} has an empty name",
                         "give comma-separated names without empty entries: --feature-names a,b,c")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError("bad-feature-names", f"--feature-names repeats {', '.join(repeated)}",
                         "every feature needs its own name")
    return names


def sample_count(samples: int | None) -> int:
    count = DEFAULT_SAMPLES if samples is None else samples
    if count < 1:
        raise InputError("bad-option", f"--samples {count}: at least one row is needed to check parity",
                         f"use --samples {DEFAULT_SAMPLES}")
    return count


def synthesize(features: list[Feature], count: int, seed: int = SEED) -> list[Row]:
    """`count` made-up rows, the same for the same seed and features.

    Categorical columns draw uniformly from the fitted encoder's categories; numeric columns from
    normal(mean, scale) of a fitted StandardScaler, uniform(min, max) of a MinMaxScaler, uniform
    over a tree model's split thresholds (10% margin), else standard normal.
    """
    rng = np.random.default_rng(seed)
    columns = {f.name: _column(rng, f, count) for f in features}
    return [{name: values[i] for name, values in columns.items()} for i in range(count)]


def _column(rng: np.random.Generator, feature: Feature, count: int) -> list:
    if feature.categories:
        picks = rng.integers(0, len(feature.categories), count)
        values = [feature.categories[i] for i in picks]
    elif feature.kind == "string":
        values = [f"{feature.name}-{i}" for i in range(count)]
    elif feature.distribution == "uniform":
        values = rng.uniform(feature.a, feature.b, count).tolist()
    else:
        values = rng.normal(feature.a, feature.b, count).tolist()
    if feature.kind == "string":
        return [str(v) for v in values]
    return [round(float(v), DECIMALS) for v in values]


def read_rows(path: Path, features: list[Feature], count: int) -> list[Row]:
    """The first `count` rows of a CSV or Parquet file, with the model's columns in the model's types."""
    path = Path(path)
    if not path.is_file():
        raise InputError("path-not-found", f"--sample-data {path}: no such file", _DATA_HINT)
    frame = _read_frame(path, features)
    missing = [f.name for f in features if f.name not in frame.columns]
    if missing:
        raise InputError("bad-sample-data",
                         f"--sample-data {path} has no column(s) {', '.join(missing)}; the model reads "
                         f"{', '.join(f.name for f in features)} (found: {', '.join(map(str, frame.columns))})",
                         "add the missing columns, named exactly as the model's features")
    if frame.empty:
        raise InputError("bad-sample-data", f"--sample-data {path} has no rows", "give at least one row")
    frame = frame.head(count)
    rows: list[Row] = [{} for _ in range(len(frame))]
    for feature in features:
        for i, value in enumerate(frame[feature.name].tolist()):
            rows[i][feature.name] = _cell(path, feature, i, value)
    return rows


def _read_frame(path: Path, features: list[Feature]):
    import pandas as pd

    suffix = path.suffix.lower()
    text = {f.name: str for f in features if f.kind == "string"}  # "01" stays "01", not 1
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=text or None)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except ImportError:
        raise EnvironmentProblem("missing-dependency", f"--sample-data {path}: reading Parquet needs pyarrow, "
                                 "which is not installed",
                                 "pip install pyarrow, or pass the rows as a .csv file") from None
    except Exception as error:  # noqa: BLE001 - pandas raises many types for a file it cannot parse
        first = (str(error).splitlines() or [""])[0][:200]
        raise InputError("bad-sample-data", f"--sample-data {path} cannot be read: {first}", _DATA_HINT) from None
    raise InputError("bad-sample-data", f"--sample-data {path}: expected a .csv or .parquet file", _DATA_HINT)


def _cell(path: Path, feature: Feature, row: int, value):
    where = f"--sample-data {path}: row {row + 1}, column '{feature.name}'"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise InputError("bad-sample-data", f"{where} is empty; a golden request needs a value in every field",
                         "drop or fill rows with missing values")
    if feature.kind == "string":
        return value if isinstance(value, str) else str(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError("bad-sample-data", f"{where} is {value!r}, not a number", "give numbers in numeric "
                         "columns") from None


def sample_rows(features: list[Feature], sample_data: Path | None, count: int) -> list[Row]:
    """Rows from `--sample-data`, else synthesized."""
    return synthesize(features, count) if sample_data is None else read_rows(sample_data, features, count)


# ---------------------------------------------------------------------------------------------
# golden.jsonl in row form


def golden_records(rows: list[Row], expected: list[dict[str, np.ndarray]], features: list[Feature],
                   outputs: dict[str, str], signature_name: str, atol: float, rtol: float) -> list[golden.GoldenRecord]:
    """One record per row: `{"instances": [row]}` -> `{"predictions": [{field: value}]}`.

    Values are the source's, encoded as TF Serving encodes them (numbers as JSON numbers,
    strings as text); `outputs` maps each response field to its TF dtype.
    """
    records = []
    for i, (row, answer) in enumerate(zip(rows, expected)):
        instance = {f.name: golden.encode_tensor(np.asarray(row[f.name], dtype=object if f.kind == "string"
                                                            else np.float64), f.dtype, f.name) for f in features}
        prediction = {name: golden.encode_tensor(np.asarray(answer[name]).reshape(()), dtype, name)
                      for name, dtype in outputs.items()}
        records.append(golden.GoldenRecord(id=f"sample-{i}", signature_name=signature_name,
                                           request={"instances": [instance]},
                                           response={"predictions": [prediction]}, rtol=rtol, atol=atol))
    return records
