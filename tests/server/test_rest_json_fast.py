"""rest_json's fast paths (orjson in parse_body, the dense-number check in tensor) against a copy of
the json-module and object-array code they replaced: the same document, array, warning, or
ServingError (code and message) for every body."""

from __future__ import annotations

import json
import random
import struct
import warnings
from contextlib import contextmanager

import numpy as np
import orjson
import pytest

from tfsconvert.dtypes import NUMPY_DTYPES, numpy_dtype
from tfsconvert.rest_codec import decode_tensor, encode_tensor
from tfsconvert.server import _rest_json_py, rest, rest_json, rest_json_fast, rest_outputs
from tfsconvert.server.status import ServingError, invalid

pytestmark = pytest.mark.usefixtures("pure")  # the C modules and their pure-Python twins


@pytest.fixture
def c_module(pure):
    """Tests of what only the C module reads in C (the twin leaves it to the general path)."""
    if pure:
        pytest.skip("read in C only; the pure-Python twin leaves it to the general path")


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
    shape = rest_json_fast.shape_of(value)
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
        if isinstance(value, list) and len(rest_json_fast.shape_of(value)) <= rest_json._MAX_DIMS:
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
        depth, long_integer, members = rest_json._rest_json.scan(body)
        assert depth <= rest_json._MAX_NESTING and not long_integer
        assert rest_json._rest_json.members(orjson.loads(body)) == members
    assert rest_json_fast.tensor([_ROW], [1, 600], "DT_FLOAT") is not None


_PIECES = [b"[", b"]", b"{", b"}", b",", b":", b'"a"', b'"\\u', b"\\", b"1", b"-", b".", b"e", b"0", b" ",
           b"\n", b"true", b"NaN", b"\xff", b"\xc3\xa9", b"1234567890123456789", b"1e400"]


def _edited(rng: random.Random, seed: bytes, edits: int, deletes: float, pieces: list[bytes]) -> bytes:
    """`seed` with 1 to `edits` random edits: a deletion of 1-3 bytes (probability `deletes`) or
    one of `pieces` inserted."""
    body = bytearray(seed)
    for _ in range(rng.randint(1, edits)):
        at = rng.randrange(len(body) + 1)
        if rng.random() < deletes and at < len(body):
            del body[at:at + rng.randint(1, 3)]
        else:
            body[at:at] = rng.choice(pieces)
    return bytes(body)


def test_mutated_bodies_match_the_json_module():
    """Seeded random edits of a small body: every document, error and offset is the json module's."""
    rng = random.Random(20240611)
    seed = b'{"signature_name": "s", "instances": [[1.0, -2.5e-3, 3], [4, 5.5, 6e2]]}'
    for _ in range(3000):
        outcome = _assert_parse_same(_edited(rng, seed, 4, 0.5, _PIECES))
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
# Responses: the JSON text written in C against the Python writer (decimal_text for each float,
# json.dumps for the rest)


def _dump(value, single: bool) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_dump(item, single) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(key)}: {_dump(item, single)}" for key, item in value.items()) + "}"
    if isinstance(value, float):
        return rest_outputs.decimal_text(value, single)
    return json.dumps(value)


def _old_response(arrays: dict, dtypes: dict, rows: bool) -> bytes:
    def encode(array, alias):
        if dtypes[alias] in ("DT_FLOAT", "DT_DOUBLE"):
            return _dump(np.asarray(array).tolist(), dtypes[alias] == "DT_FLOAT")
        return json.dumps(encode_tensor(np.asarray(array), dtypes[alias], alias))

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
        assert rest_outputs.columnar_response(arrays, dtypes) == _old_response(arrays, dtypes, rows=False)
        assert rest_outputs.row_response(arrays, dtypes) == _old_response(arrays, dtypes, rows=True)


