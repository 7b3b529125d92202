"""Generic names are the third deployment error; well-chosen names must pass."""

import pytest

from tfsconvert.naming import is_generic


@pytest.mark.parametrize("name", ["input_1", "inputs", "x", "args_0", "output_0", "outputs", "Identity",
                                  "Identity_2", "dense_3", "StatefulPartitionedCall:0", "keras_tensor",
                                  "keras_tensor_5", "input_layer", "x1", "x12", "serving_default_input_1:0"])
def test_generic(name):
    assert is_generic(name)


@pytest.mark.parametrize("name", ["features", "probabilities", "score", "class_id", "ids", "dense_features",
                                  "sepal_length", "color", "label", "age"])
def test_meaningful(name):
    assert not is_generic(name)
