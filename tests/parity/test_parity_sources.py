"""`tfsconvert parity` for every source kind against an artifact kind it converts to (local mode, a few
thousand rows): the converted artifact agrees on every row, and a copy edited to move one output by SHIFT
on the rows where an input passes a threshold is caught on exactly those rows. Also CSV data, and bad
input reported in one line with no partial golden file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import helper

from conftest import converted, run_cli
from tfsconvert.convert import tabular
from tfsconvert.convert.sklearn_source import load as load_sklearn

pytestmark = pytest.mark.slow
ROWS = 2000
SHIFT = 0.001
SPARK_SCHEMA = '{"a": "double", "b": "double", "c": "double"}'


def parity(*args) -> tuple[int, dict]:
    result = run_cli("parity", *map(str, args), "--json")
    return result.exit_code, json.loads(result.stdout)


def tabular_rows(src: Path, path: Path) -> tuple[Path, np.ndarray]:
    """Rows synthesized at the model's split thresholds (blanks included); (file, the first numeric column)."""
    features = load_sklearn(src, None).features
    frame = pd.DataFrame(tabular.synthesize(features, ROWS, seed=11))
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    first = next(f.name for f in features if f.kind != "string")
    return path, first


def feature_rows(path: Path, column: str = "features", width: int = 4) -> Path:
    values = np.random.default_rng(8).normal(0, 1, (ROWS, width)).astype(np.float32)
    pd.DataFrame({column: list(values), "row_id": range(ROWS)}).to_parquet(path)
    return path


def moved_rows(data: Path, column: str, threshold: float) -> int:
    """Rows where any float32 value of `column` is above `threshold` (NaN compares False)."""
    frame = pd.read_csv(data) if data.suffix == ".csv" else pd.read_parquet(data)
    values = np.stack([np.atleast_1d(np.asarray(v, dtype=np.float32)) for v in frame[column]])
    return int(np.count_nonzero((values > np.float32(threshold)).any(axis=1)))


def median(data: Path, column: str) -> float:
    frame = pd.read_parquet(data)
    return float(np.float32(np.nanmedian(np.stack([np.atleast_1d(v) for v in frame[column]])[:, 0])))


def shifted_onnx(base: Path, dest: Path, column: str, threshold: float) -> tuple[Path, str]:
    """A copy of the ONNX version whose probability output (else first float output) is + SHIFT on the rows
    where any value of input `column` is above `threshold`; (base path, the output edited)."""
    shutil.copytree(base, dest)
    path = dest / "1" / "model.onnx"
    model = onnx.load(path)
    graph = model.graph
    floats = [o.name for o in graph.output if o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT]
    output = next((name for name in floats if "prob" in name), floats[0])
    for node in graph.node:
        node.input[:] = [f"{output}_raw" if name == output else name for name in node.input]
        node.output[:] = [f"{output}_raw" if name == output else name for name in node.output]
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    graph.initializer.extend([helper.make_tensor("threshold", onnx.TensorProto.FLOAT, [], [threshold]),
                              helper.make_tensor("shift", onnx.TensorProto.FLOAT, [], [SHIFT]),
                              helper.make_tensor("axes", onnx.TensorProto.INT64, [1], [1])])
    reduce = (helper.make_node("ReduceMax", ["above", "axes"], ["any"], keepdims=1) if opset >= 18 else
              helper.make_node("ReduceMax", ["above"], ["any"], axes=[1], keepdims=1))
    graph.node.extend([helper.make_node("Greater", [column, "threshold"], ["above_bool"]),
                       helper.make_node("Cast", ["above_bool"], ["above"], to=onnx.TensorProto.FLOAT), reduce,
                       helper.make_node("Mul", ["any", "shift"], ["moved"]),
                       helper.make_node("Add", [f"{output}_raw", "moved"], [output])])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return dest, output


