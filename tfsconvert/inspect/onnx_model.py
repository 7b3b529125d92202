"""Reader for ONNX models: graph inputs/outputs as a serving_default signature, opsets, producer.

Reads the ModelProto with tfsconvert.onnxproto (the protobuf runtime only): never imports `onnx`,
onnxruntime or a training framework.
"""

from __future__ import annotations

from pathlib import Path

from tfsconvert import onnxproto
from tfsconvert.errors import InputError, unreadable
from tfsconvert.findings import finding
from tfsconvert.model import ModelDescription, Signature, TensorSpec
from tfsconvert.naming import DEFAULT_SIGNATURE, is_generic

# ONNX TensorProto element type name -> TensorFlow DataType enum name.
_TF_DTYPES = {
    "FLOAT": "DT_FLOAT", "DOUBLE": "DT_DOUBLE", "FLOAT16": "DT_HALF", "BFLOAT16": "DT_BFLOAT16",
    "INT8": "DT_INT8", "INT16": "DT_INT16", "INT32": "DT_INT32", "INT64": "DT_INT64",
    "UINT8": "DT_UINT8", "UINT16": "DT_UINT16", "UINT32": "DT_UINT32", "UINT64": "DT_UINT64",
    "STRING": "DT_STRING", "BOOL": "DT_BOOL", "COMPLEX64": "DT_COMPLEX64", "COMPLEX128": "DT_COMPLEX128",
    "FLOAT8E4M3FN": "DT_FLOAT8_E4M3FN", "FLOAT8E5M2": "DT_FLOAT8_E5M2", "INT4": "DT_INT4", "UINT4": "DT_UINT4",
}


def _native(type_proto) -> str:
    """onnxruntime-style type text: `tensor(float)`, `seq(map(int64,tensor(float)))`."""
    kind = type_proto.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        prefix = "tensor" if kind == "tensor_type" else "sparse_tensor"
        return f"{prefix}({onnxproto.elem_type_name(getattr(type_proto, kind).elem_type).lower()})"
    if kind == "sequence_type":
        return f"seq({_native(type_proto.sequence_type.elem_type)})"
    if kind == "map_type":
        key = onnxproto.elem_type_name(type_proto.map_type.key_type).lower()
        return f"map({key},{_native(type_proto.map_type.value_type)})"
    if kind == "optional_type":
        return f"optional({_native(type_proto.optional_type.elem_type)})"
    return "unknown"


def _spec(name: str, type_proto) -> TensorSpec:
    kind = type_proto.WhichOneof("value")
    if kind == "optional_type":  # an optional tensor is served like the tensor it wraps
        inner = _spec(name, type_proto.optional_type.elem_type)
        return TensorSpec(inner.dtype, inner.shape, name, _native(type_proto))
    if kind in ("tensor_type", "sparse_tensor_type"):
        tensor = getattr(type_proto, kind)
        shape = None
        if tensor.HasField("shape"):
            # dim_param ("batch") and empty dims are unknown sizes.
            shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        dtype = _TF_DTYPES.get(onnxproto.elem_type_name(tensor.elem_type), "DT_INVALID")
        return TensorSpec(dtype, shape, name, _native(type_proto))
    # Sequences (one element per batch row, e.g. skl2onnx's ZipMap) and maps are not tensors.
    shape = [-1] if kind == "sequence_type" else None
    return TensorSpec("DT_VARIANT", shape, name, _native(type_proto))


def _looks_like_text(data: bytes) -> bool:
    text = data.decode("utf-8", "replace")  # the head may end inside a multi-byte character
    return sum(not (ch.isprintable() or ch in "\r\n\t") for ch in text) <= 1


def load(path: Path):
    """The file's ModelProto (tfsconvert.onnxproto's declarations); InputError if it is not an ONNX model."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise unreadable(path, error) from None
    head = data[:512]
    try:
        model = onnxproto.parse_model(data)
    except (onnxproto.DecodeError, RuntimeError, ValueError):  # corrupt, truncated, or not a protobuf
        model = None
    if model is None or not model.HasField("graph") or model.ir_version == 0:
        if not head:
            why = "the file is empty"
        elif _looks_like_text(head):
            why = "protobuf parse failed (the file looks like text)"
        elif model is None:
            why = "protobuf parse failed"
        else:
            why = "the protobuf has no graph or IR version (is it a different protobuf, e.g. a TF GraphDef?)"
        raise InputError(
            "corrupt-model-file", f"{path} is not an ONNX model: {why}",
            "export the model again (torch.onnx.export, tf2onnx, skl2onnx or `tfsconvert onnx`) "
            "and check the file was copied in binary mode",
        )
    return model


def describe(path: Path) -> ModelDescription:
    """Describe an ONNX model; its graph inputs/outputs become the serving_default signature."""
    path = Path(path)
    model = load(path)
    graph = model.graph

    initializers = {init.name for init in graph.initializer}
    inputs = {vi.name: _spec(vi.name, vi.type) for vi in graph.input if vi.name not in initializers}
    outputs = {vi.name: _spec(vi.name, vi.type) for vi in graph.output}

    op_types = sorted({node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"
                       for node in graph.node})
    details = {
        "ir_version": model.ir_version,
        "opsets": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "producer_name": model.producer_name or None,
        "producer_version": model.producer_version or None,
        "model_version": model.model_version or None,
        "graph_name": graph.name or None,
        "node_count": len(graph.node),
        "initializer_count": len(graph.initializer),
        "op_types": op_types,
    }

    diagnostics = []
    external = sorted({entry.value for init in graph.initializer
                       if init.data_location == onnxproto.EXTERNAL
                       for entry in init.external_data if entry.key == "location"})
    if external:
        details["external_data"] = external
        for location in external:
            if not (path.parent / location).is_file():
                diagnostics.append(finding(
                    "corrupt-model-file",
                    f"external data file '{location}' referenced by the model is missing next to {path.name}",
                    f"copy '{location}' into {path.parent} (ONNX weights above 2 GB live in side files)",
                    path,
                ))
    details = {k: v for k, v in details.items() if v is not None}

    generic = [name for name in [*inputs, *outputs] if is_generic(name)]
    if generic:
        diagnostics.append(finding(
            "unnamed-signature-io",
            f"ONNX inputs/outputs have generic names ({', '.join(generic)}); clients will have to send these names",
            "re-export with explicit names (torch.onnx.export(input_names=[...], output_names=[...]), "
            "skl2onnx initial_types=[('sepal_length', ...)]), or convert the source model with "
            "`tfsconvert onnx --feature-names a,b,c`",
            path,
        ))
    signature = Signature(method=None, inputs=inputs, outputs=outputs)
    return ModelDescription.single(path, "onnx", signatures={DEFAULT_SIGNATURE: signature},
                                   details=details, diagnostics=diagnostics)
