"""TensorFlow's and TF Serving's protobuf messages (on disk and on the wire), declared here so reading
them, and serving TF Serving's gRPC API, never imports TensorFlow (`tensorflow_serving.apis` imports it too).

Only the fields a deployer needs are declared (field numbers from tensorflow/core/protobuf,
tensorflow/core/framework and tensorflow_serving/{apis,config}), but each declared field is
declared as TensorFlow declares it, `oneof` groups included: a oneof member set to 0, false or ""
is still "set" (`is_training: false` is not the default `true`), so re-serializing a parsed
message gives back what TensorFlow would. Binary parsing keeps undeclared fields as unknown fields;
text parsing skips them unless `strict`. Parsing itself is done by the real protobuf runtime.
Conversion never re-serializes a user's file through these declarations: it parses the original
bytes with TensorFlow's own messages.
"""

from __future__ import annotations

from functools import cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from google.protobuf.message import DecodeError, Message

from tfsconvert.naming import STATUS_CODES

F = descriptor_pb2.FieldDescriptorProto
ParseError = text_format.ParseError

# DataType enum (tensorflow/core/framework/types.proto); *_REF types are value + 100.
DTYPE_NAMES = {
    0: "DT_INVALID", 1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8", 5: "DT_INT16",
    6: "DT_INT8", 7: "DT_STRING", 8: "DT_COMPLEX64", 9: "DT_INT64", 10: "DT_BOOL", 11: "DT_QINT8",
    12: "DT_QUINT8", 13: "DT_QINT32", 14: "DT_BFLOAT16", 15: "DT_QINT16", 16: "DT_QUINT16",
    17: "DT_UINT16", 18: "DT_COMPLEX128", 19: "DT_HALF", 20: "DT_RESOURCE", 21: "DT_VARIANT",
    22: "DT_UINT32", 23: "DT_UINT64", 24: "DT_FLOAT8_E5M2", 25: "DT_FLOAT8_E4M3FN",
    29: "DT_INT4", 30: "DT_UINT4",
}