def shifted_savedmodel(base: Path, dest: Path, column: str, output: str, threshold: float) -> Path:
    """A SavedModel copy (TF1 builder) whose `output` is + SHIFT where any value of `column` is above `threshold`."""
    import tensorflow as tf

    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(base / "1"))
        signature = meta.signature_def["serving_default"]
        inputs = {k: graph.get_tensor_by_name(v.name) for k, v in signature.inputs.items()}
        outputs = {k: graph.get_tensor_by_name(v.name) for k, v in signature.outputs.items()}
        above = tf.cast(inputs[column] > threshold, outputs[output].dtype)
        outputs[output] = outputs[output] + tf.reduce_max(above, axis=1, keepdims=True) * SHIFT
        builder = tf.compat.v1.saved_model.Builder(str(dest / "1"))
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={
            "serving_default": tf.compat.v1.saved_model.predict_signature_def(inputs, outputs)})
        builder.save()
    return dest


def check_agrees_then_catches(src: Path, base: Path, data: Path, shifted: Path, fields: list[str] | None,
                              moved: int):
    """`fields`: the outputs the edit moves (None: every probability(CLASS) of a classifier)."""
    code, report = parity(src, base, "--data", data)
    assert code == 0 and report["ok"] and report["rows"] == ROWS, report
    fields = fields or [o["name"] for o in report["outputs"] if o["name"].startswith("probability(")]
    assert fields, report
    assert all(o["rows"] == ROWS and o["rows_over"] == 0 and o["flips"] in (None, 0) for o in report["outputs"])
    assert 0 < moved < ROWS
    code, report = parity(src, shifted, "--data", data, "--worst", "2")
    assert code == 1 and not report["ok"], report
    found = {o["name"]: o for o in report["outputs"]}
    assert {name: found[name]["rows_over"] for name in fields} == {name: moved for name in fields}
    assert all(o["rows_over"] == 0 for name, o in found.items() if name not in fields)
    assert all(found[name]["max_abs"] == pytest.approx(SHIFT, rel=1e-2) for name in fields)
    assert all(row["outside"] == len(fields) for row in report["worst_rows"])


@pytest.mark.parametrize("fixture", ["xgb_binary"])
def test_boosters_to_onnx(spark, fixture_path, tmp_path_factory, tmp_path, fixture):
    """An XGBoost pickle, scored by its own predict_proba()."""
    src = fixture_path(fixture)
    base = converted(fixture_path, tmp_path_factory, "onnx", fixture)[1]
    data, column = tabular_rows(src, tmp_path / "rows.parquet")
    threshold = median(data, column)
    shifted, _ = shifted_onnx(base, tmp_path / "shifted", column, threshold)
    check_agrees_then_catches(src, base, data, shifted, None, moved_rows(data, column, threshold))


@pytest.mark.parametrize("fixture", ["lgbm_binary", "lgbm_booster_txt"])
def test_lightgbm_to_pmml_on_csv(spark, fixture_path, tmp_path_factory, tmp_path, fixture):
    """A LightGBM pickle and a native model file (scored by LightGBM's own predict) on CSV data."""
    src = fixture_path(fixture)
    base = converted(fixture_path, tmp_path_factory, "pmml", fixture, "--pmml-evaluator", "jpmml")[1]
    data, _ = tabular_rows(src, tmp_path / "rows.csv")
    code, report = parity(src, base, "--data", data)
    assert code == 0 and report["ok"] and report["rows"] == ROWS and report["artifact_format"] == "pmml", report
    assert all(o["rows_over"] == 0 and sum(o["histogram"].values()) == ROWS for o in report["outputs"])


def test_spark_pipeline_to_onnx(spark, fixture_path, tmp_path_factory, tmp_path):
    src = fixture_path("spark_pipeline")
    base = converted(fixture_path, tmp_path_factory, "onnx", "spark_pipeline", "--schema", SPARK_SCHEMA)[1]
    frame = pd.DataFrame(np.random.default_rng(6).normal(0, 2, (ROWS, 3)), columns=list("abc"))
    frame.to_parquet(tmp_path / "rows.parquet")
    data = tmp_path / "rows.parquet"
    threshold = median(data, "a")
    shifted, _ = shifted_onnx(base, tmp_path / "shifted", "a", threshold)
    check_agrees_then_catches(src, base, data, shifted, None, moved_rows(data, "a", threshold))


@pytest.mark.parametrize("fixture,source", [("keras_keras", None), ("savedmodel_base", "1"),
                                            ("frozen_mlp_pb", None)])
