"""rest_json's fast paths (orjson in parse_body, the dense-number check in tensor) against a copy of
the json-module and object-array code they replaced: the same document, array, warning, or
ServingError (code and message) for every body."""

from __future__ import annotations

import json
import random
import struct
import warnings

import numpy as np
import orjson
import pytest

from tfsconvert.dtypes import numpy_dtype
from tfsconvert.rest_codec import decode_tensor, encode_tensor
from tfsconvert.server import rest_json
from tfsconvert.server.status import ServingError, invalid

pytestmark = pytest.mark.usefixtures("pure")  # the C transport and its pure-Python twin


# ---------------------------------------------------------------------------------------------
# The replaced code, kept as it was (the json-module parse is still rest_json's own fallback)


def _old_numbers(value, shape, dtype):
    if dtype not in ("DT_FLOAT", "DT_DOUBLE") or not shape:
        return None
    try:
        objects = np.array(value, dtype=object)
        if objects.shape == tuple(shape) and set(map(type, objects.ravel().tolist())) <= {int, float}:
            return objects.astype(numpy_dtype(dtype))
    except (ValueError, OverflowError):
        pass
    return None


def _old_tensor(value, dtype):
    shape = rest_json._shape(value)
    if len(shape) > rest_json._MAX_DIMS:
        raise invalid(f"JSON Value: lists nested {len(shape)} levels deep; a tensor has at most "
                      f"{rest_json._MAX_DIMS} dimensions")
    fast = _old_numbers(value, shape, dtype)
    if fast is not None:
        return fast
    rest_json._check(value, shape, 0, dtype)
    try:
        return decode_tensor(value, dtype)
    except ValueError as error:
        raise invalid(str(error)) from None


# ---------------------------------------------------------------------------------------------
# Comparison


def _outcome(function, *args):
    """("ok", result, warnings), ("error", code, message, warnings) for a ServingError, or
    ("raised", type, text, warnings) for another exception; warnings as a set."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ("ok", function(*args))
        except ServingError as error:
            result = ("error", error.code, error.message)
        except Exception as error:  # a value no JSON parser makes, e.g. a numpy scalar
            result = ("raised", type(error), str(error))
    # A set: numpy's object cast repeats a warning per element, a float64 cast gives it once.
    # ResourceWarnings come from the garbage collector (other tests' sockets), not from the call.
    return (*result, {(w.category, str(w.message)) for w in caught if w.category is not ResourceWarning})


def _exact(value) -> list:
    """`value` as tokens, every float as its bits and every type spelled out, for == comparison
    (iterative: parsed documents nest deeper than Python's recursion limit)."""
    tokens, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, np.ndarray):
            tokens.append(("ndarray", item.dtype.str, item.shape, item.flags.writeable))
            stack.append(item.tolist() if item.dtype.kind == "O" else item.tobytes())
        elif isinstance(item, float):
            tokens.append(("float", struct.pack("<d", item)))
        elif isinstance(item, list):
            tokens.append(("list", len(item)))
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            tokens.append(("dict", len(item)))
            stack.extend(part for pair in reversed(item.items()) for part in reversed(pair))
        else:
            tokens.append((type(item).__name__, item))
    return tokens


def _assert_same(new, old):
    assert new[0] == old[0], (new, old)
    if new[0] == "ok":
        assert _exact(new[1]) == _exact(old[1])
        if isinstance(old[1], np.ndarray):
            assert new[1].dtype == old[1].dtype
            assert np.array_equal(new[1], old[1], equal_nan=old[1].dtype.kind == "f")
        assert new[2] == old[2]
    else:
        assert new == old


def _assert_parse_same(body: bytes):
    new = _outcome(rest_json.parse_body, body)
    _assert_same(new, _outcome(rest_json.parse_with_json_module, body))
    return new


def _assert_tensor_same(value, dtype: str):
    _assert_same(_outcome(rest_json.tensor, value, dtype), _outcome(_old_tensor, value, dtype))


# ---------------------------------------------------------------------------------------------
# Bodies


_ROW = [round(random.Random(0).gauss(0, 1), 8) for _ in range(600)]
_DEEP = 2000