def _strings(rng: np.random.Generator, shape) -> np.ndarray:
    """What string tensors hold, as bytes (from TensorFlow) or str (ONNX, PMML): quotes, backslashes,
    control characters and DEL, accents, CJK, beyond the BMP, empty, and bytes that are not UTF-8."""
    texts = ["", "plain", 'q"uote', "back\\slash", "tab\tnew\nline\r", "\x00\x01\x1f\x7f", "caf\u00e9",
             "\u4e2d\u6587", "\U0001f600 smile", "\u2028sep", "/<>&'"]
    raw = [b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", bytes(range(256))]
    values = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        pick = int(rng.integers(0, len(texts) + len(raw)))
        if pick >= len(texts):
            values[index] = raw[pick - len(texts)]
        else:
            values[index] = texts[pick] if rng.random() < 0.3 else texts[pick].encode()
    return values


@pytest.mark.parametrize("seed", range(4))
def test_string_responses_equal_the_python_writer(seed):
    """Text escaped as json.dumps does, base64 for `_bytes` aliases and for bytes that are not UTF-8."""
    rng = np.random.default_rng(seed)
    for _ in range(40):
        batch = int(rng.integers(0, 4))
        aliases = ["label", "image_bytes", "score"][:int(rng.integers(1, 4))]
        shapes = {alias: (batch, *rng.integers(0, 3, int(rng.integers(0, 3)))) for alias in aliases}
        arrays = {alias: _strings(rng, shape) for alias, shape in shapes.items()}
        dtypes = dict.fromkeys(arrays, "DT_STRING")
        if "score" in arrays:
            arrays["score"], dtypes["score"] = _floats(rng, np.float32, shapes["score"]), "DT_FLOAT"
        assert rest_outputs.columnar_response(arrays, dtypes) == _old_response(arrays, dtypes, rows=False)
        assert rest_outputs.row_response(arrays, dtypes) == _old_response(arrays, dtypes, rows=True)


def test_a_scalar_float_output_is_a_bare_number():
    assert rest_outputs.columnar_response({"y": np.float32(0.1)}, {"y": "DT_FLOAT"}) == b'{"outputs": 0.1}'


# ---------------------------------------------------------------------------------------------
# Typed tensors, row bodies and numeric outputs (rest_json_fast, _rest_json.typed/strings/transpose/
# texts) against the general path: the same module with those C functions taken away.


@contextmanager
def _general_path():
    """rest_json_fast and rest_outputs with only what the pure-Python twin of _rest_json has (float
    lists through `doubles`, as before the typed conversions): everything else through the Python
    checks and writers."""
    with pytest.MonkeyPatch.context() as patch:
        for module in (rest_json_fast, rest_outputs):
            patch.setattr(module, "_rest_json", _rest_json_py)
        yield


def _assert_fast_same(function, *args):
    fast = _outcome(function, *args)
    with _general_path():
        general = _outcome(function, *args)
    _assert_same(fast, general)
    return fast


JSON_DTYPES = ["DT_INT8", "DT_INT16", "DT_INT32", "DT_INT64", "DT_UINT8", "DT_UINT32", "DT_UINT64", "DT_BOOL",
               "DT_STRING", "DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_UINT16"]
_LIMITS = [0, 1, -1, 127, 128, -128, -129, 255, 256, 32767, 32768, -32768, -32769, 2 ** 31 - 1, 2 ** 31, -(2 ** 31),
           -(2 ** 31) - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53, 2 ** 53 + 1, -(2 ** 53) - 1, 2 ** 63 - 1, 2 ** 63, -(2 ** 63),
           -(2 ** 63) - 1, 2 ** 64 - 1, 2 ** 64, _BIG]
TYPED_VALUES = [
    *_LIMITS, [_LIMITS], [[value] for value in _LIMITS], [[1, 2], [3, 4]], [[[1]], [[2]]], [1, 2.0], [1.0], 1.0,
    [True, False], [[True], [False]], [1, True], [True, 1], True, False, [True, None],
    ["a", "b"], [["a"], ["\u00e9\U0001F600"]], "s", "", [""], {"b64": "AA=="}, [{"b64": "AAE="}, "x"],
    [{"b64": ""}], [{"b64": "AAE"}], [{"b64": "A*=="}], [{"b64": "AA==AA=="}], [{"b64": "=AA="}], [{"b64": " AA=="}],
    [{"b64": "\u00e9"}], [{"b64": 1}], [{"b64": "AA==", "x": 1}], [{"x": "y"}], [{}], ["\ud800"], [["a"], "b"],
    [[1, 2], [3]], [[1], [2, 3]], [[1, [2]]], [[[1, 2]], [[1]]], [], [[]], [[], []], [[1], []], [[], [1]],
    [2 ** 53, -(2 ** 53)], 2 ** 53 + 1, [float("nan"), float("inf")], float("-inf"), [1e39, -1e39], 1e39, None, [None],
    json.loads("[" * 70 + "1" + "]" * 70), json.loads("[" * 70 + '"a"' + "]" * 70),
]


@pytest.mark.parametrize("dtype", JSON_DTYPES)
def test_typed_tensors_equal_the_general_path(dtype):
    for value in TYPED_VALUES:
        _assert_fast_same(rest_json.tensor, value, dtype)


@pytest.mark.parametrize("dtype, value, expected", [
    ("DT_INT64", [[1, -2], [2 ** 63 - 1, -(2 ** 63)]], np.array([[1, -2], [2 ** 63 - 1, -(2 ** 63)]], np.int64)),
    ("DT_INT8", [-128, 127], np.array([-128, 127], np.int8)),
    ("DT_UINT32", [[2 ** 32 - 1]], np.array([[2 ** 32 - 1]], np.uint32)),
    ("DT_INT32", 7, np.array(7, np.int32)),
    ("DT_BOOL", [[True, False]], np.array([[True, False]])),
    ("DT_FLOAT", 2, np.array(2, np.float32)),
    ("DT_STRING", [["a", {"b64": "/w=="}]], np.array([[b"a", b"\xff"]], dtype=object)),
])
def test_typed_tensors_take_the_fast_path(dtype, value, expected, c_module):
    array = rest_json_fast.tensor(value, rest_json_fast.shape_of(value), dtype)
    assert array is not None and array.dtype == expected.dtype and array.flags.writeable
    assert array.shape == expected.shape and array.tolist() == expected.tolist()


_SIGNATURE = {"i8": "DT_INT8", "i16": "DT_INT16", "i32": "DT_INT32", "ids": "DT_INT64", "u8": "DT_UINT8",
              "u32": "DT_UINT32", "flag": "DT_BOOL", "text": "DT_STRING", "dense": "DT_FLOAT", "wide": "DT_DOUBLE",
              "score": "DT_FLOAT", "big": "DT_INT64"}
_ROW_SHAPES = {"i8": (), "i16": (2,), "i32": (1,), "ids": (3,), "u8": (2, 2), "u32": (), "flag": (2,), "text": (2,),
               "dense": (4,), "wide": (2, 1), "score": (), "big": (1,)}


def _leaf(rng: random.Random, dtype: str):
    if dtype == "DT_STRING":
        return rng.choice(["ab", "\u00e9", "", {"b64": "AAE="}, {"b64": ""}])
    if dtype == "DT_BOOL":
        return rng.random() < 0.5
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):
        return rng.choice([rng.gauss(0, 1), rng.randint(-9, 9), 1e39, 2 ** 53, -0.0, float("nan")])
    low, high = rest_json._INT_RANGES[dtype]
    return rng.choice([low, high, 0, rng.randint(low, high)])


