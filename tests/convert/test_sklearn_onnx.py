"""`tfsconvert onnx` for scikit-learn sources: skl2onnx with one input per feature column, plain
`label`/`probabilities` outputs (no ZipMap), parity with ONNX Runtime and golden rows."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest

from conftest import converted
from tfsconvert import golden
from tfsconvert.model import TensorSpec
from tfsconvert.rest_codec import request_tensors

CLASSES = ["setosa", "versicolor", "virginica"]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "color"]
REGRESSOR_NAMES = "income,age,rooms,distance,score"


@pytest.fixture(scope="module")
def pipeline_onnx(fixture_path, tmp_path_factory):
    return converted(fixture_path, tmp_path_factory, "onnx", "sklearn_pipeline")


def io_of(path):
    model = onnx.load(path)
    kinds = {onnx.TensorProto.FLOAT: "float", onnx.TensorProto.STRING: "string", onnx.TensorProto.INT64: "int64"}

    def describe(vi):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        return vi.name, kinds.get(vi.type.tensor_type.elem_type), dims

    return [describe(vi) for vi in model.graph.input], [describe(vi) for vi in model.graph.output], model


def _onnx_feed(array: np.ndarray) -> np.ndarray:
    """A decoded REST value as an ONNX [N, 1] input: golden decodes strings to bytes, ONNX Runtime wants str."""
    if array.dtype == object:
        array = np.array([v.decode() if isinstance(v, bytes) else v for v in array], dtype=object)
    return array.reshape(-1, 1)


def assert_golden_matches_onnx(artifact, signature: dict, classes=None) -> list[golden.GoldenRecord]:
    """Each golden request, fed to ONNX Runtime on the written model.onnx, gives the golden response."""
    session = onnxruntime.InferenceSession(str(artifact / "model.onnx"), providers=["CPUExecutionProvider"])
    records = golden.read_golden(artifact / "assets.extra" / "golden.jsonl")
    assert 8 <= len(records) <= 16  # the first 8 rows and the (up to 8) worst ones
    inputs = {alias: TensorSpec(**spec) for alias, spec in signature["inputs"].items()}
    for record in records:
        feeds = {alias: _onnx_feed(array) for alias, array in request_tensors(record.request, inputs).items()}
        outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
        (expected,) = record.response["predictions"]
        for field, value in expected.items():
            if field == "label":
                assert outputs["label"].tolist() == [value], record.id
            elif field == "prediction":
                assert outputs["prediction"][0, 0] == pytest.approx(value, rel=record.rtol, abs=record.atol)
            else:
                column = classes.index(type(classes[0])(field[len("probability("):-1]))
                assert outputs["probabilities"][0, column] == pytest.approx(value, rel=record.rtol, abs=record.atol)
    return records


def test_pipeline_becomes_onnx_with_one_input_per_column(pipeline_onnx):
    data, base = pipeline_onnx
    artifact = base / "1"
    assert data["artifact"] == str(artifact) and data["target"] == "onnx" and data["source_format"] == "sklearn"
    assert sorted(p.name for p in artifact.iterdir()) == ["assets.extra", "model.onnx"]
    inputs, outputs, model = io_of(artifact / "model.onnx")
    assert inputs == [("sepal_length", "float", [None, 1]), ("sepal_width", "float", [None, 1]),
                      ("petal_length", "float", [None, 1]), ("color", "string", [None, 1])]
    assert [(name, kind) for name, kind, _ in outputs] == [("label", "string"), ("probabilities", "float")]
    assert "ZipMap" not in {node.op_type for node in model.graph.node}
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["tfsconvert.classes"]) == CLASSES and json.loads(meta["tfsconvert.features"]) == FEATURES
    signature = data["signature"]
    assert list(signature["inputs"]) == FEATURES and signature["inputs"]["color"]["dtype"] == "DT_STRING"
    assert signature["inputs"]["sepal_length"]["dtype"] == "DT_FLOAT"
    assert list(signature["outputs"]) == ["label", *(f"probability({c})" for c in CLASSES)]
    assert signature["outputs"]["probability(virginica)"]["name"] == "probabilities[:, 2]"


def test_pipeline_parity_within_the_float32_tolerances(pipeline_onnx):
    parity = pipeline_onnx[0]["parity"]
    assert parity["ok"] and parity["samples"] == 1024 and parity["rows"] == "synthesized"
    rows = {d["alias"]: d for d in parity["outputs"]}
    assert rows["label"]["ok"] and rows["label"]["dtype"] == "DT_STRING"
    for c in CLASSES:
        row = rows[f"probability({c})"]
        assert (row["atol"], row["rtol"]) == (1e-6, 1e-5)
        assert 0 < row["max_abs"] < 1e-6  # float32 arithmetic: close, not identical


def test_pipeline_golden_rows_replay_on_onnx_runtime(pipeline_onnx):
    data, base = pipeline_onnx
    records = assert_golden_matches_onnx(base / "1", data["signature"], CLASSES)
    assert all(list(r.request) == ["instances"] and list(r.request["instances"][0]) == FEATURES for r in records)


def test_pmml_and_onnx_golden_files_use_the_same_rows_and_fields(pipeline_onnx, fixture_path, tmp_path_factory):
    # The sample rows and field names do not depend on the target; only the artifacts differ.
    from tfsconvert.convert import sklearn_source, tabular

    source = sklearn_source.load(fixture_path("sklearn_pipeline"), None)
    rows = tabular.synthesize(source.features)
    records = golden.read_golden(pipeline_onnx[1] / "1" / "assets.extra" / "golden.jsonl")
    assert [r.request["instances"][0] for r in records] == [rows[int(r.id.split("-")[1])] for r in records]
    assert [r.id for r in records[:8]] == [f"sample-{i}" for i in range(8)]
    assert [list(r.response["predictions"][0]) for r in records] == [list(source.output_dtypes())] * len(records)


def test_tree_ensemble_gets_a_concat_in_front(fixture_path, tmp_path_factory):
    data, base = converted(fixture_path, tmp_path_factory, "onnx", "sklearn_tree_ensemble")
    inputs, outputs, model = io_of(base / "1" / "model.onnx")
    assert [name for name, _, _ in inputs] == ["sepal_length", "sepal_width", "petal_length"]
    assert model.graph.node[0].op_type == "Concat" and list(model.graph.node[0].input) == FEATURES[:3]
    assert [(name, kind) for name, kind, _ in outputs] == [("label", "int64"), ("probabilities", "float")]
    assert data["parity"]["ok"] and data["signature"]["outputs"]["label"]["dtype"] == "DT_INT64"
    records = assert_golden_matches_onnx(base / "1", data["signature"], [0, 1])
    assert {r.response["predictions"][0]["label"] for r in records} == {0, 1}


def test_regressor_with_feature_names(fixture_path, tmp_path_factory):
    data, base = converted(fixture_path, tmp_path_factory, "onnx", "sklearn_regressor", "--feature-names", REGRESSOR_NAMES)
    inputs, outputs, _ = io_of(base / "1" / "model.onnx")
    assert [name for name, _, _ in inputs] == REGRESSOR_NAMES.split(",")
    assert outputs == [("prediction", "float", [None, 1])]
    assert list(data["signature"]["outputs"]) == ["prediction"] and data["parity"]["ok"]
    assert data["findings"] == []
    records = assert_golden_matches_onnx(base / "1", data["signature"])
    assert all(isinstance(r.response["predictions"][0]["prediction"], float) for r in records)


def test_generic_feature_names_are_flagged(convert, fixture_path):
    result = convert("onnx", fixture_path("sklearn_regressor"), "--feature-names", "x1,x2,x3,x4,x5")
    assert result.exit_code == 0, result.stderr
    (found,) = result.json()["findings"]
    assert found["code"] == "unnamed-signature-io" and "x1, x2, x3, x4, x5" in found["message"]


def test_regressor_without_feature_names_is_refused(convert, fixture_path, tmp_path):
    result = convert("onnx", fixture_path("sklearn_regressor"))
    assert result.exit_code == 2 and result.json()["error"]["code"] == "missing-feature-names"
    assert not (tmp_path / "models").exists()


def test_unsupported_estimator_is_named(convert, fixture_path, tmp_path):
    src = fixture_path("sklearn_unsupported")
    result = convert("onnx", src)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "unsupported-estimator"
    assert error["message"].startswith("skl2onnx 1.20.0 has no converter for sklearn.semi_supervised.LabelSpreading "
                                       "(step 'spread')")
    assert f"tfsconvert pmml {src}" in error["hint"] and not (tmp_path / "models").exists()


def test_force_replaces_a_version_and_renders_a_summary(cli, fixture_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = fixture_path("sklearn_pipeline")
    assert cli("onnx", src, "--version", "3", "--json").exit_code == 0
    model = tmp_path / "models" / "pipeline" / "3" / "model.onnx"
    first = model.stat().st_ino
    refused = cli("onnx", src, "--version", "3", "--json")
    assert refused.exit_code == 2 and refused.json()["error"]["code"] == "version-exists"
    assert model.stat().st_ino == first
    forced = cli("onnx", src, "--version", "3", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert model.stat().st_ino != first  # a new file, renamed into place
    assert sorted(p.name for p in (tmp_path / "models" / "pipeline").iterdir()) == ["3"]
    assert "wrote models/pipeline/3" in forced.stdout and "probability(virginica)" in forced.stdout
    assert "probabilities[:, 2]" in forced.stdout and "parity on 1024 synthesized rows" in forced.stdout


def test_parity_failure_exits_1_and_publishes_nothing(convert, fixture_path, tmp_path):
    result = convert("onnx", fixture_path("sklearn_pipeline"), "--atol", "0", "--rtol", "0")
    error = result.json()["error"]
    assert result.exit_code == 1 and error["code"] == "parity-failed"
    assert "probability(" in error["message"] and "nothing was published" in error["message"]
    assert not (tmp_path / "models").exists()


def test_sample_data_rows_become_the_golden_requests(convert, fixture_path, tmp_path):
    data = tmp_path / "rows.csv"
    data.write_text("species,color,sepal_length,sepal_width,petal_length\n"
                    "setosa,red,5.1,3.5,1.4\nvirginica,blue,6.7,3.1,5.6\nversicolor,purple,5.9,2.8,4.3\n"
                    "setosa,green,4.9,3.0,1.4\n")
    result = convert("onnx", fixture_path("sklearn_pipeline"), "--sample-data", data, "--samples", "3")
    assert result.exit_code == 0, result.stdout
    assert result.json()["parity"]["samples"] == 3
    records = golden.read_golden(tmp_path / "models" / "pipeline" / "1" / "assets.extra" / "golden.jsonl")
    assert [r.request["instances"][0] for r in records] == [
        {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "color": "red"},
        {"sepal_length": 6.7, "sepal_width": 3.1, "petal_length": 5.6, "color": "blue"},
        {"sepal_length": 5.9, "sepal_width": 2.8, "petal_length": 4.3, "color": "purple"},  # unseen: all zeros
    ]
    assert [r.response["predictions"][0]["label"] for r in records][:2] == ["setosa", "virginica"]
    assert "the first 3 rows of" in result.json()["notes"][0]


@pytest.mark.parametrize("flags, fragment", [
    (["--input", "a=b"], "--input cannot be used with a scikit-learn source"),
    (["--sample-inputs", "x.json"], "--sample-inputs cannot be used with a scikit-learn source"),
])
def test_tensorflow_options_are_refused_for_sklearn_sources(convert, fixture_path, flags, fragment):
    result = convert("onnx", fixture_path("sklearn_pipeline"), *flags)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "bad-option" and fragment in error["message"]


def test_sklearn_options_are_refused_for_tensorflow_sources(convert, fixture_path):
    result = convert("onnx", fixture_path("frozen_mlp_pb"), "--feature-names", "a,b")
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "bad-option" and "--feature-names" in error["message"]


def test_opset_beyond_skl2onnx_is_refused(convert, fixture_path):
    result = convert("onnx", fixture_path("sklearn_pipeline"), "--opset", "30")
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "unsupported-opset" and "not 30" in error["message"]


def test_written_model_is_what_inspect_reads(pipeline_onnx, cli):
    data, base = pipeline_onnx
    described = cli("inspect", base / "1" / "model.onnx", "--json").json()
    signature = described["versions"][0]["signatures"]["serving_default"]
    assert list(signature["inputs"]) == FEATURES and list(signature["outputs"]) == ["label", "probabilities"]
    assert described["diagnostics"] == []
    assert np.isclose(sum(r["max_abs"] or 0 for r in data["parity"]["outputs"]), 0, atol=1e-5)


def test_sample_data_from_parquet(convert, fixture_path, tmp_path):
    import importlib.util

    import pandas as pd

    data = tmp_path / "rows.parquet"
    rows = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "color": "red"}]
    if importlib.util.find_spec("pyarrow") is None:  # pandas reads Parquet through pyarrow (not a pinned dependency)
        data.write_bytes(b"PAR1")
        error = convert("onnx", fixture_path("sklearn_pipeline"), "--sample-data", data).json()["error"]
        assert error["code"] == "missing-dependency" and "pip install pyarrow" in error["hint"]
        return
    pd.DataFrame(rows).to_parquet(data)
    result = convert("onnx", fixture_path("sklearn_pipeline"), "--sample-data", data)
    assert result.exit_code == 0, result.stdout
    records = golden.read_golden(tmp_path / "models" / "pipeline" / "1" / "assets.extra" / "golden.jsonl")
    assert [r.request["instances"][0] for r in records] == rows


def test_classifier_without_predict_proba_serves_the_label_only(convert, tmp_path):
    import joblib
    from sklearn.linear_model import RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fixtures.classic_models import NUMERIC, _stock_pickle, iris_like

    features, labels = iris_like()
    src = tmp_path / "ridge.joblib"
    with _stock_pickle():  # joblib.dump after sklearn2pmml (dill) was imported in this process
        joblib.dump(make_pipeline(StandardScaler(), RidgeClassifier()).fit(features[NUMERIC], labels), src)
    result = convert("onnx", src)
    assert result.exit_code == 0, result.stdout
    data = result.json()
    assert list(data["signature"]["outputs"]) == ["label"] and data["parity"]["ok"]
    _, outputs, _ = io_of(tmp_path / "models" / "ridge" / "1" / "model.onnx")
    assert [name for name, _, _ in outputs] == ["label"]
    records = assert_golden_matches_onnx(tmp_path / "models" / "ridge" / "1", data["signature"])
    assert {r.response["predictions"][0]["label"] for r in records} <= set(CLASSES)
