"""Sample inputs for parity: made up from a signature (synthesize) or read from the user's file (load_samples)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tfsconvert.dtypes import bytes_list, numpy_dtype, object_array
from tfsconvert.errors import InputError
from tfsconvert.model import TensorSpec
from tfsconvert.rest_codec import decode_tensor, is_b64, named_tensors, rows_to_columns

# numpy kinds a sample array may have for each target kind (never float -> int, never text -> number).
_CASTABLE_FROM = {"f": "biuf", "i": "biu", "u": "biu", "b": "b"}
_SAMPLES_HINT = "pass --sample-inputs FILE (JSON or .npz)"


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
    return object_array(bytes_list(array)).reshape(array.shape)


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
        return rows_to_columns(doc, inputs, "the list")
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object or list at the top level")
    if _is_rest_body(doc, "inputs", inputs):
        return named_tensors(doc["inputs"], inputs, "'inputs'")
    if _is_rest_body(doc, "instances", inputs):
        return rows_to_columns(doc["instances"], inputs, "'instances'")
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
    return isinstance(named, dict) and not is_b64(named)


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

