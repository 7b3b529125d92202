"""Serialized tf.Example samples for string inputs a ParseExample/ParseExampleV2 op reads.

The features come from the parse op's own spec in the GraphDef (dense keys, dtypes, shapes and
whether they have a default; sparse and ragged keys and types), so every sample parses and the
model's answer depends on real feature values. The spec is read from NodeDefs alone, so the same
code serves a TensorFlow graph (conversion) and a `saved_model.pb` parsed by tfsconvert.tfproto
(validate's synthesized requests, without TensorFlow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfsconvert import tfproto
from tfsconvert.rest_codec import encode_tensor
from tfsconvert.samples import ValueMaker

_PARSE_OPS = ("ParseExample", "ParseExampleV2")
_PASS_THROUGH = ("Identity", "Reshape")  # between the input and the parse op / a constant and its use
_WORDS = ("alpha", "beta", "gamma", "delta")  # bytes values: a few strings per feature
_OMIT_OPTIONAL = 0.25  # how often a feature with a default is left out
_KINDS = {"DT_FLOAT": "float", "DT_INT64": "int64", "DT_STRING": "bytes"}
_LISTS = {"float": "float_list", "int64": "int64_list", "bytes": "bytes_list"}
_JSON_DTYPES = {"float_list": "DT_FLOAT", "int64_list": "DT_INT64", "bytes_list": "DT_STRING"}


@dataclass(frozen=True)
class Feature:
    """One feature of the parse spec: kind (float, int64, bytes), values per row, a variable row
    count (sparse, ragged, sequence features), and whether the example must hold it."""

    kind: str
    size: int
    variable: bool
    required: bool

    def values(self, rng: np.random.Generator, name: str) -> list | None:
        """The feature's values in one example, or None to leave it out."""
        if not self.required and rng.random() < _OMIT_OPTIONAL:
            return None
        count = self.size * (int(rng.integers(0, 4)) if self.variable else 1)
        if count == 0:
            return None  # no values parse as no feature
        if self.kind == "float":
            return np.round(rng.standard_normal(count), 3).astype(np.float32).tolist()
        if self.kind == "int64":
            return rng.integers(0, 10, count).tolist()
        return [f"{name}-{_WORDS[i]}".encode() for i in rng.integers(0, len(_WORDS), count)]


def parse_spec(graph_def, tensor_name: str) -> dict[str, Feature]:
    """feature name -> Feature for every parse op reading `tensor_name` as its serialized input
    (through Identity/Reshape); empty if none does or its keys are not constants."""
    nodes = {node.name: node for node in graph_def.node}
    features: dict[str, Feature] = {}
    for node in _parse_nodes(graph_def, tensor_name):
        try:
            features.update(_node_spec(node, nodes))
        except (KeyError, ValueError):
            continue  # keys or defaults computed at run time: plain strings it is
    return features


def _parse_nodes(graph_def, tensor_name: str) -> list:
    """The parse nodes whose serialized input (input 0) is the tensor, directly or through _PASS_THROUGH."""
    names = {tensor_name, tensor_name.removesuffix(":0")}
    found: dict[str, object] = {}
    changed = True
    while changed:  # until no new pass-through node reads one of `names`
        changed = False
        for node in graph_def.node:
            if node.input and node.input[0] in names:
                if node.op in _PARSE_OPS:
                    found[node.name] = node
                elif node.op in _PASS_THROUGH and node.name not in names:
                    names.add(node.name)
                    changed = True
    return list(found.values())


def _const(name: str, nodes: dict):
    """The TensorProto of the Const behind an input name (through Identity/Reshape)."""
    node = nodes[name.lstrip("^").split(":")[0]]
    while node.op in _PASS_THROUGH:
        node = nodes[node.input[0].split(":")[0]]
    if node.op != "Const":
        raise ValueError(f"{node.name} is not a constant")
    return node.attr["value"].tensor


def _strings(name: str, nodes: dict) -> list[str]:
    return [value.decode() for value in _const(name, nodes).string_val]


def _size(name: str, nodes: dict) -> int:
    dims = tfproto.shape_list(_const(name, nodes).tensor_shape) or []
    return int(np.prod(dims, dtype=np.int64))


def _types(node, attr: str) -> list[str]:
    return [tfproto.dtype_name(t) for t in node.attr[attr].list.type]