# (name, number, type or message name, repeated?) per message; "map:K,V" declares a map field.
_MESSAGES: dict[str, list[tuple]] = {
    "TensorShapeProto": [("dim", 2, "TensorShapeProto.Dim", True), ("unknown_rank", 3, "bool", False)],
    "TensorShapeProto.Dim": [("size", 1, "int64", False), ("name", 2, "string", False)],
    "TensorProto": [
        ("dtype", 1, "DataType", False), ("tensor_shape", 2, "TensorShapeProto", False),
        ("version_number", 3, "int32", False), ("tensor_content", 4, "bytes", False),
        ("float_val", 5, "float", True), ("double_val", 6, "double", True),
        ("int_val", 7, "int32", True), ("string_val", 8, "bytes", True),
        ("scomplex_val", 9, "float", True), ("int64_val", 10, "int64", True),
        ("bool_val", 11, "bool", True), ("dcomplex_val", 12, "double", True),
        ("half_val", 13, "int32", True), ("uint32_val", 16, "uint32", True),
        ("uint64_val", 17, "uint64", True),
    ],
    "AttrValue": [
        ("list", 1, "AttrValue.ListValue", False), ("s", 2, "bytes", False), ("i", 3, "int64", False),
        ("f", 4, "float", False), ("b", 5, "bool", False), ("type", 6, "DataType", False),
        ("shape", 7, "TensorShapeProto", False), ("tensor", 8, "TensorProto", False),
        ("placeholder", 9, "string", False), ("func", 10, "NameAttrList", False),
    ],
    "AttrValue.ListValue": [
        ("s", 2, "bytes", True), ("i", 3, "int64", True), ("f", 4, "float", True),
        ("b", 5, "bool", True), ("type", 6, "DataType", True), ("shape", 7, "TensorShapeProto", True),
        ("tensor", 8, "TensorProto", True), ("func", 9, "NameAttrList", True),
    ],
    "NameAttrList": [("name", 1, "string", False), ("attr", 2, "map:string,AttrValue", False)],
    "NodeDef": [
        ("name", 1, "string", False), ("op", 2, "string", False), ("input", 3, "string", True),
        ("device", 4, "string", False), ("attr", 5, "map:string,AttrValue", False),
    ],
    "OpDef": [
        ("name", 1, "string", False), ("input_arg", 2, "OpDef.ArgDef", True),
        ("output_arg", 3, "OpDef.ArgDef", True),
    ],
    "OpDef.ArgDef": [
        ("name", 1, "string", False), ("type", 3, "DataType", False), ("type_attr", 4, "string", False),
    ],
    "OpList": [("op", 1, "OpDef", True)],
    "FunctionDef": [
        ("signature", 1, "OpDef", False), ("node_def", 3, "NodeDef", True),
        ("ret", 4, "map:string,string", False), ("attr", 5, "map:string,AttrValue", False),
    ],
    "FunctionDefLibrary": [("function", 1, "FunctionDef", True)],
    "VersionDef": [
        ("producer", 1, "int32", False), ("min_consumer", 2, "int32", False),
        ("bad_consumers", 3, "int32", True),
    ],
    "GraphDef": [
        ("node", 1, "NodeDef", True), ("library", 2, "FunctionDefLibrary", False),
        ("version", 3, "int32", False), ("versions", 4, "VersionDef", False),
    ],
    "TensorInfo": [
        ("name", 1, "string", False), ("dtype", 2, "DataType", False),
        ("tensor_shape", 3, "TensorShapeProto", False), ("coo_sparse", 4, "TensorInfo.CooSparse", False),
    ],
    "TensorInfo.CooSparse": [
        ("values_tensor_name", 1, "string", False), ("indices_tensor_name", 2, "string", False),
        ("dense_shape_tensor_name", 3, "string", False),
    ],
    "SignatureDef": [
        ("inputs", 1, "map:string,TensorInfo", False), ("outputs", 2, "map:string,TensorInfo", False),
        ("method_name", 3, "string", False), ("defaults", 4, "map:string,TensorProto", False),
    ],
    "MetaGraphDef": [
        ("meta_info_def", 1, "MetaGraphDef.MetaInfoDef", False), ("graph_def", 2, "GraphDef", False),
        ("signature_def", 5, "map:string,SignatureDef", False),
    ],
    "MetaGraphDef.MetaInfoDef": [
        ("meta_graph_version", 1, "string", False), ("stripped_op_list", 2, "OpList", False),
        ("tags", 4, "string", True), ("tensorflow_version", 5, "string", False),
        ("tensorflow_git_version", 6, "string", False),
    ],
    "SavedModel": [
        ("saved_model_schema_version", 1, "int64", False), ("meta_graphs", 2, "MetaGraphDef", True),
    ],
    # TF Serving: warmup records (apis/prediction_log.proto, predict.proto, model.proto). Every
    # log_type is declared so "which one is set" is decided as TF Serving decides it (docs/tf-serving.md §2.6).
    "PredictionLog": [
        ("classify_log", 2, "ClassifyLog", False), ("regress_log", 3, "RegressLog", False),
        ("multi_inference_log", 4, "RequestLog", False), ("session_run_log", 5, "RequestLog", False),
        ("predict_log", 6, "PredictLog", False), ("predict_streamed_log", 7, "RequestLog", False),
    ],
    "RequestLog": [],  # the logs whose request a static check does not look into
    "PredictLog": [("request", 1, "PredictRequest", False), ("response", 2, "PredictResponse", False)],
    "ClassifyLog": [("request", 1, "ClassificationRequest", False), ("response", 2, "ClassificationResponse", False)],
    "RegressLog": [("request", 1, "RegressionRequest", False), ("response", 2, "RegressionResponse", False)],
    "PredictRequest": [
        ("model_spec", 1, "ModelSpec", False), ("inputs", 2, "map:string,TensorProto", False),
        ("output_filter", 3, "string", True),
    ],
    "ModelSpec": [("name", 1, "string", False), ("version", 2, "Int64Value", False),
                  ("signature_name", 3, "string", False), ("version_label", 4, "string", False)],
    "PredictResponse": [("outputs", 1, "map:string,TensorProto", False), ("model_spec", 2, "ModelSpec", False)],
    # tf.Example (core/example/{example,feature}.proto) and TF Serving's Classify/Regress messages
    # (apis/{input,classification,regression}.proto), for validate's gRPC client.
    "Example": [("features", 1, "Features", False)],
    "Features": [("feature", 1, "map:string,Feature", False)],
    "Feature": [("bytes_list", 1, "BytesList", False), ("float_list", 2, "FloatList", False),
                ("int64_list", 3, "Int64List", False)],
    "BytesList": [("value", 1, "bytes", True)],
    "FloatList": [("value", 1, "float", True)],
    "Int64List": [("value", 1, "int64", True)],
    "Input": [("example_list", 1, "ExampleList", False),
              ("example_list_with_context", 2, "ExampleListWithContext", False)],
    "ExampleList": [("examples", 1, "Example", True)],
    "ExampleListWithContext": [("examples", 1, "Example", True), ("context", 2, "Example", False)],
    "ClassificationRequest": [("model_spec", 1, "ModelSpec", False), ("input", 2, "Input", False)],
    "ClassificationResponse": [("result", 1, "ClassificationResult", False), ("model_spec", 2, "ModelSpec", False)],
    "ClassificationResult": [("classifications", 1, "Classifications", True)],
    "Classifications": [("classes", 1, "Class", True)],
    "Class": [("label", 1, "string", False), ("score", 2, "float", False)],
    "RegressionRequest": [("model_spec", 1, "ModelSpec", False), ("input", 2, "Input", False)],
    "RegressionResponse": [("result", 1, "RegressionResult", False), ("model_spec", 2, "ModelSpec", False)],
    "RegressionResult": [("regressions", 1, "Regression", True)],
    "Regression": [("value", 1, "float", False)],
    # TF Serving's metadata and status RPCs (apis/get_model_metadata.proto, get_model_status.proto,
    # status.proto), for the embedded server's front ends.
    "GetModelMetadataRequest": [("model_spec", 1, "ModelSpec", False), ("metadata_field", 2, "string", True)],
    "GetModelMetadataResponse": [("model_spec", 1, "ModelSpec", False), ("metadata", 2, "map:string,Any", False)],
    "SignatureDefMap": [("signature_def", 1, "map:string,SignatureDef", False)],
    "GetModelStatusRequest": [("model_spec", 1, "ModelSpec", False)],
    "GetModelStatusResponse": [("model_version_status", 1, "ModelVersionStatus", True)],
    "ModelVersionStatus": [("version", 1, "int64", False), ("state", 2, "ModelVersionStatus.State", False),
                           ("status", 3, "StatusProto", False)],
    "StatusProto": [("error_code", 1, "ErrorCode", False), ("error_message", 2, "string", False)],
    # TF Serving: the --model_config_file (config/model_server_config.proto and the protos it
    # imports), complete, because TF Serving rejects a field it does not know (docs/tf-serving.md §6.2).
    "ModelServerConfig": [
        ("model_config_list", 1, "ModelConfigList", False), ("custom_model_config", 2, "Any", False),
    ],
    "ModelConfigList": [("config", 1, "ModelConfig", True)],
    "ModelConfig": [
        ("name", 1, "string", False), ("base_path", 2, "string", False), ("model_type", 3, "ModelType", False),
        ("model_platform", 4, "string", False), ("logging_config", 6, "LoggingConfig", False),
        ("model_version_policy", 7, "ServableVersionPolicy", False),
        ("version_labels", 8, "map:string,int64", False),
    ],
    "ServableVersionPolicy": [
        ("latest", 100, "ServableVersionPolicy.Latest", False), ("all", 101, "ServableVersionPolicy.All", False),
        ("specific", 102, "ServableVersionPolicy.Specific", False),
    ],
    "ServableVersionPolicy.Latest": [("num_versions", 1, "uint32", False)],
    "ServableVersionPolicy.All": [],
    "ServableVersionPolicy.Specific": [("versions", 1, "int64", True)],
    "LoggingConfig": [
        ("log_collector_config", 1, "LogCollectorConfig", False), ("sampling_config", 2, "SamplingConfig", False),
        ("custom_logging_config", 3, "Any", False),
    ],
    "LogCollectorConfig": [("type", 1, "string", False), ("filename_prefix", 2, "string", False)],
    "SamplingConfig": [
        ("sampling_rate", 1, "double", False), ("attributes", 2, "int32", False),
        ("per_task_sampling_configs", 3, "PerTaskSamplingConfig", True),
    ],
    "PerTaskSamplingConfig": [
        ("dc", 1, "string", False), ("task_index", 2, "int32", False), ("sampling_rate", 3, "double", False),
    ],
    "Any": [("type_url", 1, "string", False), ("value", 2, "bytes", False)],
    # TF Serving: the --batching_parameters_file (servables/tensorflow/session_bundle_config.proto).
    "BatchingParameters": [
        ("max_batch_size", 1, "Int64Value", False), ("batch_timeout_micros", 2, "Int64Value", False),
        ("max_enqueued_batches", 3, "Int64Value", False), ("num_batch_threads", 4, "Int64Value", False),
        ("thread_pool_name", 5, "StringValue", False), ("allowed_batch_sizes", 6, "int64", True),
        ("pad_variable_length_inputs", 7, "bool", False), ("enable_large_batch_splitting", 8, "BoolValue", False),
        ("max_execution_batch_size", 9, "Int64Value", False),
    ],
}

