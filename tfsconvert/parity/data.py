"""`--data`: Parquet (a file or a directory of them), CSV or TFRecord files of tf.Example. Here: which
format, Spark's reader (CSV, and Parquet to be scored beside a Spark source's answers), the model's
columns checked against Spark's or Arrow's schema, and each batch of rows turned into the arrays the
models take. Otherwise the workers read Parquet and TFRecord files themselves
(tfsconvert.parity.pieces). Nothing here collects rows on the driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from tfsconvert.errors import InputError
from tfsconvert.parity.plan import Column

PARQUET = (".parquet", ".pq")
CSV = (".csv",)
TFRECORD = (".tfrecord", ".tfrecords", ".tfr")
TASKS_PER_CORE = 4  # partitions per core: small enough for progress and balance, big enough for Arrow batches
_HINT = "give a Parquet file or directory, a .csv file with a header line, or .tfrecord files of tf.Example"


def data_format(path: Path) -> tuple[str, list[Path]]:
    """("parquet" | "csv" | "tfrecord", the files) of `--data`."""
    if not path.exists():
        raise InputError("path-not-found", f"--data {path}: no such file or directory", _HINT)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()
                                                 and not p.name.startswith(("_", ".")))
    for kind, suffixes in (("parquet", PARQUET), ("csv", CSV), ("tfrecord", TFRECORD)):
        chosen = [f for f in files if f.suffix.lower() in suffixes]
        if chosen:
            return kind, chosen
    raise InputError("bad-data", f"--data {path}: no .parquet, .csv or .tfrecord file found", _HINT)


def read(spark, path: Path, columns: list[Column]):
    """Parquet or CSV data as a Spark DataFrame (lazy: only the schema and file sizes are read here), in at least
    TASKS_PER_CORE partitions per core where the files allow it."""
    kind, files = data_format(path)
    cores = spark.sparkContext.defaultParallelism
    total = sum(f.stat().st_size for f in files)
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(max(1 << 20, total // (cores * TASKS_PER_CORE))))
    try:
        if kind == "parquet":
            return spark.read.parquet(*[str(f) for f in files])
        return spark.read.option("header", True).option("mode", "FAILFAST").schema(
            _csv_schema(files[0], columns)).csv([str(f) for f in files])
    except Exception as error:  # noqa: BLE001 - Spark's AnalysisException and friends
        from tfsconvert.convert.spark_source import java_message

        raise InputError("bad-data", f"--data {path} cannot be read as {kind}: {java_message(error)}", _HINT) from None


def _csv_schema(first: Path, columns: list[Column]):
    """CSV has no types: the model's columns as double or string, every other column as string."""
    from pyspark.sql import types

    try:
        header = first.open(encoding="utf-8", errors="replace").readline().rstrip("\r\n").split(",")
    except OSError as error:
        raise InputError("bad-data", f"--data {first} cannot be read: {error.strerror}", _HINT) from None
    wanted = {c.name: c for c in columns}
    listed = [c.name for c in columns if c.dims and c.name in header]
    if listed:
        raise InputError("bad-data", f"--data {first}: column(s) {', '.join(listed)} hold a list per row, which "
                         "CSV cannot carry", "give the data as Parquet (list columns) or TFRecord")
    fields = []
    for name in (h.strip().strip('"') for h in header):
        column = wanted.get(name)
        spark_type = types.DoubleType() if column is not None and not column.string else types.StringType()
        fields.append(types.StructField(name, spark_type, True))
    return types.StructType(fields)


class ColumnType(NamedTuple):
    """A data column's type as the checks see it: as shown to the user, list depth, and element kind."""

    shown: str
    depth: int  # 0 scalar, 1 list, 2 list of lists...
    element: str  # "text" | "number" | "other"


