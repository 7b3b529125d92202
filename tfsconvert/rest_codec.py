"""TF Serving's REST JSON (docs/tf-serving.md §4.8): tensor values as TF Serving writes and reads them, and
the `:predict`, `:classify` and `:regress` bodies (docs/tf-serving.md §4.5, §4.6). No TensorFlow here."""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any, Callable

import numpy as np

from tfsconvert.dtypes import numpy_dtype, object_array
from tfsconvert.errors import InputError
from tfsconvert.model import TensorSpec

# TF Serving's JSON layer neither reads nor writes these (docs/tf-serving.md §4.8: 501/400).
_NOT_IN_REST = ("DT_HALF", "DT_UINT16")
_B64 = "b64"


def encode_tensor(array: np.ndarray, dtype: str, alias: str = "") -> Any:
    """The JSON value TF Serving writes for a tensor: nested lists, or a bare scalar.

    Floats are the Python float of TF Serving's text (`%g`, else 9 or 17 significant
    digits), so `json.dumps` gives the same number (`0.1`, not `0.10000000149011612`).
    Strings are text unless the alias ends in `_bytes` or they are not UTF-8 (then b64).
    """
    if dtype in _NOT_IN_REST:
        raise InputError("unsupported-dtype", f"TF Serving's REST API cannot carry {dtype} (tensor '{alias}')",
                         "use DT_FLOAT / DT_INT32 in the signature, or call the model over gRPC")
    array = np.asarray(array)
    if dtype == "DT_STRING":
        as_b64 = alias.endswith("_bytes")
        flat = [_encode_string(value, as_b64) for value in array.ravel().tolist()]
    else:
        target = numpy_dtype(dtype)
        flat = array.astype(target).ravel().tolist()
        if target.kind == "f":
            flat = [_decimal(value, target) for value in flat]
    return _nest(flat, array.shape)


def _decimal(value: float, target: np.dtype) -> float:
    """TF Serving's `WriteDecimal`: six significant digits when they round-trip."""
    if not math.isfinite(value):
        return value  # json.dumps writes NaN / Infinity / -Infinity, as TF Serving does
    text = "%g" % value
    if _narrow(float(text), target) != value:
        text = "%.*g" % (9 if target == np.float32 else 17, value)
    return float(text)


def _narrow(value: float, target: np.dtype) -> float:
    return float(np.float32(value)) if target == np.float32 else value


def _encode_string(value: bytes | str, as_b64: bool) -> str | dict:
    data = value.encode() if isinstance(value, str) else value
    if not as_b64:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass  # raw bytes cannot go into a JSON string; b64 is what TF Serving accepts back
    return {_B64: base64.b64encode(data).decode("ascii")}