# oneof groups per message: group name -> its member fields (members have presence in proto3).
_ONEOFS: dict[str, dict[str, tuple[str, ...]]] = {
    "AttrValue": {"value": ("list", "s", "i", "f", "b", "type", "shape", "tensor", "placeholder", "func")},
    "TensorInfo": {"encoding": ("name", "coo_sparse")},
    "PredictionLog": {"log_type": ("classify_log", "regress_log", "multi_inference_log", "session_run_log",
                                   "predict_log", "predict_streamed_log")},
    "ServableVersionPolicy": {"policy_choice": ("latest", "all", "specific")},
    "ModelServerConfig": {"config": ("model_config_list", "custom_model_config")},
    "ModelSpec": {"version_choice": ("version", "version_label")},
    "Feature": {"kind": ("bytes_list", "float_list", "int64_list")},
    "Input": {"kind": ("example_list", "example_list_with_context")},
}

# Enums by name: number -> value name.
_ENUMS = {
    "DataType": DTYPE_NAMES,
    "ModelType": {0: "MODEL_TYPE_UNSPECIFIED", 1: "TENSORFLOW", 2: "OTHER"},  # deprecated ModelConfig field
    # ModelVersionStatus.State (get_model_status.proto) and tensorflow.error.Code (the gRPC codes).
    "ModelVersionStatus.State": {0: "UNKNOWN", 10: "START", 20: "LOADING", 30: "AVAILABLE", 40: "UNLOADING", 50: "END"},
    "ErrorCode": {number: name for name, number in STATUS_CODES.items()},
}

