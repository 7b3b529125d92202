"""A TF Serving client over REST (stdlib HTTP, keep-alive) and gRPC.

Neither side imports TensorFlow: REST is JSON, and gRPC sends TF Serving's own messages as
declared in tfsconvert.tfproto (checked against the official protos by tests/test_tfproto.py).
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from dataclasses import dataclass

import numpy as np

from tfsconvert import tfproto
from tfsconvert.tensor_codec import from_proto, to_proto


@dataclass
class Answer:
    """A server's answer: `ok`, the outputs (alias -> array) or the REST body, or the error."""

    ok: bool
    status: str  # HTTP status as text ("200") or the gRPC code name ("INVALID_ARGUMENT")
    body: dict | None = None
    outputs: dict[str, np.ndarray] | None = None
    error: str | None = None


class RestClient:
    """`:predict`, status and metadata over one keep-alive HTTP connection."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def _request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None, str]:
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):  # a keep-alive connection the server closed is retried once
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self._connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
                response = self._connection.getresponse()
                text = response.read().decode("utf-8", "replace")
                break
            except (ConnectionError, http.client.BadStatusLine, http.client.CannotSendRequest):
                self.close()
                if attempt == 2:
                    raise
        try:
            parsed = json.loads(text) if text else None
        except json.JSONDecodeError:
            parsed = None
        return response.status, parsed if isinstance(parsed, dict) else None, text

    def get(self, path: str) -> Answer:
        status, body, text = self._request("GET", path)
        return _answer(status, body, text)

    def predict(self, model: str, version: int | None, body: dict, verb: str = "predict") -> Answer:
        """POST `body` to `:predict` (or `:classify` / `:regress` with `verb`)."""
        status, parsed, text = self._request("POST", f"{model_path(model, version)}:{verb}", body)
        return _answer(status, parsed, text)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def model_path(model: str, version: int | None) -> str:
    """The REST path of a model (its name percent-encoded: spaces and non-ASCII names included)."""
    return f"/v1/models/{urllib.parse.quote(model, safe='')}" + (f"/versions/{version}" if version is not None
                                                                else "")


def _answer(status: int, body: dict | None, text: str) -> Answer:
    if status == 200 and body is not None:
        return Answer(True, str(status), body=body)
    error = body.get("error") if body else None
    return Answer(False, str(status), body=body, error=str(error) if error is not None else text[:500])


class GrpcClient:
    """`tensorflow.serving.PredictionService/Predict`, `Classify` and `Regress` over gRPC. The messages are
    tfsconvert.tfproto's declarations of TF Serving's protos (same wire format), so no TensorFlow import
    is needed."""

    METHOD = "/tensorflow.serving.PredictionService/Predict"
    SERVICE = "/tensorflow.serving.PredictionService/"

    def __init__(self, target: str, timeout: float) -> None:
        import grpc

        self._grpc = grpc
        self.timeout = timeout
        self.channel = grpc.insecure_channel(target)
        response = tfproto.message_class("PredictResponse")
        self._predict = self.channel.unary_unary(self.METHOD, request_serializer=lambda m: m.SerializeToString(),
                                                 response_deserializer=response.FromString)
        self._on_examples = {verb: self.channel.unary_unary(
            self.SERVICE + verb.capitalize(), request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=tfproto.message_class(f"{kind}Response").FromString)
            for verb, kind in (("classify", "Classification"), ("regress", "Regression"))}

    def predict(self, model: str, version: int | None, signature_name: str,
                inputs: dict[str, np.ndarray], dtypes: dict[str, str]) -> Answer:
        """Send `inputs` with the given dtypes (TF enum names) as one PredictRequest."""
        request = tfproto.message_class("PredictRequest")()
        request.model_spec.name = model
        request.model_spec.signature_name = signature_name
        if version is not None:
            request.model_spec.version.value = version
        for alias, array in inputs.items():
            request.inputs[alias].CopyFrom(to_proto(array, dtypes[alias]))
        try:
            response = self._predict(request, timeout=self.timeout)
        except self._grpc.RpcError as error:
            return Answer(False, error.code().name, error=error.details())
        return Answer(True, "OK", outputs={alias: from_proto(proto) for alias, proto in response.outputs.items()})

    def classify_or_regress(self, verb: str, model: str, version: int | None, signature_name: str,
                            body: dict) -> Answer:
        """Send a `:classify`/`:regress` REST body's examples (read as TF Serving's REST layer reads
        them) as a Classification/RegressionRequest; the answer's body is the REST form `{"results": ...}`."""
        from tfsconvert.server.examples import from_json
        from tfsconvert.server.status import ServingError

        try:
            examples = from_json(body)
        except ServingError as error:
            return Answer(False, "client", error=f"cannot encode the golden request: {error.message}")
        kind = "Classification" if verb == "classify" else "Regression"
        request = tfproto.message_class(f"{kind}Request")()
        request.model_spec.name = model
        request.model_spec.signature_name = signature_name
        if version is not None:
            request.model_spec.version.value = version
        for data in examples:
            request.input.example_list.examples.add().ParseFromString(data)
        try:
            response = self._on_examples[verb](request, timeout=self.timeout)
        except self._grpc.RpcError as error:
            return Answer(False, error.code().name, error=error.details())
        if verb == "regress":
            return Answer(True, "OK", body={"results": [r.value for r in response.result.regressions]})
        return Answer(True, "OK", body={"results": [[[c.label, c.score] for c in row.classes]
                                                    for row in response.result.classifications]})

    def close(self) -> None:
        self.channel.close()
