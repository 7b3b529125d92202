"""Generic tensor names: the aliases that make clients send the wrong names (deployment error 3)."""

from __future__ import annotations

import re

# Default names frameworks hand out when nobody chose one.
_GENERIC = re.compile(
    r"""^(
        (input|inputs|output|outputs|args|arg|x|y|in|out|features?|data|tensor)(_?\d+)?
      | (identity|dense|keras_tensor|input_layer|serving_default_.*|statefulpartitionedcall.*|partitionedcall.*)(_?\d+)?
      | (input|output)_tensor(_?\d+)?
      | x\d+ | field_?\d+ | column_?\d+ | f\d+
    )(:\d+)?$""",
    re.IGNORECASE | re.VERBOSE,
)

# Names that look generic but are what a well-named model is expected to use.
_FINE = {"features", "feature"}


def is_generic(name: str) -> bool:
    """True for default-looking names such as `input_1`, `args_0`, `output_0`, `Identity`, `dense_3`, `x`."""
    return name.lower() not in _FINE and bool(_GENERIC.match(name))
