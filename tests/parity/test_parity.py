"""`tfsconvert parity` on Spark (local mode, the one Spark session of the test process): every source
family against its artifacts on a few thousand rows, an injected disagreement counted exactly, golden
writing, and one-line errors for bad input. References are computed here from the original files."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import joblib
import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import helper

from conftest import converted, run_cli
from tfsconvert import golden, tfproto
from tfsconvert.convert import tabular
from tfsconvert.convert.sklearn_source import load as load_sklearn
from tfsconvert.tfrecord import write_records

pytestmark = pytest.mark.slow
ROWS = 3000
SHIFT = 0.001  # added to the edited ONNX model's probabilities where amount > the median


@pytest.fixture(scope="module")
def spark_ready(spark):
    return spark


@pytest.fixture(scope="module")
def gbt(fixture_path):
    return fixture_path("gbt_binary")


@pytest.fixture(scope="module")
def gbt_data(gbt, tmp_path_factory) -> Path:
    """Rows made at the model's split thresholds (float32 and float64 neighbours) and categories, blanks included."""
    rows = tabular.synthesize(load_sklearn(gbt, None).features, ROWS, seed=3)
    path = tmp_path_factory.mktemp("gbt-data") / "rows.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.fixture(scope="module")
def gbt_onnx(fixture_path, tmp_path_factory):
    return converted(fixture_path, tmp_path_factory, "onnx", "gbt_binary")[1]


@pytest.fixture(scope="module")
def gbt_pmml(fixture_path, tmp_path_factory):
    return converted(fixture_path, tmp_path_factory, "pmml", "gbt_binary", "--pmml-evaluator", "jpmml")[1]


def parity(*args) -> tuple[int, dict]:
    result = run_cli("parity", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


def outputs(report: dict) -> dict:
    return {o["name"]: o for o in report["outputs"]}


def test_sklearn_to_onnx_agrees_on_every_row(spark_ready, gbt, gbt_data, gbt_onnx, tmp_path):
    import onnxruntime

    code, report = parity(gbt, gbt_onnx, "--data", gbt_data, "--junit", tmp_path / "junit.xml")
    assert code == 0 and report["ok"], report
    assert report["rows"] == ROWS and report["artifact"] == str(gbt_onnx / "1")
    assert (report["atol"], report["rtol"]) == (1e-6, 1e-5)  # the ONNX conversion's tolerances
    found = outputs(report)
    assert set(found) == {"label", "probability(0)", "probability(1)"}
    assert found["label"]["flips"] == 0 and all(o["rows"] == ROWS and o["rows_over"] == 0 for o in found.values())
    # The same figure computed here: scikit-learn on the original pickle against ONNX Runtime on the file, with
    # one thread as in parity's workers (a tree ensemble's sum depends on how its trees are split among threads).
    frame = pd.read_parquet(gbt_data)
    expected = joblib.load(gbt).predict_proba(frame)[:, 1]
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(gbt_onnx / "1" / "model.onnx"), options,
                                           providers=["CPUExecutionProvider"])
    feeds = {i.name: (frame[i.name].to_numpy(np.float32) if i.type == "tensor(float)" else
                      frame[i.name].to_numpy(object)).reshape(-1, 1) for i in session.get_inputs()}
    actual = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))["probabilities"][:, 1]
    assert found["probability(1)"]["max_abs"] == pytest.approx(np.abs(actual - expected).max(), rel=1e-9, abs=1e-15)
    assert sum(found["probability(1)"]["histogram"].values()) == ROWS
    suite = ElementTree.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "0"


def _shifted_copy(base: Path, dest: Path, threshold: float) -> Path:
    """The ONNX version with probabilities + SHIFT on the rows where amount > threshold."""
    shutil.copytree(base, dest)
    path = dest / "1" / "model.onnx"
    model = onnx.load(path)
    graph = model.graph
    for node in graph.node:
        node.output[:] = ["probabilities_raw" if o == "probabilities" else o for o in node.output]
    graph.initializer.extend([helper.make_tensor("threshold", onnx.TensorProto.FLOAT, [], [threshold]),
                              helper.make_tensor("shift", onnx.TensorProto.FLOAT, [], [SHIFT]),
                              helper.make_tensor("zero", onnx.TensorProto.FLOAT, [], [0.0])])
    graph.node.extend([helper.make_node("Greater", ["amount", "threshold"], ["above"]),
                       helper.make_node("Where", ["above", "shift", "zero"], ["moved"]),
                       helper.make_node("Add", ["probabilities_raw", "moved"], ["probabilities"])])
    onnx.save(model, path)
    return dest


