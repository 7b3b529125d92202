"""The server's side of tfsconvert.tensor_codec: request tensors with TF Serving's error, answers in typed fields.

The gRPC front end speaks tfsconvert.tfproto's messages, so the dtypes numpy carries are read and
written without TensorFlow; only the others (bfloat16, quantized, ...) need it.
"""

from __future__ import annotations

import numpy as np

from tfsconvert import tensor_codec, tfproto
from tfsconvert.dtypes import NUMPY_DTYPES
from tfsconvert.server.status import invalid


def to_array(proto, alias: str) -> np.ndarray:
    """The array of a request TensorProto; INVALID_ARGUMENT `tensor parsing error` if malformed.

    Dtypes numpy has no name for (bfloat16, ...) are read by TensorFlow, so that such a tensor
    reaches the signature's type check as it does in TF Serving."""
    try:
        if tfproto.DTYPE_NAMES.get(proto.dtype) not in NUMPY_DTYPES:
            import tensorflow as tf

            return tf.make_ndarray(_converted(proto, tf.make_tensor_proto(0)))
        return tensor_codec.from_proto(proto)
    except (TypeError, ValueError, ImportError):  # ImportError: an exotic dtype without TensorFlow installed
        raise invalid(f"tensor parsing error: {alias}") from None


def to_proto(array: np.ndarray, dtype: str):
    """A response TensorProto (tfproto's message) of `dtype`, the values in the typed repeated field."""
    if dtype not in NUMPY_DTYPES:  # bfloat16, ...: TensorFlow knows how to pack these
        import tensorflow as tf

        return _converted(tf.make_tensor_proto(array), tfproto.message_class("TensorProto")())
    return tensor_codec.to_proto(array, dtype, typed=True)


def _converted(proto, into):
    """`proto` as the TensorProto class of `into` (TensorFlow's or ours), through its bytes."""
    into.Clear()
    into.ParseFromString(proto.SerializeToString())
    return into
