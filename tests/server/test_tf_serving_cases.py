"""TF Serving's own test cases, ported as expectations on our server (their code is not used).

Each test names the case it ports: `json_tensor_test.cc` (JSON <-> tensors, in-process),
`http_rest_api_util_test.cc` and `http_rest_api_handler_test.cc` (URLs, statuses and errors, over
REST against a server process), `tensorflow_model_server_test.py` (the binary's end-to-end
checks). Cases that need TF Serving's half_plus_two test model or features we do not have are left
out; the ones we still answer differently are marked xfail with the reason.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import requests

from harness import config_file, started
from tfsconvert import tfproto
from tfsconvert.server import examples, rest, rest_outputs
from tfsconvert.server.status import ServingError

pytestmark = pytest.mark.usefixtures("pure")  # the C accelerators and their pure-Python twins

# ---------------------------------------------------------------------------------------------
# json_tensor_test.cc: predict requests (FillPredictRequestFromJson)


def fill(body: str, inputs: dict[str, str]) -> dict[str, np.ndarray]:
    document, _ = rest.request_document(body.encode())
    return rest.predict_tensors(document, inputs)


def error(body: str, inputs: dict[str, str]) -> str:
    with pytest.raises(ServingError) as raised:
        fill(body, inputs)
    assert raised.value.code == "INVALID_ARGUMENT"
    return raised.value.message


def assert_same(array: np.ndarray, dtype, values) -> None:
    expected = np.asarray(values, dtype=dtype)
    assert array.dtype == expected.dtype and array.shape == expected.shape
    np.testing.assert_array_equal(array, expected)


def test_single_unnamed_tensor():  # JsontensorTest.SingleUnnamedTensor
    assert_same(fill('{"instances": [[1,2],[3,4],[5,6]]}', {"default": "DT_INT32"})["default"], np.int32,
         [[1, 2], [3, 4], [5, 6]])


def test_deeply_nested_well_formed():  # JsontensorTest.DeeplyNestedWellFormed
    body = '{"instances":[1], "nested":' + "[" * 500_000 + "]" * 500_000 + "}"
    assert_same(fill(body, {"default": "DT_INT32"})["default"], np.int32, [1])


def test_deeply_nested_malformed():  # JsontensorTest.DeeplyNestedMalformed
    body = '{"signature_name":' + "[" * 500_000 + "]" * 500_000 + "}"
    assert "key must be a string value" in error(body, {"default": "DT_INT32"})


def test_mixed_input_for_float_tensor():  # JsontensorTest.MixedInputForFloatTensor
    assert_same(fill('{"instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]}', {"default": "DT_FLOAT"})["default"], np.float32,
         [1, 2.0, 3, 4, 5.003, 0.007, 0.0])


def test_mixed_input_for_double_tensor():  # JsontensorTest.MixedInputForDoubleTensor
    assert_same(fill('{"instances": [1.0, 2, 3, 4, 0.662, 0, 0.0]}', {"default": "DT_DOUBLE"})["default"], np.float64,
         [1.0, 2, 3, 4, 0.662, 0, 0.0])


def test_float_tensor_with_precision_loss():  # JsontensorTest.FloatTensorWithPrecisionLoss
    for literal in ("1435774380", "1435774380.0"):
        assert_same(fill(f'{{"instances": [{literal}]}}', {"default": "DT_FLOAT"})["default"], np.float32, [1435774380])


def test_float_tensor_that_exceeds_max_returns_inf():  # JsontensorTest.FloatTensorThatExceedsMaxReturnsInf
    for value, expected in ((sys.float_info.max, math.inf), (-sys.float_info.max, -math.inf)):
        with np.errstate(over="ignore"):
            assert_same(fill(f'{{"instances": [{value!r}]}}', {"default": "DT_FLOAT"})["default"], np.float32, [expected])


def test_float_tensor_that_exceeds_min_returns_zero():  # JsontensorTest.FloatTensorThatExceedsMinReturnsZero
    for value in (sys.float_info.min, -sys.float_info.min):
        tensor = fill(f'{{"instances": [{value!r}]}}', {"default": "DT_FLOAT"})["default"]
        assert_same(tensor, np.float32, [0.0])
        assert math.copysign(1, tensor[0]) == math.copysign(1, value)


def test_single_unnamed_tensor_with_signature():  # JsontensorTest.SingleUnnamedTensorWithSignature
    body = '{"signature_name": "predict_images", "instances": [[1,2]]}'
    assert rest.request_document(body.encode())[1] == "predict_images"
    assert_same(fill(body, {"default": "DT_INT32"})["default"], np.int32, [[1, 2]])


def test_tensor_from_non_null_terminated_buffer():  # JsontensorTest.TensorFromNonNullTerminatedBuffer
    # Their buffer ends before a trailing 'X'; here the bytes after the document are ignored, as rapidjson does.
    assert_same(fill('{"instances": [[1,2],[3,4],[5,6]]}X', {"default": "DT_INT32"})["default"], np.int32,
         [[1, 2], [3, 4], [5, 6]])


def test_single_unnamed_tensor_base64_scalars():  # JsontensorTest.SingleUnnamedTensorBase64Scalars
    tensor = fill('{"instances": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]}', {"default": "DT_STRING"})["default"]
    assert tensor.shape == (2,) and tensor.tolist() == [b"hello", b"world"]


def test_single_unnamed_tensor_base64_lists():  # JsontensorTest.SingleUnnamedTensorBase64Lists
    tensor = fill('{"instances": [[{"b64": "aGVsbG8="}], [{"b64": "d29ybGQ="}]]}',
                  {"default": "DT_STRING"})["default"]
    assert tensor.shape == (2, 1) and tensor.ravel().tolist() == [b"hello", b"world"]


def test_single_named_tensor_base64():  # JsontensorTest.SingleNamedTensorBase64
    tensor = fill('{"instances": [{"default": [[{"b64": "aGVsbG8="}], [{"b64": "d29ybGQ="}]]}]}',
                  {"default": "DT_STRING"})["default"]
    assert tensor.shape == (1, 2, 1) and tensor.ravel().tolist() == [b"hello", b"world"]


MULTIPLE = {"int_tensor": "DT_INT32", "str_tensor": "DT_STRING", "float_tensor": "DT_FLOAT",
            "dbl_tensor": "DT_DOUBLE"}


def test_multiple_named_tensor():  # JsontensorTest.MultipleNamedTensor
    tensors = fill("""{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"], "float_tensor": [1.0, NaN],
         "dbl_tensor": [NaN]},
        {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"], "float_tensor": [2.0, Infinity],
         "dbl_tensor": [2.0]}]}""", MULTIPLE)
    assert_same(tensors["int_tensor"], np.int32, [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]])
    assert tensors["str_tensor"].tolist() == [[b"foo", b"bar"], [b"baz", b"bat"]]
    assert_same(tensors["float_tensor"], np.float32, [[1.0, np.nan], [2.0, np.inf]])
    assert_same(tensors["dbl_tensor"], np.float64, [[np.nan], [2.0]])


def test_single_unnamed_tensor_columnar_format():  # JsontensorTest.SingleUnnamedTensorColumnarFormat
    for body in ('{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]]}}', '{"inputs": [[[1,2],[3,4],[5,6]]]}'):
        assert_same(fill(body, {"int_tensor": "DT_INT32"})["int_tensor"], np.int32, [[[1, 2], [3, 4], [5, 6]]])


def test_multiple_named_tensor_columnar_format():  # JsontensorTest.MultipleNamedTensorColumnarFormat
    tensors = fill('{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]], "str_tensor": ["foo", "bar"], '
                   '"bin_tensor": {"b64": "aGVsbG8="}}}',
                   {"int_tensor": "DT_INT32", "str_tensor": "DT_STRING", "bin_tensor": "DT_STRING"})
    assert_same(tensors["int_tensor"], np.int32, [[[1, 2], [3, 4], [5, 6]]])
    assert tensors["str_tensor"].tolist() == [b"foo", b"bar"]
    assert tensors["bin_tensor"].shape == () and tensors["bin_tensor"].item() == b"hello"


@pytest.mark.parametrize("body, expected", [
    ("", "document is empty"),
    ('{"signature_name": 5, "instances": [[1,2],[3,4],[5,6,7]]}', "must be a string value"),
    ('{"instances": [[1,2],[3,4],[5,6,7]], "inputs": [[1,2],[3,4],[5,6,7]]}', "Not formatted correctly"),
    ('{"instances": [[1,2],[3,4],[5,6,7]]}', "Expecting tensor size"),
    ('{"instances": [[1,2],[3,4],[[5,6]]]}', "Expecting shape"),
    ('{"instances": [1, [1]]}', "Expecting shape"),
    ('{"instances": [[1,2],["a", "b"]]}', "not of expected type"),
])
def test_single_unnamed_tensor_errors(body, expected):  # JsontensorTest.SingleUnnamedTensorErrors
    assert expected in error(body, {"default": "DT_INT32"})


@pytest.mark.parametrize("rows, inputs, expected", [
    ('{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]}, '
     '{"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"]}', None, "Expecting shape"),
    ('{"int_tensor": [[1,2],[3,4],[5,6],[7,8]], "str_tensor": ["foo", "bar"]}, '
     '{"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"]}', None, "Expecting tensor size"),
    ('{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]}, [1, 20, 30], '
     '{"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"]}', None, "Expecting object but got list"),
    ('["baz", "bar"], {"str_tensor": ["baz", "bat"]}', {"str_tensor": "DT_STRING"},
     "Expecting value/list but got object"),
])
def test_multiple_named_tensor_errors(rows, inputs, expected):  # JsontensorTest.MultipleNamedTensorErrors
    assert expected in error(f'{{"instances": [{rows}]}}', inputs or {"int_tensor": "DT_INT32",
                                                                        "str_tensor": "DT_STRING"})


# ---------------------------------------------------------------------------------------------
# json_tensor_test.cc: responses (MakeJsonFromTensors, ...)


def numbers_as_text(text: bytes):
    """The document with every number kept as its text (their CompareJsonAllValuesAsStrings)."""
    return json.loads(text, parse_float=str, parse_int=str, parse_constant=str)


INT_2x3x2 = np.array([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32)


def test_from_json_single_tensor():  # JsontensorTest.FromJsonSingleTensor
    expected = INT_2x3x2.tolist()
    assert json.loads(rest_outputs.row_response({"int_tensor": INT_2x3x2}, {"int_tensor": "DT_INT32"})) == {
        "predictions": expected}
    assert json.loads(rest_outputs.columnar_response({"int_tensor": INT_2x3x2}, {"int_tensor": "DT_INT32"})) == {
        "outputs": expected}


def test_from_json_single_scalar_tensor():  # JsontensorTest.FromJsonSingleScalarTensor
    tensor = {"int_tensor": np.arange(1, 6, dtype=np.int32)}
    assert json.loads(rest_outputs.row_response(tensor, {"int_tensor": "DT_INT32"})) == {"predictions": [1, 2, 3, 4, 5]}
    assert json.loads(rest_outputs.columnar_response(tensor, {"int_tensor": "DT_INT32"})) == {"outputs": [1, 2, 3, 4, 5]}


def test_from_json_single_bytes_tensor():  # JsontensorTest.FromJsonSingleBytesTensor
    tensor = np.array([[b"hello", b"world"], [b"tf", b"serving"]], dtype=object)
    assert json.loads(rest_outputs.row_response({"str_tensor_bytes": tensor}, {"str_tensor_bytes": "DT_STRING"})) == {
        "predictions": [[{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}], [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]]}


# JsontensorTest.FromJsonSingleFloatTensorSixDigitPrecision
def test_from_json_single_float_tensor_six_digit_precision():
    tensor = np.array([[9000000, 999999, 0.50000], [.0003, .00003, 555557.5]], np.float32)
    assert numbers_as_text(rest_outputs.row_response({"float_tensor": tensor}, {"float_tensor": "DT_FLOAT"})) == {
        "predictions": [["9e+06", "999999.0", "0.5"], ["0.0003", "3e-05", "555557.5"]]}


def test_from_json_single_float_tensor_non_finite():  # JsontensorTest.FromJsonSingleFloatTensorNonFinite
    tensor = np.array([[np.nan, np.inf], [3, -np.inf]], np.float32)
    assert numbers_as_text(rest_outputs.row_response({"float_tensor": tensor}, {"float_tensor": "DT_FLOAT"})) == {
        "predictions": [["NaN", "Infinity"], ["3.0", "-Infinity"]]}


def test_from_json_single_tensor_errors():  # JsontensorTest.FromJsonSingleTensorErrors (bar the empty map)
    with pytest.raises(ServingError, match="tensor type: complex64"):
        rest_outputs.row_response({"tensor": np.array([1 + 2j], np.complex64)}, {"tensor": "DT_COMPLEX64"})
    with pytest.raises(ServingError, match="no shape information"):
        rest_outputs.row_response({"tensor": np.int32(1)}, {"tensor": "DT_INT32"})


def test_from_json_multiple_named_tensors():  # JsontensorTest.FromJsonMultipleNamedTensors
    arrays = {"double_scalar_tensor": np.array([8.0, 9.0]), "float_tensor": np.array([[1.0], [2.0]], np.float32),
              "int_tensor": INT_2x3x2, "str_tensor": np.array([["foo", "bar"], ["baz", "bat"]], dtype=object),
              "str_tensor_bytes": np.array([[b"hello", b"world"], [b"tf", b"serving"]], dtype=object)}
    dtypes = {"double_scalar_tensor": "DT_DOUBLE", "float_tensor": "DT_FLOAT", "int_tensor": "DT_INT32",
              "str_tensor": "DT_STRING", "str_tensor_bytes": "DT_STRING"}
    b64 = [[{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}], [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]]
    assert json.loads(rest_outputs.row_response(arrays, dtypes)) == {"predictions": [
        {"double_scalar_tensor": 8.0, "float_tensor": [1.0], "int_tensor": [[1, 2], [3, 4], [5, 6]],
         "str_tensor": ["foo", "bar"], "str_tensor_bytes": b64[0]},
        {"double_scalar_tensor": 9.0, "float_tensor": [2.0], "int_tensor": [[7, 8], [9, 0], [1, 2]],
         "str_tensor": ["baz", "bat"], "str_tensor_bytes": b64[1]}]}
    assert json.loads(rest_outputs.columnar_response(arrays, dtypes)) == {"outputs": {
        "double_scalar_tensor": [8.0, 9.0], "float_tensor": [[1.0], [2.0]], "int_tensor": INT_2x3x2.tolist(),
        "str_tensor": [["foo", "bar"], ["baz", "bat"]], "str_tensor_bytes": b64}}


def test_from_json_multiple_named_tensors_errors():  # JsontensorTest.FromJsonMultipleNamedTensorsErrors
    with pytest.raises(ServingError, match="inconsistent batch size"):
        rest_outputs.row_response({"int_tensor": np.zeros((2, 3), np.int32),
                                "str_tensor": np.array([["foo", "bar", "baz"]], dtype=object)},
                               {"int_tensor": "DT_INT32", "str_tensor": "DT_STRING"})


def test_from_json_single_zero_batch_tensor():  # JsontensorTest.FromJsonSingleZeroBatchTensor
    assert json.loads(rest_outputs.row_response({"int_tensor": np.zeros((0, 2), np.int32)},
                                             {"int_tensor": "DT_INT32"})) == {"predictions": []}


def test_from_json_multiple_zero_batch_tensors():  # JsontensorTest.FromJsonMultipleZeroBatchTensors
    arrays = {"str_tensor": np.zeros((0, 1, 2), dtype=object), "float_tensor": np.zeros((0, 3, 4), np.float32)}
    assert json.loads(rest_outputs.row_response(arrays, {"str_tensor": "DT_STRING", "float_tensor": "DT_FLOAT"})) == {
        "predictions": []}


def test_from_json_multiple_zero_batch_tensors_errors():  # JsontensorTest.FromJsonMultipleZeroBatchTensorsErrors
    with pytest.raises(ServingError, match="inconsistent batch size"):
        rest_outputs.row_response({"int_tensor": np.zeros((0, 2), np.int32),
                                "str_tensor": np.array([["foo", "bar"]], dtype=object)},
                               {"int_tensor": "DT_INT32", "str_tensor": "DT_STRING"})


# ---------------------------------------------------------------------------------------------
# json_tensor_test.cc: classify and regress (ClassifyRegressRequestTest is typed over both requests;
# ours read them alike, so each case runs once)


def features(serialized: bytes) -> dict:
    example = tfproto.message_class("Example")()
    example.ParseFromString(serialized)
    found = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        found[name] = (kind, list(getattr(feature, kind).value))
    return found


def test_request_no_context():  # ClassifyRegressRequestTest.RequestNoContext
    document, _ = rest.request_document(b'{"examples": [{"names": ["foo", "bar"], "ratings": [8.0, 9.0], "age": 20},'
                                        b' {"names": ["baz"], "ratings": 6.0}]}')
    assert [features(example) for example in examples.from_json(document)] == [
        {"names": ("bytes_list", [b"foo", b"bar"]), "ratings": ("float_list", [8.0, 9.0]),
         "age": ("int64_list", [20])},
        {"names": ("bytes_list", [b"baz"]), "ratings": ("float_list", [6.0])}]


def test_request_with_context_and_signature():  # ClassifyRegressRequestTest.RequestWithContextAndSignature
    document, signature_name = rest.request_document(b"""{"signature_name": "custom_signture",
        "context": {"query": "pizza", "location": ["sfo"]},
        "examples": [{"names": ["foo", "bar"], "ratings": [8.0, 9.0, NaN, Infinity], "age": 20},
                     {"names": ["baz", {"b64": "aGVsbG8="}], "ratings": 6.0, "intboolmix": [1, true, false]},
                     {"names": "bar", "ratings": -Infinity}]}""")
    assert signature_name == "custom_signture"
    context = {"query": ("bytes_list", [b"pizza"]), "location": ("bytes_list", [b"sfo"])}
    found = [features(example) for example in examples.from_json(document)]  # context merged into each
    ratings = found[0].pop("ratings")
    assert ratings[0] == "float_list" and ratings[1][:2] == [8.0, 9.0] and math.isnan(ratings[1][2])
    assert ratings[1][3] == math.inf
    assert found == [
        {**context, "names": ("bytes_list", [b"foo", b"bar"]), "age": ("int64_list", [20])},
        {**context, "names": ("bytes_list", [b"baz", b"hello"]), "ratings": ("float_list", [6.0]),
         "intboolmix": ("int64_list", [1, 1, 0])},
        {**context, "names": ("bytes_list", [b"bar"]), "ratings": ("float_list", [-math.inf])}]


@pytest.mark.parametrize("body, expected", [
    ('{"signature_name": ["hello"], "examples": [{"names": ["foo", "bar"]}]}', "'signature_name' key must be a string"),
    ('{"context": [{"names": ["foo", "bar"]}]}', "Example must be JSON object"),
    ('{"examples": {"names": ["foo", "bar"]}}', "list/array"),
    ('{"examples": [[{"names": ["foo", "bar"]}]]}', "Example must be JSON object"),
    ('{"examples": [{"names": [10, null]}]}', "names has element with unexpected JSON type: Null"),
    ('{"examples": [{"names": [10, 10.0]}]}', "feature: names expecting type: int64"),
    ('{"examples": [{"names": [10, {"test": 10}]}]}', "names has element with unexpected JSON type: Object"),
    ('{"examples": [{"names": [[10], 20]}]}', "names has element with unexpected JSON type: Array"),
    ('{"examples": [{"names": [20, 18446744073709551603]}]}', "Only int64_t is supported"),
])
def test_json_errors(body, expected):  # ClassifyRegressRequestTest.JsonErrors
    with pytest.raises(ServingError) as raised:
        examples.from_json(rest.request_document(body.encode())[0])
    assert raised.value.code == "INVALID_ARGUMENT" and expected in raised.value.message


def test_json_from_classification_result():  # ClassifyRegressnResultTest.JsonFromClassificationResult
    scores = np.array([[0.2, 0.7, 0.1], [0.7, 0.1, 0.2]], np.float32).tolist()
    results = [list(zip(["car", "bike", "bus"], row)) for row in scores]
    assert numbers_as_text(rest_outputs.classify_response(results)) == {"results": [
        [["car", "0.2"], ["bike", "0.7"], ["bus", "0.1"]], [["car", "0.7"], ["bike", "0.1"], ["bus", "0.2"]]]}


def test_json_from_regression_result():  # ClassifyRegressnResultTest.JsonFromRegressionResult
    values = np.array([0.2, 0.9, 1.0], np.float32).tolist()
    assert numbers_as_text(rest_outputs.regress_response(values)) == {"results": ["0.2", "0.9", "1.0"]}


# ClassifyRegressnResultTest.JsonFromRegressionResultWithNonFinite
def test_json_from_regression_result_with_non_finite():
    values = [float(np.float32(0.2)), math.inf, 1.0, -math.inf, math.nan]
    assert numbers_as_text(rest_outputs.regress_response(values)) == {
        "results": ["0.2", "Infinity", "1.0", "-Infinity", "NaN"]}


@pytest.mark.parametrize("message", ['Bad key: "key"', "Bad key: 'key'"])
def test_status_error(message):  # MakeJsonFromTensors.StatusError
    def fail():
        raise ServingError("INVALID_ARGUMENT", message)

    status, body, _ = rest.replying(fail)
    assert (status, json.loads(body)) == (400, {"error": message})


# ---------------------------------------------------------------------------------------------
# Parser behaviour these tests rely on (rapidjson's): the first of duplicate keys, numbers beyond
# a double, and TF Serving's quoting of JSON in its messages (JsonValueToDebugString)


def test_the_first_of_duplicate_keys_wins():
    document, signature_name = rest.request_document(b'{"signature_name": "a", "signature_name": "b", '
                                                     b'"instances": [1], "instances": [[1, 2]]}')
    assert signature_name == "a" and document["instances"] == [1]


@pytest.mark.parametrize("body, offset", [(b'{"instances": [1e400]}', 15), (b'{"instances": [-1e400]}', 15),
                                          (b'{"instances": [1' + b"0" * 400 + b"]}", 15)])
def test_numbers_beyond_a_double_are_number_too_big(body, offset):
    with pytest.raises(ServingError) as raised:
        rest.request_document(body)
    assert raised.value.message == f"JSON Parse error: Number too big to be stored in double. at offset: {offset}"


def test_json_in_messages_is_quoted_as_rapidjsons_pretty_writer_writes_it():
    assert examples.debug({"a": [1, 2.5, {"b": None}], "c": {}, "d": "x\u00e9\n"}) == (
        '{\n    "a": [1, 2.5, {\n            "b": null\n        }],\n    "c": {},\n    "d": "x\u00e9\\n"\n}')
    assert examples.debug([1e30, 1.5e-7, 1e21, 123456789012.0, -0.0]) == "[1e30, 1.5e-7, 1e21, 123456789012.0, -0.0]"
    assert len(examples.debug(list(range(1000)))) < 260  # cut off after 256 bytes
    message = error('{"instances": [[1,2]], "inputs": [[1,2]]}', {"default": "DT_INT32"})
    assert message.startswith('JSON Value: {\n    "instances": [[1, 2]],\n    "inputs": [[1, 2]]\n} Not formatted')


def test_classify_checks_the_context_before_the_examples():
    with pytest.raises(ServingError) as raised:
        examples.from_json({"context": [1]})
    assert raised.value.message == "Example must be JSON object but got JSON Array"
    with pytest.raises(ServingError) as raised:
        examples.from_json({"signature_name": "r"})  # the text says classify for Regress too
    assert raised.value.message == ('JSON Value: {\n    "signature_name": "r"\n} When method is classify, key '
                                    "'examples' is expected and was not found")


# ---------------------------------------------------------------------------------------------
# http_rest_api_handler_test.cc, http_rest_api_util_test.cc, tensorflow_model_server_test.py:
# over REST against a server process


@pytest.fixture(scope="module")
def server(fixture_path, tmp_path_factory, pure):
    config = config_file(tmp_path_factory.mktemp("config") / "models.config",
                         {"versions": fixture_path("savedmodel_base"), "examples": fixture_path("serving_examples")})
    text = config.read_text().replace('name: "versions" base_path', 'name: "versions" model_version_policy '
                                      '{ all {} } version_labels { key: "stable" value: 1 } base_path')
    config.write_text(text)
    monitoring = config.parent / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }\n")
    process = started(f"--model_config_file={config}", "--max_num_load_retries=0",
                      "--allow_version_labels_for_unavailable_models", f"--monitoring_config_file={monitoring}")
    yield process
    assert process.terminate() == 0, process.stderr[-2000:]


def call(server, method: str, path: str, body: str = "") -> tuple[int, dict | str]:
    response = requests.request(method, server.url(path), data=body.encode(), timeout=30)
    is_json = response.headers.get("Content-Type") == "application/json"
    return response.status_code, response.json() if is_json else response.text


def test_k_path_regex(server):  # HttpRestApiHandlerTest.kPathRegex
    assert call(server, "GET", "/v1/models")[0] == 400  # ours: the API answers it (Missing model name)
    for path in ("/statuspage", "/index"):
        status, body = call(server, "GET", path)
        assert status == 404 and "<TITLE>404 Not Found</TITLE>" in body


@pytest.mark.parametrize("method, path, expected", [
    ("GET", "/v1/foo", "Malformed request"),
    ("POST", "/v1/foo", "Malformed request"),
    ("GET", "/v1/models", "Missing model name"),
    ("GET", "/v1/models/debug/model_name", "Malformed request"),
    ("POST", "/v1/models", "Malformed request"),
    ("GET", "/v1/models/foo:predict", "Malformed request"),
    ("GET", "/v1/models/foo/version/50:predict", "Malformed request"),
    ("POST", "/v1/models/foo/version/50:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/HELLO:regress", "Malformed request"),
    ("POST", "/v1/models/foo/metadata", "Malformed request"),
    ("POST", "/v1/models/foo/label/some_label:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/50/labels/some_label:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/some_label:regress", "Malformed request"),
])
def test_unsupported_api_calls(server, method, path, expected):  # HttpRestApiHandlerTest.UnsupportedApiCalls
    status, body = call(server, method, path)
    assert status == 400 and expected in body["error"]


def test_unsupported_api_calls_uint64_version(server):  # HttpRestApiHandlerTest.UnsupportedApiCalls (uint64 max)
    # Their status is INVALID_ARGUMENT "Failed to convert version"; the handler returns it before it
    # writes the error JSON, so over HTTP it is a 400 with an empty body.
    response = requests.post(server.url(f"/v1/models/foo/versions/{2 ** 64 - 1}:regress"), timeout=30)
    assert (response.status_code, response.content) == (400, b"")


@pytest.mark.parametrize("path", ["/v1/models/foo:predict", "/v1/models/foo/versions/50:predict",
                                  "/v1/models/versions/versions/99:predict"])
def test_predict_model_name_version_errors(server, path):  # HttpRestApiHandlerTest.PredictModelNameVersionErrors
    status, body = call(server, "POST", path, '{ "instances": [1] }')
    assert status == 404 and body["error"].startswith("Servable not found for request: ")


@pytest.mark.parametrize("path, body, expected", [
    ("/v1/models/versions:predict", "", "JSON Parse error: The document is empty"),
    ("/v1/models/versions:predict", "instances = [1, 2]", "JSON Parse error: Invalid value"),
    ("/v1/models/versions:predict", '{ "instances": ["x", "y"] }', "not of expected type: float"),
    ("/v1/models/versions/labels/nonexistent:predict", '{ "instances": ["x", "y"] }',
     "Unrecognized servable version label"),
    ("/v1/models/versions:predict", '{ "signature_name": 100 }', "'signature_name' key must be a string value."),
])
def test_predict_request_errors(server, path, body, expected):  # HttpRestApiHandlerTest.PredictRequestErrors
    status, answer = call(server, "POST", path, body)
    assert status == 400 and expected in answer["error"]


def test_get_status(server):  # HttpRestApiHandlerTest.GetStatus, tensorflow_model_server_test.testGetStatusREST
    ok = {"state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    assert call(server, "GET", "/v1/models/examples") == (200, {"model_version_status": [{"version": "1", **ok}]})
    assert call(server, "GET", "/v1/models/versions/versions/1") == (
        200, {"model_version_status": [{"version": "1", **ok}]})
    assert call(server, "GET", "/v1/models/versions/labels/stable") == (
        200, {"model_version_status": [{"version": "2", **ok}, {"version": "1", **ok}]})  # a label is ignored here


SPECIALS = "!#$%&'()*+,/:;=?@[]"
ESCAPED = "%21%23%24%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D"


def test_parse_model_info_for_get(server):  # HttpRestApiUtilTest.TestParseModelInfoForGet
    assert call(server, "GET", f"/v1/models/modelname{ESCAPED}")[1]["error"] == (
        f"Could not find any versions of model modelname{SPECIALS}")
    assert call(server, "GET", "/v1/models/modelname/versions/99")[1]["error"] == (
        "Could not find version 99 of model modelname")
    assert call(server, "GET", f"/v1/models/modelname/labels/latest{ESCAPED}/metadata")[1]["error"] == (
        f"Unrecognized servable version label: latest{SPECIALS}")
    for path in ("/v1/foo", "/v1/models/foo:predict", "/v1/models/foo/version/50:predict"):
        assert call(server, "GET", path)[1]["error"].startswith("Malformed request")


def test_parse_model_info_for_post(server):  # HttpRestApiUtilTest.TestParseModelInfoForPost
    body = '{"instances": [[1, 2, 3, 4]]}'
    assert call(server, "POST", f"/v1/models/modelname{ESCAPED}:predict", body)[1]["error"] == (
        f"Servable not found for request: Latest(modelname{SPECIALS})")
    assert call(server, "POST", "/v1/models/modelname/versions/99:predict", body)[1]["error"] == (
        "Servable not found for request: Specific(modelname, 99)")
    assert call(server, "POST", f"/v1/models/versions/labels/latest{ESCAPED}:predict", body)[1]["error"] == (
        f"Unrecognized servable version label: latest{SPECIALS}")
    for path in ("/v1/foo", "/v1/models", "/v1/models/foo/version/50:predict", "/v1/models/foo:bar"):
        assert call(server, "POST", path, body)[1]["error"].startswith("Malformed request")


def test_regress_rest_answers_at_float_precision(server):  # tensorflow_model_server_test.testRegressREST (form)
    response = requests.post(server.url("/v1/models/examples:regress"), timeout=30,
                             data=b'{"signature_name": "regress", "examples": [{"x": [0.1, 0.2]}]}')
    assert response.status_code == 200
    for token in json.loads(response.text, parse_float=str)["results"]:
        assert len(token.replace("-", "").replace(".", "").lstrip("0")) <= 9  # a float's digits, not a double's


def test_prometheus_endpoint(server):  # tensorflow_model_server_test.testPrometheusEndpoint
    assert "# TYPE" in call(server, "GET", "/monitoring/prometheus/metrics")[1]


def _metric_values(server) -> dict[str, float]:
    status, page = call(server, "GET", "/monitoring/prometheus/metrics")
    assert status == 200
    assert "# TYPE :tensorflow:serving:request_count counter" in page.splitlines()
    assert "# TYPE :tensorflow:serving:request_latency histogram" in page.splitlines()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in page.splitlines()
            if not line.startswith("#")}


def test_prometheus_counts_requests_and_latencies_per_model(server):
    """util.cc's request_count{model_name,status} and request_latency{model_name,API,entrypoint}."""
    from tensorflow_serving.apis import predict_pb2

    from harness import grpc_stubs
    from tfsconvert.server.tensors import to_proto

    before = _metric_values(server)
    body = '{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
    for _ in range(3):
        assert call(server, "POST", "/v1/models/versions/versions/1:predict", body)[0] == 200
    assert call(server, "POST", "/v1/models/nope:predict", body)[0] == 404
    prediction, _ = grpc_stubs(server)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "versions"
    request.inputs["features"].MergeFromString(to_proto(np.ones((1, 4), np.float32), "DT_FLOAT").SerializeToString())
    prediction.Predict(request, timeout=30)
    after = _metric_values(server)
    rest_labels = 'model_name="versions",API="predict",entrypoint="REST"'
    grpc_labels = 'model_name="versions",API="Predict",entrypoint="GRPC"'
    expected = {':tensorflow:serving:request_count{model_name="nope",status="NOT_FOUND"}': 1,
                ':tensorflow:serving:request_count{model_name="versions",status="OK"}': 4,
                f":tensorflow:serving:request_latency_count{{{rest_labels}}}": 3,
                f':tensorflow:serving:request_latency_bucket{{{rest_labels},le="+Inf"}}': 3,
                f":tensorflow:serving:request_latency_count{{{grpc_labels}}}": 1}
    assert {key: after[key] - before.get(key, 0) for key in expected} == expected
    assert after[f":tensorflow:serving:request_latency_sum{{{rest_labels}}}"] > 0


def test_a_monitoring_config_that_does_not_parse_stops_start_up(tmp_path):
    from harness import ServerProcess

    bad = tmp_path / "monitoring.config"
    bad.write_text("prometheus_config { enable: maybe }\n")
    process = ServerProcess("--model_base_path=/nonexistent", f"--monitoring_config_file={bad}")
    assert process.finish() == (255, f"Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file: "
                                     f"'{bad}'\n")
