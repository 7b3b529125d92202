"""The pure-Python twin of `_rest_json.c` (same functions, same results), for machines where the C
module is not built or `TFSCONVERT_PURE_PYTHON=1` (tfsconvert/accel.py)."""

from __future__ import annotations

import math
import re
import struct
from array import array

import numpy as np

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.S)  # a string, or an unterminated one to the end
_LONG_RUN = re.compile(rb"(?<![.0-9])[0-9]{19}")  # 19 digits in a row, not a fraction's


def scan(data) -> tuple[int, bool, int]:
    """(depth, long_integer, members): how deeply arrays and objects nest outside strings, whether the
    body has 19 or more digits in a row not after a `.` (closing brackets deleted first), and how
    many `:` are outside strings."""
    data = bytes(data)
    long_integer = _LONG_RUN.search(data.translate(None, b"]}")) is not None
    outside = _STRING.sub(b"", data)
    brackets = outside.translate(_BRACKETS, _NOT_BRACKETS)  # 1 opens, 0 closes
    steps = np.frombuffer(brackets, np.uint8).astype(np.int64) * 2 - 1
    depth = int(np.cumsum(steps).max()) if steps.size else 0
    return max(depth, 0), long_integer, outside.count(b":")


_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\x00\x00")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[{]}"))


def members(value) -> int:
    """How many members the objects in a parsed document have, all told (iterative: documents nest
    deeper than Python's recursion limit)."""
    count, stack = 0, [value]
    while stack:
        value = stack.pop()
        if type(value) is dict:
            count += len(value)
            stack.extend(item for item in value.values() if type(item) in _CONTAINERS)
        elif type(value) is list:
            stack.extend(item for item in value if type(item) in _CONTAINERS)
    return count


_CONTAINERS = (dict, list)


def _leaves(value, shape: list[int], out: array) -> bool:
    if type(value) is not list or len(value) != shape[0]:
        return False
    if len(shape) > 1:
        return all(_leaves(item, shape[1:], out) for item in value)
    if not set(map(type, value)) <= _NUMBERS:  # exact floats and ints: no bools, no subclasses
        return False
    try:
        out.extend(value)
    except OverflowError:  # an int beyond a double
        return False
    return True


_NUMBERS = {int, float}


def doubles(value, shape: list[int]) -> bytes | None:
    """Bytes of the leaves as native doubles, or None if `value` is not a dense list of numbers (exact
    floats or ints, no bools) of that shape."""
    if not isinstance(shape, list):
        raise TypeError("doubles() argument 2 must be list")
    out = array("d")
    return out.tobytes() if shape and _leaves(value, shape, out) else None


_FLOAT32 = struct.Struct("f")


def _decimal(value: float, single: bool) -> str:
    """rest_outputs.decimal_text, with the float32 round trip done by struct (numpy scalars cost more)."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    text = "%g" % value
    back = float(text)
    if single:
        try:
            back = _FLOAT32.unpack(_FLOAT32.pack(back))[0]
        except OverflowError:  # beyond float32: it would be inf
            back = math.inf
    if back != value:
        text = ("%.9g" if single else "%.17g") % value
    return text if "." in text or "e" in text else text + ".0"


def decimals(values) -> str:
    """The JSON text of a float32 or float64 array, each value as rest_outputs.decimal_text writes it (`%g`,
    or 9 / 17 significant digits when `%g` does not give the value back; `.0` added to a whole number
    not in exponent form; NaN, Infinity, -Infinity)."""
    import numpy as np

    values = np.asarray(values)
    if values.dtype != np.float32 and values.dtype != np.float64:
        raise TypeError(f"decimals() takes float32 or float64, not '{values.dtype.char}'")
    single = values.dtype == np.float32
    return _nested([_decimal(value, single) for value in values.ravel().tolist()], values.shape)


def _nested(texts: list[str], shape: tuple[int, ...]) -> str:
    """The nested lists of shape[0] x shape[1] x ... texts, with json.dumps's separators, built from the
    innermost lists out."""
    for depth in range(len(shape) - 1, -1, -1):
        size = shape[depth]
        texts = ["[" + ", ".join(texts[group * size:(group + 1) * size]) + "]"
                 for group in range(math.prod(shape[:depth]))]
    return texts[0]
