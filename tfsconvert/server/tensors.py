"""The server's side of tfsconvert.tensor_codec: request tensors with TF Serving's error, answers in typed fields."""

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

            return tf.make_ndarray(proto)
        return tensor_codec.from_proto(proto)
    except (TypeError, ValueError):
        raise invalid(f"tensor parsing error: {alias}") from None


def to_proto(array: np.ndarray, dtype: str):
    """A response TensorProto (TensorFlow's own message) of `dtype`, the values in the typed repeated field."""
    if dtype not in NUMPY_DTYPES:  # bfloat16, ...: TensorFlow knows how to pack these
        import tensorflow as tf

        return tf.make_tensor_proto(array)
    from tensorflow.core.framework import tensor_pb2

    return tensor_codec.to_proto(array, dtype, typed=True, message=tensor_pb2.TensorProto)
