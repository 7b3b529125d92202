"""The REST API (docs/tf-serving.md §4): TF Serving's URL grammar, JSON bodies, errors and status codes. No
sockets here: tfsconvert.server.http_server carries the requests."""

from __future__ import annotations

import json
import re
import traceback
import urllib.parse
from typing import Callable

import numpy as np

from tfsconvert import dtypes
from tfsconvert.server import core, examples, responses, rest_json, rest_json_fast, rest_outputs
from tfsconvert.server.manager import Manager
from tfsconvert.naming import DEFAULT_SIGNATURE
from tfsconvert.server.signatures import dtype_name
from tfsconvert.server.status import ServingError, invalid

# model_servers/http_rest_api_util.cc (docs/tf-serving.md §4.2)
_API = re.compile(r"(?i)/v1/.*")
_POST = re.compile(r"(?i)/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)")
_GET = re.compile(r"(?i)/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(/metadata)?")
_INT64_MAX = 2 ** 63 - 1
_NOT_FOUND_HTML = ("<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n"
                   "The requested URL {path} was not found on this server.</BODY></HTML>")
JSON_TYPE = "application/json"

Reply = tuple[int, bytes, str]  # HTTP status, body, content type


def _json(status: int, body: dict) -> Reply:
    return status, json.dumps(body, allow_nan=True).encode("utf-8"), JSON_TYPE


def _error(error: ServingError) -> Reply:
    return _json(error.http_status, {"error": error.message})


def replying(call: Callable, *args) -> Reply | core.Run:
    """`call(*args)`, with the statuses it raises turned into their replies (a bug into a 500)."""
    try:
        return call(*args)
    except ServingError as error:
        return _error(error)
    except RecursionError:  # a body nested deeper than Python's stack allows, anywhere in its handling
        return _error(invalid("JSON Value: nested too deeply to process"))
    except Exception as error:  # noqa: BLE001 - a bug must not cost the client its answer
        traceback.print_exc()
        return _json(500, {"error": f"{type(error).__name__}: {error}"})


class RestApi:
    """Turns (method, target, body) into a reply, or into the model run whose result is the reply."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self._dense_forms: dict[tuple, tuple] = {}  # (lane key, rows, signature, alias) -> what dense_predict needs

    def route(self, method: str, target: str, body: bytes) -> Reply | core.Run:
        path = urllib.parse.urlsplit(target).path
        if not _API.fullmatch(path):
            return 404, _NOT_FOUND_HTML.format(path=path).encode(), "text/html"
        return replying(self._route, method, path, body)

    def finish(self, run: core.Run, outputs: dict | None, error: BaseException | None) -> Reply:
        """The reply to a run that has ended with `outputs` or `error`."""
        if error is not None:
            return replying(_raise, error)
        return replying(run.result, outputs)

    def _route(self, method: str, path: str, body: bytes) -> Reply | core.Run:
        malformed = invalid(f"Malformed request: {method} {path}")
        pattern = {"POST": _POST, "GET": _GET}.get(method)
        match = pattern.fullmatch(path) if pattern else None
        if match is None:
            raise malformed
        name = urllib.parse.unquote(match.group(1)) if match.group(1) else None
        version, label = match.group(2), match.group(3)
        if version is not None and int(version) > _INT64_MAX:
            return 400, b"", JSON_TYPE  # returned before a JSON body is made (docs/tf-serving.md §4.2)
        version = int(version) if version is not None else None
        label = urllib.parse.unquote(label) if label is not None else None
        if method == "GET":
            if name is None:
                raise invalid("Missing model name in request.")
            if match.group(4):
                served, servable = self.manager.resolve(name, version, label)
                response = responses.metadata_response(name, served, servable.signatures)
                return _json(200, responses.metadata_json(response))
            # A label is ignored here: only a version narrows the status (docs/tf-serving.md §4.3).
            return _json(200, responses.to_dict(responses.status_response(self.manager, name, version)))
        verb = match.group(4)
        if verb not in ("classify", "regress", "predict"):  # the regex ignores case, the comparison does not
            raise malformed
        if verb == "predict":
            reading = rest_json_fast.predict_body(body)
            run = self._read_predict(name, version, label, reading) if reading is not None else None
            if run is not None:
                return run
        document, signature_name = request_document(body)
        if verb == "predict":
            return self._predict(name, version, label, signature_name, document)
        return self._classify_or_regress(verb, name, version, label, signature_name, document)

    def _predict(self, name, version, label, signature_name: str, document: dict) -> core.Run:
        """docs/tf-serving.md §4.5 order: model, then signature, then the body's tensors, then the run."""
        _, servable = self.manager.resolve(name, version, label)
        resolved = signature_name or DEFAULT_SIGNATURE
        signature = servable.signatures.get(resolved)
        if signature is None:
            raise invalid(f'Serving signature name: "{resolved}" not found in signature def')
        inputs = {alias: dtype_name(info) for alias, info in signature.inputs.items()}
        if not inputs:
            raise invalid(f"Failed to get input map for signature: {signature_name or 'DEFAULT'}")
        return _predict_run(servable, resolved, predict_tensors(document, inputs), "instances" in document)

    def _read_predict(self, name, version, label, reading: tuple) -> core.Run | None:
        """The run of a predict body C read whole (rest_json_fast.predict_body); None where the general
        path has to decide, errors included."""
        try:
            _, servable = self.manager.resolve(name, version, label)
        except ServingError:
            return None
        resolved = reading[0] or DEFAULT_SIGNATURE
        signature = servable.signatures.get(resolved)
        inputs = {alias: dtype_name(info) for alias, info in signature.inputs.items()} if signature else None
        tensors = rest_json_fast.body_tensors(reading, inputs) if inputs else None
        return None if tensors is None else _predict_run(servable, resolved, tensors, reading[1])

    def predict_target(self, target: str) -> tuple[str, int | None, str | None] | None:
        """(name, version, label) of a request target that is a plain predict path (a lane's key)."""
        match = _POST.fullmatch(target)
        if match is None or match.group(4) != "predict" or any(ch in target for ch in "%?#"):
            return None
        version = int(match.group(2)) if match.group(2) is not None else None
        return None if version is not None and version > _INT64_MAX else (match.group(1), version, match.group(3))

    def dense_predict(self, key: tuple[str, int | None, str | None], rows: bool, signature_name: str | None,
                      alias: str | None, values: bytes, shape: tuple[int, ...]) -> core.Run | None:
        """The run `_route` makes of a predict body that C read as one dense tensor of numbers
        (_dense_json.c: row or columnar form, `alias` if named, `values` its doubles), for the
        predict path `key`; None where the general path has to decide, errors included."""
        try:
            _, servable = self.manager.resolve(*key)
        except ServingError:
            return None
        form = (key, rows, signature_name, alias)
        known = self._dense_forms.get(form)
        if known is None or known[0] is not servable:  # first seen, or another version now
            known = (servable, *_dense_input(servable, signature_name, alias, rows))
            if known[-1] is None:
                return None  # not cached: the forms kept are those of real signatures, a bounded set
            self._dense_forms[form] = known
        _, input_alias, dtype, template = known
        tensor = np.frombuffer(values).reshape(shape).astype(dtype)
        return core.Run(servable, template.signature_name, {input_alias: tensor}, template.result)

    def _classify_or_regress(self, verb, name, version, label, signature_name: str, document: dict) -> core.Run:
        batch = examples.from_json(document)  # before the model lookup, as TF Serving checks it
        _, servable = self.manager.resolve(name, version, label)
        if verb == "classify":
            return core.classify_run(servable, signature_name, batch).then(
                lambda result: (200, rest_outputs.classify_response(result[1]), JSON_TYPE))
        return core.regress_run(servable, signature_name, batch).then(
            lambda result: (200, rest_outputs.regress_response(result[1]), JSON_TYPE))


