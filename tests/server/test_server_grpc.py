"""The embedded server over gRPC with the official stubs (docs/tf-serving.md §5): statuses, metadata, Predict,
Classify/Regress and TF Serving's status codes (docs/tf-serving.md §3.2, §5.3). One process, fixtures only."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
import requests

from harness import config_file, grpc_stubs, started

FEATURES = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 0.0, 2.0]], dtype=np.float32)


@pytest.fixture(scope="module")
def server(fixture_path, tmp_path_factory):
    models = {"versions": fixture_path("savedmodel_base"), "examples": fixture_path("serving_examples")}
    config = config_file(tmp_path_factory.mktemp("config") / "models.config", models,
                         extra="model_version_policy { all {} } ")
    process = started(f"--model_config_file={config}", "--max_num_load_retries=0")
    yield process
    assert process.terminate() == 0, process.stderr[-2000:]


@pytest.fixture(scope="module")
def stubs(server):
    return grpc_stubs(server)


@pytest.fixture(scope="module")
def apis():
    from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                         model_pb2, predict_pb2, regression_pb2)

    return dict(classification=classification_pb2, metadata=get_model_metadata_pb2, status=get_model_status_pb2,
                model=model_pb2, predict=predict_pb2, regression=regression_pb2)


def spec(apis, name="versions", version=None, signature_name=""):
    model_spec = apis["model"].ModelSpec(name=name, signature_name=signature_name)
    if version is not None:
        model_spec.version.value = version
    return model_spec


def predict_request(apis, inputs=None, **spec_args):
    import tensorflow as tf

    request = apis["predict"].PredictRequest(model_spec=spec(apis, **spec_args))
    for alias, value in (inputs if inputs is not None else {"features": FEATURES}).items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return request


def test_status_spec_5_2(stubs, apis):
    response = stubs[1].GetModelStatus(apis["status"].GetModelStatusRequest(model_spec=spec(apis)))
    assert [(s.version, apis["status"].ModelVersionStatus.State.Name(s.state), s.status.error_code)
            for s in response.model_version_status] == [(2, "AVAILABLE", 0), (1, "AVAILABLE", 0)]


def test_metadata_spec_5_2(stubs, apis):
    response = stubs[0].GetModelMetadata(apis["metadata"].GetModelMetadataRequest(
        model_spec=spec(apis), metadata_field=["signature_def"]))
    signatures = apis["metadata"].SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    default = signatures.signature_def["serving_default"]
    assert default.inputs["features"].dtype == 1  # DT_FLOAT
    assert [d.size for d in default.inputs["features"].tensor_shape.dim] == [-1, 4]
    assert response.model_spec.name == "versions" and response.model_spec.version.value == 2


def test_predict_spec_5_2_matches_rest(server, stubs, apis):
    response = stubs[0].Predict(predict_request(apis))
    output = response.outputs["probabilities"]
    assert list(output.float_val) and not output.tensor_content  # typed fields, as TF Serving writes them
    values = np.asarray(output.float_val, dtype=np.float32).reshape([d.size for d in output.tensor_shape.dim])
    assert values.shape == (2, 3) and np.allclose(values.sum(axis=1), 1.0, atol=1e-6)
    assert (response.model_spec.name, response.model_spec.version.value, response.model_spec.signature_name) == (
        "versions", 2, "serving_default")
    rest = requests.post(server.url("/v1/models/versions:predict"),
                         data=json.dumps({"instances": FEATURES.tolist()}), timeout=30).json()["predictions"]
    assert np.allclose(values, rest, atol=1e-6)


def test_predict_specific_version_and_strings(stubs, apis):
    assert stubs[0].Predict(predict_request(apis, version=1)).model_spec.version.value == 1
    text = np.array([b"abc", "héllo".encode()], dtype=object)
    response = stubs[0].Predict(predict_request(apis, {"text": text}, name="examples"))
    assert list(response.outputs["length"].int_val) == [3, 6]
    assert list(response.outputs["echo_bytes"].string_val) == list(text)


PREDICT_ERRORS = [
    ("7.33 unknown model", dict(name="wrong"), None, "NOT_FOUND", "Servable not found for request: Latest(wrong)"),
    ("7.34 unknown version", dict(version=7), None, "NOT_FOUND", "Servable not found for request: Specific(versions, 7)"),
    ("7.35 unknown signature", dict(signature_name="nope"), None, "FAILED_PRECONDITION",
     'Serving signature key "nope" not found.'),
    ("3.2 extra input", {}, {"features": FEATURES, "bogus": FEATURES}, "INVALID_ARGUMENT",
     "input size does not match signature: 2!=1 len({bogus,features}) != len({features}). Sent extra: {bogus}. "
     "Missing but required: {}."),
    ("3.2 wrong alias", {}, {"bogus": FEATURES}, "INVALID_ARGUMENT",
     "Signature input alias: features(feed name: serving_default_features:0) not found in request and no default "
     "value provided. Inputs expected to be in the request {bogus}, or default input alias set: "),
    ("3.2 dtype", {}, {"features": np.array([[b"a"] * 4], dtype=object)}, "INVALID_ARGUMENT",
     "Expects arg[0] to be float but string is provided"),
    ("3.2 empty name", dict(name=""), None, "INVALID_ARGUMENT", "ModelSpec has no name specified."),
]


@pytest.mark.parametrize("case", PREDICT_ERRORS, ids=[case[0] for case in PREDICT_ERRORS])
def test_predict_error_spec_5_3(stubs, apis, case):
    _, spec_args, inputs, code, message = case
    with pytest.raises(grpc.RpcError) as caught:
        stubs[0].Predict(predict_request(apis, inputs, **spec_args))
    assert (caught.value.code().name, caught.value.details()) == (code, message)


def test_missing_model_spec_and_status_errors_spec_5_3(stubs, apis):
    with pytest.raises(grpc.RpcError) as caught:
        stubs[0].Predict(apis["predict"].PredictRequest())
    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    with pytest.raises(grpc.RpcError) as caught:
        stubs[1].GetModelStatus(apis["status"].GetModelStatusRequest(model_spec=spec(apis, name="wrong")))
    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.NOT_FOUND,
                                                             "Could not find any versions of model wrong")
    with pytest.raises(grpc.RpcError) as caught:
        stubs[0].GetModelMetadata(apis["metadata"].GetModelMetadataRequest(model_spec=spec(apis),
                                                                         metadata_field=["nope"]))
    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                             "Metadata field nope is not supported")


def _input(apis, xs):
    from tensorflow.core.example import example_pb2, feature_pb2

    from tensorflow_serving.apis import input_pb2

    examples = [example_pb2.Example(features=feature_pb2.Features(feature={
        "x": feature_pb2.Feature(float_list=feature_pb2.FloatList(value=x))})) for x in xs]
    return input_pb2.Input(example_list=input_pb2.ExampleList(examples=examples))


def test_classify_and_regress_match_rest_spec_5_2(server, stubs, apis):
    xs = [[1.0, 2.0], [0.5, -1.5]]
    classified = stubs[0].Classify(apis["classification"].ClassificationRequest(
        model_spec=spec(apis, name="examples", signature_name="classify"), input=_input(apis, xs)))
    rest = requests.post(server.url("/v1/models/examples:classify"), timeout=30, data=json.dumps(
        {"signature_name": "classify", "examples": [{"x": x} for x in xs]})).json()["results"]
    assert [[[c.label, pytest.approx(c.score, abs=1e-6)] for c in r.classes]
            for r in classified.result.classifications] == rest
    regressed = stubs[0].Regress(apis["regression"].RegressionRequest(
        model_spec=spec(apis, name="examples", signature_name="regress"), input=_input(apis, xs)))
    assert [r.value for r in regressed.result.regressions] == [3.0, -1.0]
    assert regressed.model_spec.signature_name == "regress" and regressed.model_spec.version.value == 1


def test_classify_errors_spec_5_2(stubs, apis):
    with pytest.raises(grpc.RpcError) as caught:
        stubs[0].Classify(apis["classification"].ClassificationRequest(
            model_spec=spec(apis, name="examples", signature_name="classify")))
    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.")