_SCALARS = {
    "string": F.TYPE_STRING, "bytes": F.TYPE_BYTES, "bool": F.TYPE_BOOL, "int32": F.TYPE_INT32,
    "int64": F.TYPE_INT64, "uint32": F.TYPE_UINT32, "uint64": F.TYPE_UINT64,
    "float": F.TYPE_FLOAT, "double": F.TYPE_DOUBLE,
}
# google.protobuf's wrappers are the real ones (ModelSpec.version prints as `"version": "3"` in JSON).
_WRAPPERS = ("Int64Value", "BoolValue", "StringValue")
PACKAGE = "tfsconvert.tf"  # the proto package of these declarations (TF's are tensorflow[.serving])


def _set_type(fd: descriptor_pb2.FieldDescriptorProto, type_name: str) -> None:
    if type_name in _SCALARS:
        fd.type = _SCALARS[type_name]
    elif type_name in _WRAPPERS:
        fd.type, fd.type_name = F.TYPE_MESSAGE, f".google.protobuf.{type_name}"
    elif type_name in _ENUMS:
        fd.type, fd.type_name = F.TYPE_ENUM, f".{PACKAGE}.{type_name}"
    else:
        fd.type, fd.type_name = F.TYPE_MESSAGE, f".{PACKAGE}.{type_name}"