def spark_types(schema) -> dict[str, ColumnType]:
    """A Spark DataFrame's columns."""
    from pyspark.sql import types

    out = {}
    for field in schema.fields:
        depth, element = 0, field.dataType
        while isinstance(element, types.ArrayType):
            depth, element = depth + 1, element.elementType
        kind = ("text" if isinstance(element, (types.StringType, types.BinaryType)) else
                "number" if isinstance(element, (types.NumericType, types.BooleanType)) else "other")
        out[field.name] = ColumnType(field.dataType.simpleString(), depth, kind)
    return out


def arrow_types(schema) -> dict[str, ColumnType]:
    """An Arrow schema's columns, named as Spark names them (a dictionary-encoded column counts as its values)."""
    import pyarrow as pa

    lists = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    texts = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
    numbers = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_decimal)

    def named(kind) -> tuple[str, int, str]:
        if pa.types.is_dictionary(kind):
            return named(kind.value_type)
        if any(test(kind) for test in lists):
            shown, depth, element = named(kind.value_type)
            return f"array<{shown}>", depth + 1, element
        if any(test(kind) for test in texts):
            return ("string" if "string" in str(kind) else "binary"), 0, "text"
        return str(kind), 0, "number" if any(test(kind) for test in numbers) else "other"

    return {field.name: ColumnType(*named(field.type)) for field in schema}


def check_columns(found: dict[str, ColumnType], columns: list[Column], where: str) -> None:
    """InputError `bad-data` naming every missing or mistyped column (exit 2)."""
    missing = [c.name for c in columns if c.name not in found]
    wrong = [f"'{c.name}' is {found[c.name].shown}, the model reads {c.describe()}" for c in columns
             if c.name in found and (found[c.name].element != ("text" if c.string else "number")
                                     or (found[c.name].depth > 0) != bool(c.dims))]
    if not missing and not wrong:
        return
    problems = ([f"no column(s) {', '.join(missing)}"] if missing else []) + wrong
    raise InputError("bad-data", f"--data {where}: {'; '.join(problems)} (the model reads "
                     f"{', '.join(c.name for c in columns)}; found {', '.join(found) or 'no columns'})",
                     "name the columns exactly as the model's inputs, with their types")


def arrays(frame, columns: list[Column]) -> dict[str, np.ndarray]:
    """One Arrow batch (a pandas DataFrame) as input name -> array of n rows: float64 (NaN for a blank) or
    object (str) for scalar columns, the input's dtype and shape [n, *dims] for list columns."""
    from tfsconvert.dtypes import numpy_dtype

    out = {}
    for column in columns:
        series = frame[column.name]
        if column.dims:
            flat = [_flat(v) for v in series.tolist()]
            bad = next((i for i, row in enumerate(flat) if row.size != column.width), None)
            if bad is not None:
                raise InputError("bad-data", f"column '{column.name}': a row holds {flat[bad].size} values, the "
                                 f"model reads {column.width} per row", "give every row a full list")
            values = np.stack(flat) if flat else np.empty((0, column.width), dtype=object)
            out[column.name] = _typed(values, column.dtype, numpy_dtype).reshape((len(flat), *column.dims))
        elif column.string:  # a blank is None, whether pandas holds it as None, NaN or NA
            out[column.name] = np.asarray([None if blank else v.decode("utf-8", "replace") if isinstance(v, bytes)
                                           else str(v) for v, blank in zip(series.tolist(), series.isna().tolist())],
                                          dtype=object)
        else:
            out[column.name] = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _flat(value) -> np.ndarray:
    """One row's list (nested lists too) as a flat array; a blank is an empty one."""
    if value is None:
        return np.empty(0)
    array = np.asarray(value)
    if array.dtype == object and array.size and isinstance(array.flat[0], (list, np.ndarray)):
        return np.concatenate([_flat(item) for item in array.ravel()])
    return array.ravel()


def _typed(values: np.ndarray, dtype: str, numpy_dtype) -> np.ndarray:
    if dtype == "DT_STRING":
        return np.asarray([v if isinstance(v, bytes) else str(v).encode() for v in values.ravel()],
                          dtype=object).reshape(values.shape)
    return values.astype(numpy_dtype(dtype))