def test_an_edited_onnx_model_is_caught_on_exactly_the_rows_it_moves(spark_ready, gbt, gbt_data, gbt_onnx, tmp_path):
    amounts = pd.read_parquet(gbt_data)["amount"].to_numpy()
    threshold = float(np.float32(np.nanmedian(amounts)))
    moved = int(np.count_nonzero(amounts.astype(np.float32) > threshold))  # NaN compares False, as in ONNX
    shifted = _shifted_copy(gbt_onnx, tmp_path / "shifted", threshold)
    code, report = parity(gbt, shifted, "--data", gbt_data, "--worst", "3")
    assert code == 1 and not report["ok"]
    found = outputs(report)
    assert found["probability(1)"]["rows_over"] == moved and found["probability(0)"]["rows_over"] == moved
    assert found["label"]["rows_over"] == 0 and found["label"]["ok"]
    assert found["probability(1)"]["max_abs"] == pytest.approx(SHIFT, rel=1e-3)
    worst = report["worst_rows"]
    assert len(worst) == 3 and all(r["outside"] == 2 and r["inputs"]["amount"] > threshold for r in worst)
    # --allow-flips accepts that share of rows per output
    code, report = parity(gbt, shifted, "--data", gbt_data, "--allow-flips", str(moved / ROWS + 1e-9))
    assert code == 0 and report["ok"]


def test_sklearn_to_pmml_and_golden_rows(spark_ready, gbt, gbt_data, gbt_pmml):
    version = gbt_pmml / "1"
    golden_file = version / "assets.extra" / "golden.jsonl"
    before = golden_file.read_bytes()
    code, report = parity(gbt, gbt_pmml, "--data", gbt_data, "--write-golden", "4")
    assert code == 2 and report["error"]["code"] == "golden-exists" and golden_file.read_bytes() == before
    code, report = parity(gbt, gbt_pmml, "--data", gbt_data, "--write-golden", "4", "--force", "--seed", "7")
    assert code == 0 and report["ok"] and report["rows"] == ROWS, report
    assert report["artifact_format"] == "pmml" and report["evaluator"] == "jpmml"
    assert (report["atol"], report["rtol"]) == (1e-6, 1e-6)
    records = golden.read_golden(golden_file)
    assert report["golden_records"] == len(records) and 4 < len(records) <= 8
    assert all(r.id.startswith("parity-") for r in records) and len({r.id for r in records}) == len(records)
    assert not [p for p in golden_file.parent.iterdir() if p.name != "golden.jsonl"  # no temp file left
                and p.name != "tf_serving_warmup_requests"]
    # Each response is what scikit-learn says for its instance (computed here from the original pickle).
    model = joblib.load(gbt)
    for record in records:
        (instance,), (prediction,) = record.request["instances"], record.response["predictions"]
        proba = model.predict_proba(pd.DataFrame([instance]))[0]
        assert prediction["label"] == int(model.predict(pd.DataFrame([instance]))[0])
        assert prediction["probability(1)"] == pytest.approx(proba[1], abs=1e-12)
    # The file serves: validate replays it through the embedded server.
    result = run_cli("validate", gbt_pmml, "--json", "--pmml-evaluator", "jpmml")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["versions"][0]["golden_passed"] == 2 * len(records)


