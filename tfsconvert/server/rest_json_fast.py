"""Request tensors without per-value Python work: a predict body of named numeric tensors read whole
from its bytes (predict_body, body_tensors: _predict_json.c), else the dense lists of numbers, bools
and strings (`{"b64": ...}` too) of a parsed document converted in C (tensor, columns: _rest_json.c).

Each function returns None where it does not apply (a ragged list, a value of the wrong type, an
int out of range, a dtype it does not cover, a C module without the function): the general path
in rest_json then decides, and reports any error with TF Serving's text. What it returns equals
what that path returns, value by value (tests/server/test_rest_json_fast.py)."""

from __future__ import annotations

import binascii
from functools import partial

import numpy as np

from tfsconvert import accel, dtypes

_FORMATS = {"DT_INT8": "b", "DT_INT16": "h", "DT_INT32": "i", "DT_INT64": "q", "DT_UINT8": "B", "DT_UINT32": "I",
            "DT_BOOL": "?", "DT_FLOAT": "d", "DT_DOUBLE": "d"}
MAX_DIMS = 254  # TensorShape::MaxDimensions()
_rest_json = accel.load("tfsconvert.server", "_rest_json")  # its pure-Python twin has only `doubles`
_b64decode = partial(binascii.a2b_base64, strict_mode=True)  # what base64.b64decode(validate=True) does to ASCII


def _c(name: str):
    """The module's function `name`, or None (the pure-Python twin, or a build without it)."""
    return getattr(_rest_json, name, None)


def shape_of(value) -> list[int]:
    """The dense shape implied by the first element at every level."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def tensor(value, shape: list[int], dtype: str) -> np.ndarray | None:
    """The tensor of `value`, whose dense shape is `shape`, for an input of `dtype`."""
    array = _read(value, shape, dtype, 0)
    return None if array is None else _cast(array, dtype)


def _read(value, shape: list[int], dtype: str, row_dims: int) -> np.ndarray | None:
    """The values of `value` in an array of `shape`: doubles for a float input (cast by _cast), else
    the input's dtype. `row_dims` is 1 if the first dimension stacks the rows of a row-format body
    (their values were tensors of their own)."""
    try:
        if dtype == "DT_STRING":
            strings = _c("strings")
            flat = strings(value, shape, _b64decode) if strings is not None else None
            return None if flat is None else _objects(flat).reshape(shape)
        format_ = _FORMATS.get(dtype)
        if format_ == "d" and len(shape) > row_dims:
            # Lists of numbers: through doubles, as float() makes every JSON number. A bare number
            # goes to numpy as it is (typed's "d" then takes the ints a double holds exactly).
            data = _rest_json.doubles(value, shape)
        else:
            typed = _c("typed")
            data = typed(value, shape, format_) if typed is not None and format_ else None
        if data is None:
            return None
        return np.frombuffer(data, dtype=np.float64 if format_ == "d" else dtypes.numpy_dtype(dtype)).reshape(shape)
    except ValueError:  # more dimensions than numpy allows
        return None


def _cast(array: np.ndarray, dtype: str) -> np.ndarray:
    target = dtypes.numpy_dtype(dtype)
    return array.astype(target) if target.kind == "f" else array


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def columns(rows: list, inputs: dict[str, str]) -> dict[str, np.ndarray] | None:
    """Row format (`instances`) as columns: every input's values of all rows as one tensor with a
    first dimension more, when every row has a value of the same dense shape for every input."""
    if not rows or "b64" in inputs:  # a lone "b64" input would make {"b64": ...} rows objects
        return None
    if isinstance(rows[0], dict) and list(rows[0]) != ["b64"]:
        transpose = _c("transpose")
        values = transpose(rows, tuple(inputs)) if transpose is not None else None
    else:
        values = [rows] if len(inputs) == 1 else None
    if values is None:
        return None
    arrays = {}
    for (alias, dtype), column in zip(inputs.items(), values):
        shape = shape_of(column)
        array = _read(column, shape, dtype, 1) if len(shape) <= MAX_DIMS + 1 else None
        if array is None:
            return None
        arrays[alias] = array
    return {alias: _cast(array, inputs[alias]) for alias, array in arrays.items()}  # warnings only if it applies


_EXACT_INTEGERS = 2 ** 53


def predict_body(body: bytes) -> tuple | None:
    """What C read of a predict body of named numeric tensors (_predict_json.c), without a Python
    object per value: (signature_name or None, rows, readings), or None for any other body."""
    read = _c("predict_body")
    return read(body) if read is not None else None


def body_tensors(reading: tuple, inputs: dict[str, str]) -> dict[str, np.ndarray] | None:
    """The input tensors of a body predict_body read, for the signature inputs `inputs` (alias ->
    dtype), as rest.predict_tensors would make them from the parsed document."""
    _, rows, readings = reading
    if len(readings) == 1 and readings[0][0] is None:  # an unnamed tensor, or rows of one
        if len(inputs) != 1:
            return None
        readings = [(next(iter(inputs)), *readings[0][1:])]
    named = {alias: rest for alias, *rest in readings}
    if list(named) == ["b64"]:  # {"b64": ...} is a string value to TF Serving, not an object of inputs
        return None
    if (set(named) != set(inputs)) if rows else not set(inputs) <= set(named):  # extra "inputs" are ignored
        return None
    arrays = {}
    for alias, dtype in inputs.items():
        array = _typed_array(*named[alias], dtype, 1 if rows else 0)
        if array is None:
            return None
        arrays[alias] = array
    return {alias: _cast(array, inputs[alias]) for alias, array in arrays.items()}


def _typed_array(shape: tuple, doubles: bytearray, ints: bytearray | None, inexact_ints: bool, dtype: str,
                 row_dims: int) -> np.ndarray | None:
    target = dtypes.NUMPY_DTYPES.get(dtype)
    if target is None or dtype in ("DT_HALF", "DT_UINT16") or target.kind in "bO":
        return None
    if target.kind == "f":
        # Numbers in lists go through doubles; a bare number to numpy as it is, which for an int
        # beyond 2^53 rounds once where the double would round twice.
        return np.frombuffer(doubles).reshape(shape) if len(shape) > row_dims or not inexact_ints else None
    if ints is None:
        return None  # a float, or an int of 19 digits or more: the general path's
    values = np.frombuffer(ints, dtype=np.int64).reshape(shape)
    if target != np.int64 and values.size:
        info = np.iinfo(target)
        if values.min() < info.min or values.max() > info.max:
            return None
    return values if target == np.int64 else values.astype(target)
