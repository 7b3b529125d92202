"""Static analysis of a TF GraphDef (no TensorFlow): inputs, outputs, variables, ops."""

from __future__ import annotations

import re
from collections import Counter

from google.protobuf.message import Message

from tfsconvert import tfproto
from tfsconvert.errors import InputError
from tfsconvert.model import TensorSpec

REQUIRED_INPUT_OPS = {"Placeholder", "PlaceholderV2"}
OPTIONAL_INPUT_OPS = {"PlaceholderWithDefault"}  # fed or not: unfed, it passes its default through
PLACEHOLDER_OPS = REQUIRED_INPUT_OPS | OPTIONAL_INPUT_OPS
VARIABLE_OPS = {"VariableV2", "Variable", "VarHandleOp", "VarIsInitializedOp"}
# Sinks that are graph machinery, never model outputs.
_MACHINERY_OPS = {"NoOp", "Assert", "SaveV2", "RestoreV2", "Save", "Restore", "SaveSlices",
                  "MergeV2Checkpoints", "Const", "Assign", "AssignVariableOp", "Print", "PrintV2",
                  *PLACEHOLDER_OPS, *VARIABLE_OPS}
# Saver, initializer and optimizer plumbing by TF1's default names (`save/...`, `save_1/...`,
# `init`, `init_1`); matched whole so outputs like `initial_score` or `saved_rate` stay outputs.
_MACHINERY_NAMES = re.compile(r"^(save(_\d+)?/|init(_\d+)?$|report_uninitialized|global_step|gradients(_\d+)?/)")
# Control flow v1 (Switch/Merge frames) and v2 (functional If/While): their sinks are plumbing.
CONTROL_FLOW_OPS = {"Switch", "RefSwitch", "_SwitchN", "Merge", "RefMerge", "Enter", "RefEnter", "Exit", "RefExit",
                    "NextIteration", "RefNextIteration", "LoopCond", "ControlTrigger",
                    "If", "StatelessIf", "While", "StatelessWhile", "Case", "StatelessCase"}
# `cond/`, `cond_1/`, `while/`, `rnn/while/`, `while/cond_2/`: the scopes TF names control flow with.
_CONTROL_FLOW_SCOPE = re.compile(r"(^|/)(cond|while)(_\d+)?/")
_DEFAULT_SHOWN = 16  # defaults with more elements than this are not printed by inspect
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


def _consumed(graph: Message) -> set[str]:
    return {_source_node(i) for n in graph.node for i in n.input}


def placeholders(graph: Message) -> dict[str, TensorSpec]:
    """Candidate inputs: every Placeholder outside save/restore machinery that something reads (TF2's
    freezing leaves `unused_control_flow_input` Placeholders nothing reads), keyed by op name."""
    consumed = _consumed(graph)
    return {n.name: tensor_spec(n) for n in graph.node
            if n.op in REQUIRED_INPUT_OPS and n.name in consumed and not _is_machinery(n)}


def optional_inputs(graph: Message) -> dict[str, dict]:
    """PlaceholderWithDefault inputs (`keep_prob`, `is_training`): TensorSpec JSON plus `default`, the
    value a run that does not feed them uses (None when it is not a small constant)."""
    nodes = {n.name: n for n in graph.node}
    found = {}
    for node in graph.node:
        if node.op in OPTIONAL_INPUT_OPS and not _is_machinery(node):
            source = nodes.get(_source_node(node.input[0])) if node.input else None
            found[node.name] = {**tensor_spec(node).to_json(), "default": _small_constant(source)}
    return found


def _small_constant(node: Message | None):
    """A Const's value as JSON (as TF Serving writes tensors), when it has at most _DEFAULT_SHOWN elements."""
    if node is None or node.op != "Const" or "value" not in node.attr:
        return None
    from tfsconvert import tensor_codec  # numpy: only for graphs that have defaults
    from tfsconvert.rest_codec import encode_tensor
    value = tensor_codec.from_proto(node.attr["value"].tensor)
    if value.size > _DEFAULT_SHOWN:
        return None
    try:
        return encode_tensor(value, tfproto.dtype_name(node.attr["value"].tensor.dtype))
    except InputError:  # a dtype JSON cannot carry
        return None


def sinks(graph: Message) -> dict[str, TensorSpec]:
    """Candidate outputs: nodes nothing consumes, minus save/restore/init machinery and control-flow
    plumbing (the loop counter's Exit, a cond's `switch_f`, the Identity of an unused While output).
    When plumbing is all there is (a graph frozen at a bare `cond/Merge`), it is what is offered."""
    consumed = _consumed(graph)
    found = [n for n in graph.node
             if n.name not in consumed and n.op not in _MACHINERY_OPS and not _is_machinery(n)]
    nodes = {n.name: n for n in graph.node}
    real = [n for n in found if not _is_plumbing(n, nodes)]
    return {n.name: tensor_spec(n) for n in real or found}


def _is_plumbing(node: Message | None, nodes: dict[str, Message]) -> bool:
    """A control-flow op, or an Identity in a `cond/` or `while/` scope that only passes one on."""
    if node is None or node.op in CONTROL_FLOW_OPS:
        return node is not None
    data = [_source_node(i) for i in node.input if not i.startswith("^")]
    return (node.op in ("Identity", "IdentityN") and bool(data) and bool(_CONTROL_FLOW_SCOPE.search(node.name))
            and all(_is_plumbing(nodes.get(d), nodes) for d in data))


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