def _nest(flat: list, shape: tuple[int, ...]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def decode_tensor(value: Any, dtype: str) -> np.ndarray:
    """The array for a JSON value (nested lists or a scalar; `{"b64": ...}` for strings).

    Raises ValueError for ragged lists or values of the wrong JSON type (TF Serving rejects
    `1.0` for an integer input, so do we).
    """
    shape, leaves = _flatten(value)
    convert = _leaf_converter(dtype)
    target = numpy_dtype(dtype)
    values = [convert(leaf) for leaf in leaves]
    try:
        flat = np.array(values, dtype=target) if dtype != "DT_STRING" else object_array(values)
    except OverflowError:
        raise ValueError(f"a value is out of range for {dtype}") from None
    return flat.reshape(shape)



def _flatten(value: Any) -> tuple[tuple[int, ...], list]:
    """(shape, leaves in row-major order) of a dense nested list."""
    if not isinstance(value, list):
        return (), [value]
    if not value:
        return (0,), []
    parts = [_flatten(item) for item in value]
    inner = parts[0][0]
    for index, (shape, _) in enumerate(parts):
        if shape != inner:
            raise ValueError(f"ragged list: item {index} has shape {list(shape)}, item 0 has {list(inner)}")
    return (len(value), *inner), [leaf for _, leaves in parts for leaf in leaves]


def _leaf_converter(dtype: str) -> Callable[[Any], Any]:
    kind = numpy_dtype(dtype).kind
    if kind == "O":
        return _string_leaf
    accepts: Callable[[Any], bool] = {
        "f": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "b": lambda v: isinstance(v, bool),
    }.get(kind, lambda v: isinstance(v, int) and not isinstance(v, bool))

    def convert(leaf: Any) -> Any:
        if not accepts(leaf):
            raise ValueError(f"JSON value {json.dumps(leaf)} is not of type {dtype}")
        return leaf

    return convert


def _string_leaf(leaf: Any) -> bytes:
    if isinstance(leaf, str):
        return leaf.encode("utf-8")
    if is_b64(leaf):
        try:
            return base64.b64decode(leaf[_B64], validate=True)
        except binascii.Error:
            raise ValueError(f"{json.dumps(leaf)} is not valid base64") from None
    raise ValueError(f"JSON value {json.dumps(leaf)} is not a string or {{\"b64\": ...}} object")


def is_b64(value: Any) -> bool:
    return isinstance(value, dict) and list(value) == [_B64] and isinstance(value[_B64], str)


def _guess_dtype(value: Any) -> str:
    """A dtype for a tensor the signature does not declare (so it can still be reported)."""
    _, leaves = _flatten(value)
    if any(isinstance(leaf, (str, dict)) for leaf in leaves):
        return "DT_STRING"
    if leaves and all(isinstance(leaf, bool) for leaf in leaves):
        return "DT_BOOL"
    if all(isinstance(leaf, int) and not isinstance(leaf, bool) for leaf in leaves):
        return "DT_INT64"
    return "DT_DOUBLE"



def rest_request(feeds: dict[str, np.ndarray], inputs: dict[str, TensorSpec], signature_name: str) -> dict:
    """A columnar `:predict` body; always the `{"inputs": {alias: ...}}` object form."""
    encoded = {alias: encode_tensor(feeds[alias], spec.dtype, alias) for alias, spec in inputs.items()}
    return {"signature_name": signature_name, "inputs": encoded}


def rest_response(outputs: dict[str, np.ndarray], specs: dict[str, TensorSpec]) -> dict:
    """The columnar response: the bare tensor for one output, else an object by alias."""
    encoded = {alias: encode_tensor(outputs[alias], spec.dtype, alias) for alias, spec in specs.items()}
    return {"outputs": next(iter(encoded.values())) if len(encoded) == 1 else encoded}


def example_request(examples: list[dict], signature_name: str) -> dict:
    """A `:classify`/`:regress` body: tf.Examples as `{feature: [values]}` objects, as TF Serving reads them."""
    return {"signature_name": signature_name, "examples": examples}


def results_response(outputs: dict[str, np.ndarray], classify: bool) -> dict:
    """What TF Serving answers to `:classify` (per example [label, score] pairs; label "" without
    `classes`, score 0.0 without `scores`) or `:regress` (one value per example)."""
    if not classify:
        return {"results": [_decimal(v, np.dtype(np.float32)) for v in np.asarray(outputs["outputs"]).ravel()]}
    classes, scores = outputs.get("classes"), outputs.get("scores")
    rows = len(classes if classes is not None else scores)
    labels = (np.full((rows, np.asarray(scores).reshape(rows, -1).shape[1]), b"", dtype=object) if classes is None
              else np.asarray(classes).reshape(rows, -1))
    values = (np.zeros(labels.shape, np.float32) if scores is None else np.asarray(scores).reshape(rows, -1))
    return {"results": [[[_encode_string(label, False), _decimal(float(score), np.dtype(np.float32))]
                         for label, score in zip(label_row, score_row)]
                        for label_row, score_row in zip(labels.tolist(), values.tolist())]}


def results_tensors(body: dict, classify: bool) -> dict[str, np.ndarray]:
    """The `results` of a `:classify` answer as `classes` (labels) and `scores`, or of a `:regress`
    answer as `outputs`; ValueError if malformed."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise ValueError("the response has no 'results' list")
    if not classify:
        return {"outputs": decode_tensor(results, "DT_FLOAT")}
    try:
        labels = [[pair[0] for pair in row] for row in results]
        scores = [[pair[1] for pair in row] for row in results]
    except (TypeError, IndexError, KeyError):
        raise ValueError("'results' must hold one list of [label, score] pairs per example") from None
    return {"classes": decode_tensor(labels, "DT_STRING"), "scores": decode_tensor(scores, "DT_FLOAT")}


def request_tensors(body: dict, specs: dict[str, TensorSpec]) -> dict[str, np.ndarray]:
    """The input arrays of a `:predict` body (`inputs` or `instances`); ValueError if malformed.

    Keys that are not inputs of the signature are ignored, as TF Serving ignores them.
    """
    values = _body_values(body, "inputs", "instances", specs, "request")
    missing = [alias for alias in specs if alias not in values]
    if missing:
        raise ValueError(f"the request has no value for input(s) {', '.join(missing)}")
    return {alias: decode_tensor(values[alias], spec.dtype) for alias, spec in specs.items()}


def response_tensors(body: dict, specs: dict[str, TensorSpec]) -> dict[str, np.ndarray]:
    """The output arrays of a `:predict` response (`outputs` or `predictions`); ValueError if malformed.

    Outputs the signature does not declare are kept (with a guessed dtype) so that `compare`
    reports them instead of silently passing.
    """
    return _every_tensor(_body_values(body, "outputs", "predictions", specs, "response"), specs)


def sent_tensors(body: dict, specs: dict[str, TensorSpec]) -> dict[str, np.ndarray]:
    """Every tensor a `:predict` body sends, as a gRPC client would send it: with the signature's
    dtype where the values fit it, else the dtype the JSON values suggest (so a wrong-type request
    reaches the server as one); ValueError if malformed."""
    out = {}
    for alias, value in _body_values(body, "inputs", "instances", specs, "request").items():
        try:
            out[alias] = decode_tensor(value, specs[alias].dtype)
        except (KeyError, ValueError):
            out[alias] = decode_tensor(value, _guess_dtype(value))
    return out


def _every_tensor(values: dict[str, Any], specs: dict[str, TensorSpec]) -> dict[str, np.ndarray]:
    return {alias: decode_tensor(value, specs[alias].dtype if alias in specs else _guess_dtype(value))
            for alias, value in values.items()}


def _body_values(body: dict, columnar: str, rows: str, specs: dict[str, TensorSpec], what: str) -> dict:
    """Tensor values of a REST body in columnar (`inputs`/`outputs`) or row form, by alias."""
    if columnar in body:
        return named_tensors(body[columnar], specs, f"'{columnar}'")
    if rows in body:
        return rows_to_columns(body[rows], specs, f"'{rows}'")
    raise ValueError(f"the {what} has neither '{columnar}' nor '{rows}'")


def named_tensors(value: Any, specs: dict[str, TensorSpec], where: str) -> dict[str, Any]:
    """Columnar value -> alias -> tensor; a bare value belongs to a one-tensor signature."""
    if isinstance(value, dict) and not is_b64(value):
        return value
    if len(specs) != 1:
        raise ValueError(f"{where} is a single tensor but the signature has {len(specs)}: {', '.join(specs)}")
    return {next(iter(specs)): value}


def rows_to_columns(rows: Any, specs: dict[str, TensorSpec], where: str) -> dict[str, list]:
    """Row form (one entry per batch item) -> alias -> list of rows (a batch-first tensor)."""
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{where} must be a non-empty list")
    if not (isinstance(rows[0], dict) and not is_b64(rows[0])):
        return named_tensors(rows, specs, where)
    keys = list(rows[0])
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or sorted(row) != sorted(keys):
            raise ValueError(f"item {index} of {where} must be an object with the keys of item 0: "
                             f"{', '.join(keys)}")
    return {key: [row[key] for row in rows] for key in keys}