def _node_spec(node, nodes: dict) -> dict[str, Feature]:
    dense_types, shapes = _types(node, "Tdense"), node.attr["dense_shapes"].list.shape
    inputs = [name for name in node.input if not name.startswith("^")]
    if node.op == "ParseExample":
        sparse_count, dense_count = node.attr["Nsparse"].i, node.attr["Ndense"].i
        sparse_keys = [key for name in inputs[2:2 + sparse_count] for key in _strings(name, nodes)]
        dense_keys = [key for name in inputs[2 + sparse_count:2 + sparse_count + dense_count]
                      for key in _strings(name, nodes)]
        defaults, ragged = inputs[2 + sparse_count + dense_count:], {}
    else:
        sparse_keys, dense_keys, ragged_keys = (_strings(inputs[i], nodes) for i in (2, 3, 4))
        defaults, ragged = inputs[5:], dict(zip(ragged_keys, _types(node, "ragged_value_types")))
    features = {key: Feature(_KINDS[dtype], 1, True, False)
                for key, dtype in [*zip(sparse_keys, _types(node, "sparse_types")), *ragged.items()]}
    for key, dtype, shape, default in zip(dense_keys, dense_types, shapes, defaults):
        dims = tfproto.shape_list(shape) or []
        variable = bool(dims) and dims[0] == -1  # a sequence feature: any number of rows
        size = int(np.prod(dims[1:] if variable else dims, dtype=np.int64))
        features[key] = Feature(_KINDS[dtype], size, variable, not variable and _size(default, nodes) == 0)
    return features


def random_example(features: dict[str, Feature], rng: np.random.Generator) -> dict[str, tuple[str, list]]:
    """One example: feature name -> (kind, values), features left out as Feature.values decides."""
    out = {}
    for name in sorted(features):
        values = features[name].values(rng, name)
        if values is not None:
            out[name] = (features[name].kind, values)
    return out


def to_proto(example: dict[str, tuple[str, list]]):
    """A random_example as a tf.Example message (tfsconvert.tfproto's, the same wire format)."""
    proto = tfproto.message_class("Example")()
    for name, (kind, values) in example.items():
        getattr(proto.features.feature[name], _LISTS[kind]).value.extend(values)
    return proto


def to_json(proto) -> dict:
    """A tf.Example message as TF Serving's REST `examples` entry: {feature: [values]}. Floats keep a
    fraction or exponent (so JSON reads them back as floats) and narrow back to the same float32;
    int64 are integers; bytes are text, or {"b64": ...} when not UTF-8."""
    out = {}
    for name, feature in sorted(proto.features.feature.items()):
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        dtype = _JSON_DTYPES.get(kind, "DT_FLOAT")
        out[name] = encode_tensor(np.array(values, dtype=object if dtype == "DT_STRING" else None), dtype)
    return out


def example_json(serialized: bytes) -> dict:
    """A serialized tf.Example as a REST `examples` entry (see to_json)."""
    return to_json(tfproto.parse_binary("Example", serialized))


def example_makers(graph, inputs: dict[str, object]) -> dict[str, ValueMaker]:
    """alias -> a maker of serialized tf.Examples, for each string input (a tf.Tensor of `graph`)
    a parse op reads."""
    strings = {alias: tensor.name for alias, tensor in inputs.items() if tensor.dtype.name == "string"}
    return graph_def_makers(graph.as_graph_def(), strings) if strings else {}


def graph_def_makers(graph_def, tensor_names: dict[str, str]) -> dict[str, ValueMaker]:
    """alias -> a maker of serialized tf.Examples, for each input (alias -> tensor name) a parse op
    of `graph_def` reads."""
    specs = {alias: parse_spec(graph_def, name) for alias, name in tensor_names.items()}
    return {alias: _maker(features) for alias, features in specs.items() if features}


def _maker(features: dict[str, Feature]) -> ValueMaker:
    def make(rng: np.random.Generator, index: int, shape: tuple[int, ...]) -> np.ndarray:
        out = np.empty(int(np.prod(shape, dtype=np.int64)), dtype=object)
        out[:] = [to_proto(random_example(features, rng)).SerializeToString(deterministic=True)
                  for _ in range(out.size)]
        return out.reshape(shape)

    return make
