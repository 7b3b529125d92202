"""The Python API (docs/api.md): in-memory models converted as the CLI converts files, the results the
`--json` documents are made of, TfsConvertError subclasses for errors, and nothing printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import tfsconvert
from conftest import REPO, run_cli
from fixtures.classic_models import iris_like
from tfsconvert.errors import CheckFailed, InputError, TfsConvertError


@pytest.fixture(scope="module")
def keras_model():
    """A small Keras MLP as it is right after training: in memory only."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(4,), name="features")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probabilities")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    model.fit(x, (x[:, 0] > 0).astype("int64"), epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features, labels = iris_like()
    numeric = [c for c in features.columns if c != "color"]
    preprocess = ColumnTransformer([("num", StandardScaler(), numeric),
                                    ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"])])
    return Pipeline([("preprocess", preprocess), ("classifier", LogisticRegression(max_iter=500))]).fit(
        features, labels)


def test_keras_model_in_memory_to_a_saved_model_that_validates(keras_model, tmp_path, capfd):
    base = tmp_path / "models" / "mlp"
    result = tfsconvert.saved_model(keras_model, base, version=3, outputs={"probabilities": "probabilities"})
    assert (result.version, result.model_name, result.target) == (3, "mlp", "savedmodel")
    assert (base / "3" / "saved_model.pb").is_file() and result.parity and all(d.ok for d in result.parity)
    assert result.source.startswith("<in-memory keras")
    document = result.to_dict()
    assert list(document)[:2] == ["schema_version", "tfsconvert_version"] and document["version"] == 3
    assert document["parity"]["ok"] and list(document["signature"]["outputs"]) == ["probabilities"]
    # The reference, computed here from the model in memory: the SavedModel must answer as it does.
    import tensorflow as tf

    x = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    served = tf.saved_model.load(str(base / "3")).signatures["serving_default"](features=tf.constant(x))
    np.testing.assert_allclose(served["probabilities"].numpy(), keras_model(x).numpy(), rtol=1e-5, atol=1e-6)
    report = tfsconvert.validate(base, protocol="rest")
    assert report.ok and report.to_dict()["summary"]["golden_passed"] == 8
    assert capfd.readouterr() == ("", "")  # nothing printed, by the conversion or the validation


def test_tf_module_in_memory_to_a_saved_model(tmp_path, capfd):
    """A tf.Module whose __call__ has an input signature: the SavedModel answers as the module in memory does."""
    import tensorflow as tf

    class Affine(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable([[1.0, -2.0, 0.5], [0.25, 3.0, -1.0]])
            self.b = tf.Variable([0.5, -0.5, 2.0])

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": tf.matmul(x, self.w) + self.b}

    module = Affine()
    capfd.readouterr()  # TensorFlow's start-up lines, from the import above
    base = tmp_path / "affine"
    result = tfsconvert.saved_model(module, base)
    assert (result.version, result.model_name) == (1, "affine") and all(d.ok for d in result.parity)
    assert result.source.startswith("<in-memory ") and result.source.endswith("Affine>")
    assert list(result.to_dict()["signature"]["inputs"]) == ["x"]
    x = np.array([[1.0, 2.0], [-3.0, 0.5]], dtype="float32")
    served = tf.saved_model.load(str(base / "1")).signatures["serving_default"](x=tf.constant(x))
    np.testing.assert_allclose(served["y"].numpy(), module(x)["y"].numpy(), rtol=1e-6)
    np.testing.assert_allclose(served["y"].numpy(), x @ module.w.numpy() + module.b.numpy(), rtol=1e-6)
    assert capfd.readouterr() == ("", "")


def test_sklearn_pipeline_in_memory_to_onnx(pipeline, tmp_path, capfd):
    result = tfsconvert.onnx(pipeline, tmp_path / "models" / "iris")
    assert result.target == "onnx" and result.version == 1 and result.parity_rows == "synthesized"
    assert (tmp_path / "models" / "iris" / "1" / "model.onnx").is_file()
    assert result.to_dict()["parity"]["ok"]
    import onnxruntime

    features, _ = iris_like()
    session = onnxruntime.InferenceSession(str(tmp_path / "models" / "iris" / "1" / "model.onnx"))
    feeds = {name: features[[name]].to_numpy().astype("float32" if name != "color" else object)
             for name in (i.name for i in session.get_inputs())}
    assert list(session.run(["label"], feeds)[0]) == list(pipeline.predict(features))  # the model in memory
    assert capfd.readouterr() == ("", "")


@pytest.mark.slow  # the JVM
def test_sklearn_pipeline_in_memory_to_pmml(pipeline, tmp_path, capfd):
    features, _ = iris_like()
    result = tfsconvert.pmml(pipeline, tmp_path / "models" / "iris", sample_data=features, pmml_evaluator="jpmml")
    assert result.target == "pmml" and result.parity_rows == "sample-data" and result.samples == len(features)
    assert (tmp_path / "models" / "iris" / "1" / "model.pmml").is_file() and result.to_dict()["parity"]["ok"]
    assert capfd.readouterr() == ("", "")
    from tfsconvert.runtimes.pmml import PmmlModel

    evaluator = PmmlModel(tmp_path / "models" / "iris" / "1" / "model.pmml", "jpmml")
    try:
        answer = evaluator.predict({name: features[name].tolist() for name in features.columns})
    finally:
        evaluator.close()
    assert list(answer["label"]) == list(pipeline.predict(features))  # the model in memory


@pytest.mark.slow  # Spark
def test_spark_pipeline_model_in_memory_to_onnx(spark, tmp_path, capfd):
    """A PipelineModel fitted here: the ONNX model labels rows as the PipelineModel in memory does."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler

    rows = [(i / 10, (i % 7) / 7, ((i * 3) % 11) / 11, float(i % 7 > 3)) for i in range(40)]
    frame = spark.createDataFrame(rows, ["a", "b", "c", "label"])
    model = Pipeline(stages=[VectorAssembler(inputCols=["a", "b", "c"], outputCol="features"),
                             LogisticRegression(labelCol="label", maxIter=20)]).fit(frame)
    capfd.readouterr()  # Spark's own start-up lines
    result = tfsconvert.onnx(model, tmp_path / "lr", schema={"a": "double", "b": "double", "c": "double"})
    assert result.target == "onnx" and result.source.endswith("PipelineModel>") and result.to_dict()["parity"]["ok"]
    assert capfd.readouterr().out == ""
    from tfsconvert.runtimes.onnx import OnnxModel

    answer = OnnxModel(tmp_path / "lr" / "1" / "model.onnx").predict(
        {name: [row[i] for row in rows] for i, name in enumerate("abc")})
    expected = [row.prediction for row in model.transform(frame).select("prediction").collect()]
    assert [float(label) for label in answer["label"]] == expected


def test_inspect_returns_the_document_of_inspect_json(fixture_path, capfd):
    path = fixture_path("frozen_mlp_pb")
    description = tfsconvert.inspect(path)
    assert description.format == "frozen-graph"
    assert description.to_dict() == run_cli("inspect", path, "--json").json()
    capfd.readouterr()
    tfsconvert.inspect(str(path))
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("call, error, code, cli_args", [
    (lambda tmp: tfsconvert.saved_model(tmp / "nope.pb", tmp / "m"), InputError, "path-not-found",
     ["saved-model", "nope.pb", "--base-path", "m"]),
    (lambda tmp: tfsconvert.onnx(object(), tmp / "m"), InputError, "unsupported-format", None),
    (lambda tmp: tfsconvert.inspect(tmp / "nope"), InputError, "path-not-found", ["inspect", "nope"]),
    (lambda tmp: tfsconvert.validate(tmp, protocol="http"), InputError, "bad-option",
     ["validate", ".", "--protocol", "http"]),
    (lambda tmp: tfsconvert.pmml(tmp / "x.joblib", tmp / "m", pmml_evaluator="java"), InputError, "bad-option",
     ["pmml", "x.joblib", "--base-path", "m", "--pmml-evaluator", "java"]),
])
def test_errors_are_raised_as_tfsconvert_errors_and_nothing_is_printed(call, error, code, cli_args, tmp_path, capfd,
                                                                      monkeypatch):
    """The exception the API raises is the error the command reports, with the command's exit code."""
    with pytest.raises(error) as raised:
        call(tmp_path)
    assert isinstance(raised.value, TfsConvertError) and raised.value.code == code and raised.value.hint
    assert raised.value.exit_code == 2 and capfd.readouterr() == ("", "")
    if cli_args is not None:
        monkeypatch.chdir(tmp_path)
        result = run_cli(*cli_args, "--json")
        assert (result.exit_code, result.json()["error"]["code"]) == (raised.value.exit_code, code)


def test_a_missing_optional_package_is_an_environment_problem_naming_its_extra(fixture_path, tmp_path, monkeypatch):
    """What the CLI exits 3 with: here pandas is "not installed" (None in sys.modules fails its import), which
    the conversion imports without checking first."""
    from tfsconvert.errors import EnvironmentProblem

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(EnvironmentProblem) as raised:
        tfsconvert.onnx(fixture_path("sklearn_pipeline"), tmp_path / "m")
    assert raised.value.code == "missing-dependency" and "pip install 'tfsconvert[sklearn]'" in raised.value.hint
    assert not (tmp_path / "m").exists()


def test_a_parity_failure_is_check_failed(pipeline, tmp_path, capfd):
    """Zero tolerances: ONNX's float32 probabilities are not scikit-learn's float64 ones. CheckFailed (exit 1 in
    the CLI), and nothing published."""
    with pytest.raises(CheckFailed) as raised:
        tfsconvert.onnx(pipeline, tmp_path / "m", atol=0.0, rtol=0.0, samples=1024)
    assert raised.value.exit_code == 1 and "nothing was published" in raised.value.message
    assert not (tmp_path / "m").exists() and capfd.readouterr() == ("", "")


def test_the_api_names_are_the_functions_after_the_subpackages_load():
    import tfsconvert.inspect.detect  # noqa: F401 - the subpackage of the same name
    import tfsconvert.validate.runner  # noqa: F401

    assert callable(tfsconvert.inspect) and callable(tfsconvert.validate)
    assert tfsconvert.inspect.__module__ == "tfsconvert.api"


def _training_scripts() -> list[str]:
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text.split("## In a training script", 1)[1], re.S)


@pytest.mark.slow  # trains, converts, and validates (a server) or runs the JVM (PMML)
@pytest.mark.parametrize("index, expected", [(0, "wrote version 1: "), (1, "True True")])
def test_the_training_scripts_of_the_docs_run(index, expected, tmp_path):
    """docs/api.md's examples, run as written in a fresh directory: what they print and write."""
    scripts = _training_scripts()
    assert len(scripts) == 2
    proc = subprocess.run([sys.executable, "-c", scripts[index]], capture_output=True, text=True, timeout=900,
                          cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith(expected), proc.stdout
    written = {"/".join(p.relative_to(tmp_path).parts[:3]) for p in (tmp_path / "models").rglob("*") if p.is_file()}
    assert written >= ({"models/ranker/1"} if index == 0 else {"models/churn-onnx/1", "models/churn-pmml/1"})


def test_the_package_is_typed():
    """PEP 561: the marker ships in the package (pyproject's package-data), so type checkers read our hints."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["tfsconvert"]
    assert (REPO / "tfsconvert" / "py.typed").is_file()
    assert tfsconvert.saved_model.__annotations__["return"] == "ConversionResult"
