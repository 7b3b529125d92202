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
from tfsconvert.rest_codec import encode_tensor

if TYPE_CHECKING:
    from tfsconvert.convert.sklearn_source import Feature

DEFAULT_SAMPLES = 1024  # at least; more when the split thresholds need more rows
SEED = 0
DECIMALS = 6  # the random part of synthesized numbers: readable in golden.jsonl
GOLDEN_FIRST = 8  # golden requests: the first rows, then the worst ones (tabular_parity.WORST)
RANDOM_SHARE = 4  # 1 row in 4 is left wholly random
UNSEEN = "__unseen__"  # the category no encoder was fitted on
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


def sample_count(samples: int | None) -> int | None:
    """`--samples`, checked; None means the default (at least DEFAULT_SAMPLES)."""
    if samples is not None and samples < 1:
        raise InputError("bad-option", f"--samples {samples}: at least one row is needed to check parity",
                         f"use --samples {DEFAULT_SAMPLES}")
    return samples


def synthesize(features: list[Feature], count: int | None = None, seed: int = SEED) -> list[Row]:
    """Threshold-aware rows, the same for the same seed and features.

    Every column's special values (`special_values`: split thresholds and their neighbours, each
    category and an unseen one, a blank where the pipeline imputes) are spread over the first 3/4
    of the rows, on top of random values; the rest are random. `count` None: DEFAULT_SAMPLES rows,
    or more when a column has more special values than 3/4 of them; a given `count` is exact
    (special values that do not fit are left out).
    """
    rng = np.random.default_rng(seed)
    specials = {f.name: special_values(f) for f in features}
    if count is None:
        most = max((len(v) for v in specials.values()), default=0)
        count = max(DEFAULT_SAMPLES, -(-most * RANDOM_SHARE // (RANDOM_SHARE - 1)))
    columns = {f.name: _column(rng, f, count) for f in features}
    slots = count - count // RANDOM_SHARE or count
    for name, values in specials.items():
        positions = rng.permutation(slots)
        for position, value in zip(positions, values):
            columns[name][position] = value
    return [{name: values[i] for name, values in columns.items()} for i in range(count)]


def special_values(feature: Feature) -> list:
    """The values of a column where a converted model is most likely to disagree with its source."""
    values: list = []
    if feature.categories:
        unseen = UNSEEN if feature.kind == "string" else max(feature.categories) + 1.0
        values += list(feature.categories) + ([unseen] if feature.accepts_unseen else [])
    for threshold in sorted(set(feature.thresholds)):
        values += threshold_values(threshold)
    if feature.accepts_missing:
        values.append(None)
    return values


def threshold_values(threshold: float) -> list[float]:
    """A split threshold, one float64 and one float32 ulp either side, its float32 rounding, and the
    decimal grid it suggests (the threshold rounded to its own decimals and the grid points around it)."""
    t = float(threshold)
    t32 = np.float32(t)
    values = [t, float(np.nextafter(t, -np.inf)), float(np.nextafter(t, np.inf)), float(t32),
              float(np.nextafter(t32, np.float32(-np.inf))), float(np.nextafter(t32, np.float32(np.inf)))]
    digits = _decimals(t)
    step = 10.0 ** -max(digits - 1, 0)
    values += [round(t, digits), round(math.floor(t / step) * step, digits), round(math.ceil(t / step) * step, digits)]
    return [v for v in dict.fromkeys(values) if math.isfinite(v)]


def _decimals(value: float) -> int:
    """The fewest decimals (at most DECIMALS) that show `value` to float32 precision: 2.4500000476 -> 2."""
    for digits in range(DECIMALS + 1):
        if abs(round(value, digits) - value) <= 1e-7 * max(1.0, abs(value)):
            return digits
    return DECIMALS


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


def read_rows(path: Path, features: list[Feature], count: int | None) -> list[Row]:
    """The first `count` rows (None: all) of a CSV or Parquet file, with the model's columns in the model's
    types; a blank cell (empty, NaN, None) becomes None, a missing value for the pipeline to handle."""
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
    if count is not None:
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
    if value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str)
                                                                          and not value.strip()):
        return None
    if feature.kind == "string":
        return value if isinstance(value, str) else str(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError("bad-sample-data", f"{where} is {value!r}, not a number: the model reads "
                         f"'{feature.name}' as a number", f"give numbers in column '{feature.name}' (blank for a "
                         "missing value)") from None


def sample_rows(features: list[Feature], sample_data: Path | None, count: int | None) -> list[Row]:
    """Rows from `--sample-data`, else synthesized."""
    return synthesize(features, count) if sample_data is None else read_rows(sample_data, features, count)


# ---------------------------------------------------------------------------------------------
# golden.jsonl in row form


def golden_rows(rows: list[Row], worst: list[int], differing: set[int], first: int = GOLDEN_FIRST) -> list[int]:
    """The rows that become golden requests: the first `first` and the worst ones (largest difference
    first), in that order, without repeats. Left out: rows the artifact does not reproduce (accepted
    by --allow-flips, they would fail `validate`) and rows with a blank (a REST instance has no
    missing value)."""
    usable = [i for i, row in enumerate(rows) if i not in differing and all(v is not None for v in row.values())]
    kept = set(usable)
    return list(dict.fromkeys(usable[:first] + [i for i in worst if i in kept]))


def golden_records(rows: list[Row], expected: list[dict[str, np.ndarray]], indices: list[int],
                   features: list[Feature], outputs: dict[str, str], signature_name: str, atol: float,
                   rtol: float) -> list[golden.GoldenRecord]:
    """One record `sample-<row>` per row index: `{"instances": [row]}` -> `{"predictions": [{field: value}]}`.

    Values are the source's, encoded as TF Serving encodes them (numbers as JSON numbers,
    strings as text); `outputs` maps each response field to its TF dtype.
    """
    records = []
    for i in indices:
        row, answer = rows[i], expected[i]
        instance = {f.name: encode_tensor(np.asarray(row[f.name], dtype=object if f.kind == "string"
                                                            else np.float64), f.dtype, f.name) for f in features}
        prediction = {name: encode_tensor(np.asarray(answer[name]).reshape(()), dtype, name)
                      for name, dtype in outputs.items()}
        records.append(golden.GoldenRecord(id=f"sample-{i}", signature_name=signature_name,
                                           request={"instances": [instance]},
                                           response={"predictions": [prediction]}, rtol=rtol, atol=atol))
    return records
