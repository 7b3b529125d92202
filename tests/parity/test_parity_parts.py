"""The parts of `tfsconvert parity` that need no Spark session: row comparison, the error histogram,
merging partitions, golden writing, worker errors and the column checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfsconvert import golden
from tfsconvert.errors import EnvironmentProblem, InputError
from tfsconvert.parity import golden_writer, remote, stats
from tfsconvert.parity.plan import Column
from tfsconvert.parity.run import parse_conf


def test_histogram_bins_are_fixed_and_log_spaced():
    errors = np.array([0.0, 5e-13, 1e-12, 2e-12, 3e-7, 0.5, 1.0, 2.0, np.inf, np.nan])
    counts = dict(zip(stats.BIN_LABELS, stats.bin_counts(errors).tolist()))
    assert counts["0"] == 1 and counts["<=1e-12"] == 2 and counts["<=1e-11"] == 1 and counts["<=1e-06"] == 1
    assert counts["<=1"] == 2 and counts[">1"] == 1 and counts["nan/inf"] == 2
    assert sum(counts.values()) == len(errors)


def test_float_rows_within_tolerance_nan_equal_to_nan():
    expected = np.array([[0.5, 0.5], [np.nan, 1.0], [0.2, 0.8], [0.7, 0.3]])
    actual = np.array([[0.5, 0.5 + 1e-9], [np.nan, 1.0], [np.nan, 0.8], [0.3, 0.7]])
    found = stats.compare_field(expected, actual, 1e-6, 1e-6, label=False)
    assert found.over.tolist() == [False, False, True, True]
    assert found.abs[0] == pytest.approx(1e-9) and found.abs[1] == 0 and math.isinf(found.abs[2])
    assert found.rel[3] == pytest.approx(0.4 / 0.3)
    assert found.flips.tolist() == [False, False, False, True]  # the arg max of a probability vector


def test_labels_compare_exactly_text_against_bytes():
    found = stats.compare_field(np.array(["a", "b", "c"], dtype=object), np.array([b"a", b"x", b"c"], dtype=object),
                                0.0, 0.0, label=True)
    assert found.over.tolist() == [False, True, False] and found.flips.tolist() == [False, True, False]
    shape = stats.compare_field(np.zeros((2, 3)), np.zeros((2, 2)), 0.0, 0.0, label=False)
    assert shape.problem == "shape [2, 2] != expected [2, 3]" and shape.over.all()


def test_partitions_merge_into_bounded_totals():
    one, two = stats.FieldStats(), stats.FieldStats()
    one.add(stats.compare_field(np.array([1.0, 2.0]), np.array([1.0, 2.5]), 1e-6, 0.0, False))
    two.add(stats.compare_field(np.array([1.0]), np.array([1.1]), 1e-6, 0.0, False))
    parts = [stats.PartitionStats(2, {"y": one}, [((1, 0.5), {"row": "0:1"})], [], [(0.9, {"row": "0:0"})]),
             stats.PartitionStats(1, {"y": two}, [((1, 0.1), {"row": "1:0"})], [], [(0.1, {"row": "1:0"})])]
    parts = [stats.PartitionStats.from_json(p.to_json()) for p in parts]  # as they come back from the workers
    total = stats.merge(parts, worst=1, golden=0, sample=1)
    field = total.fields["y"]
    assert (total.rows, field.rows, field.rows_over) == (3, 3, 2)
    assert field.max_abs == pytest.approx(0.5) and sum(field.histogram) == 3
    assert [r["row"] for _, r in total.worst] == ["0:1"] and [r["row"] for _, r in total.sample] == ["1:0"]


def test_top_k_keeps_the_largest_keys():
    top = stats.TopK(2)
    for key, name in (((0, 1.0), "a"), ((1, 0.1), "b"), ((0, 3.0), "c"), ((1, 0.2), "d")):
        top.offer(key, name)
    assert [name for _, name in top.items()] == ["d", "b"] and not top.would_take((0, 9.0))


def test_golden_file_is_replaced_atomically(tmp_path, monkeypatch):
    path = tmp_path / "assets.extra" / "golden.jsonl"
    path.parent.mkdir()
    path.write_text("old\n")
    with pytest.raises(InputError) as refused:
        golden_writer.target(tmp_path, force=False)
    assert refused.value.code == "golden-exists"
    record = golden.GoldenRecord("parity-0-1", "serving_default", {"instances": [{"a": 1.0}]},
                                 {"predictions": [{"prediction": 2.0}]}, rtol=1e-6, atol=1e-6)

    def half_written(target, records):
        target.write_text('{"id": "parity-0-1", "mod')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(golden, "write_golden", half_written)
    with pytest.raises(OSError):
        golden_writer.write(golden_writer.target(tmp_path, force=True), [record])
    assert path.read_text() == "old\n" and sorted(p.name for p in path.parent.iterdir()) == ["golden.jsonl"]
    monkeypatch.undo()
    golden_writer.write(path, [record])
    assert golden.read_golden(path) == [record] and sorted(p.name for p in path.parent.iterdir()) == ["golden.jsonl"]


def test_worker_errors_reach_the_driver_as_one_line():
    carried = remote.unwrap(Exception("py4j ... Traceback ...\n" + str(remote.wrap(
        EnvironmentProblem("missing-dependency", "no onnxruntime", "pip install onnxruntime"))) + "\n at java..."))
    assert isinstance(carried, EnvironmentProblem) and carried.exit_code == 3 and carried.message == "no onnxruntime"
    other = remote.unwrap(remote.wrap(ZeroDivisionError("division by zero")))
    assert other.exit_code == 4 and other.code == "executor-failed" and "ZeroDivisionError" in other.message
    assert remote.unwrap(Exception("plain Spark failure")) is None


def test_columns_are_checked_by_name_and_type(tmp_path):
    from pyspark.sql import types

    from tfsconvert.parity.data import check_columns, spark_types

    schema = spark_types(types.StructType([types.StructField("a", types.StringType()), types.StructField(
        "v", types.ArrayType(types.FloatType())), types.StructField("extra", types.DoubleType())]))
    check_columns(schema, [Column("v", "DT_FLOAT", (3,)), Column("a", "DT_STRING")], "rows.parquet")
    with pytest.raises(InputError) as bad:
        check_columns(schema, [Column("a", "DT_DOUBLE"), Column("b", "DT_DOUBLE"), Column("v", "DT_FLOAT")], "x")
    assert bad.value.message.startswith("--data x: no column(s) b; 'a' is string, the model reads a number; "
                                        "'v' is array<float>, the model reads a number")


def test_arrow_columns_are_checked_and_named_as_spark_columns():
    import pyarrow as pa

    from tfsconvert.parity.data import arrow_types, check_columns

    schema = arrow_types(pa.schema([("a", pa.dictionary(pa.int32(), pa.string())), ("n", pa.decimal128(10, 2)),
                                    ("v", pa.large_list(pa.float32())), ("m", pa.list_(pa.list_(pa.int64(), 2))),
                                    ("t", pa.timestamp("ms")), ("b", pa.bool_())]))
    assert [(t.depth, t.element) for t in schema.values()] == [
        (0, "text"), (0, "number"), (1, "number"), (2, "number"), (0, "other"), (0, "number")]
    check_columns(schema, [Column("a", "DT_STRING"), Column("n", "DT_DOUBLE"), Column("v", "DT_FLOAT", (3,)),
                           Column("m", "DT_INT64", (2, 2)), Column("b", "DT_DOUBLE")], "rows.parquet")
    with pytest.raises(InputError) as bad:
        check_columns(schema, [Column("t", "DT_DOUBLE"), Column("v", "DT_FLOAT"), Column("a", "DT_FLOAT")], "x")
    assert bad.value.message.startswith("--data x: 't' is timestamp[ms], the model reads a number; 'v' is "
                                        "array<float>, the model reads a number; 'a' is string, the model reads a "
                                        "number")


def test_spark_conf_needs_key_value():
    assert parse_conf(["spark.a=1", "spark.b=x=y"]) == {"spark.a": "1", "spark.b": "x=y"}
    with pytest.raises(InputError):
        parse_conf(["spark.a"])


def test_parquet_pieces_cover_every_row_once_in_tasks_of_equal_size(tmp_path):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tfsconvert.parity import data, pieces

    ids = np.arange(53_007, dtype=np.float64)
    cities = pa.array((["a", None, "b"] * 17_669)[:len(ids)]).dictionary_encode()
    table = pa.table({"id": ids, "city": cities, "unused": ids})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=25_000)
    pq.write_table(table.slice(0, 7), tmp_path / "b.parquet")
    a, b = str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")
    columns = [Column("id", "DT_DOUBLE"), Column("city", "DT_STRING")]
    groups = pieces.parquet_groups([tmp_path / "a.parquet", tmp_path / "b.parquet"], columns)
    assert groups == [(a, 0, 25_000), (a, 1, 25_000), (a, 2, 3_007), (b, 0, 7)]
    tasks = pieces.parquet_tasks(groups, 4)
    assert [sum(p.stop - p.start for p in task) for task in tasks] == [13_254, 13_254, 13_254, 13_252]
    assert tasks[1] == [pieces.Piece(a, "parquet", 0, 13_254, 25_000), pieces.Piece(a, "parquet", 1, 0, 1_508)]
    frames = [frame for task in tasks for piece in task for frame in pieces.frames(piece, columns)]
    assert max(len(f) for f in frames) == pieces.BATCH_ROWS and list(frames[0].columns) == ["id", "city"]
    rows = pd.concat(frames)
    assert rows["id"].tolist() == ids.tolist() + ids[:7].tolist()
    assert data.arrays(rows.head(4), columns)["city"].tolist() == ["a", None, "b", "a"]  # decoded, a null is None
    assert pieces.parquet_tasks(groups[-1:], 4) == [[pieces.Piece(b, "parquet", 0, 0, 7)]]  # >= BATCH_ROWS per task


def test_parquet_files_are_checked_one_by_one(tmp_path):
    import pandas as pd

    from tfsconvert.parity import pieces

    pd.DataFrame({"x": [1.0]}).to_parquet(tmp_path / "good.parquet")
    pd.DataFrame({"x": ["one"]}).to_parquet(tmp_path / "text.parquet")
    (tmp_path / "cut.parquet").write_bytes((tmp_path / "good.parquet").read_bytes()[:-9])
    with pytest.raises(InputError) as mistyped:
        pieces.parquet_groups([tmp_path / "good.parquet", tmp_path / "text.parquet"], [Column("x", "DT_DOUBLE")])
    assert mistyped.value.message.startswith(f"--data {tmp_path / 'text.parquet'}: 'x' is string, the model reads")
    with pytest.raises(InputError) as cut:
        pieces.parquet_groups([tmp_path / "cut.parquet"], [Column("x", "DT_DOUBLE")])
    assert cut.value.code == "bad-data" and cut.value.message.startswith(
        f"--data {tmp_path / 'cut.parquet'} cannot be read as parquet: ")


def test_tfrecord_pieces_hold_whole_records_and_a_bad_one_is_named_where_the_file_has_it(tmp_path):
    import pandas as pd

    from tfsconvert import tfproto
    from tfsconvert.parity import pieces
    from tfsconvert.tfrecord import write_records

    example = tfproto.message_class("Example")
    records = []
    for i in range(2_500):
        record = example()
        record.features.feature["x"].float_list.value.append(i)
        record.features.feature["v"].int64_list.value.extend([i, -i])
        records.append(record.SerializeToString())
    path = tmp_path / "rows.tfrecord"
    write_records(path, records)
    columns = [Column("x", "DT_DOUBLE"), Column("v", "DT_INT64", (2,)), Column("absent", "DT_STRING")]
    tasks = pieces.tfrecord_tasks([path], 4)
    starts = [task[0].start for task in tasks]
    assert len(tasks) == 4 and starts[0] == 0 and tasks[-1][0].stop == path.stat().st_size
    assert [task[0].stop for task in tasks[:-1]] == starts[1:]
    rows = pd.concat([frame for task in tasks for frame in pieces.frames(task[0], columns)])
    assert rows["x"].tolist() == list(range(2_500)) and rows["v"].iloc[7] == [7, -7]
    assert rows["absent"].isna().all()
    damaged = bytearray(path.read_bytes())
    damaged[starts[2] + 12 + 3] ^= 0xFF  # inside the first record of the third piece
    path.write_bytes(bytes(damaged))
    assert sum(len(frame) for frame in pieces.frames(tasks[1][0], columns)) > 0
    with pytest.raises(InputError) as bad:
        list(pieces.frames(tasks[2][0], columns))
    assert bad.value.message == (f"--data {path} cannot be read as tfrecord: TFRecordError: corrupted record at "
                                 f"{starts[2] + 12}")
