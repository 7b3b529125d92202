"""The Python API (docs/api.md): in-memory models converted as the CLI converts files, the results the
`--json` documents are made of, TfsConvertError subclasses for errors, and nothing printed."""

from __future__ import annotations

import numpy as np
import pytest

import tfsconvert
from conftest import run_cli
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


def test_keras_model_in_memory_to_a_saved_model_that_validates(keras_model, tmp_path, capsys):
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
    assert capsys.readouterr() == ("", "")  # nothing printed, by the conversion or the validation


def test_sklearn_pipeline_in_memory_to_onnx(pipeline, tmp_path, capsys):
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
    assert capsys.readouterr() == ("", "")


@pytest.mark.slow  # the JVM
def test_sklearn_pipeline_in_memory_to_pmml(pipeline, tmp_path, capsys):
    features, _ = iris_like()
    result = tfsconvert.pmml(pipeline, tmp_path / "models" / "iris", sample_data=features, pmml_evaluator="jpmml")
    assert result.target == "pmml" and result.parity_rows == "sample-data" and result.samples == len(features)
    assert (tmp_path / "models" / "iris" / "1" / "model.pmml").is_file() and result.to_dict()["parity"]["ok"]
    assert capsys.readouterr() == ("", "")


def test_inspect_returns_the_document_of_inspect_json(fixture_path, capsys):
    path = fixture_path("frozen_mlp_pb")
    description = tfsconvert.inspect(path)
    assert description.format == "frozen-graph"
    assert description.to_dict() == run_cli("inspect", path, "--json").json()
    capsys.readouterr()
    tfsconvert.inspect(str(path))
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("call, error, code", [
    (lambda tmp: tfsconvert.saved_model(tmp / "nope.pb", tmp / "m"), InputError, "path-not-found"),
    (lambda tmp: tfsconvert.onnx(object(), tmp / "m"), InputError, "unsupported-format"),
    (lambda tmp: tfsconvert.inspect(tmp / "nope"), InputError, "path-not-found"),
    (lambda tmp: tfsconvert.validate(tmp, protocol="http"), InputError, "bad-option"),
    (lambda tmp: tfsconvert.pmml(tmp / "x.joblib", tmp / "m", pmml_evaluator="java"), InputError, "bad-option"),
])
def test_errors_are_raised_as_tfsconvert_errors_and_nothing_is_printed(call, error, code, tmp_path, capsys):
    with pytest.raises(error) as raised:
        call(tmp_path)
    assert isinstance(raised.value, TfsConvertError) and raised.value.code == code and raised.value.hint
    assert capsys.readouterr() == ("", "")


def test_a_parity_failure_is_check_failed(pipeline, tmp_path, capsys):
    """Zero tolerances: ONNX's float32 probabilities are not scikit-learn's float64 ones. CheckFailed (exit 1 in
    the CLI), and nothing published."""
    with pytest.raises(CheckFailed) as raised:
        tfsconvert.onnx(pipeline, tmp_path / "m", atol=0.0, rtol=0.0, samples=1024)
    assert raised.value.exit_code == 1 and "nothing was published" in raised.value.message
    assert not (tmp_path / "m").exists() and capsys.readouterr() == ("", "")


def test_the_api_names_are_the_functions_after_the_subpackages_load():
    import tfsconvert.inspect.detect  # noqa: F401 - the subpackage of the same name
    import tfsconvert.validate.runner  # noqa: F401

    assert callable(tfsconvert.inspect) and callable(tfsconvert.validate)
    assert tfsconvert.inspect.__module__ == "tfsconvert.api"
