"""TensorProto <-> numpy, in one place (gRPC requests/responses and warmup records)."""

from __future__ import annotations

import numpy as np

from tfsconvert.dtypes import NUMPY_DTYPES
from tfsconvert.server.status import invalid

# TF Serving writes outputs into the typed fields, not tensor_content (docs/tf-serving.md §5.2).
_TYPED_FIELDS = {
    "DT_FLOAT": "float_val", "DT_DOUBLE": "double_val", "DT_INT32": "int_val", "DT_INT16": "int_val",
    "DT_INT8": "int_val", "DT_UINT8": "int_val", "DT_UINT16": "int_val", "DT_INT64": "int64_val",
    "DT_UINT32": "uint32_val", "DT_UINT64": "uint64_val", "DT_BOOL": "bool_val", "DT_STRING": "string_val",
}
_TF_NAMES = {dtype: name for name, dtype in NUMPY_DTYPES.items()}


def array_dtype(array: np.ndarray) -> str:
    """The TF dtype name of a numpy array (`DT_STRING` for bytes/str/object arrays)."""
    if array.dtype.kind in "OSU":
        return "DT_STRING"
    name = _TF_NAMES.get(array.dtype)
    return name if name is not None else f"DT_{array.dtype.name.upper()}"


def to_array(proto, alias: str) -> np.ndarray:
    """The array of a request TensorProto; INVALID_ARGUMENT `tensor parsing error` if malformed."""
    import tensorflow as tf

    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError):
        raise invalid(f"tensor parsing error: {alias}") from None


def to_proto(array: np.ndarray, dtype: str):
    """A response TensorProto of `dtype` with the values in the typed repeated field."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    array = np.asarray(array)
    field = _TYPED_FIELDS.get(dtype)
    if field is None:  # half, bfloat16, ...: TensorFlow knows how to pack these
        import tensorflow as tf

        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(
        dtype=types_pb2.DataType.Value(dtype),
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": size} for size in array.shape]))
    values = array.ravel().tolist()
    if dtype == "DT_STRING":
        values = [v.encode("utf-8") if isinstance(v, str) else v for v in values]
    getattr(proto, field).extend(values)
    return proto