def model_and_api(method: str, target: str) -> tuple[str, str]:
    """The model name and API a request target names, as the Prometheus counters label them ("" if none)."""
    path = urllib.parse.urlsplit(target).path
    match = {"POST": _POST, "GET": _GET}.get(method, _POST).fullmatch(path)
    if match is None or not match.group(1):
        return "", ""
    api = match.group(4) if method == "POST" else ("metadata" if match.group(4) else "status")
    return urllib.parse.unquote(match.group(1)), api


def request_document(body: bytes) -> tuple[dict, str]:
    """The JSON object of a predict/classify/regress body and its signature_name ("" if none)."""
    document = rest_json.parse_body(body)
    if not isinstance(document, dict):
        raise invalid(f"JSON Value: {examples.debug(document)} Is not object")
    signature_name = document.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise invalid(f"JSON Value: {examples.debug(document)} not formatted correctly. 'signature_name' key "
                      "must be a string value.")
    return document, signature_name


def predict_tensors(document: dict, inputs: dict[str, str]) -> dict[str, np.ndarray]:
    """The input tensors of a predict body, row (`instances`) or columnar (`inputs`) form, for
    the signature inputs `inputs` (alias -> dtype)."""
    if "inputs" in document and "instances" in document:
        raise invalid(f"JSON Value: {examples.debug(document)} Not formatted correctly expecting only one of "
                      "'inputs' or 'instances' keys to exist ")
    if "instances" in document:
        return rest_json.instances(document["instances"], inputs)
    if "inputs" in document:
        return rest_json.columns(document["inputs"], inputs)
    raise invalid("Missing 'inputs' or 'instances' key")


def _dense_input(servable, signature_name: str | None, alias: str | None, rows: bool):
    """(input alias, numpy dtype, a Run whose result serves every such request) of the signature a
    dense body names, if its one input is a float tensor that `alias` (if given) names; else Nones."""
    resolved = signature_name or DEFAULT_SIGNATURE
    signature = servable.signatures.get(resolved)
    if signature is None or len(signature.inputs) != 1:
        return None, None, None
    ((input_alias, info),) = signature.inputs.items()
    dtype = dtype_name(info)
    if dtype not in ("DT_FLOAT", "DT_DOUBLE") or alias not in (None, input_alias):
        return None, None, None
    numpy_dtype = dtypes.numpy_dtype(dtype)
    return input_alias, numpy_dtype, _predict_run(servable, resolved, {input_alias: np.zeros(1, numpy_dtype)}, rows)


def _predict_run(servable, signature_name: str, tensors: dict[str, np.ndarray], rows: bool) -> core.Run:
    """The Predict run whose result is the reply: predictions for the row form, outputs for the columnar."""
    encode = rest_outputs.row_response if rows else rest_outputs.columnar_response
    return core.predict_run(servable, signature_name, tensors).then(
        lambda outputs: (200, encode(outputs.arrays, outputs.dtypes), JSON_TYPE))


def _raise(error: BaseException):
    raise error
