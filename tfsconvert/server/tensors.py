"""TensorProto <-> numpy, in one place (gRPC requests/responses and warmup records).

The dtypes of golden.NUMPY_DTYPES are read and written without TensorFlow (tfsconvert.tensor_codec,
`tf.make_ndarray`'s rules); only the others (complex, bfloat16, quantized...) need it.
"""

from __future__ import annotations

import numpy as np

from tfsconvert import tensor_codec, tfproto
from tfsconvert.golden import NUMPY_DTYPES
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
    try:
        if tfproto.dtype_name(proto.dtype) in NUMPY_DTYPES:
            return tensor_codec.from_proto(proto)
        import tensorflow as tf

        return tf.make_ndarray(_converted(proto, tf.make_tensor_proto(0)))
    except (TypeError, ValueError, ImportError):  # ImportError: an exotic dtype without TensorFlow installed
        raise invalid(f"tensor parsing error: {alias}") from None


def to_proto(array: np.ndarray, dtype: str):
    """A response TensorProto of `dtype` with the values in the typed repeated field."""
    array = np.asarray(array)
    field = _TYPED_FIELDS.get(dtype)
    if field is None:  # half, bfloat16, ...: TensorFlow knows how to pack these
        import tensorflow as tf

        return _converted(tf.make_tensor_proto(array), tfproto.message_class("TensorProto")())
    proto = tfproto.message_class("TensorProto")(dtype=tfproto.enum_value("TensorProto", "dtype", dtype))
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    values = array.ravel().tolist()
    if dtype == "DT_STRING":
        values = [v.encode("utf-8") if isinstance(v, str) else v for v in values]
    getattr(proto, field).extend(values)
    return proto


def _converted(proto, into):
    """`proto` as the TensorProto class of `into` (TensorFlow's or ours), through its bytes."""
    into.Clear()
    into.ParseFromString(proto.SerializeToString())
    return into
