"""The embedded server over REST (docs/tf-serving.md §4, §7): one server process for the module, serving a converted
SavedModel, a two-input SavedModel, a two-version base path, a classify/regress model and ONNX models."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import threading

import numpy as np
import pytest
import requests

from conftest import converted
from harness import config_file, started
from tfsconvert import golden
from tfsconvert.compare import compare
from tfsconvert.model import TensorSpec
from tfsconvert.rest_codec import response_tensors

pytestmark = pytest.mark.usefixtures("pure")  # the C transport and its pure-Python twin

MLP_SPECS = {"probabilities": TensorSpec("DT_FLOAT", [-1, 3])}
FEATURES = [[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 0.0, 2.0]]


@pytest.fixture(scope="module")
def models(fixture_path, tmp_path_factory):
    """name -> base path: converter outputs and fixtures, all served by one process."""
    return {
        "mlp": converted(fixture_path, tmp_path_factory, "saved-model", "frozen_mlp_pb")[1],
        "two_io": converted(fixture_path, tmp_path_factory, "saved-model", "frozen_two_io_pb", "--output",
                            "score=score:0", "--output", "class_id=class_id:0")[1],
        "mlp_onnx": converted(fixture_path, tmp_path_factory, "onnx", "frozen_mlp_pb")[1],
        "pipeline_onnx": converted(fixture_path, tmp_path_factory, "onnx", "sklearn_pipeline")[1],
        "examples": fixture_path("serving_examples"),
        "versions": fixture_path("savedmodel_base"),
    }


@pytest.fixture(scope="module")
def server(models, tmp_path_factory, pure):
    config = config_file(tmp_path_factory.mktemp("config") / "models.config", models)
    # `versions` keeps both of its versions: an `all {}` policy for that model only.
    text = config.read_text().replace('name: "versions" base_path', 'name: "versions" model_version_policy '
                                      '{ all {} } base_path')
    config.write_text(text)
    process = started(f"--model_config_file={config}", "--max_num_load_retries=0")
    yield process
    assert process.terminate() == 0, process.stderr[-2000:]


def post(server, path: str, body) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(server.url(path), data=data, timeout=30)


def error_of(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


# ---------------------------------------------------------------------------------------------
# Status and metadata (docs/tf-serving.md §4.3, §4.4)


def test_status_spec_4_3(server):
    response = requests.get(server.url("/v1/models/mlp"), timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert response.json() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def test_status_lists_versions_descending_and_one_version_spec_4_3(server):
    listed = requests.get(server.url("/v1/models/versions"), timeout=30).json()["model_version_status"]
    assert [v["version"] for v in listed] == ["2", "1"]
    one = requests.get(server.url("/v1/models/versions/versions/1"), timeout=30).json()
    assert [v["version"] for v in one["model_version_status"]] == ["1"]
    missing = requests.get(server.url("/v1/models/versions/versions/7"), timeout=30)
    assert error_of(missing) == (404, "Could not find version 7 of model versions")
    unknown = requests.get(server.url("/v1/models/wrong"), timeout=30)
    assert error_of(unknown) == (404, "Could not find any versions of model wrong")


def test_metadata_spec_4_4(server):
    body = requests.get(server.url("/v1/models/mlp/metadata"), timeout=30).json()
    assert body["model_spec"] == {"name": "mlp", "signature_name": "", "version": "1"}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"]["features"] == {
        "dtype": "DT_FLOAT", "name": "features:0",
        "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": "4", "name": ""}], "unknown_rank": False}}
    assert set(signature["outputs"]) == {"probabilities"}


def test_metadata_of_a_specific_version_and_unknown_ones_spec_4_4(server):
    assert requests.get(server.url("/v1/models/versions/versions/1/metadata"),
                        timeout=30).json()["model_spec"]["version"] == "1"
    assert error_of(requests.get(server.url("/v1/models/versions/versions/9/metadata"), timeout=30)) == (
        404, "Servable not found for request: Specific(versions, 9)")
    assert error_of(requests.get(server.url("/v1/models/mlp/labels/stable/metadata"), timeout=30)) == (
        400, "Unrecognized servable version label: stable")


def test_onnx_metadata_has_the_tabular_fields(server):
    signature = requests.get(server.url("/v1/models/pipeline_onnx/metadata"), timeout=30).json()[
        "metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["color"]["dtype"] == "DT_STRING"
    assert signature["inputs"]["sepal_length"]["dtype"] == "DT_FLOAT"
    assert set(signature["outputs"]) == {"label", "probability(setosa)", "probability(versicolor)",
                                         "probability(virginica)"}


# ---------------------------------------------------------------------------------------------
# Predict (docs/tf-serving.md §4.5, §4.6)


@pytest.mark.parametrize("name", ["mlp", "mlp_onnx", "pipeline_onnx"])
def test_golden_requests_replay_green(server, models, name):
    records = golden.read_golden(next(models[name].glob("*/assets.extra/golden.jsonl")))
    specs = {key: TensorSpec(value["dtype"], None) for key, value in requests.get(
        server.url(f"/v1/models/{name}/metadata"), timeout=30).json()["metadata"]["signature_def"][
        "signature_def"]["serving_default"]["outputs"].items()}
    assert len(records) >= 8
    for record in records:
        response = post(server, f"/v1/models/{name}:predict", record.request)
        assert response.status_code == 200, response.text
        expected = response_tensors(record.response, specs)
        diffs = compare(expected, response_tensors(response.json(), specs), record.atol or 1e-6,
                               record.rtol or 1e-6)
        assert diffs and all(d.ok for d in diffs), (record.id, [d.to_json() for d in diffs])


def test_row_and_columnar_forms_agree_spec_4_6(server):
    rows = post(server, "/v1/models/mlp:predict", {"instances": FEATURES}).json()
    columns = post(server, "/v1/models/mlp:predict", {"inputs": {"features": FEATURES}}).json()
    bare = post(server, "/v1/models/mlp:predict", {"signature_name": "serving_default", "inputs": FEATURES}).json()
    assert set(rows) == {"predictions"} and set(columns) == {"outputs"}
    assert rows["predictions"] == columns["outputs"] == bare["outputs"]
    probabilities = np.asarray(rows["predictions"])
    assert probabilities.shape == (2, 3) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_several_inputs_and_outputs_spec_4_6(server):
    instances = [{"dense_features": [0.1 * i for i in range(8)], "ids": 3},
                 {"dense_features": [0.0] * 8, "ids": 7}]
    rows = post(server, "/v1/models/two_io:predict", {"instances": instances}).json()["predictions"]
    assert [set(row) for row in rows] == [{"score", "class_id"}] * 2
    columns = post(server, "/v1/models/two_io:predict", {"inputs": {
        "dense_features": [row["dense_features"] for row in instances], "ids": [3, 7]}}).json()["outputs"]
    assert columns["score"] == [row["score"] for row in rows]
    assert columns["class_id"] == [row["class_id"] for row in rows]
    assert all(isinstance(v, int) for v in columns["class_id"])


def test_b64_strings_in_and_bytes_outputs_as_b64_spec_4_8(server):
    raw = "héllo".encode("utf-8")
    body = {"instances": [{"b64": base64.b64encode(raw).decode()}, "ab"]}
    rows = post(server, "/v1/models/examples:predict", body).json()["predictions"]
    assert rows[0]["length"] == len(raw) and rows[1]["length"] == 2
    # An output alias ending in `_bytes` is written as {"b64": ...}.
    assert base64.b64decode(rows[0]["echo_bytes"]["b64"]) == raw
    assert rows[1]["echo_bytes"] == {"b64": base64.b64encode(b"ab").decode()}


def test_specific_version_spec_4_2(server):
    response = post(server, "/v1/models/versions/versions/1:predict", {"instances": FEATURES})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 2


# ---------------------------------------------------------------------------------------------
# Request errors: exact status and message (docs/tf-serving.md §7, §4.5, §4.9)

TWO_IO_ROW = {"dense_features": [0.0] * 8, "ids": 1}
ERRORS = [
    ("7.33 unknown model", "/v1/models/wrong:predict", {"instances": FEATURES}, 404,
     "Servable not found for request: Latest(wrong)"),
    ("7.34 unknown version", "/v1/models/mlp/versions/7:predict", {"instances": FEATURES}, 404,
     "Servable not found for request: Specific(mlp, 7)"),
    ("7.35 unknown signature", "/v1/models/mlp:predict", {"signature_name": "nope", "instances": FEATURES}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("7.38 wrong type", "/v1/models/mlp:predict", {"instances": ["a"]}, 400,
     "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: \"a\" Type: String is "
     "not of expected type: float"),
    ("7.39 ragged rows", "/v1/models/mlp:predict", {"instances": [[1, 2], [3]]}, 400,
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1"),
    ("4.5 missing input, rows", "/v1/models/two_io:predict", {"instances": [{"ids": 1}]}, 400,
     "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"ids\": 1\n} keys must be equal to: "
     "dense_features,ids"),
    ("4.5 unknown alias, rows", "/v1/models/two_io:predict", {"instances": [{**TWO_IO_ROW, "bogus": 1}]}, 400,
     "Failed to process element: 0 key: bogus of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does not "
     "have named input: bogus"),
    ("4.5 missing input, columns", "/v1/models/two_io:predict", {"inputs": {"ids": [1]}}, 400,
     "Missing named input: dense_features in 'inputs' object."),
    ("4.5 plain list for two inputs", "/v1/models/two_io:predict", {"instances": [1, 2]}, 400,
     "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
     "tensorinfo_map"),
    ("4.5 neither key", "/v1/models/mlp:predict", {"signature_name": ""}, 400, "Missing 'inputs' or 'instances' key"),
    ("4.5 empty body", "/v1/models/mlp:predict", b"", 400, "JSON Parse error: The document is empty"),
    ("4.5 syntax error", "/v1/models/mlp:predict", b'{"instances": [1,', 400,
     "JSON Parse error: Invalid value. at offset: 17"),
    ("4.5 not an object", "/v1/models/mlp:predict", b"[1]", 400, "JSON Value: [1] Is not object"),
    ("4.8 integer input given a fraction", "/v1/models/two_io:predict",
     {"instances": [{**TWO_IO_ROW, "ids": 1.5}]}, 400,
     "Failed to process element: 0 key: ids of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 1.5 "
     "Type: Number is not of expected type: int64"),
    ("4.2 malformed url", "/v1/models/mlp:PREDICT", {"instances": FEATURES}, 400,
     "Malformed request: POST /v1/models/mlp:PREDICT"),
]


@pytest.mark.parametrize("case", ERRORS, ids=[case[0] for case in ERRORS])
def test_request_error_spec_7(server, case):
    _, path, body, status, message = case
    assert error_of(post(server, path, body)) == (status, message)


def test_both_instances_and_inputs_spec_7_37(server):
    status, message = error_of(post(server, "/v1/models/mlp:predict", {"instances": FEATURES, "inputs": FEATURES}))
    assert status == 400 and message.startswith("JSON Value: {")
    assert message.endswith("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ")


def test_wrong_inner_shape_reports_the_op_error_spec_7_40(server):
    status, message = error_of(post(server, "/v1/models/mlp:predict", {"instances": [[1.0, 2.0, 3.0]]}))
    assert status == 400 and "Matrix size-incompatible" in message


@pytest.mark.parametrize("path, status", [("/v1/models/mlp/", 400), ("/v1/models/mlp/version/1", 400),
                                          ("/v1/models", 400), ("/models/mlp", 404)])
def test_get_url_grammar_spec_7_44(server, path, status):
    response = requests.get(server.url(path), timeout=30)
    assert response.status_code == status
    if path.startswith("/v1/"):
        expected = "Missing model name in request." if path == "/v1/models" else f"Malformed request: GET {path}"
        assert response.json() == {"error": expected}
    else:  # libevent's HTML page, not JSON (docs/tf-serving.md §7 case 45)
        assert response.headers["Content-Type"] == "text/html" and "Not Found" in response.text


# ---------------------------------------------------------------------------------------------
# Classify and regress (docs/tf-serving.md §4.7)

EXAMPLES = [{"x": [1.0, 2.0]}, {"x": [0.5, -1.5]}]


def _scores(x: list[float]) -> list[float]:
    logits = np.asarray(x) @ np.array([[1.0, -1.0], [0.5, 2.0]])
    exp = np.exp(logits - logits.max())
    return (exp / exp.sum()).tolist()


def test_classify_spec_4_7(server):
    body = post(server, "/v1/models/examples:classify", {"signature_name": "classify", "examples": EXAMPLES}).json()
    assert [[label for label, _ in result] for result in body["results"]] == [["negative", "positive"]] * 2
    for result, example in zip(body["results"], EXAMPLES):
        assert np.allclose([score for _, score in result], _scores(example["x"]), atol=1e-6)


def test_regress_with_context_spec_4_7(server):
    body = post(server, "/v1/models/examples:regress", {"signature_name": "regress", "examples": EXAMPLES}).json()
    assert body == {"results": [3.0, -1.0]}


@pytest.mark.parametrize("body, message", [
    ({"examples": EXAMPLES}, "Expected classification signature method_name to be tensorflow/serving/classify. "
                             "Was: tensorflow/serving/predict"),
    ({"signature_name": "nope", "examples": EXAMPLES}, "No signature was found with the name: nope"),
    ({"signature_name": "classify"}, "JSON Value: {\n    \"signature_name\": \"classify\"\n} When method is "
                                     "classify, key 'examples' is expected and was not found"),
    ({"signature_name": "classify", "examples": [{"x": [1, 2.5]}]},
     "Unexpected element type in feature: x expecting type: int64"),
])
def test_classify_errors_spec_4_7(server, body, message):
    assert error_of(post(server, "/v1/models/examples:classify", body)) == (400, message)


# ---------------------------------------------------------------------------------------------
# Robustness


def _raw_http(server, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: sock.recv(65536), b""))


@pytest.mark.parametrize("payload", [
    b"POST /v1/models/mlp:predict HTTP/1.1\r\nContent-Length: nope\r\n\r\n{}",
    b"\x00\xff garbage\r\n\r\n",
    b"POST /v1/models/mlp:predict HTTP/1.1\r\nContent-Length: 8\r\nConnection: close\r\n\r\n\xff\xfe\x00{]}\x80\x81",
    b"POST /v1/models/mlp:predict HTTP/1.1\r\nContent-Length: 9\r\n\r\n{}",  # cut short, then EOF
])
def test_malformed_requests_get_4xx_and_the_server_keeps_serving(server, payload):
    reply = _raw_http(server, payload)
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:300]
    assert post(server, "/v1/models/mlp:predict", {"instances": FEATURES}).status_code == 200


def _request(path: str, body: bytes, *headers: str, method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _replies(data: bytes) -> list[tuple[bytes, bytes]]:
    """(status line, body) of each HTTP/1.1 reply in `data`, in order."""
    replies = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        replies.append((head.split(b"\r\n")[0], rest[:length]))
        data = rest[length:]
    return replies


def test_pipelined_requests_are_answered_in_order_and_a_half_closed_client_gets_them(server):
    """Three requests in one write, a model run between two quick answers, then the client's EOF."""
    predict = json.dumps({"instances": FEATURES}).encode()
    expected = post(server, "/v1/models/mlp:predict", {"instances": FEATURES}).content
    payload = (_request("/v1/models/mlp", b"", method="GET") + _request("/v1/models/mlp:predict", predict)
               + _request("/v1/models/nope:predict", predict))
    replies = _replies(_raw_http(server, payload))
    assert [status for status, _ in replies] == [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found"]
    assert json.loads(replies[0][1])["model_version_status"][0]["state"] == "AVAILABLE"
    assert replies[1][1] == expected
    assert json.loads(replies[2][1]) == {"error": "Servable not found for request: Latest(nope)"}


def test_expect_100_continue_gzip_and_head(server):
    """On one connection: a body sent after `100 Continue`, a gzip body, a HEAD."""
    predict = json.dumps({"instances": FEATURES}).encode()
    expected = post(server, "/v1/models/mlp:predict", {"instances": FEATURES}).content
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) as sock:
        sock.sendall(_request("/v1/models/mlp:predict", predict, "Expect: 100-continue")[:-len(predict)])
        assert sock.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"  # curl waits for it before a body over 1 kB
        sock.sendall(predict)
        sock.sendall(_request("/v1/models/mlp:predict", gzip.compress(predict), "Content-Encoding: gzip")
                     + _request("/v1/models/mlp", b"", method="HEAD"))
        sock.shutdown(socket.SHUT_WR)
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    first, _, rest = data.partition(b"\r\n\r\n")
    first_length = int(first.lower().split(b"content-length: ")[1])
    assert rest[:first_length] == expected
    second, _, rest = rest[first_length:].partition(b"\r\n\r\n")
    assert second.startswith(b"HTTP/1.1 200 OK") and rest.startswith(expected)
    head = rest[len(expected):]
    # TF Serving's handler takes GET and POST only; a HEAD reply has the headers of that 400, no body.
    assert head.startswith(b"HTTP/1.1 400 Bad Request") and head.endswith(b"\r\n\r\n")
    assert int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]) > 0


def test_concurrent_clients_16_threads_x_50_requests(server):
    expected = post(server, "/v1/models/mlp:predict", {"instances": FEATURES}).json()
    failures: list[str] = []

    def client(index: int) -> None:
        with requests.Session() as session:  # keep-alive: one connection per client
            for i in range(50):
                path = "/v1/models/mlp:predict" if (index + i) % 2 else "/v1/models/pipeline_onnx/metadata"
                response = (session.post(server.url(path), data=json.dumps({"instances": FEATURES}), timeout=60)
                            if path.endswith("predict") else session.get(server.url(path), timeout=60))
                if response.status_code != 200 or (path.endswith("predict") and response.json() != expected):
                    failures.append(f"{path}: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
