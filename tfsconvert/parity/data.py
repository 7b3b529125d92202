"""`--data`: Parquet (a file or a directory of them), CSV or TFRecord files of tf.Example read as a
Spark DataFrame, checked against the model's input columns, and each Arrow batch turned into the
arrays the models take. Nothing here collects rows on the driver.
"""

from __future__ import annotations

import struct
from pathlib import Path

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
    """The data as a DataFrame (lazy: only the schema and file sizes are read here), in at least
    TASKS_PER_CORE partitions per core where the files allow it."""
    kind, files = data_format(path)
    cores = spark.sparkContext.defaultParallelism
    total = sum(f.stat().st_size for f in files)
    if kind == "tfrecord":
        return _tfrecords(spark, files, columns, cores * TASKS_PER_CORE)
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


def check_columns(schema, columns: list[Column], where: str) -> None:
    """InputError `bad-data` naming every missing or mistyped column (exit 2)."""
    from pyspark.sql import types

    found = {f.name: f.dataType for f in schema.fields}
    missing = [c.name for c in columns if c.name not in found]
    wrong = []
    for column in columns:
        kind = found.get(column.name)
        if kind is None:
            continue
        depth, element = 0, kind
        while isinstance(element, types.ArrayType):
            depth, element = depth + 1, element.elementType
        text = isinstance(element, (types.StringType, types.BinaryType))
        number = isinstance(element, (types.NumericType, types.BooleanType))
        if (column.string and not text) or (not column.string and not number) or (depth > 0) != bool(column.dims):
            wrong.append(f"'{column.name}' is {kind.simpleString()}, the model reads {column.describe()}")
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
        elif column.string:
            out[column.name] = np.asarray([None if v is None else v.decode("utf-8", "replace")
                                           if isinstance(v, bytes) else str(v) for v in series.tolist()],
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


# ---------------------------------------------------------------------------------------------
# TFRecord of tf.Example: byte ranges found on the driver from the record headers, parsed in the workers


def _tfrecords(spark, files: list[Path], columns: list[Column], parts: int):
    from pyspark.sql import types

    chunks = [chunk for f in files for chunk in _chunks(f, parts)]
    spark_types = {True: types.StringType(), False: types.DoubleType()}
    fields = [types.StructField(c.name, types.ArrayType(spark_types[c.string]) if c.dims else spark_types[c.string],
                                True) for c in columns]
    rdd = spark.sparkContext.parallelize(chunks, max(1, len(chunks))).flatMap(
        lambda chunk: _examples(chunk, columns))
    return spark.createDataFrame(rdd, types.StructType(fields))


def _chunks(path: Path, parts: int) -> list[tuple[str, int, int]]:
    """(file, start, end) ranges of whole records, about `parts` of them per file (only headers are read)."""
    size = path.stat().st_size
    step = max(1, size // parts)
    chunks, start, offset = [], 0, 0
    with path.open("rb") as stream:
        while offset + 12 <= size:
            stream.seek(offset)
            header = stream.read(8)
            offset += 12 + struct.unpack("<Q", header)[0] + 4
            if offset - start >= step:
                chunks.append((str(path), start, offset))
                start = offset
    if offset > start:
        chunks.append((str(path), start, offset))
    return chunks


def _examples(chunk: tuple[str, int, int], columns: list[Column]):
    """The rows of one byte range: each record a tf.Example, its features read by the columns' names."""
    import tempfile

    from tfsconvert import tfproto
    from tfsconvert.tfrecord import read_records

    path, start, end = chunk
    with open(path, "rb") as stream:
        stream.seek(start)
        data = stream.read(end - start)
    with tempfile.NamedTemporaryFile(suffix=".tfrecord") as part:  # read_records checks the CRCs
        part.write(data)
        part.flush()
        for number, record in enumerate(read_records(Path(part.name))):
            example = tfproto.parse_binary("Example", record)
            yield tuple(_feature(example, c, f"{path} record at byte {start} + {number}") for c in columns)


def _feature(example, column: Column, where: str):
    feature = example.features.feature.get(column.name)
    if feature is None:
        return None
    kind = feature.WhichOneof("kind")
    values = list(getattr(feature, kind).value) if kind else []
    if column.string:
        values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]
    else:
        if kind == "bytes_list":
            raise InputError("bad-data", f"{where}: feature '{column.name}' is bytes_list, the model reads numbers",
                             "write the feature as float_list or int64_list")
        values = [float(v) for v in values]
    if column.dims:
        return values
    return values[0] if values else None
