"""SignatureDef protos: what every backend exposes, so both front ends see one signature model (TensorFlow's
messages for a SavedModel, tfsconvert.tfproto's for ONNX and PMML: same fields, same wire format)."""

from __future__ import annotations

from tfsconvert import tfproto
from tfsconvert.model import Signature
from tfsconvert.naming import PREDICT_METHOD



def signature_def(signature: Signature, method: str = PREDICT_METHOD):
    """The SignatureDef for a signature read from an ONNX or PMML file."""
    proto = tfproto.message_class("SignatureDef")(method_name=method)
    for target, specs in ((proto.inputs, signature.inputs), (proto.outputs, signature.outputs)):
        for alias, spec in specs.items():
            info = target[alias]
            info.name = spec.name or alias
            info.dtype = tfproto.enum_value("TensorInfo", "dtype", spec.dtype)
            if spec.shape is None:
                info.tensor_shape.unknown_rank = True
            for size in spec.shape or ():
                info.tensor_shape.dim.add(size=size)
    return proto


def dtype_name(tensor_info) -> str:
    """`DT_FLOAT` for a TensorInfo's dtype."""
    return tfproto.dtype_name(tensor_info.dtype)