BODIES = [
    json.dumps({"instances": [_ROW]}).encode(),
    json.dumps({"inputs": {"features": [_ROW]}}).encode(),
    json.dumps({"instances": [_ROW[:20]] * 600}).encode(),  # more brackets than orjson is trusted with
    b'{"instances": [[1.0, 2.5]]} trailing garbage',
    b'{"instances": [[1.0]]}}',
    b"[1]\x00",
    b'{"instances": [[1.0, NaN]]}',
    b'{"instances": [[Infinity, -Infinity]]}',
    b"NaN",
    b"-Infinity",
    b"[1e400, -1e400, 1e-400, -1e-400]",
    b"1e400",
    b"[-0.0, 0.0, -0, 0, -0e0]",
    b"[1E5, 1.0e-7, 1e+2, 5e-324, 4.9e-324, 1.7976931348623157e308, 2.2250738585072011e-308]",
    b"[0.1, 0.30000000000000004, 9007199254740993, 123456789012345678.5, 0.00012345678901234567]",
    f"[{2 ** 63 - 1}, {2 ** 63}, {2 ** 64 - 1}, {-(2 ** 63)}]".encode(),
    f"[{2 ** 64}]".encode(),
    f"[{-(2 ** 63) - 1}]".encode(),
    f'{{"instances": [[{2 ** 70}, 1.0]]}}'.encode(),
    str(10 ** 400).encode(),
    b'{"inputs": [[' + b"1" * 5000 + b", 2]]}",
    b'{"signature_name": "12345678901234567890", "instances": [[1.0]]}',
    b"[1234567890123456789e5, 1234567890123456789.0]",
    b'{"signature_name": "a\xffb\xfe", "instances": [[1.0]]}',
    b'{"\xff": 1}',
    b"\xff[1]",
    b"[1, \xff]",
    b'"\xed\xa0\x80"',  # a surrogate in UTF-8
    b'"\xc0\x80"',  # an overlong encoding
    b'["\\ud800"]',
    b'"\\udc00x"',
    b'"\\ud83d\\ude00 \\u00e9 \\u2028 \\u0000 \\/ \\b\\f\\n\\r\\t"',
    "[\"\u00e9\U0001F600\ufeff\uffff\"]".encode(),
    b'\xef\xbb\xbf{"instances": [[1.0]]}',
    b"",
    b" \t\r\n",
    b"\x0c[1]",
    b"[" * _DEEP + b"]" * _DEEP,
    b"[" * 1024 + b"]" * 1024,
    b"[" * 1000 + b"]" * 1000,
    b"[" * 600 + b"]" * 600,
    b"[" * 500 + b"]" * 500,
    b'{"a":' * _DEEP + b"1" + b"}" * _DEEP,
    b'{"a": 1, "b": 2, "a": 3}',
    b'{"a": {"x": 1}, "a": [2]}',
    b'{"instances": [[1.0, true]]}',
    b'{"instances": [[1.0, "2.0"]]}',
    b'{"instances": [[1.0, null]]}',
    b'{"instances": [[1.0], [1.0, 2.0]]}',
    b'{"instances": [[1.0, [2.0]]]}',
    b'{"instances": []}',
    b'{"inputs": [[]]}',
    b'{"inputs": [[], []]}',
    b'{"instances": [[1, 2, 3]]}',
    b"1.5",
    b"7",
    b'"s"',
    b"true",
    b"null",
    b" [1] ",
    b"01",
    b"1.",
    b".5",
    b"+1",
    b"[1,]",
    b'{"a": 1,}',
    b'"\x01"',
    b'{"a" 1}',
    b'{"a": [1 2]}',
    b'"unterminated',
    b'"\\x"',
]


@pytest.mark.parametrize("body", BODIES, ids=[repr(body[:30]) for body in BODIES])
def test_parse_body_matches_the_json_module(body):
    _assert_parse_same(body)


@pytest.mark.parametrize("body", BODIES, ids=[repr(body[:30]) for body in BODIES])
@pytest.mark.parametrize("dtype", ["DT_FLOAT", "DT_DOUBLE", "DT_INT64"])
def test_tensors_of_parsed_bodies_match(body, dtype):
    outcome = _outcome(rest_json.parse_with_json_module, body)
    if outcome[0] != "ok":
        return
    document = outcome[1]
    values = [document]
    if isinstance(document, dict):
        values += [document.get("instances"), document.get("inputs")]
    for value in values:
        if isinstance(value, list) and len(rest_json._shape(value)) <= rest_json._MAX_DIMS:
            _assert_tensor_same(value, dtype)


