"""`inspect` of scikit-learn pickles (restricted unpickling) and Spark ML PipelineModel dirs."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import f1_score, make_scorer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from tfsconvert.errors import InputError
from conftest import assert_one_line_error
from tfsconvert.inspect import sklearn_model, spark_model


def _double_it(x):
    """A helper whose pickled reference points into this test module, outside the allowlist."""
    return 2 * x


# --- scikit-learn: what the reader shows -------------------------------------------------------

def test_sklearn_pipeline_fixture(cli, fixture_path):
    result = cli("inspect", fixture_path("sklearn_pipeline"), "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["format"] == "sklearn" and data["diagnostics"] == []
    version = data["versions"][0]
    assert version["signatures"] == {}  # a pickle is not servable until converted
    details = version["details"]
    assert details["class"] == "sklearn.pipeline.Pipeline"
    assert details["estimator_type"] == "classifier"
    assert details["steps"] == [
        {"step": "preprocess", "class": "sklearn.compose.ColumnTransformer"},
        {"step": "preprocess/num", "class": "sklearn.preprocessing.StandardScaler",
         "columns": ["sepal_length", "sepal_width", "petal_length"]},
        {"step": "preprocess/cat", "class": "sklearn.preprocessing.OneHotEncoder", "columns": ["color"]},
        {"step": "classifier", "class": "sklearn.linear_model.LogisticRegression"},
    ]
    assert details["n_features_in"] == 4
    assert details["feature_names_in"] == ["sepal_length", "sepal_width", "petal_length", "color"]
    assert details["classes"] == ["setosa", "versicolor", "virginica"]
    # the one-hot encoded column was fitted on strings; the scaled ones are numbers
    assert details["inputs"]["color"] == {"dtype": "DT_STRING", "shape": [-1], "name": "color",
                                          "native_dtype": "str"}
    assert details["inputs"]["sepal_length"] == {"dtype": "DT_DOUBLE", "shape": [-1], "name": "sepal_length",
                                                 "native_dtype": "float64"}
    assert list(details["inputs"]) == details["feature_names_in"]


def test_sklearn_regressor_plain_pickle_without_names(cli, fixture_path):
    path = fixture_path("sklearn_regressor")
    result = cli("inspect", path, "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    details = data["versions"][0]["details"]
    assert details["class"] == "sklearn.ensemble.RandomForestRegressor"
    assert details["estimator_type"] == "regressor"
    assert details["n_features_in"] == 5 and details["feature_names_in"] is None
    assert "classes" not in details
    assert list(details["inputs"]) == ["x1", "x2", "x3", "x4", "x5"]
    assert {spec["dtype"] for spec in details["inputs"].values()} == {"DT_DOUBLE"}
    (warning,) = data["diagnostics"]
    assert warning["code"] == "unnamed-signature-io" and warning["severity"] == "warning"
    assert "--feature-names" in warning["hint"] and "DataFrame" in warning["hint"]
    human = cli("inspect", path)
    assert human.exit_code == 0 and "unnamed-signature-io" in human.stdout
    assert "sklearn.ensemble.RandomForestRegressor" in human.stdout


def test_sklearn_ordinal_encoder_inside_nested_pipeline(tmp_path):
    frame = pd.DataFrame({"city": ["oslo", "rome", "oslo", "lima"], "size": [1.0, 2.0, 3.0, 4.0]})
    model = Pipeline([
        ("prep", ColumnTransformer([
            ("cities", Pipeline([("ord", OrdinalEncoder())]), ["city"]),
            ("log", FunctionTransformer(np.log1p), ["size"]),  # a numpy ufunc is allowed
        ])),
        ("reg", LinearRegression()),
    ]).fit(frame, [1.0, 2.0, 3.0, 4.0])
    path = tmp_path / "model.joblib"
    joblib.dump(model, path, compress=3)  # zlib-compressed joblib file
    details = sklearn_model.describe(path).versions[0].details
    assert details["inputs"]["city"]["dtype"] == "DT_STRING"
    assert details["inputs"]["size"]["dtype"] == "DT_DOUBLE"
    assert [s["step"] for s in details["steps"]] == ["prep", "prep/cities", "prep/cities/ord", "prep/log", "reg"]
    assert details["estimator_type"] == "regressor"
    json.dumps(details)


# --- scikit-learn: what the reader refuses -----------------------------------------------------

def test_malicious_pickle_is_refused_and_not_run(cli, fixture_path):
    path = fixture_path("bad_malicious_pickle")
    marker = path.parent / "PWNED"
    result = cli("inspect", path, "--json")
    assert result.exit_code == 2
    error = result.json()["error"]
    assert error["code"] == "untrusted-pickle"
    assert "'os.system'" in error["message"] and str(path) in error["message"]
    assert "would execute code" in error["message"]
    assert error["hint"] == "re-run with --trust-pickle if you trust this file"
    assert_one_line_error(cli("inspect", path), path, "untrusted-pickle")
    assert not marker.exists()


def test_pickled_test_module_function_is_refused(tmp_path):
    model = FunctionTransformer(_double_it).fit(np.ones((3, 2)))
    path = tmp_path / "custom.pkl"
    path.write_bytes(pickle.dumps(model))
    with pytest.raises(InputError) as caught:
        sklearn_model.describe(path)
    assert caught.value.code == "untrusted-pickle"
    assert "_double_it'" in caught.value.message and str(path) in caught.value.message
    # the user can vouch for it (this process can import the test module)
    details = sklearn_model.describe(path, trust_pickle=True).versions[0].details
    assert details["class"] == "sklearn.preprocessing.FunctionTransformer"


def _protocol0(module: str, name: str, *args: str) -> bytes:
    """`module.name(*args)` as protocol-0 pickle opcodes (GLOBAL, MARK, UNICODE..., TUPLE, REDUCE)."""
    return (f"c{module}\n{name}\n(".encode() + b"".join(f"V{a}\n".encode() for a in args) + b"tR.")


@pytest.mark.parametrize("module, name, make_args, refused", [
    ("os", "system", lambda d: [f"touch {d / 'PWNED'}"], "os.system"),
    ("posix", "system", lambda d: [f"touch {d / 'PWNED'}"], "posix.system"),
    ("builtins", "eval", lambda d: [f"open({str(d / 'PWNED')!r}, 'w')"], "builtins.eval"),
    ("builtins", "getattr", lambda d: ["x", "y"], "builtins.getattr"),
    ("subprocess", "Popen", lambda d: ["true"], "subprocess.Popen"),
    # re-exported classes are judged by where they live: pandas.HDFStore is pandas.io (writes files)
    ("pandas", "HDFStore", lambda d: [str(d / "PWNED")], "pandas.HDFStore"),
    ("numpy", "memmap", lambda d: [str(d / "PWNED"), "uint8", "w+", "0", "(4,)"], "numpy.memmap"),
    ("sklearn.utils._testing", "assert_run_python_script_without_output", lambda d: ["1"],
     "sklearn.utils._testing.assert_run_python_script_without_output"),
    ("dill._dill", "_load_type", lambda d: ["CodeType"], "dill._dill._load_type('CodeType')"),
    # sklearn classes are allowed, sklearn functions are not: this one writes a file
    ("sklearn.tree", "export_graphviz", lambda d: ["tree", str(d / "PWNED")], "sklearn.tree.export_graphviz"),
])
def test_globals_outside_the_allowlist_are_refused(tmp_path, module, name, make_args, refused):
    path = tmp_path / "payload.pkl"
    path.write_bytes(_protocol0(module, name, *make_args(tmp_path)))
    with pytest.raises(InputError) as caught:
        sklearn_model.describe(path)
    assert caught.value.code == "untrusted-pickle"
    assert f"references '{refused}'" in caught.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["payload.pkl"]


def test_grid_search_with_metric_scorer_loads(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 2))
    search = GridSearchCV(LogisticRegression(), {"C": [0.5, 1.0]}, scoring=make_scorer(f1_score), cv=2)
    path = tmp_path / "search.joblib"
    joblib.dump(search.fit(x, (x[:, 0] > 0).astype(int)), path)  # pickles sklearn.metrics.f1_score
    details = sklearn_model.describe(path).versions[0].details
    assert details["class"] == "sklearn.model_selection.GridSearchCV"
    assert details["estimator_type"] == "classifier" and details["classes"] == [0, 1]


def test_dill_builtin_types_are_allowed(tmp_path):
    # joblib.dump writes `slice` like this when dill has been imported (sklearn2pmml imports it)
    path = tmp_path / "type.pkl"
    path.write_bytes(_protocol0("dill._dill", "_load_type", "slice"))
    with pytest.raises(InputError) as caught:
        sklearn_model.describe(path)
    assert caught.value.code == "unsupported-format"  # it loaded; it is just not an estimator
    assert caught.value.message == f"{path} holds a builtins.type, not a scikit-learn estimator"


def test_garbage_pickle_is_rejected_in_one_line(cli, fixture_path):
    path = fixture_path("bad_garbage_pickle")
    result = cli("inspect", path)
    assert_one_line_error(result, path, "corrupt-model-file")
    assert "is not a readable pickle/joblib file: it has no pickle or joblib header" in result.stderr


def test_truncated_pickle_is_corrupt(tmp_path, fixture_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(fixture_path("sklearn_regressor").read_bytes()[:500])
    with pytest.raises(InputError) as caught:
        sklearn_model.describe(path)
    assert caught.value.code == "corrupt-model-file"
    assert caught.value.message.startswith(f"{path} is not a readable pickle/joblib file: unpickling failed (")


def test_pickle_that_is_not_an_estimator(cli, tmp_path):
    path = tmp_path / "params.joblib"
    joblib.dump({"alpha": np.float64(0.5)}, path)
    result = cli("inspect", path, "--json")
    assert result.exit_code == 2
    assert result.json()["error"] == {
        "code": "unsupported-format",
        "message": f"{path} holds a builtins.dict, not a scikit-learn estimator",
        "hint": "pickle the fitted estimator or Pipeline itself: joblib.dump(pipeline, 'model.joblib')",
    }


# --- Spark ML -----------------------------------------------------------------------------------

def _write_metadata(directory: Path, meta: dict, spark4: bool = True) -> None:
    """Spark 4 writes `part-00000-<uuid>-c000.txt` (+ .crc, _SUCCESS); Spark 2/3 `part-00000`."""
    target = directory / "metadata"
    target.mkdir(parents=True)
    name = "part-00000-0e5c6a1b-c000.txt" if spark4 else "part-00000"
    (target / name).write_text(json.dumps({"timestamp": 1, "sparkVersion": "4.2.1", **meta}) + "\n")
    (target / f".{name}.crc").write_bytes(b"crc\x00")
    (target / "_SUCCESS").write_text("")


def _write_pipeline(root: Path, stages: list[tuple[str, str, dict, dict]], spark4: bool = True,
                    cls: str = "org.apache.spark.ml.PipelineModel") -> Path:
    uids = [uid for uid, *_ in stages]
    _write_metadata(root, {"class": cls, "uid": "PipelineModel_1", "paramMap": {"stageUids": uids},
                           "defaultParamMap": {}}, spark4)
    for index, (uid, stage_cls, params, defaults) in enumerate(stages):
        _write_metadata(root / "stages" / f"{index}_{uid}",
                        {"class": stage_cls, "uid": uid, "paramMap": params, "defaultParamMap": defaults}, spark4)
    return root


IRIS_STAGES = [
    ("StringIndexer_aa", "org.apache.spark.ml.feature.StringIndexerModel",
     {"inputCol": "species", "outputCol": "label"}, {"outputCol": "StringIndexer_aa__output"}),
    ("StringIndexer_bb", "org.apache.spark.ml.feature.StringIndexerModel",
     {"inputCol": "color", "outputCol": "color_idx"}, {"handleInvalid": "error"}),
    ("VectorAssembler_cc", "org.apache.spark.ml.feature.VectorAssembler",
     {"inputCols": ["sepal_length", "petal_length", "color_idx"], "outputCol": "raw"}, {}),
    ("StandardScaler_dd", "org.apache.spark.ml.feature.StandardScalerModel",
     {"inputCol": "raw", "outputCol": "features"}, {}),
    ("LogisticRegression_ee", "org.apache.spark.ml.classification.LogisticRegressionModel",
     {"maxIter": 10},
     {"featuresCol": "features", "labelCol": "label", "predictionCol": "prediction",
      "probabilityCol": "probability", "rawPredictionCol": "rawPrediction"}),
]


@pytest.mark.parametrize("spark4", [True, False])
def test_spark_metadata_stages_and_inputs(cli, tmp_path, spark4):
    path = _write_pipeline(tmp_path / "model", IRIS_STAGES, spark4)
    result = cli("inspect", path, "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["format"] == "spark-pipeline" and data["diagnostics"] == []
    details = data["versions"][0]["details"]
    assert details["spark_version"] == "4.2.1"
    assert [(s["index"], s["class"], s["uid"]) for s in details["stages"]] == [
        ("0", "StringIndexer", "StringIndexer_aa"), ("1", "StringIndexer", "StringIndexer_bb"),
        ("2", "VectorAssembler", "VectorAssembler_cc"), ("3", "StandardScaler", "StandardScaler_dd"),
        ("4", "LogisticRegression", "LogisticRegression_ee")]
    # paramMap wins over defaultParamMap; the label indexer is not needed to serve
    assert details["stages"][0]["outputs"] == ["label"]
    assert details["stages"][0]["serving"] == "skipped (label only)"
    assert details["stages"][4] == {
        "index": "4", "class": "LogisticRegression", "uid": "LogisticRegression_ee", "inputs": ["features"],
        "label": ["label"], "outputs": ["prediction", "probability", "rawPrediction"]}
    assert details["inputs"] == {
        "color": {"dtype": "DT_STRING", "shape": [-1], "name": "color", "native_dtype": "string"},
        "sepal_length": {"dtype": "DT_DOUBLE", "shape": [-1], "name": "sepal_length", "native_dtype": "numeric"},
        "petal_length": {"dtype": "DT_DOUBLE", "shape": [-1], "name": "petal_length", "native_dtype": "numeric"},
    }
    assert details["label_columns"] == ["species"]
    assert details["output_columns"] == ["prediction", "probability", "rawPrediction"]


def test_spark_generic_column_names(tmp_path):
    path = _write_pipeline(tmp_path / "model", [
        ("VectorAssembler_1", "org.apache.spark.ml.feature.VectorAssembler",
         {"inputCols": ["x1", "x2"], "outputCol": "features"}, {}),
        ("LinearRegression_2", "org.apache.spark.ml.regression.LinearRegressionModel", {},
         {"featuresCol": "features", "labelCol": "y", "predictionCol": "prediction"}),
    ])
    description = spark_model.describe(path)
    assert list(description.versions[0].details["inputs"]) == ["x1", "x2"]
    (warning,) = description.diagnostics
    assert warning.code == "unnamed-signature-io" and "x1, x2" in warning.message


@pytest.mark.slow
def test_spark_fixture(cli, fixture_path):
    path = fixture_path("spark_pipeline")  # built by a real Spark session (about 20 s, then cached)
    result = cli("inspect", path, "--json")
    assert result.exit_code == 0, result.stderr
    details = result.json()["versions"][0]["details"]
    assert details["spark_version"].startswith("4.")
    assert [s["class"] for s in details["stages"]] == ["VectorAssembler", "LogisticRegression"]
    assert details["stages"][0]["inputs"] == ["a", "b", "c"] and details["stages"][0]["outputs"] == ["features"]
    assert {k: v["dtype"] for k, v in details["inputs"].items()} == {"a": "DT_DOUBLE", "b": "DT_DOUBLE",
                                                                      "c": "DT_DOUBLE"}
    assert details["label_columns"] == ["label"]
    assert details["output_columns"] == ["prediction", "probability", "rawPrediction"]


def test_spark_unfitted_pipeline_is_refused(cli, tmp_path):
    path = _write_pipeline(tmp_path / "pipe", IRIS_STAGES[:1], cls="org.apache.spark.ml.Pipeline")
    result = cli("inspect", path, "--json")
    assert result.exit_code == 2
    error = result.json()["error"]
    assert error["code"] == "unsupported-format"
    assert error["message"] == f"{path} is an unfitted Pipeline, expected a fitted org.apache.spark.ml.PipelineModel"
    assert "pipeline.fit(df)" in error["hint"]


def test_spark_unparsable_metadata(cli, tmp_path):
    path = tmp_path / "model"
    (path / "metadata").mkdir(parents=True)
    (path / "metadata" / "part-00000").write_text("{not json\n")
    result = cli("inspect", path)
    assert_one_line_error(result, path, "corrupt-model-file")
    assert "is not Spark ML metadata: cannot parse it as JSON" in result.stderr


def test_directory_that_is_not_a_spark_model(tmp_path):
    path = tmp_path / "notes"
    (path / "metadata").mkdir(parents=True)
    (path / "metadata" / "README.txt").write_text("not spark")
    with pytest.raises(InputError) as caught:
        spark_model.describe(path)
    assert (caught.value.code, caught.value.message) == (
        "unsupported-format", f"{path} is not a saved Spark ML model: no metadata/part-* file")


def test_spark_missing_stage_directory(tmp_path):
    path = _write_pipeline(tmp_path / "model", IRIS_STAGES[:2])
    shutil.rmtree(path / "stages" / "1_StringIndexer_bb")
    with pytest.raises(InputError) as caught:
        spark_model.describe(path)
    assert caught.value.code == "corrupt-model-file" and "StringIndexer_bb" in caught.value.message
