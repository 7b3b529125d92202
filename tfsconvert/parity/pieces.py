"""Parquet and TFRecord `--data` read by the Python workers themselves. The driver cuts the files into
pieces from their footers and record headers: row ranges of Parquet row groups, byte ranges of whole
TFRecord records. Spark hands each task its pieces, and the worker reads them into pandas frames of
BATCH_ROWS rows. No row passes through the JVM: in local mode, its Parquet-to-Arrow conversion kept a
quarter to a third of a core busy beside the scoring. CSV data, and data beside a Spark source, keep
Spark's own reader.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

from tfsconvert.errors import InputError, TfsConvertError, one_line
from tfsconvert.parity.data import arrow_types, check_columns
from tfsconvert.parity.plan import Column

BATCH_ROWS = 10_000  # rows per frame a worker scores, as Spark's default Arrow batch
PIECE_BYTES = 64 << 20  # at most this much of a TFRecord file per piece: a worker holds its piece in memory


@dataclass(frozen=True)
class Piece:
    """Rows [start, stop) of one Parquet row group, or the bytes [start, stop) of whole TFRecord records."""

    path: str
    kind: str  # "parquet" | "tfrecord"
    group: int  # the Parquet row group (0 for TFRecord)
    start: int
    stop: int


def parquet_groups(files: list[Path], columns: list[Column]) -> list[tuple[str, int, int]]:
    """(file, row group, rows) of every file, read from the footers; each file's columns are checked against
    the model's (InputError `bad-data`, exit 2, naming the file)."""
    import pyarrow.parquet as pq

    groups = []
    for path in files:
        try:
            meta = pq.ParquetFile(path).metadata
        except Exception as error:  # noqa: BLE001 - pyarrow's ArrowInvalid and OSError
            raise InputError("bad-data", f"--data {path} cannot be read as parquet: {one_line(error)}",
                             "give Parquet files (as pandas, pyarrow or Spark write them)") from None
        check_columns(arrow_types(meta.schema.to_arrow_schema()), columns, str(path))
        groups += [(str(path), g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
    return groups


def parquet_tasks(groups: list[tuple[str, int, int]], tasks: int) -> list[list[Piece]]:
    """About `tasks` tasks of equal row counts (at least BATCH_ROWS rows each), row groups cut where needed."""
    total = sum(rows for _, _, rows in groups)
    size = max(BATCH_ROWS, math.ceil(total / max(1, tasks)))
    out, current, room = [], [], size
    for path, group, rows in groups:
        start = 0
        while start < rows:
            take = min(room, rows - start)
            current.append(Piece(path, "parquet", group, start, start + take))
            start, room = start + take, room - take
            if room == 0:
                out.append(current)
                current, room = [], size
    return out + [current] if current else out


def tfrecord_tasks(files: list[Path], tasks: int) -> list[list[Piece]]:
    """Byte ranges of whole records, one task each: about `tasks` per file, at most PIECE_BYTES long (only
    the record headers are read)."""
    out = []
    for path in files:
        size = path.stat().st_size
        step = min(max(1, size // max(1, tasks)), PIECE_BYTES)
        start = offset = 0
        with path.open("rb") as stream:
            while offset + 12 <= size:
                stream.seek(offset)
                offset += 12 + struct.unpack("<Q", stream.read(8))[0] + 4
                if offset - start >= step:
                    out.append([Piece(str(path), "tfrecord", 0, start, offset)])
                    start = offset
        if offset > start:
            out.append([Piece(str(path), "tfrecord", 0, start, offset)])
    return out


def frames(piece: Piece, columns: list[Column]):
    """The piece's rows as pandas frames of at most BATCH_ROWS rows, holding the model's columns; a file that
    cannot be read is InputError `bad-data` (exit 2), naming it."""
    try:
        if piece.kind == "parquet":
            yield from _parquet_frames(piece, [c.name for c in columns])
        else:
            yield from _tfrecord_frames(piece, columns)
    except TfsConvertError:
        raise
    except Exception as error:  # noqa: BLE001 - pyarrow's and the TFRecord reader's errors alike
        raise InputError("bad-data", f"--data {piece.path} cannot be read as {piece.kind}: {one_line(error)}",
                         "check that the file is whole (it changed or was cut short since the job started?)") from None


def _parquet_frames(piece: Piece, names: list[str]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    offset = 0
    # One thread: Spark already runs one worker per core.
    for batch in pq.ParquetFile(piece.path).iter_batches(BATCH_ROWS, row_groups=[piece.group], columns=names,
                                                         use_threads=False):
        first, last = max(piece.start - offset, 0), min(piece.stop - offset, batch.num_rows)
        offset += batch.num_rows
        if last > first:
            batch = batch.slice(first, last - first)
            plain = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns]
            yield pa.Table.from_arrays(plain, names=batch.schema.names).to_pandas(ignore_metadata=True)
        if offset >= piece.stop:
            return


def _tfrecord_frames(piece: Piece, columns: list[Column]):
    import pandas as pd

    from tfsconvert import tfproto
    from tfsconvert.tfrecord import TFRecordError, records_in

    with open(piece.path, "rb") as stream:
        stream.seek(piece.start)
        data = stream.read(piece.stop - piece.start)
    rows = []
    try:
        for number, record in enumerate(records_in(data)):
            example = tfproto.parse_binary("Example", record)
            where = f"{piece.path} record at byte {piece.start} + {number}"
            rows.append([_feature(example, c, where) for c in columns])
            if len(rows) == BATCH_ROWS:
                yield pd.DataFrame(rows, columns=[c.name for c in columns])
                rows = []
    except TFRecordError as error:  # its offset into the piece, as an offset into the file
        raise TFRecordError(error.problem, piece.start + error.offset) from None
    if rows:
        yield pd.DataFrame(rows, columns=[c.name for c in columns])


def _feature(example, column: Column, where: str):
    """One feature of a tf.Example as the column's value: a number, text, a list of them, or None."""
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
