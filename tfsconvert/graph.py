"""Static analysis of a TF GraphDef (no TensorFlow): inputs, outputs, variables, ops."""

from __future__ import annotations

import re
from collections import Counter

from google.protobuf.message import Message

from tfsconvert import tfproto
from tfsconvert.model import TensorSpec

PLACEHOLDER_OPS = {"Placeholder", "PlaceholderWithDefault", "PlaceholderV2"}
VARIABLE_OPS = {"VariableV2", "Variable", "VarHandleOp", "VarIsInitializedOp"}
# Sinks that are graph machinery, never model outputs.
_MACHINERY_OPS = {"NoOp", "Assert", "SaveV2", "RestoreV2", "Save", "Restore", "SaveSlices",
                  "MergeV2Checkpoints", "Const", "Assign", "AssignVariableOp", "Print", "PrintV2",
                  *PLACEHOLDER_OPS, *VARIABLE_OPS}
# Saver, initializer and optimizer plumbing by TF1's default names (`save/...`, `save_1/...`,
# `init`, `init_1`); matched whole so outputs like `initial_score` or `saved_rate` stay outputs.
_MACHINERY_NAMES = re.compile(r"^(save(_\d+)?/|init(_\d+)?$|report_uninitialized|global_step|gradients(_\d+)?/)")
# Output-type attrs first: ArgMax has T=float (its input) and output_type=int64.
_DTYPE_ATTRS = ("output_type", "out_type", "DstT", "Tout", "dtype", "T")


def _source_node(input_name: str) -> str:
    """`^ctrl` / `node:1` / `node` -> `node`."""
    return input_name.lstrip("^").split(":")[0]


def tensor_spec(node: Message, output_index: int = 0) -> TensorSpec:
    """Dtype and shape of a node's output from its attrs (`_output_shapes` when recorded)."""
    attrs = node.attr
    dtype = next((tfproto.dtype_name(attrs[a].type) for a in _DTYPE_ATTRS if a in attrs and attrs[a].type),
                 "DT_INVALID")
    shape = None
    if "_output_shapes" in attrs and len(attrs["_output_shapes"].list.shape) > output_index:
        shape = tfproto.shape_list(attrs["_output_shapes"].list.shape[output_index])
    elif node.op in PLACEHOLDER_OPS and "shape" in attrs:
        shape = tfproto.shape_list(attrs["shape"].shape)
    return TensorSpec(dtype=dtype, shape=shape, name=f"{node.name}:{output_index}")


def _is_machinery(node: Message) -> bool:
    return bool(_MACHINERY_NAMES.match(node.name))


def placeholders(graph: Message) -> dict[str, TensorSpec]:
    """Candidate inputs: every Placeholder outside save/restore machinery, keyed by op name."""
    return {n.name: tensor_spec(n) for n in graph.node if n.op in PLACEHOLDER_OPS and not _is_machinery(n)}


def sinks(graph: Message) -> dict[str, TensorSpec]:
    """Candidate outputs: nodes nothing consumes, minus save/restore/init machinery."""
    consumed = {_source_node(i) for n in graph.node for i in n.input}
    return {
        n.name: tensor_spec(n)
        for n in graph.node
        if n.name not in consumed and n.op not in _MACHINERY_OPS and not _is_machinery(n)
    }


def variables(graph: Message) -> dict[str, TensorSpec]:
    """Variables declared in the graph (TF1 VariableV2 or resource VarHandleOp)."""
    out = {}
    for n in graph.node:
        if n.op in ("VariableV2", "Variable", "VarHandleOp"):
            spec = TensorSpec(dtype=tfproto.dtype_name(n.attr["dtype"].type),
                              shape=tfproto.shape_list(n.attr["shape"].shape), name=n.name)
            out[n.name] = spec
    return out


def op_counts(graph: Message) -> Counter:
    """Op types used by the graph and its function library (TF2 graphs keep most ops in functions)."""
    ops = Counter(n.op for n in graph.node)
    for function in graph.library.function:
        ops.update(n.op for n in function.node_def)
    return ops


def has_variables(graph: Message) -> bool:
    ops = op_counts(graph)
    return any(op in ops for op in ("VariableV2", "Variable", "VarHandleOp"))


def summary(graph: Message) -> dict:
    """JSON-ready facts about a graph: node count, producer, ops used."""
    ops = op_counts(graph)
    return {
        "node_count": len(graph.node),
        "function_count": len(graph.library.function),
        "graph_producer": graph.versions.producer,
        "ops": sorted(ops),
    }