def _value(rng: random.Random, dtype: str, shape: tuple):
    if not shape:
        return _leaf(rng, dtype)
    return [_value(rng, dtype, shape[1:]) for _ in range(shape[0])]


def _rows(rng: random.Random, count: int) -> list[dict]:
    return [{alias: _value(rng, dtype, _ROW_SHAPES[alias]) for alias, dtype in _SIGNATURE.items()}
            for _ in range(count)]


_BAD_VALUES = [2 ** 63, -(2 ** 63) - 1, 300, -1, 1.5, True, "1", None, {"b64": "A"}, {"b64": 5}, {"x": 1}, [],
               [[1]], [1, [2]], 1e400, [True], ["a"]]


def _mutated(rng: random.Random, rows: list[dict]) -> list:
    rows = json.loads(json.dumps(rows))  # a copy
    row = rng.randrange(len(rows))
    alias = rng.choice(list(_SIGNATURE))
    change = rng.randrange(6)
    if change == 0:
        del rows[row][alias]
    elif change == 1:
        rows[row]["extra"] = 1
    elif change == 2:
        rows[row] = [1, 2]
    elif change == 3 and isinstance(rows[row][alias], list) and rows[row][alias]:
        rows[row][alias][rng.randrange(len(rows[row][alias]))] = rng.choice(_BAD_VALUES)
    else:
        rows[row][alias] = rng.choice(_BAD_VALUES)
    return rows


def _columnar(rows: list[dict]) -> dict:
    return {alias: [row[alias] for row in rows] for alias in rows[0]}