def test_tensorflow_sources_to_onnx(spark, fixture_path, tmp_path_factory, tmp_path, fixture, source):
    src = fixture_path(fixture) / source if source else fixture_path(fixture)
    base = tmp_path_factory.mktemp(fixture) / "models" / "m"
    result = run_cli("onnx", src, "--base-path", base, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    data = feature_rows(tmp_path / "rows.parquet")
    shifted, output = shifted_onnx(base, tmp_path / "shifted", "features", 0.5)
    check_agrees_then_catches(src, base, data, shifted, [output], moved_rows(data, "features", 0.5))


def test_checkpoint_to_savedmodel(spark, fixture_path, tmp_path_factory, tmp_path):
    """The checkpoint's own tensor names x -> y (parity maps no renamed alias back)."""
    src = fixture_path("tf1_checkpoint")
    base = converted(fixture_path, tmp_path_factory, "saved-model", "tf1_checkpoint")[1]
    data = feature_rows(tmp_path / "rows.parquet", "x")
    shifted = shifted_savedmodel(base, tmp_path / "shifted", "x", "y", 0.5)
    check_agrees_then_catches(src, base, data, shifted, ["y"], moved_rows(data, "x", 0.5))


def test_artifact_failing_on_an_executor_is_one_line_and_writes_no_golden(spark, fixture_path, tmp_path):
    src = fixture_path("frozen_mlp_pb")
    base = tmp_path / "models" / "m"
    assert run_cli("onnx", src, "--base-path", base, "--json").exit_code == 0
    path = base / "1" / "model.onnx"
    model = onnx.load(path)
    model.graph.node[0].op_type = "TfsconvertNoSuchOp"  # read on the driver; ONNX Runtime refuses to load it
    onnx.save(model, path)
    golden_file = base / "1" / "assets.extra" / "golden.jsonl"
    before, listed = golden_file.read_bytes(), sorted(golden_file.parent.iterdir())
    data = feature_rows(tmp_path / "rows.parquet")
    result = run_cli("parity", src, base, "--data", data, "--write-golden", "4", "--force")
    assert result.exit_code == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error [")]
    assert len(errors) == 1 and errors[0].startswith("error [load-failed]: the artifact "), result.stderr
    assert str((base / "1").resolve()) in errors[0] and " in partition " in errors[0]
    assert "Traceback" not in result.stderr and "py4j" not in result.stderr.lower()
    assert golden_file.read_bytes() == before
    assert sorted(golden_file.parent.iterdir()) == listed  # no temp file left


def test_unreadable_data_is_one_line(spark, fixture_path, tmp_path):
    src = fixture_path("frozen_mlp_pb")
    base = tmp_path / "models" / "m"
    assert run_cli("saved-model", src, "--base-path", base, "--json").exit_code == 0
    (tmp_path / "rows.parquet").write_bytes(b"not parquet at all" * 10)
    result = run_cli("parity", src, base, "--data", tmp_path / "rows.parquet")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.splitlines()[-2].startswith("error [bad-data]: --data " + str(tmp_path / "rows.parquet"))
    assert "Traceback" not in result.stderr


def test_spark_master_and_conf(spark, fixture_path, tmp_path):
    """Last: it restarts the session on local[1] with one more setting."""
    src = fixture_path("frozen_mlp_pb")
    base = tmp_path / "models" / "m"
    assert run_cli("saved-model", src, "--base-path", base, "--json").exit_code == 0
    data = feature_rows(tmp_path / "rows.parquet")
    result = run_cli("parity", src, base, "--data", data, "--spark-master", "local[1]", "--spark-conf",
                     "spark.sql.execution.arrow.maxRecordsPerBatch=250", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["ok"] and report["rows"] == ROWS, report
    assert report["spark_master"] == "local[1]"
    assert f"scored {ROWS:,} rows (all {report['partitions']} partitions done), " in "\n".join(result.progress)
    assert "rows/s" not in result.stdout  # progress on stderr, the report alone on stdout
    from tfsconvert.convert import spark_session

    assert spark_session.session(
        "local[1]", conf={"spark.sql.execution.arrow.maxRecordsPerBatch": "250"}).conf.get(
        "spark.sql.execution.arrow.maxRecordsPerBatch") == "250"