def _add_fields(msg: descriptor_pb2.DescriptorProto, fields: list[tuple],
                oneofs: dict[str, tuple[str, ...]] | None = None) -> None:
    group_of = {}
    for index, (group, members) in enumerate((oneofs or {}).items()):
        msg.oneof_decl.add(name=group)
        group_of.update(dict.fromkeys(members, index))
    for name, number, type_name, repeated in fields:
        fd = msg.field.add(name=name, number=number)
        if name in group_of:
            fd.oneof_index = group_of[name]
        fd.label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
        if type_name.startswith("map:"):
            key, value = type_name[4:].split(",")
            entry = msg.nested_type.add(name="".join(p.capitalize() for p in name.split("_")) + "Entry")
            entry.options.map_entry = True
            _add_fields(entry, [("key", 1, key, False), ("value", 2, value, False)])
            fd.label = F.LABEL_REPEATED
            fd.type, fd.type_name = F.TYPE_MESSAGE, f".{PACKAGE}.{msg.name}.{entry.name}"
        else:
            _set_type(fd, type_name)


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    fdp = descriptor_pb2.FileDescriptorProto(name="tfsconvert_tf.proto", package=PACKAGE, syntax="proto3",
                                             dependency=[wrappers_pb2.DESCRIPTOR.name])
    top: dict[str, descriptor_pb2.DescriptorProto] = {}
    for full_name, fields in _MESSAGES.items():
        parent, _, child = full_name.rpartition(".")
        msg = top[parent].nested_type.add(name=child) if parent else fdp.message_type.add(name=child)
        top[full_name] = msg
        _add_fields(msg, fields, _ONEOFS.get(full_name))  # map fields only occur on top-level messages
    for full_name, values in _ENUMS.items():  # "Message.Enum" is nested (its value names are scoped there)
        parent, _, child = full_name.rpartition(".")
        enum = (top[parent] if parent else fdp).enum_type.add(name=child)
        for number, name in sorted(values.items()):
            enum.value.add(name=name, number=number)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(fdp)
    return pool


@cache
def message_class(name: str) -> type[Message]:
    """The generated class for one of the declared messages, e.g. `message_class("SavedModel")`."""
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(f"{PACKAGE}.{name}"))


def enum_value(message: str, field: str, name: str) -> int:
    """The number of enum value `name` of a declared message's enum field (`"AVAILABLE"` -> 30)."""
    return message_class(message).DESCRIPTOR.fields_by_name[field].enum_type.values_by_name[name].number


def parse_binary(name: str, data: bytes) -> Message:
    """Parse wire-format bytes; raises DecodeError on corrupt or truncated input."""
    msg = message_class(name)()
    msg.ParseFromString(data)
    return msg


def parse_text(name: str, text: str, *, strict: bool = False) -> Message:
    """Parse text format, skipping fields this module does not declare unless `strict`."""
    msg = message_class(name)()
    text_format.Parse(text, msg, allow_unknown_field=not strict)
    return msg


def dtype_name(value: int) -> str:
    """TF enum name for a DataType number, including `_REF` types."""
    if value > 100 and value - 100 in DTYPE_NAMES:
        return DTYPE_NAMES[value - 100] + "_REF"
    return DTYPE_NAMES.get(value, f"DT_UNKNOWN_{value}")


def shape_list(shape: Message) -> list[int] | None:
    """A TensorShapeProto as a list (-1 for unknown dims), or None for unknown rank."""
    if shape.unknown_rank:
        return None
    return [d.size if d.size >= 0 else -1 for d in shape.dim]


__all__ = ["DecodeError", "ParseError", "message_class", "enum_value", "parse_binary", "parse_text", "dtype_name",
           "shape_list"]
