"""`inspect` of Keras models: `.keras` archives and legacy `.h5` files (tfsconvert.inspect.keras_model)."""

from __future__ import annotations

import zipfile

import pytest

from tfsconvert.errors import InputError
from tfsconvert.inspect import keras_model

FEATURES = {"dtype": "DT_FLOAT", "shape": [-1, 4], "name": "features", "native_dtype": "float32"}
PROBABILITIES = {"dtype": "DT_FLOAT", "shape": [-1, 3], "name": "probabilities", "native_dtype": "float32"}


def assert_one_line_error(result, path, code: str) -> None:
    assert result.exit_code == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith(("I0000", "E0000", "W0000"))]
    assert lines[0].startswith(f"error [{code}]: ") and str(path) in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.fixture(scope="module")
def keras():
    keras = pytest.importorskip("keras")
    return keras


@pytest.mark.parametrize("fixture, container", [("keras_keras", "keras-v3-zip"), ("keras_h5", "hdf5")])
def test_keras_fixture(cli, fixture_path, keras, fixture, container):
    result = cli("inspect", fixture_path(fixture), "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["format"] == "keras" and data["diagnostics"] == []
    version = data["versions"][0]
    assert version["signatures"] == {}  # a Keras file is not a servable signature
    details = version["details"]
    assert details["inputs"] == {"features": FEATURES}
    assert details["outputs"] == {"probabilities": PROBABILITIES}
    assert details["container"] == container
    assert details["keras_version"] == keras.__version__
    assert details["model_class"] == "Functional" and details["model_name"] == "classifier"
    assert details["layer_count"] == 3  # features input, hidden, probabilities
    assert details["parameter_count"] == 4 * 8 + 8 + 8 * 3 + 3


def test_keras_fixture_human_output(cli, fixture_path, keras):
    result = cli("inspect", fixture_path("keras_keras"))
    assert result.exit_code == 0
    assert "format: keras" in result.stdout and "DT_FLOAT (float32)" in result.stdout
    assert "parameter_count: 67" in result.stdout and "no problems found" in result.stdout


def test_default_layer_names_are_flagged(tmp_path, keras):
    keras.backend.clear_session()  # default names restart at input_layer / dense
    inputs = keras.Input(shape=(3,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    path = tmp_path / "unnamed.keras"
    model.save(path)
    description = keras_model.describe(path)
    details = description.versions[0].details
    assert list(details["inputs"]) == ["input_layer"] and list(details["outputs"]) == ["dense"]
    assert details["outputs"]["dense"]["shape"] == [-1, 1]
    (warning,) = description.diagnostics
    assert (warning.code, warning.severity) == ("unnamed-signature-io", "warning")
    assert "input_layer, dense" in warning.message and "hidden" not in warning.message
    assert "keras.Input(shape=..., name=" in warning.hint and "--input/--output" in warning.hint


def test_two_inputs_with_integer_dtype(tmp_path, keras):
    dense = keras.Input(shape=(3,), name="dense_features")
    ids = keras.Input(shape=(2,), dtype="int64", name="ids")
    merged = keras.layers.Concatenate(name="merged")([dense, keras.layers.Activation("linear", name="as_float")(
        keras.ops.cast(ids, "float32"))])
    model = keras.Model([dense, ids], keras.layers.Dense(1, name="score")(merged))
    path = tmp_path / "two.keras"
    model.save(path)
    details = keras_model.describe(path).versions[0].details
    assert details["inputs"] == {
        "dense_features": {"dtype": "DT_FLOAT", "shape": [-1, 3], "name": "dense_features", "native_dtype": "float32"},
        "ids": {"dtype": "DT_INT64", "shape": [-1, 2], "name": "ids", "native_dtype": "int64"},
    }
    assert list(details["outputs"]) == ["score"]


def test_garbage_h5_is_rejected_before_keras_loads_it(cli, fixture_path):
    path = fixture_path("bad_garbage_h5")
    result = cli("inspect", path)
    assert_one_line_error(result, path, "corrupt-model-file")
    assert "is not a Keras model: expected a .keras zip archive or an HDF5 file, found neither" in result.stderr


def test_weights_only_h5_is_unsupported(tmp_path, keras):
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1, name="out")])
    path = tmp_path / "only.weights.h5"
    model.save_weights(path)
    with pytest.raises(InputError) as caught:
        keras_model.describe(path)
    assert caught.value.code == "unsupported-format"
    assert "no model_config attribute" in caught.value.message and "save_weights" in caught.value.hint


def test_zip_without_config_is_corrupt(cli, tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    result = cli("inspect", path, "--json")
    assert result.exit_code == 2
    assert result.json()["error"]["code"] == "corrupt-model-file"
    assert result.json()["error"]["message"] == (
        f"{path} is not a Keras model: the zip archive has no config.json (not a Keras 3 .keras file)")


def test_lambda_layer_is_not_deserialized(tmp_path, keras):
    # safe_mode keeps Keras from rebuilding (and so running) a serialized Python lambda
    inputs = keras.Input(shape=(2,), name="a")
    outputs = keras.layers.Lambda(lambda x: x * 2, name="double")(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(InputError) as caught:
        keras_model.describe(path)
    assert caught.value.code == "unsupported-format"
    assert caught.value.message == (f"{path} could not be loaded by Keras: Requested the deserialization of a "
                                    "`Lambda` layer whose `function` is a Python lambda.")
    assert "register_keras_serializable" in caught.value.hint
