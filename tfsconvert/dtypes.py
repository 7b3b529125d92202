"""TF dtype names and the numpy dtypes that carry them (no TensorFlow here)."""

from __future__ import annotations

import numpy as np

from tfsconvert.errors import InputError

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
_TF_NAMES = {np_dtype: name for name, np_dtype in NUMPY_DTYPES.items()}


def numpy_dtype(dt: str) -> np.dtype:
    """The numpy dtype for a TF dtype name; InputError for dtypes we cannot carry."""
    try:
        return NUMPY_DTYPES[dt]
    except KeyError:
        raise InputError("unsupported-dtype", f"tensors of type {dt} are not supported",
                         f"use one of {', '.join(NUMPY_DTYPES)} in the signature") from None


def dtype_name(array: np.ndarray) -> str:
    """The TF enum name of an array's dtype (strings and bytes: DT_STRING; others by numpy's name, DT_COMPLEX64)."""
    if array.dtype.kind in "OSU":
        return "DT_STRING"
    name = _TF_NAMES.get(array.dtype)
    return name if name is not None else f"DT_{array.dtype.name.upper()}"


def bytes_list(array: np.ndarray) -> list[bytes]:
    """The elements of a string array as bytes."""
    return [value.encode() if isinstance(value, str) else value for value in array.ravel().tolist()]


def object_array(values: list) -> np.ndarray:
    """A 1-D object array of `values` (numpy would otherwise make a fixed-width string array)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def label_dtype(classes) -> str:
    """The TF dtype of a classifier's labels, from its classes."""
    kind = np.asarray(classes).dtype.kind
    if kind in ("i", "u"):
        return "DT_INT64"
    return {"b": "DT_BOOL", "f": "DT_DOUBLE"}.get(kind, "DT_STRING")


def label_array(values, dtype: str) -> np.ndarray:
    """Labels as the array kind comparisons expect for `dtype` (strings as an object array)."""
    if dtype == "DT_STRING":
        return object_array([v if isinstance(v, str) else str(v) for v in values])
    return np.asarray(values).astype(numpy_dtype(dtype))