@pytest.mark.parametrize("seed", range(4))
def test_row_and_columnar_bodies_equal_the_general_path(seed, c_module):
    """Many named inputs of every dtype and shape, then one damage at a time: the same tensors, or
    the same error text (in `instances`, the element and key the general path names)."""
    rng = random.Random(seed)
    for _ in range(25):
        rows = _rows(rng, rng.randint(1, 6))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 1e39 overflows a float32, as the general path's cast says too
            assert rest_json_fast.columns(rows, _SIGNATURE) is not None
        for document in ({"instances": rows}, {"inputs": _columnar(rows)}):
            outcome = _assert_fast_same(rest.predict_tensors, document, _SIGNATURE)
            assert outcome[0] == "ok" or "float" in str(outcome)  # valid rows: only 1e39 may not fit
        for _ in range(8):
            damaged = _mutated(rng, rows)
            _assert_fast_same(rest.predict_tensors, {"instances": damaged}, _SIGNATURE)
            if all(isinstance(row, dict) for row in damaged) and set(damaged[0]) == set(_SIGNATURE):
                columns = {alias: [row.get(alias) for row in damaged] for alias in damaged[0]}
                _assert_fast_same(rest.predict_tensors, {"inputs": columns}, _SIGNATURE)


@pytest.mark.parametrize("dtype", JSON_DTYPES)
def test_rows_of_one_input_equal_the_general_path(dtype):
    rng = random.Random(dtype)
    inputs = {"x": dtype}
    for shape in [(), (1,), (3,), (2, 2)]:
        rows = [_value(rng, dtype if dtype in rest_json.JSON_DTYPES else "DT_INT8", shape) for _ in range(4)]
        for body in (rows, [{"x": row} for row in rows], rows[:1] + [rows[1:]], [{"x": rows[0]}, rows[1]],
                     [{"b64": "AA=="}, {"b64": "AQ=="}], [[1], {"x": [1]}]):
            _assert_fast_same(rest_json.instances, body, inputs)
    _assert_fast_same(rest_json.instances, [{"b64": "AA=="}], {"b64": "DT_STRING"})


def _ctr_request(seed: int):
    """300 candidates (20 int64 ids, 60 floats, 80 wide ids each) as arrays, the signature's dtypes,
    the columns and the rows."""
    rng = np.random.default_rng(seed)
    arrays = {f"c{i:02d}": rng.integers(0, 1200, (300, 1)) for i in range(20)}
    arrays["dense"] = rng.standard_normal((300, 60)).astype(np.float32)
    arrays["wide_ids"] = rng.integers(0, 100_000, (300, 80))
    inputs = {alias: "DT_FLOAT" if alias == "dense" else "DT_INT64" for alias in arrays}
    columns = {alias: array.tolist() for alias, array in arrays.items()}
    rows = [{alias: column[i] for alias, column in columns.items()} for i in range(300)]
    return arrays, inputs, columns, rows


def test_a_ctr_request_takes_the_fast_path(c_module):
    """300 candidates, 20 int64 ids, 60 floats and 80 wide ids each: no per-value Python work (the
    general path is never asked), in both forms."""
    arrays, inputs, columns, rows = _ctr_request(0)
    for body in (json.dumps({"inputs": columns}), json.dumps({"instances": rows})):
        depth, long_integer, _ = rest_json._rest_json.scan(body.encode())
        assert depth <= rest_json._MAX_NESTING and not long_integer  # orjson reads it
        document = rest_json.parse_body(body.encode())
        assert rest_json_fast.columns(rows, inputs) is not None
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(rest_json, "_check", None)  # the general path would fail if asked
            tensors = rest.predict_tensors(document, inputs)
        for alias, array in arrays.items():
            assert tensors[alias].dtype == array.dtype and np.array_equal(tensors[alias], array)


@pytest.mark.parametrize("seed", range(4))
def test_numeric_responses_equal_the_general_writers(seed):
    rng = np.random.default_rng(seed)
    kinds = ["DT_INT8", "DT_INT16", "DT_INT32", "DT_INT64", "DT_UINT8", "DT_UINT32", "DT_UINT64", "DT_BOOL",
             "DT_FLOAT", "DT_DOUBLE", "DT_STRING", "DT_HALF"]
    for _ in range(60):
        batch = int(rng.integers(0, 4))
        arrays, dtypes = {}, {}
        for index in range(int(rng.integers(1, 4))):
            kind = str(rng.choice(kinds))
            shape = (batch, *rng.integers(0, 3, int(rng.integers(0, 3))))
            target = NUMPY_DTYPES[kind]
            if kind == "DT_STRING":
                array = np.full(shape, "\u00e9\"", dtype=object)
            elif target.kind in "iu":
                info = np.iinfo(target)
                array = rng.choice(np.array([info.min, info.max, 0, 1], dtype=target), shape)
            elif target.kind == "b":
                array = rng.random(shape) < 0.5
            else:
                array = _floats(rng, target, shape)
            alias = ["ids", "flags_bytes", "scores"][index]
            arrays[alias], dtypes[alias] = array, kind
        for writer in (rest_outputs.columnar_response, rest_outputs.row_response):
            _assert_fast_same(writer, arrays, dtypes)
        if "DT_HALF" not in dtypes.values():
            assert rest_outputs.columnar_response(arrays, dtypes) == _old_response(arrays, dtypes, rows=False)
            if batch:
                assert rest_outputs.row_response(arrays, dtypes) == _old_response(arrays, dtypes, rows=True)


