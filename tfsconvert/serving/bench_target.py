"""Where `tfsconvert bench` sends requests: a URL's protocol, host, port and model, and the model's
signatures as the server describes them (REST metadata, docs/tf-serving.md §4.4; gRPC GetModelMetadata, §5.2)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from tfsconvert.errors import InputError
from tfsconvert.model import Signature
from tfsconvert.validate.client import model_path
from tfsconvert.validate.replay import signatures_from_metadata

SCHEMES = {"http": "rest", "grpc": "grpc"}
DEFAULT_PORTS = {"rest": 8501, "grpc": 8500}  # TF Serving's Docker image (docs/tf-serving.md §4.10)
_MODEL_PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+))?/?")
_URL_HINT = "e.g. http://127.0.0.1:8501/v1/models/NAME, or grpc://127.0.0.1:8500 --model-name NAME"


@dataclass(frozen=True)
class Target:
    """A server endpoint and the model (and version, REST only) to ask."""

    protocol: str
    host: str
    port: int
    model: str
    version: int | None


def parse_url(url: str, model_name: str | None, protocol: str | None) -> Target:
    """`http://HOST:PORT[/v1/models/NAME[/versions/N]]` or `grpc://HOST:PORT`; the model from the path
    or `model_name`. Any host is allowed: a benchmark of a remote server measures the network too."""
    parts = urllib.parse.urlsplit(url)
    scheme = SCHEMES.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise InputError("bad-url", f"{url}: not an http:// or grpc:// server URL", _URL_HINT)
    if protocol is not None and protocol != scheme:
        raise InputError("bad-option", f"--protocol {protocol} does not match {url}",
                         "leave --protocol out: the URL's scheme says it")
    match = _MODEL_PATH.fullmatch(parts.path) if parts.path not in ("", "/") else None
    if parts.path not in ("", "/") and (match is None or scheme == "grpc"):
        raise InputError("bad-url", f"{url}: the path must be /v1/models/NAME[/versions/N] (REST only)", _URL_HINT)
    model = model_name or (urllib.parse.unquote(match.group(1)) if match else None)
    if model is None:
        raise InputError("bad-option", f"{url} names no model", "add /v1/models/NAME to the URL or pass "
                                                                "--model-name NAME")
    version = int(match.group(2)) if match and match.group(2) else None
    return Target(scheme, parts.hostname, parts.port or DEFAULT_PORTS[scheme], model, version)


def rest_signatures(target: Target, timeout: float) -> dict[str, Signature]:
    """The model's signatures from `GET /v1/models/NAME[/versions/N]/metadata`."""
    url = f"http://{target.host}:{target.port}{model_path(target.model, target.version)}/metadata"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            body = json.loads(answer.read())
    except urllib.error.HTTPError as error:
        said = error.read().decode("utf-8", "replace")[:300]
        raise InputError("model-not-found", f"{url}: HTTP {error.code} {said}",
                         "check the model name (and version) the server serves") from None
    except (OSError, ValueError) as error:
        raise InputError("server-unreachable", f"{url}: {error}", "check the URL and that the server is up") from None
    return signatures_from_metadata(body)


def grpc_signatures(target: Target, timeout: float) -> dict[str, Signature]:
    """The model's signatures from `PredictionService.GetModelMetadata` (the official stubs: imports
    TensorFlow, as tensorflow-serving-api does)."""
    from google.protobuf.json_format import MessageToDict

    import grpc

    from tfsconvert.quiet import native_stderr_silenced

    with native_stderr_silenced():
        from tensorflow_serving.apis import get_model_metadata_pb2
        from tensorflow_serving.apis import prediction_service_pb2_grpc as service

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = target.model
    with grpc.insecure_channel(f"{target.host}:{target.port}") as channel:
        try:
            answer = service.PredictionServiceStub(channel).GetModelMetadata(request, timeout=timeout)
        except grpc.RpcError as error:
            code = "server-unreachable" if error.code() == grpc.StatusCode.UNAVAILABLE else "model-not-found"
            raise InputError(code, f"{target.host}:{target.port}: {error.code().name}: {error.details()}",
                             "check the URL, the model name and that the server is up") from None
    defs = get_model_metadata_pb2.SignatureDefMap()
    answer.metadata["signature_def"].Unpack(defs)
    return signatures_from_metadata({"metadata": {"signature_def": MessageToDict(
        defs, preserving_proto_field_name=True)}})
