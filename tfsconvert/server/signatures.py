"""SignatureDef protos: what every backend exposes, so both front ends see one signature model."""

from __future__ import annotations

import functools

from tfsconvert.model import Signature
from tfsconvert.naming import PREDICT_METHOD



def signature_def(signature: Signature, method: str = PREDICT_METHOD):
    """The SignatureDef for a signature read from an ONNX or PMML file."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import meta_graph_pb2

    proto = meta_graph_pb2.SignatureDef(method_name=method)
    for target, specs in ((proto.inputs, signature.inputs), (proto.outputs, signature.outputs)):
        for alias, spec in specs.items():
            info = target[alias]
            info.name = spec.name or alias
            info.dtype = types_pb2.DataType.Value(spec.dtype)
            if spec.shape is None:
                info.tensor_shape.unknown_rank = True
            for size in spec.shape or ():
                info.tensor_shape.dim.add(size=size)
    return proto


def dtype_name(tensor_info) -> str:
    """`DT_FLOAT` for a TensorInfo's dtype."""
    return _type_name(tensor_info.dtype)


@functools.cache
def _type_name(number: int) -> str:
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Name(number)
