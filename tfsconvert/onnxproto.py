"""ONNX's `ModelProto`, declared here so reading a model's description never imports `onnx` (its C
extension and ml_dtypes cost ~0.6 s of start-up; tfsconvert.tfproto does the same for TensorFlow's messages).

Only what inspect, validate's static checks and the server's description need is declared (field numbers
and types from onnx/onnx-ml.proto, proto2 as there, so `HasField` means what it means for `onnx`'s
classes): the model's versions, producer, metadata and opset imports; the graph's inputs, outputs,
value_info (tensor, sparse tensor, sequence, map, optional and opaque types with their shapes), nodes'
op_type, domain, inputs and outputs, and initializers' names, dtypes, dims and external data. Undeclared
fields (tensor contents, attributes, functions) are kept as unknown fields and never decoded. Parsing is
done by the protobuf runtime.
"""

from __future__ import annotations

from functools import cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "tfsconvert.onnx"
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

# TensorProto.DataType: number -> name (onnx-ml.proto).
ELEM_TYPES = {
    0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
    8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64",
    15: "COMPLEX128", 16: "BFLOAT16", 17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2",
    20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1", 24: "FLOAT8E8M0", 25: "UINT2", 26: "INT2",
    27: "FLOAT6E2M3", 28: "FLOAT6E3M2",
}

# (name, number, scalar type or message name, repeated?) per message.
MESSAGES: dict[str, list[tuple]] = {
    "ModelProto": [
        ("ir_version", 1, "int64", False), ("producer_name", 2, "string", False),
        ("producer_version", 3, "string", False), ("domain", 4, "string", False),
        ("model_version", 5, "int64", False), ("doc_string", 6, "string", False),
        ("graph", 7, "GraphProto", False), ("opset_import", 8, "OperatorSetIdProto", True),
        ("metadata_props", 14, "StringStringEntryProto", True),
    ],
    "OperatorSetIdProto": [("domain", 1, "string", False), ("version", 2, "int64", False)],
    "StringStringEntryProto": [("key", 1, "string", False), ("value", 2, "string", False)],
    "GraphProto": [
        ("node", 1, "NodeProto", True), ("name", 2, "string", False), ("initializer", 5, "TensorProto", True),
        ("doc_string", 10, "string", False), ("input", 11, "ValueInfoProto", True),
        ("output", 12, "ValueInfoProto", True), ("value_info", 13, "ValueInfoProto", True),
    ],
    "NodeProto": [
        ("input", 1, "string", True), ("output", 2, "string", True), ("name", 3, "string", False),
        ("op_type", 4, "string", False), ("domain", 7, "string", False),
    ],
    "TensorProto": [
        ("dims", 1, "int64", True), ("data_type", 2, "int32", False), ("name", 8, "string", False),
        ("external_data", 13, "StringStringEntryProto", True), ("data_location", 14, "int32", False),
    ],
    "ValueInfoProto": [("name", 1, "string", False), ("type", 2, "TypeProto", False),
                       ("doc_string", 3, "string", False)],
    "TypeProto": [
        ("tensor_type", 1, "TypeProto.Tensor", False), ("sequence_type", 4, "TypeProto.Sequence", False),
        ("map_type", 5, "TypeProto.Map", False), ("denotation", 6, "string", False),
        ("opaque_type", 7, "TypeProto.Opaque", False), ("sparse_tensor_type", 8, "TypeProto.SparseTensor", False),
        ("optional_type", 9, "TypeProto.Optional", False),
    ],
    "TypeProto.Tensor": [("elem_type", 1, "int32", False), ("shape", 2, "TensorShapeProto", False)],
    "TypeProto.Sequence": [("elem_type", 1, "TypeProto", False)],
    "TypeProto.Map": [("key_type", 1, "int32", False), ("value_type", 2, "TypeProto", False)],
    "TypeProto.Optional": [("elem_type", 1, "TypeProto", False)],
    "TypeProto.SparseTensor": [("elem_type", 1, "int32", False), ("shape", 2, "TensorShapeProto", False)],
    "TypeProto.Opaque": [("domain", 1, "string", False), ("name", 2, "string", False)],
    "TensorShapeProto": [("dim", 1, "TensorShapeProto.Dimension", True)],
    "TensorShapeProto.Dimension": [("dim_value", 1, "int64", False), ("dim_param", 2, "string", False),
                                   ("denotation", 3, "string", False)],
}
_ONEOFS = {"TypeProto": ("tensor_type", "sequence_type", "map_type", "optional_type", "sparse_tensor_type",
                         "opaque_type"),
           "TensorShapeProto.Dimension": ("dim_value", "dim_param")}
_SCALARS = {"string": F.TYPE_STRING, "int32": F.TYPE_INT32, "int64": F.TYPE_INT64}


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    fdp = descriptor_pb2.FileDescriptorProto(name="tfsconvert_onnx.proto", package=_PACKAGE, syntax="proto2")
    declared: dict[str, descriptor_pb2.DescriptorProto] = {}
    for full_name, fields in MESSAGES.items():
        parent, _, name = full_name.rpartition(".")
        msg = declared[parent].nested_type.add(name=name) if parent else fdp.message_type.add(name=name)
        declared[full_name] = msg
        members = _ONEOFS.get(full_name, ())
        if members:
            msg.oneof_decl.add(name="value")  # onnx-ml.proto's name for both groups
        for field, number, type_name, repeated in fields:
            fd = msg.field.add(name=field, number=number, label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
            if field in members:
                fd.oneof_index = 0
            if type_name in _SCALARS:
                fd.type = _SCALARS[type_name]
            else:
                fd.type, fd.type_name = F.TYPE_MESSAGE, f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return pool


def message_class(name: str) -> type[Message]:
    """The class of one declared message, e.g. `message_class("ModelProto")`."""
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(f"{_PACKAGE}.{name}"))


def parse_model(data: bytes) -> Message:
    """A ModelProto from wire-format bytes; DecodeError on corrupt or truncated input."""
    model = message_class("ModelProto")()
    model.ParseFromString(data)
    return model


def elem_type_name(elem_type: int) -> str:
    """`FLOAT` for 1, as onnx.TensorProto.DataType.Name; `UNKNOWN<n>` for a number onnx-ml.proto lacks."""
    return ELEM_TYPES.get(elem_type, f"UNKNOWN{elem_type}")


__all__ = ["DecodeError", "EXTERNAL", "ELEM_TYPES", "MESSAGES", "elem_type_name", "message_class", "parse_model"]
