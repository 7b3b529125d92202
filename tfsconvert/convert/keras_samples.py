"""Sample makers for Keras inputs that feed preprocessing layers, so parity and golden requests
go through the model's real lookup path instead of missing every vocabulary.

Each input is followed through the functional model's layer graph (past layers that only reshape,
into nested models) to the first layer that gives its values a meaning:

- StringLookup / IntegerLookup: values from the layer's vocabulary plus one out-of-vocabulary value
  (inverted lookups: indices in [0, vocabulary size));
- TextVectorization: 1 to output_sequence_length vocabulary words (and one unknown word) joined by spaces;
- Embedding: ids in [0, input_dim).

Other inputs (Hashing takes any value, Normalization any number) keep the default samples.
"""

from __future__ import annotations

import numpy as np

from tfsconvert.dtypes import numpy_dtype
from tfsconvert.inspect.keras_model import keras_spec, structure
from tfsconvert.samples import ValueMaker

_RESHAPING = ("Reshape", "Flatten", "Identity")  # values pass through unchanged
_TEXT_WORDS = 4  # words per sample string when TextVectorization does not fix a sequence length


def lookup_makers(inputs: dict[str, object]) -> dict[str, ValueMaker]:
    """alias -> maker for each input (a functional model's symbolic tensor) that feeds a lookup layer."""
    makers = {}
    for alias, tensor in inputs.items():
        for layer in _meaningful_consumers(tensor):
            maker = _maker(layer, numpy_dtype(keras_spec(tensor).dtype))
            if maker is not None:
                makers[alias] = maker
                break
    return makers


def _meaningful_consumers(tensor) -> list:
    """The layers `tensor` feeds, in graph order, looking through layers that only reshape it and
    into nested models (a preprocessing model called inside the served one)."""
    import keras

    found, frontier = [], [tensor]
    while frontier:
        current = frontier.pop(0)
        for node in current._keras_history.operation._outbound_nodes:  # Keras' own layer graph
            if not any(t is current for t in node.input_tensors):
                continue
            layer = node.operation
            if type(layer).__name__ in _RESHAPING:
                frontier.extend(node.output_tensors)
            elif isinstance(layer, keras.Model):
                frontier.extend(_inner_inputs(layer, node, current))
            else:
                found.append(layer)
    return found


def _inner_inputs(model, node, tensor) -> list:
    """The inputs of nested `model` that `tensor` is given as in its call `node`."""
    import keras

    arguments = keras.tree.flatten(node.arguments.args)
    inner = keras.tree.flatten(structure(model, "input"))
    return [own for given, own in zip(arguments, inner) if given is tensor] if len(arguments) == len(inner) else []


def _maker(layer, dtype: np.dtype) -> ValueMaker | None:
    kind = type(layer).__name__
    if kind in ("StringLookup", "IntegerLookup"):
        if layer.invert:
            return _choice(list(range(layer.vocabulary_size())), dtype)
        vocabulary = layer.get_vocabulary(include_special_tokens=False)
        return _choice([*vocabulary, _unseen(vocabulary, layer.mask_token, dtype.kind == "O")], dtype)
    if kind == "TextVectorization":
        words = layer.get_vocabulary(include_special_tokens=False)
        config = layer.get_config()
        longest = 1 if config["split"] is None else (config["output_sequence_length"] or _TEXT_WORDS)
        return _sentences([*words, _unseen(words, None, True)], longest)
    if kind == "Embedding":
        return _choice(list(range(layer.input_dim)), dtype)
    return None


def _unseen(vocabulary: list, mask, text: bool) -> object:
    """A value the lookup does not know: `unseen`, `unseen1`, ... for strings, max + 1, ... for ints."""
    taken = set(vocabulary) | {mask}
    if not text:
        value = max((int(v) for v in vocabulary), default=0) + 1
        while value in taken:
            value += 1
        return value
    suffix = 0
    while f"unseen{suffix or ''}" in taken:
        suffix += 1
    return f"unseen{suffix or ''}"


def _as_array(values: list, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "O":
        return np.array([str(v).encode() for v in values], dtype=object)
    return np.array(values).astype(dtype)


def _choice(pool: list, dtype: np.dtype) -> ValueMaker:
    values = _as_array(pool, dtype)

    def make(rng: np.random.Generator, index: int, shape: tuple[int, ...]) -> np.ndarray:
        return values[rng.integers(0, len(values), shape)]

    return make


def _sentences(words: list[str], longest: int) -> ValueMaker:
    pool = [w.encode() for w in words]

    def make(rng: np.random.Generator, index: int, shape: tuple[int, ...]) -> np.ndarray:
        counts = rng.integers(1, longest + 1, int(np.prod(shape)))
        text = [b" ".join(pool[i] for i in rng.integers(0, len(pool), n)) for n in counts]
        return np.array(text, dtype=object).reshape(shape)

    return make
