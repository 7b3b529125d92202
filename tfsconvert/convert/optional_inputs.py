"""Samples for PlaceholderWithDefault inputs (`keep_prob`, `is_training`) named with `--input`: their default.

Random values mean nothing for such inputs (a negative keep_prob, dropout switched on), and the
default is what the model runs with when a client leaves the input out.
"""

from __future__ import annotations

import numpy as np

from tfsconvert.samples import ValueMaker


def default_makers(inputs: dict[str, object]) -> dict[str, ValueMaker]:
    """alias -> a maker giving the default, for each input tensor that is a PlaceholderWithDefault
    with a constant default."""
    import tensorflow as tf

    makers: dict[str, ValueMaker] = {}
    for alias, tensor in inputs.items():
        if tensor.op.type == "PlaceholderWithDefault":
            default = tf.get_static_value(tensor.op.inputs[0])
            if default is not None:
                makers[alias] = _repeat(np.asarray(default))
    return makers


def _repeat(default: np.ndarray) -> ValueMaker:
    def make(rng, index, shape) -> np.ndarray:
        try:
            return np.broadcast_to(default, shape).copy()
        except ValueError:  # the sample shape guessed an unknown dim the default fixes otherwise
            return default.copy()

    return make
