"""numpy arrays <-> TensorProto without TensorFlow: the one codec for clients, the server and warmup records.

Writes what `tf.make_tensor_proto` writes (strings in `string_val`, numbers little-endian in
`tensor_content`), or, for a server's answer, the typed `*_val` fields TF Serving fills
(docs/tf-serving.md §5.2). Reads what any client or server sends, `tf.make_ndarray`'s rules included:
a typed `*_val` list shorter than the shape is filled with its last value, an empty one means all zeros.
"""

from __future__ import annotations

import numpy as np

from tfsconvert import tfproto
from tfsconvert.dtypes import NUMPY_DTYPES, numpy_dtype

_DTYPE_NUMBERS = {name: number for number, name in tfproto.DTYPE_NAMES.items()}
# The repeated field holding each dtype's values when `tensor_content` is empty (tensor.proto).
_VALUE_FIELDS = {"DT_FLOAT": "float_val", "DT_DOUBLE": "double_val", "DT_INT64": "int64_val",
                 "DT_BOOL": "bool_val", "DT_STRING": "string_val", "DT_UINT32": "uint32_val",
                 "DT_UINT64": "uint64_val", "DT_HALF": "half_val", "DT_BFLOAT16": "half_val"}
# The narrow integers share `int_val` (tensor.proto); TF Serving cannot answer DT_HALF in a typed field.
_TYPED = {dtype: _VALUE_FIELDS.get(dtype, "int_val") for dtype in NUMPY_DTYPES if dtype != "DT_HALF"}


def to_proto(array: np.ndarray, dtype: str, *, typed: bool = False, message: type | None = None):
    """A TensorProto of `array` as `dtype` (a TF enum name).

    `typed`: the values in the typed `*_val` field, as TF Serving writes its answers, instead of
    `tensor_content`; `message`: the TensorProto class to build (default tfsconvert.tfproto's; the
    server passes TensorFlow's own so the proto goes straight into its responses).
    """
    proto = (message or tfproto.message_class("TensorProto"))()
    proto.dtype = _DTYPE_NUMBERS[dtype]
    array = np.asarray(array)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if dtype == "DT_STRING":
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in array.ravel().tolist())
    elif typed and dtype in _TYPED:
        getattr(proto, _TYPED[dtype]).extend(array.astype(numpy_dtype(dtype)).ravel().tolist())
    else:
        proto.tensor_content = np.ascontiguousarray(array, numpy_dtype(dtype).newbyteorder("<")).tobytes()
    return proto


def from_proto(proto) -> np.ndarray:
    """The array a TensorProto holds; ValueError (or InputError for a dtype numpy cannot carry) if malformed."""
    dtype = tfproto.DTYPE_NAMES.get(proto.dtype, "DT_INVALID")
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise ValueError(f"a TensorProto of shape {list(shape)} has a negative dimension")
    size = int(np.prod(shape)) if shape else 1
    if dtype == "DT_STRING":
        values = np.empty(len(proto.string_val), dtype=object)
        values[:] = list(proto.string_val)
    elif proto.tensor_content:
        return np.frombuffer(proto.tensor_content, numpy_dtype(dtype).newbyteorder("<")).reshape(shape).copy()
    else:
        values = np.asarray(getattr(proto, _VALUE_FIELDS.get(dtype, "int_val")))
        if dtype == "DT_HALF":
            values = values.astype(np.uint16).view(np.float16)
        values = values.astype(numpy_dtype(dtype))
    if len(values) == 0:  # every element is the dtype's zero
        return np.zeros(shape, values.dtype) if dtype != "DT_STRING" else np.full(shape, b"", dtype=object)
    if len(values) < size:
        values = np.concatenate([values, np.repeat(values[-1:], size - len(values))])
    return values.reshape(shape)