_BIG = 2 ** 60 + 2 ** 36 + 1  # rounds twice (int -> double -> float32) to a different float32 than once

VALUES = [
    [1.0, 2.5], [[1.0, 2.5]], [[1.0, 2.5], [3.0, -4.5]], [[[1.0], [2.0]], [[3.0], [4.0]]],
    [1, 2, 3], [[1, 2.5]], [True, 1.0], [[1.0, False]], [1.0, "2"], [[1.0, None]], [[1.0, {"b64": "AA=="}]],
    [[1.0], [1.0, 2.0]], [[1.0, 2.0], [3.0, 4.0, 5.0], [6.0]],  # ragged; the second has 3 x 2 leaves
    [[1.0, [2.0]]], [[[1.0]], [2.0]], [[1.0], 2.0], [[[1.0, 2.0]], [[1.0]]],
    [], [[]], [[], []], [[], [1.0]], [[[]]], 1.5, 7, True, "s", None,
    [float("nan"), float("inf"), float("-inf"), -0.0, 0.0],
    [1e39, -1e39, 3.4028235677973366e38, 5e-324, 1e-46],
    [10 ** 39, -(10 ** 39), 2 ** 70, 2 ** 64, _BIG, 2 ** 24 + 1, 2 ** 53 + 1, -(2 ** 63) - 1],
    [[int("1" * 400), 1.0]], [10 ** 308, 1.0], [2 ** 1024], [2 ** 1024 - 1],
    [[[[[[[[[[1.0]]]]]]]]]], json.loads("[" * 100 + "1" + "]" * 100), json.loads("[" * 300 + "1" + "]" * 300),
    [(1.0, 2.0)], [()], [[np.float32(1.0)]], [np.float64(1.0)],
    _ROW, [_ROW], [_ROW, _ROW[::-1]], [_ROW, _ROW[:-1]],
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(value)[:40] for value in VALUES])
@pytest.mark.parametrize("dtype", ["DT_FLOAT", "DT_DOUBLE", "DT_INT32", "DT_BOOL", "DT_STRING", "DT_HALF"])
def test_tensor_matches_the_object_array_path(value, dtype):
    _assert_tensor_same(value, dtype)


def test_the_usual_request_takes_the_fast_paths():
    """The 600-float bodies are read by orjson, as are a float64's 20 digits after the point, and
    converted without decode_tensor."""
    for body in (BODIES[0], BODIES[1], b'{"instances": [[0.00012345678901234567]]}'):
        closing_brackets, long_integer, members = rest_json._rest_json.scan(body)
        assert closing_brackets <= rest_json._MAX_NESTING and not long_integer
        assert rest_json._rest_json.members(orjson.loads(body)) == members
    assert rest_json._numbers([_ROW], [1, 600], "DT_FLOAT") is not None


_PIECES = [b"[", b"]", b"{", b"}", b",", b":", b'"a"', b'"\\u', b"\\", b"1", b"-", b".", b"e", b"0", b" ",
           b"\n", b"true", b"NaN", b"\xff", b"\xc3\xa9", b"1234567890123456789", b"1e400"]


def test_mutated_bodies_match_the_json_module():
    """Seeded random edits of a small body: every document, error and offset is the json module's."""
    rng = random.Random(20240611)
    seed = b'{"signature_name": "s", "instances": [[1.0, -2.5e-3, 3], [4, 5.5, 6e2]]}'
    for _ in range(3000):
        body = bytearray(seed)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(body) + 1)
            if rng.random() < 0.5 and at < len(body):
                del body[at:at + rng.randint(1, 3)]
            else:
                body[at:at] = rng.choice(_PIECES)
        outcome = _assert_parse_same(bytes(body))
        if outcome[0] == "ok" and isinstance(outcome[1], dict) and isinstance(outcome[1].get("instances"), list):
            _assert_tensor_same(outcome[1]["instances"], "DT_FLOAT")