def test_spark_pipeline_to_pmml(spark_ready, fixture_path, tmp_path_factory, tmp_path):
    base = converted(fixture_path, tmp_path_factory, "pmml", "spark_pipeline", "--schema",
                     '{"a": "double", "b": "double", "c": "double"}', "--pmml-evaluator", "jpmml")[1]
    rng = np.random.default_rng(5)
    data = tmp_path / "rows"  # a directory of Parquet parts, as Spark writes them
    data.mkdir()
    for part in range(3):
        pd.DataFrame(rng.normal(0, 2, (700, 3)), columns=list("abc")).to_parquet(data / f"part-{part}.parquet")
    code, report = parity(fixture_path("spark_pipeline"), base, "--data", data)
    assert code == 0 and report["ok"] and report["rows"] == 2100, report
    assert report["source_format"] == "spark-pipeline" and outputs(report)["label"]["flips"] == 0


def _examples(path: Path, features: np.ndarray) -> None:
    example_class = tfproto.message_class("Example")
    records = []
    for row in features:
        example = example_class()
        example.features.feature["features"].float_list.value.extend(row.tolist())
        records.append(example.SerializeToString())
    write_records(path, records)


def test_keras_to_savedmodel_on_tfrecords(spark_ready, fixture_path, tmp_path_factory, tmp_path):
    import keras

    src = fixture_path("keras_keras")
    base = converted(fixture_path, tmp_path_factory, "saved-model", "keras_keras")[1]
    features = np.random.default_rng(2).normal(0, 1, (2000, 4)).astype(np.float32)
    _examples(tmp_path / "rows.tfrecord", features)
    code, report = parity(src, base, "--data", tmp_path / "rows.tfrecord")
    assert code == 0 and report["ok"] and report["rows"] == 2000, report
    found = outputs(report)["probabilities"]
    assert found["flips"] == 0 and found["max_abs"] <= 1e-6
    reference = keras.models.load_model(src).predict(features, verbose=0)
    worst = report["worst_rows"][0]
    row = int(worst["row"].split(":")[1]) if report["partitions"] == 1 else None
    if row is not None:  # one partition: the row number is the record's
        assert np.allclose(worst["expected"]["probabilities"], reference[row], atol=1e-6)


def test_frozen_graph_to_savedmodel_on_list_columns(spark_ready, fixture_path, tmp_path_factory, tmp_path):
    base = converted(fixture_path, tmp_path_factory, "saved-model", "frozen_mlp_pb")[1]
    features = np.random.default_rng(4).normal(0, 1, (1500, 4))
    pd.DataFrame({"features": list(features), "id": range(1500)}).to_parquet(tmp_path / "rows.parquet")
    code, report = parity(fixture_path("frozen_mlp_pb"), base, "--data", tmp_path / "rows.parquet")
    assert code == 0 and report["ok"] and report["rows"] == 1500, report
    assert (report["atol"], report["rtol"]) == (1e-6, 1e-6)


def test_missing_and_mistyped_columns_are_named(spark_ready, gbt, gbt_data, gbt_onnx, tmp_path):
    frame = pd.read_parquet(gbt_data).drop(columns=["rate"])
    frame["visits"] = frame["visits"].astype(str)
    frame.to_parquet(tmp_path / "bad.parquet")
    result = run_cli("parity", gbt, gbt_onnx, "--data", tmp_path / "bad.parquet")
    assert result.exit_code == 2, result.stderr
    line, fix = result.stderr.splitlines()[-2:]  # after the progress lines
    assert line.startswith("error [bad-data]: ") and str(tmp_path / "bad.parquet") in line
    assert "no column(s) rate" in line and "'visits' is string, the model reads a number" in line
    assert fix.startswith("  fix: ") and "Traceback" not in result.stderr


def test_bad_inputs_before_spark(gbt, gbt_onnx, tmp_path):
    missing = run_cli("parity", gbt, gbt_onnx, "--data", tmp_path / "nothing.parquet")
    assert missing.exit_code == 2 and "[path-not-found]" in missing.stderr
    (tmp_path / "rows.parquet").write_bytes(b"")
    unreachable = run_cli("parity", gbt, gbt_onnx, "--data", tmp_path / "rows.parquet", "--spark-master",
                          "spark://127.0.0.1:1")
    assert unreachable.exit_code == 4, unreachable.stderr
    assert unreachable.stderr.startswith("error [spark-master-unreachable]: --spark-master spark://127.0.0.1:1")
    assert len(unreachable.stderr.splitlines()) == 2