# ---------------------------------------------------------------------------------------------
# Whole bodies read in C (rest_json_fast.predict_body, _predict_json.c) against parse_body and
# predict_tensors: whenever C reads a body, the same tensors (and signature name and form)


_INPUT_MAPS = [
    {"ids": "DT_INT64", "dense": "DT_FLOAT", "n": "DT_INT32"},
    {"ids": "DT_INT8", "dense": "DT_DOUBLE", "n": "DT_FLOAT"},
    {"ids": "DT_UINT8", "dense": "DT_FLOAT", "n": "DT_UINT64"},
    {"ids": "DT_FLOAT", "dense": "DT_INT64", "n": "DT_DOUBLE"},
    {"ids": "DT_UINT32", "dense": "DT_BOOL", "n": "DT_INT16"},
    {"ids": "DT_INT64", "dense": "DT_FLOAT"},
    {"x": "DT_FLOAT"}, {"x": "DT_INT64"}, {"x": "DT_DOUBLE"}, {"x": "DT_UINT8"}, {"b64": "DT_INT64"},
]


def _assert_reading_same(body: bytes) -> int:
    """How many input maps C's reading of `body` served, each checked against the general path."""
    reading = rest_json_fast.predict_body(body)
    if reading is None:
        return 0
    with _general_path():
        document, signature_name = rest.request_document(body)
    assert (reading[0] or "", bool(reading[1])) == (signature_name, "instances" in document)
    served = 0
    for inputs in _INPUT_MAPS:
        fast = _outcome(rest_json_fast.body_tensors, reading, inputs)
        if fast[0] == "ok" and fast[1] is None:
            continue
        with _general_path():
            _assert_same(fast, _outcome(rest.predict_tensors, document, inputs))
        served += 1
    return served


_SEEDS = [
    b'{"signature_name": "s", "inputs": {"ids": [[1], [2]], "dense": [[0.5, -2e-3], [3, 4]], "n": 7}}',
    b'{"instances": [{"ids": [1], "dense": [0.5, -2.5E+3], "n": 7}, {"n": -0, "dense": [3, 4], "ids": [2]}]}',
    b'{"instances": [[1, 2.5], [3, 4]], "signature_name": "serving_default"}',
    b'{"inputs": [[1, 2], [3, 4]]}',
    b'{"inputs": {"x": [[255, 0]], "y": "ignored"}}',
    b'{"inputs": {"b64": [1]}}',
    b'{"instances": [{"b64": 1}, {"b64": 2}]}',
]
_READ_PIECES = [*_PIECES, b'"ids"', b'"n"', b'"x"', b'{"ids": [3], "dense": [1, 2], "n": 1}', b"18446744073709551615",
                b"9223372036854775807", b"9223372036854775808", b"9007199254740993", b"-0", b"1e5", b"1.0", b"256",
                b"-129", b"[[1]]", b"00", b"-", b"2.", b"\t", b'"signature_name": "t", ']


def test_bodies_read_in_c_equal_the_general_path(c_module):
    served = sum(_assert_reading_same(body) for body in _SEEDS + BODIES)
    rng = random.Random(20241205)
    for _ in range(3000):
        served += _assert_reading_same(_edited(rng, rng.choice(_SEEDS), 3, 0.4, _READ_PIECES))
    assert served > 150  # the mutations leave a good many bodies C reads


def test_number_literals_read_in_c_equal_the_json_module():
    rng = random.Random(11)
    for _ in range(300):
        numbers = [_number(rng) for _ in range(6)]
        for body in ('{"inputs": {"x": [' + ", ".join(numbers) + "]}}",
                     '{"instances": [' + ", ".join('{"x": ' + number + "}" for number in numbers) + "]}"):
            _assert_reading_same(body.encode())


def test_a_ctr_body_is_read_in_c(c_module):
    arrays, inputs, columns, rows = _ctr_request(1)
    for body in (json.dumps({"inputs": columns}), json.dumps({"instances": rows})):
        tensors = rest_json_fast.body_tensors(rest_json_fast.predict_body(body.encode()), inputs)
        for alias, array in arrays.items():
            assert tensors[alias].dtype == array.dtype and np.array_equal(tensors[alias], array)
