"""Golden requests (docs/architecture.md "Golden requests"): sample inputs, TF Serving REST JSON, and comparison.

A golden line holds a REST `:predict` body and the response TF Serving would give, encoded
exactly as TF Serving encodes values (docs/tf-serving.md §4.8), so a user can replay it with curl. No
TensorFlow here: static validation reads golden files without it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tfsconvert.errors import InputError
from tfsconvert.model import TensorSpec

NUMPY_DTYPES: dict[str, np.dtype] = {
    "DT_FLOAT": np.dtype(np.float32),
    "DT_DOUBLE": np.dtype(np.float64),
    "DT_HALF": np.dtype(np.float16),
    "DT_INT8": np.dtype(np.int8),
    "DT_INT16": np.dtype(np.int16),
    "DT_INT32": np.dtype(np.int32),
    "DT_INT64": np.dtype(np.int64),
    "DT_UINT8": np.dtype(np.uint8),
    "DT_UINT16": np.dtype(np.uint16),
    "DT_UINT32": np.dtype(np.uint32),
    "DT_UINT64": np.dtype(np.uint64),
    "DT_BOOL": np.dtype(np.bool_),
    "DT_STRING": np.dtype(object),  # elements are bytes
}
# TF Serving's JSON layer neither reads nor writes these (docs/tf-serving.md §4.8: 501/400).
_NOT_IN_REST = ("DT_HALF", "DT_UINT16")
# numpy kinds a sample array may have for each target kind (never float -> int, never text -> number).
_CASTABLE_FROM = {"f": "biuf", "i": "biu", "u": "biu", "b": "b"}
_SAMPLES_HINT = "pass --sample-inputs FILE (JSON or .npz)"
_B64 = "b64"


def numpy_dtype(dt: str) -> np.dtype:
    """The numpy dtype for a TF dtype name; InputError for dtypes we cannot carry."""
    try:
        return NUMPY_DTYPES[dt]
    except KeyError:
        raise InputError("unsupported-dtype", f"tensors of type {dt} are not supported",
                         f"use one of {', '.join(NUMPY_DTYPES)} in the signature") from None


# ---------------------------------------------------------------------------------------------
# Sample inputs


# Makes one sample value for an input that random values would not exercise (a vocabulary, a
# serialized tf.Example, an encoded image): (rng, sample index, shape) -> array of that shape.
ValueMaker = Callable[[np.random.Generator, int, tuple[int, ...]], np.ndarray]


def synthesize(inputs: dict[str, TensorSpec], count: int, seed: int = 0,
               makers: dict[str, ValueMaker] | None = None) -> list[dict[str, np.ndarray]]:
    """`count` made-up feed dicts, the same for the same seed.

    Shapes: a leading -1 becomes 1 (each sample is a batch of one), any other -1 becomes 3.
    Values: `makers[alias]` where the source knows what its input means, else floats standard
    normal, integers in [0, 10) (valid ids and indices), uint8 in [0, 256), random bools,
    strings `b"<alias>-<i>"`. Unknown rank is an InputError.
    """
    rng = np.random.default_rng(seed)
    makers = makers or {}
    shapes = {alias: _sample_shape(alias, spec) for alias, spec in inputs.items()}

    def value(alias: str, index: int) -> np.ndarray:
        if alias in makers:
            return makers[alias](rng, index, shapes[alias])
        return _random_values(rng, alias, index, inputs[alias].dtype, shapes[alias])

    # Sorted aliases: the values must not depend on the order a reader listed the inputs in.
    return [{alias: value(alias, i) for alias in sorted(inputs)} for i in range(count)]


def _sample_shape(alias: str, spec: TensorSpec) -> tuple[int, ...]:
    if spec.shape is None:
        raise InputError("unknown-input-shape",
                         f"input '{alias}' has an unknown rank, so no sample value can be made up for it",
                         _SAMPLES_HINT)
    return tuple(dim if dim >= 0 else (1 if axis == 0 else 3) for axis, dim in enumerate(spec.shape))


def _random_values(rng: np.random.Generator, alias: str, index: int, dt: str, shape: tuple) -> np.ndarray:
    target = numpy_dtype(dt)
    if dt == "DT_STRING":
        return np.full(shape, f"{alias}-{index}".encode(), dtype=object)
    if target.kind == "f":
        return rng.standard_normal(shape).astype(target)
    if target.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    return rng.integers(0, 256 if dt == "DT_UINT8" else 10, shape).astype(target)


def load_samples(path: Path, inputs: dict[str, TensorSpec]) -> list[dict[str, np.ndarray]]:
    """Read user sample inputs from `.npz` or `.json`; sample i feeds `array[i:i+1]` (`array[i]` to a scalar input).

    JSON may be columnar (`{alias: [...]}`), rows (`[{alias: value}, ...]`) or a TF Serving
    REST body (`{"inputs": ...}` / `{"instances": [...]}`); the first axis is always the sample.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("path-not-found", f"{path}: no such file", "check the --sample-inputs path")
    if path.suffix == ".npz":
        arrays = _read_npz(path, inputs)
    elif path.suffix == ".json":
        arrays = _read_json_samples(path, inputs)
    else:
        raise InputError("bad-sample-inputs", f"{path}: sample inputs must be a .json or .npz file",
                         _SAMPLES_HINT)
    return _split_samples(path, arrays, inputs)


