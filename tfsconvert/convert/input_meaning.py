"""Sample makers for inputs whose meaning the graph shows, read from the ops that consume them
(a serialized tf.Example parsed by ParseExample, encoded image bytes decoded by DecodeJpeg, ...)."""

from __future__ import annotations

from tfsconvert.convert.example_inputs import example_makers
from tfsconvert.convert.image_inputs import image_makers
from tfsconvert.convert.optional_inputs import default_makers
from tfsconvert.samples import ValueMaker


def graph_makers(graph, inputs: dict[str, object]) -> dict[str, ValueMaker]:
    """alias -> maker for each input tensor (a tf.Tensor of `graph`) whose consumers say what it holds."""
    makers: dict[str, ValueMaker] = {}
    makers.update(image_makers(graph, inputs))
    makers.update(default_makers(inputs))
    makers.update(example_makers(graph, inputs))
    return makers