def _number(rng: random.Random) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(rng.choice([1, 5, 17, 18, 19, 20, 25, 60])))
    text = rng.choice(["", "-"]) + (digits.lstrip("0") or "0")
    if rng.random() < 0.6:
        text += "." + "".join(rng.choice("0123456789") for _ in range(rng.choice([1, 9, 17, 21, 40])))
    if rng.random() < 0.5:
        exponent = rng.choice([0, 7, 38, 39, 45, 308, 309, 324, 330])
        text += rng.choice("eE") + rng.choice(["", "+", "-"]) + str(exponent)
    return text


def test_number_literals_match_the_json_module():
    """orjson's floats are correctly rounded like the json module's; integers beyond 64 bits are
    left to the json module (orjson makes them floats)."""
    rng = random.Random(7)
    for _ in range(300):
        body = ("[" + ", ".join(_number(rng) for _ in range(20)) + "]").encode()
        outcome = _assert_parse_same(body)
        if outcome[0] == "ok":
            _assert_tensor_same(outcome[1], "DT_FLOAT")
            _assert_tensor_same(outcome[1], "DT_DOUBLE")


# ---------------------------------------------------------------------------------------------
# Responses: the JSON text written in C for float tensors against the Python writer (decimal_text
# for each float, json.dumps for the rest)


def _dump(value, single: bool) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_dump(item, single) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(key)}: {_dump(item, single)}" for key, item in value.items()) + "}"
    if isinstance(value, float):
        return rest_json.decimal_text(value, single)
    return json.dumps(value)


def _old_response(arrays: dict, dtypes: dict, rows: bool) -> bytes:
    def encode(array, alias):
        text = _dump(np.asarray(array).tolist(), dtypes[alias] == "DT_FLOAT")
        return text if dtypes[alias] in ("DT_FLOAT", "DT_DOUBLE") else json.dumps(
            encode_tensor(np.asarray(array), dtypes[alias], alias))

    def whole(texts: dict) -> str:
        return next(iter(texts.values())) if len(texts) == 1 else (
            "{" + ", ".join(f"{json.dumps(alias)}: {text}" for alias, text in texts.items()) + "}")

    if rows:
        batch = len(next(iter(arrays.values())))
        rows_text = [whole({alias: encode(array[i], alias) for alias, array in arrays.items()}) for i in range(batch)]
        return f'{{"predictions": [{", ".join(rows_text)}]}}'.encode()
    return f'{{"outputs": {whole({alias: encode(array, alias) for alias, array in arrays.items()})}}}'.encode()


def _floats(rng: np.random.Generator, dtype, shape) -> np.ndarray:
    """Values of every magnitude, with the specials, -0.0 and subnormals among them."""
    values = rng.standard_normal(shape) * 10.0 ** rng.integers(-45, 39, shape)
    specials = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45, 1e-310, 100000.0, 0.1, 1 / 3])
    picks = rng.random(shape) < 0.2
    values[picks] = rng.choice(specials, picks.sum())
    with np.errstate(over="ignore"):
        return values.astype(dtype)


@pytest.mark.parametrize("seed", range(6))
def test_float_responses_equal_the_python_writers(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        batch = int(rng.integers(0, 4))
        shapes = [(batch, *rng.integers(0, 4, int(rng.integers(0, 3)))) for _ in range(int(rng.integers(1, 4)))]
        kinds = [rng.choice(["DT_FLOAT", "DT_DOUBLE", "DT_INT64", "DT_STRING"]) for _ in shapes]
        arrays, dtypes = {}, {}
        for index, (shape, kind) in enumerate(zip(shapes, kinds)):
            alias = ["score", "prob\u00e9", "class_ids"][index]
            if kind == "DT_STRING":
                arrays[alias] = np.full(shape, "a\u00e9\"", dtype=object)
            elif kind == "DT_INT64":
                arrays[alias] = rng.integers(-5, 5, shape)
            else:
                arrays[alias] = _floats(rng, numpy_dtype(kind), shape)
            dtypes[alias] = str(kind)
        assert rest_json.columnar_response(arrays, dtypes) == _old_response(arrays, dtypes, rows=False)
        assert rest_json.row_response(arrays, dtypes) == _old_response(arrays, dtypes, rows=True)


def test_a_scalar_float_output_is_a_bare_number():
    assert rest_json.columnar_response({"y": np.float32(0.1)}, {"y": "DT_FLOAT"}) == b'{"outputs": 0.1}'