def _read_npz(path: Path, inputs: dict[str, TensorSpec]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = {alias: npz[alias] for alias in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise InputError("bad-sample-inputs", f"{path}: not a readable .npz file ({error})",
                         "write it with numpy.savez(path, alias=array, ...)") from None
    _check_aliases(path, raw, inputs)
    return {alias: _cast_array(path, alias, array, inputs[alias].dtype) for alias, array in raw.items()}


def _cast_array(path: Path, alias: str, array: np.ndarray, dt: str) -> np.ndarray:
    target = numpy_dtype(dt)
    if dt == "DT_STRING":
        if array.dtype.kind not in "SU":
            raise _bad_value(path, alias, f"dtype {array.dtype} is not a string type ({dt})")
        return _as_bytes_array(array)
    if array.dtype.kind not in _CASTABLE_FROM[target.kind]:
        raise _bad_value(path, alias, f"dtype {array.dtype} cannot be converted to {dt}")
    cast = array.astype(target)
    # Integer casts wrap around silently (int64 300 -> uint8 44); refuse values that change.
    if target.kind in "iu" and not np.array_equal(cast, array):
        raise _bad_value(path, alias, f"values out of range for {dt}")
    return cast


def _as_bytes_array(array: np.ndarray) -> np.ndarray:
    return _object_array(_bytes_list(array)).reshape(array.shape)


def _read_json_samples(path: Path, inputs: dict[str, TensorSpec]) -> dict[str, np.ndarray]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError("bad-sample-inputs",
                         f"{path}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
                         "fix the JSON syntax") from None
    except UnicodeDecodeError:
        raise InputError("bad-sample-inputs", f"{path}: not UTF-8 text", "save the file as UTF-8") from None
    try:
        values = _json_columns(doc, inputs)
    except ValueError as error:
        raise InputError("bad-sample-inputs", f"{path}: {error}", _SAMPLES_HINT) from None
    _check_aliases(path, values, inputs)
    arrays = {}
    for alias, value in values.items():
        try:
            arrays[alias] = decode_tensor(value, inputs[alias].dtype)
        except ValueError as error:
            raise _bad_value(path, alias, str(error)) from None
    return arrays


def _json_columns(doc: Any, inputs: dict[str, TensorSpec]) -> dict[str, Any]:
    """alias -> JSON value whose first axis is the sample, from any accepted JSON form."""
    if isinstance(doc, list):
        return _rows_to_columns(doc, inputs, "the list")
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object or list at the top level")
    if _is_rest_body(doc, "inputs", inputs):
        return _named_tensors(doc["inputs"], inputs, "'inputs'")
    if _is_rest_body(doc, "instances", inputs):
        return _rows_to_columns(doc["instances"], inputs, "'instances'")
    return doc


def _is_rest_body(doc: dict, key: str, inputs: dict[str, TensorSpec]) -> bool:
    """Whether `doc` is a REST body under `key` (`inputs` or `instances`) rather than columns by alias.

    When an input is itself called `inputs` or `instances`, the body is told apart by what no tensor
    value is: an object by alias (per row, for `instances`), or a `signature_name` next to it.
    """
    if key not in doc:
        return False
    if key not in inputs or ("signature_name" in doc and "signature_name" not in inputs):
        return True
    value = doc[key]
    named = value[0] if key == "instances" and isinstance(value, list) and value else value
    return isinstance(named, dict) and not _is_b64(named)


def _check_aliases(path: Path, values: dict, inputs: dict[str, TensorSpec]) -> None:
    expected = f"expected aliases: {', '.join(inputs)}"
    unknown = [alias for alias in values if alias not in inputs]
    if unknown:
        raise InputError("input-alias-not-found", f"{path}: unknown input(s) {', '.join(unknown)}; {expected}",
                         "rename the keys to the signature's input aliases (see `tfsconvert inspect`)")
    missing = [alias for alias in inputs if alias not in values]
    if missing:
        raise InputError("missing-input", f"{path}: no values for input(s) {', '.join(missing)}; {expected}",
                         "add a value for every input alias")


def _split_samples(path: Path, arrays: dict[str, np.ndarray],
                   inputs: dict[str, TensorSpec]) -> list[dict[str, np.ndarray]]:
    """One feed dict per entry of the first axis: `array[i:i+1]`, or the entry itself for a scalar input."""
    for alias, array in arrays.items():
        if array.ndim == 0:
            raise _bad_value(path, alias, "a scalar; give a list with one entry per sample")
    counts = {alias: len(array) for alias, array in arrays.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{alias}={n}" for alias, n in counts.items())
        raise InputError("bad-sample-inputs", f"{path}: inputs have different sample counts: {listed}",
                         "give every input the same number of samples (the first axis)")
    count = next(iter(counts.values()), 0)
    if count == 0:
        raise InputError("bad-sample-inputs", f"{path}: no samples", "give at least one sample")
    scalar = {alias: inputs[alias].shape == [] for alias in arrays}
    for alias, array in arrays.items():
        _check_sample_shape(path, alias, array.shape[1:] if scalar[alias] else (1, *array.shape[1:]),
                            inputs[alias].shape)
    return [{alias: array[i:i + 1].reshape(()) if scalar[alias] else array[i:i + 1] for alias, array in arrays.items()}
            for i in range(count)]


def _check_sample_shape(path: Path, alias: str, shape: tuple[int, ...], declared: list[int] | None) -> None:
    """Refuse samples whose shape the signature's known dimensions rule out (TensorFlow would not feed them)."""
    if declared is None:
        return
    if len(shape) != len(declared) or any(want >= 0 and want != got for want, got in zip(declared, shape)):
        raise InputError("bad-sample-inputs",
                         f"{path}: input '{alias}': a sample has shape {list(shape)}, the signature takes {declared}",
                         "give each sample the input's shape (the file's first axis lists the samples; a sample of a "
                         "batch input is a batch of one)")


def _bad_value(path: Path, alias: str, problem: str) -> InputError:
    return InputError("bad-sample-inputs", f"{path}: input '{alias}': {problem}",
                      "give values of the input's dtype (see `tfsconvert inspect`)")


# ---------------------------------------------------------------------------------------------
# JSON values, as TF Serving's REST API writes and reads them (docs/tf-serving.md §4.8)


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
        flat = np.array(values, dtype=target) if dtype != "DT_STRING" else _object_array(values)
    except OverflowError:
        raise ValueError(f"a value is out of range for {dtype}") from None
    return flat.reshape(shape)


def _object_array(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


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
    if _is_b64(leaf):
        try:
            return base64.b64decode(leaf[_B64], validate=True)
        except binascii.Error:
            raise ValueError(f"{json.dumps(leaf)} is not valid base64") from None
    raise ValueError(f"JSON value {json.dumps(leaf)} is not a string or {{\"b64\": ...}} object")


def _is_b64(value: Any) -> bool:
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


# ---------------------------------------------------------------------------------------------
# REST bodies (docs/tf-serving.md §4.5, §4.6)


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
        return _named_tensors(body[columnar], specs, f"'{columnar}'")
    if rows in body:
        return _rows_to_columns(body[rows], specs, f"'{rows}'")
    raise ValueError(f"the {what} has neither '{columnar}' nor '{rows}'")


def _named_tensors(value: Any, specs: dict[str, TensorSpec], where: str) -> dict[str, Any]:
    """Columnar value -> alias -> tensor; a bare value belongs to a one-tensor signature."""
    if isinstance(value, dict) and not _is_b64(value):
        return value
    if len(specs) != 1:
        raise ValueError(f"{where} is a single tensor but the signature has {len(specs)}: {', '.join(specs)}")
    return {next(iter(specs)): value}


def _rows_to_columns(rows: Any, specs: dict[str, TensorSpec], where: str) -> dict[str, list]:
    """Row form (one entry per batch item) -> alias -> list of rows (a batch-first tensor)."""
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{where} must be a non-empty list")
    if not (isinstance(rows[0], dict) and not _is_b64(rows[0])):
        return _named_tensors(rows, specs, where)
    keys = list(rows[0])
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or sorted(row) != sorted(keys):
            raise ValueError(f"item {index} of {where} must be an object with the keys of item 0: "
                             f"{', '.join(keys)}")
    return {key: [row[key] for row in rows] for key in keys}


# ---------------------------------------------------------------------------------------------
# golden.jsonl


@dataclass
class GoldenRecord:
    """One line of golden.jsonl: a REST request and the response the source model gave."""

    id: str
    signature_name: str
    request: dict
    response: dict
    rtol: float | None = None
    atol: float | None = None

    def to_json(self) -> dict:
        out = {"id": self.id, "model_spec": {"signature_name": self.signature_name},
               "request": self.request, "response": self.response}
        for key in ("rtol", "atol"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str) -> "GoldenRecord":
        """Parse one golden line; `where` (`path:line`) prefixes any InputError."""
        if not isinstance(obj, dict):
            raise _bad_golden(where, "a line must be a JSON object")
        for key, kind in (("id", str), ("model_spec", dict), ("request", dict), ("response", dict)):
            if not isinstance(obj.get(key), kind):
                raise _bad_golden(where, f"'{key}' must be a JSON {'string' if kind is str else 'object'}")
        signature_name = obj["model_spec"].get("signature_name")
        if not isinstance(signature_name, str):
            raise _bad_golden(where, "'model_spec.signature_name' must be a JSON string")
        tolerances = {key: _tolerance(obj, key, where) for key in ("rtol", "atol")}
        return cls(obj["id"], signature_name, obj["request"], obj["response"], **tolerances)


def _tolerance(obj: dict, key: str, where: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise _bad_golden(where, f"'{key}' must be a non-negative number")
    return float(value)


def _bad_golden(where: str, problem: str) -> InputError:
    return InputError("bad-golden-file", f"{where}: {problem}",
                      "fix or delete the line (format: docs, docs/architecture.md 'Golden requests'), or re-record with tfsconvert")


def write_golden(path: Path, records: list[GoldenRecord]) -> None:
    """Write one compact JSON object per line (UTF-8; NaN/Infinity as TF Serving writes them)."""
    lines = (json.dumps(record.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n" for record in records)
    Path(path).write_text("".join(lines), encoding="utf-8")


def read_golden(path: Path) -> list[GoldenRecord]:
    """Read golden.jsonl; InputError `bad-golden-file` naming `path:line` for a bad line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("path-not-found", f"{path}: no such file", "check the path") from None
    except UnicodeDecodeError:
        raise _bad_golden(str(path), "not UTF-8 text") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as error:
            raise _bad_golden(where, f"not valid JSON: {error.msg} at column {error.colno}") from None
        records.append(GoldenRecord.from_json(obj, where))
    return records


# ---------------------------------------------------------------------------------------------
# Comparison: names, then dtype kind and shape, then values; every output reported


@dataclass
class OutputDiff:
    """How one output compared; `problem` says what failed first when `ok` is False."""

    alias: str
    dtype: str
    max_abs: float | None
    max_rel: float | None
    atol: float
    rtol: float
    ok: bool
    problem: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


_KINDS = {"f": "float", "i": "integer", "u": "integer", "b": "bool", "O": "string", "S": "string",
          "U": "string"}
_TF_NAMES = {np_dtype: name for name, np_dtype in NUMPY_DTYPES.items()}


def compare(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray], atol: float,
            rtol: float) -> list[OutputDiff]:
    """Compare every expected output (and flag unexpected ones) within atol + rtol*|expected|."""
    diffs = [_compare_one(alias, np.asarray(value), actual.get(alias), atol, rtol)
             for alias, value in expected.items()]
    diffs += [OutputDiff(alias, dtype_name(np.asarray(value)), None, None, atol, rtol, False, "unexpected output")
              for alias, value in actual.items() if alias not in expected]
    return diffs


def _compare_one(alias: str, expected: np.ndarray, actual: np.ndarray | None, atol: float,
                 rtol: float) -> OutputDiff:
    name = dtype_name(expected)
    problem = "missing output" if actual is None else _structure_problem(expected, np.asarray(actual))
    if problem:
        return OutputDiff(alias, name, None, None, atol, rtol, False, problem)
    actual = np.asarray(actual)
    if _kind(expected) == "float":
        max_abs, max_rel, problem = _float_errors(expected, actual, atol, rtol)
    else:
        (max_abs, problem), max_rel = _exact_errors(expected, actual), None
    return OutputDiff(alias, name, max_abs, max_rel, atol, rtol, problem is None, problem)


def _kind(array: np.ndarray) -> str:
    return _KINDS.get(array.dtype.kind, array.dtype.kind)


def _structure_problem(expected: np.ndarray, actual: np.ndarray) -> str | None:
    """Dtype kind, then shape; float32 against float64 is not a problem (values decide)."""
    if _kind(actual) != _kind(expected):
        return f"dtype {dtype_name(actual)} != expected {dtype_name(expected)}"
    if actual.shape != expected.shape:
        return f"shape {list(actual.shape)} != expected {list(expected.shape)}"
    return None


def _exact_errors(expected: np.ndarray, actual: np.ndarray) -> tuple[float | None, str | None]:
    """(max_abs, problem) for integers, bools and strings, which must match exactly."""
    if _kind(expected) == "string":
        wrong = sum(e != a for e, a in zip(_bytes_list(expected), _bytes_list(actual)))
        max_abs = None
    else:
        wrong = int(np.count_nonzero(expected != actual))
        gap = np.abs(expected.astype(np.float64) - actual.astype(np.float64))
        max_abs = float(gap.max()) if gap.size else 0.0
    return max_abs, f"{wrong} of {expected.size} values differ" if wrong else None


def _float_errors(expected: np.ndarray, actual: np.ndarray, atol: float,
                  rtol: float) -> tuple[float, float, str | None]:
    """(max_abs, max_rel, problem) over the positions where neither side is NaN."""
    e, a = expected.astype(np.float64), actual.astype(np.float64)
    nan_moved = int(np.count_nonzero(np.isnan(e) != np.isnan(a)))
    both = ~(np.isnan(e) | np.isnan(a))
    e, a = e[both], a[both]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        gap = np.where(a == e, 0.0, np.abs(a - e))  # equal infinities differ by 0, not NaN
        # Relative to |expected|, floored at float32 epsilon so expected zeros give a readable figure.
        scale = np.maximum(np.abs(e), np.finfo(np.float32).eps)
        rel = np.where(gap == 0, 0.0, np.where(np.isinf(gap), np.inf, gap / scale))
        # An infinite gap never passes, even when rtol * |inf| would allow it.
        within = (gap == 0) | (np.isfinite(gap) & (gap <= atol + rtol * np.abs(e)))
    max_abs = float(gap.max()) if gap.size else 0.0
    max_rel = float(rel.max()) if rel.size else 0.0
    outside = int(np.count_nonzero(~within))
    if nan_moved:
        return max_abs, max_rel, f"NaN at {nan_moved} position(s) where the other side has a number"
    if outside:
        return max_abs, max_rel, f"{outside} of {expected.size} values outside atol + rtol*|expected|"
    return max_abs, max_rel, None


def dtype_name(array: np.ndarray) -> str:
    """The TF enum name of an array's dtype (strings and bytes: DT_STRING)."""
    if array.dtype.kind in "OSU":
        return "DT_STRING"
    return _TF_NAMES.get(array.dtype, str(array.dtype))


def _bytes_list(array: np.ndarray) -> list[bytes]:
    return [value.encode() if isinstance(value, str) else value for value in array.ravel().tolist()]


def merge(diffs: list[list[OutputDiff]]) -> list[OutputDiff]:
    """One row per output over all samples: largest errors, ok only if every sample was ok."""
    rows: dict[str, OutputDiff] = {}
    for sample in diffs:
        for diff in sample:
            row = rows.get(diff.alias)
            rows[diff.alias] = diff if row is None else replace(
                row, max_abs=_larger(row.max_abs, diff.max_abs), max_rel=_larger(row.max_rel, diff.max_rel),
                ok=row.ok and diff.ok, problem=row.problem or diff.problem)
    return list(rows.values())


def _larger(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return b if a is None else a
    return max(a, b)
