"""Serialized tf.Example samples for string inputs a ParseExample/ParseExampleV2 op reads.

The features come from the parse op's own spec in the graph (dense keys, dtypes, shapes and
defaults; sparse and ragged keys and types), so every sample parses, and the model's answer
depends on real feature values rather than on a parse error.
"""

from __future__ import annotations

import numpy as np

from tfsconvert.golden import ValueMaker

_PARSE_OPS = ("ParseExample", "ParseExampleV2")
_PASS_THROUGH = ("Identity",)
_WORDS = ("alpha", "beta", "gamma", "delta")  # bytes values: a few strings per feature
_OMIT_OPTIONAL = 0.25  # how often a feature with a default is left out


def example_makers(graph, inputs: dict[str, object]) -> dict[str, ValueMaker]:
    """alias -> a maker of serialized tf.Examples, for each string input a parse op reads."""
    makers = {}
    for alias, tensor in inputs.items():
        if tensor.dtype.name != "string":
            continue
        specs = [_spec(graph, op) for op in _parse_ops(tensor)]
        features = {name: feature for spec in specs if spec for name, feature in spec.items()}
        if features:
            makers[alias] = _maker(features)
    return makers


def _parse_ops(tensor) -> list:
    """The parse ops reading `tensor` as their serialized input, through Identity ops."""
    found, stack = [], [tensor]
    while stack:
        current = stack.pop()
        for op in current.consumers():
            if op.type in _PARSE_OPS and op.inputs[0] is current:
                found.append(op)
            elif op.type in _PASS_THROUGH:
                stack.extend(op.outputs)
    return found


class _Feature:
    """One feature: kind (float, int64, bytes), values per row, rows (None: fixed), required."""

    def __init__(self, kind: str, size: int, variable: bool, required: bool) -> None:
        self.kind, self.size, self.variable, self.required = kind, size, variable, required

    def values(self, rng: np.random.Generator, name: str) -> list | None:
        """The feature's values in one example, or None to leave it out."""
        if not self.required and rng.random() < _OMIT_OPTIONAL:
            return None
        count = self.size * (int(rng.integers(0, 4)) if self.variable else 1)
        if count == 0:
            return None  # no values: the same parse result as no feature
        if self.kind == "float":
            return np.round(rng.standard_normal(count), 3).astype(np.float32).tolist()
        if self.kind == "int64":
            return rng.integers(0, 10, count).tolist()
        return [f"{name}-{_WORDS[i]}".encode() for i in rng.integers(0, len(_WORDS), count)]


_KINDS = {"float32": "float", "int64": "int64", "string": "bytes"}


def _kind(dtype) -> str | None:
    return _KINDS.get(dtype.name)


def _spec(graph, op) -> dict[str, _Feature] | None:
    """feature name -> _Feature from a parse op's attrs and constant inputs; None if not readable."""
    import tensorflow as tf

    session = tf.compat.v1.Session(graph=graph)
    try:
        return _read_spec(session, op)
    except (tf.errors.OpError, ValueError, TypeError):
        return None  # keys or defaults that are not constants: fall back to plain strings
    finally:
        session.close()


def _read_spec(session, op) -> dict[str, _Feature]:
    dense_types = op.get_attr("Tdense")
    shapes = op.get_attr("dense_shapes")
    if op.type == "ParseExample":
        sparse_count, dense_count = op.get_attr("Nsparse"), op.get_attr("Ndense")
        sparse_keys = session.run(list(op.inputs[2:2 + sparse_count]))
        dense_keys = session.run(list(op.inputs[2 + sparse_count:2 + sparse_count + dense_count]))
        defaults = session.run(list(op.inputs[2 + sparse_count + dense_count:]))
        ragged = {}
    else:
        sparse_keys, dense_keys, ragged_keys = (session.run(op.inputs[i]).tolist() for i in (2, 3, 4))
        defaults = session.run(list(op.inputs[5:]))
        ragged = dict(zip(ragged_keys, op.get_attr("ragged_value_types")))
    features = {}
    for key, dtype in [*zip(sparse_keys, op.get_attr("sparse_types")), *ragged.items()]:
        features[_name(key)] = _Feature(_kind(dtype), 1, True, False)
    for key, dtype, shape, default in zip(dense_keys, dense_types, shapes, defaults):
        dims = [dim.size for dim in shape.dim]  # a TensorShapeProto
        variable = bool(dims) and dims[0] == -1
        size = int(np.prod([d for d in dims[variable:]], dtype=np.int64))
        features[_name(key)] = _Feature(_kind(dtype), size, variable, np.size(default) == 0 and not variable)
    if any(feature.kind is None for feature in features.values()):
        raise ValueError("a feature of a type tf.Example cannot hold")
    return features


def _name(key) -> str:
    key = key.item() if isinstance(key, np.ndarray) else key
    return key.decode() if isinstance(key, bytes) else str(key)


def _maker(features: dict[str, _Feature]) -> ValueMaker:
    from tensorflow.core.example import example_pb2

    def example(rng: np.random.Generator) -> bytes:
        proto = example_pb2.Example()
        for name in sorted(features):
            feature = features[name]
            values = feature.values(rng, name)
            if values is not None:
                getattr(proto.features.feature[name], f"{feature.kind}_list").value.extend(values)
        return proto.SerializeToString(deterministic=True)

    def make(rng: np.random.Generator, index: int, shape: tuple[int, ...]) -> np.ndarray:
        out = np.empty(int(np.prod(shape, dtype=np.int64)), dtype=object)
        out[:] = [example(rng) for _ in range(out.size)]
        return out.reshape(shape)

    return make


def example_json(serialized: bytes) -> dict:
    """A serialized tf.Example as TF Serving's REST `examples` entry: {feature: [values]}.

    Floats are written so JSON keeps them floats (a fraction or exponent) and narrow back to the
    same float32; int64 as integers; bytes as text, or {"b64": ...} when not UTF-8.
    """
    from tensorflow.core.example import example_pb2

    from tfsconvert.golden import encode_tensor

    out = {}
    for name, feature in sorted(example_pb2.Example.FromString(serialized).features.feature.items()):
        kind = feature.WhichOneof("kind")
        values = getattr(feature, kind).value if kind else []
        dtype = {"float_list": "DT_FLOAT", "int64_list": "DT_INT64", "bytes_list": "DT_STRING"}.get(kind, "DT_FLOAT")
        out[name] = encode_tensor(np.array(list(values), dtype=object if kind == "bytes_list" else None), dtype)
    return out
