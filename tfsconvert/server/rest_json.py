"""TF Serving's JSON <-> tensor layer (util/json_tensor.cc): parsing with its checks and messages,
values via tfsconvert.rest_codec (docs/tf-serving.md §4.5, §4.6, §4.8)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re

import numpy as np
import orjson

from tfsconvert import accel
from tfsconvert.rest_codec import decode_tensor
from tfsconvert.server import rest_json_fast
from tfsconvert.server.core import type_name
from tfsconvert.server.examples import debug, json_type
from tfsconvert.server.status import ServingError, invalid

_INT_RANGES = {
    "DT_INT8": (-(2 ** 7), 2 ** 7 - 1), "DT_INT16": (-(2 ** 15), 2 ** 15 - 1), "DT_UINT8": (0, 2 ** 8 - 1),
    "DT_INT32": (-(2 ** 31), 2 ** 31 - 1), "DT_INT64": (-(2 ** 63), 2 ** 63 - 1), "DT_UINT32": (0, 2 ** 32 - 1),
    "DT_UINT64": (0, 2 ** 64 - 1),
}
JSON_DTYPES = {"DT_FLOAT", "DT_DOUBLE", "DT_BOOL", "DT_STRING", *_INT_RANGES}
_MAX_DIMS = rest_json_fast.MAX_DIMS
_DOUBLE_LIMIT = 2 ** 1024 - 2 ** 970  # the integers from here on round to infinity as doubles
_rest_json = accel.load("tfsconvert.server", "_rest_json")  # or its pure-Python twin, _rest_json_py
_MAX_NESTING = 500  # levels orjson may see: json's recursion fails near 1000 levels minus the stack
# rapidjson's messages for the errors Python's json module reports.
_PARSE_ERRORS = {
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Expecting ',' delimiter": "Missing a comma or ']' after an array element.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid control character at": "Invalid encoding in string.",
    "Invalid \\escape": "Invalid escape character in string.",
}


def parse_body(data: bytes):
    """The JSON document of a request body, read as rapidjson reads it: trailing bytes ignored (it
    stops after the top-level value), the first of duplicate keys kept, a number beyond a double
    refused. orjson, ~4x faster, reads the bodies it reads as the json module does; what it rejects
    (trailing bytes, NaN, 1e400, invalid UTF-8, lone surrogates, ...) json decides, and so it does
    for a document with duplicate keys."""
    depth, long_integer, members = _rest_json.scan(data)
    # orjson might read these unlike the json module: an integer beyond 64 bits (orjson returns a
    # float, json an int), deep nesting (orjson's limit is 1024 levels, json's RecursionError near
    # 1000 minus the caller's stack).
    if depth <= _MAX_NESTING and not long_integer:
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            if _rest_json.members(document) == members:  # else a key was repeated: orjson kept the last
                return document
    return parse_with_json_module(data)


def parse_with_json_module(data: bytes):
    """parse_body with Python's json module only: rapidjson's messages for its errors."""
    text = data.decode("utf-8", "replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise invalid("JSON Parse error: The document is empty")
    decoder = json.JSONDecoder(object_pairs_hook=_first_wins, parse_float=_double, parse_int=_integer)
    try:
        if _rest_json.scan(data)[0] > _MAX_NESTING:
            # rapidjson parses iteratively. json's C scanner recurses once per level: on Python 3.13
            # it may exhaust the thread's C stack before its RecursionError (thousands of levels).
            return _parse_deep(text, start)
        try:
            return decoder.raw_decode(text, start)[0]
        except RecursionError:  # raised near 1000 levels on Python 3.11 and 3.12
            return _parse_deep(text, start)
    except _TooBig as error:
        raise invalid(f"JSON Parse error: Number too big to be stored in double. at offset: "
                      f"{len(text[:max(text.find(error.args[0], start), 0)].encode())}") from None
    except json.JSONDecodeError as error:
        raise _syntax_error(error) from None


def _syntax_error(error: json.JSONDecodeError) -> ServingError:
    return invalid(f"JSON Parse error: {_PARSE_ERRORS.get(error.msg, 'Invalid value.')} at offset: {error.pos}")


_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_CONSTANTS = {"true": True, "false": False, "null": None, "NaN": math.nan, "Infinity": math.inf,
              "-Infinity": -math.inf}


def _parse_deep(text: str, at: int):
    """The document at `at`, read without recursion however deep it is nested, as the json module
    reads it (first of duplicate keys kept, numbers beyond a double refused). Its errors have the
    json module's messages, each mapped to rapidjson's."""
    open_containers: list[list] = []  # [container, key of the member being read]
    while True:
        at = _skip(text, at)
        opener = text[at:at + 1]
        if opener in ("[", "{"):
            container = [] if opener == "[" else {}
            at = _skip(text, at + 1)
            if text[at:at + 1] != ("]" if opener == "[" else "}"):
                key = None
                if opener == "{":
                    key, at = _key(text, at)
                open_containers.append([container, key])
                continue
            value, at = container, at + 1
        else:
            value, at = _scalar(text, at)
        while open_containers:  # the value read ends members and elements, and maybe their containers
            container, key = open_containers[-1]
            if isinstance(container, list):
                container.append(value)
            else:
                container.setdefault(key, value)
            at = _skip(text, at)
            separator = text[at:at + 1]
            if separator == ",":
                at += 1
                if isinstance(container, dict):
                    open_containers[-1][1], at = _key(text, _skip(text, at))
                break
            closer, what = ("]", "Missing a comma or ']' after an array element.") if isinstance(container, list) \
                else ("}", "Missing a comma or '}' after an object member.")
            if separator != closer:
                raise invalid(f"JSON Parse error: {what} at offset: {at}")
            open_containers.pop()
            value, at = container, at + 1
        else:
            return value


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _key(text: str, at: int) -> tuple[str, int]:
    """A member's name and the offset after its colon."""
    if text[at:at + 1] != '"':
        raise invalid(f"JSON Parse error: Missing a name for object member. at offset: {at}")
    key, at = _string(text, at)
    at = _skip(text, at)
    if text[at:at + 1] != ":":
        raise invalid(f"JSON Parse error: Missing a colon after a name of object member. at offset: {at}")
    return key, at + 1


def _string(text: str, at: int) -> tuple[str, int]:
    try:
        return json.decoder.scanstring(text, at + 1)
    except json.JSONDecodeError as error:
        raise _syntax_error(error) from None


def _scalar(text: str, at: int):
    if text[at:at + 1] == '"':
        return _string(text, at)
    for literal, value in _CONSTANTS.items():
        if text.startswith(literal, at):
            return value, at + len(literal)
    number = _NUMBER.match(text, at)
    if number is None:
        raise invalid(f"JSON Parse error: Invalid value. at offset: {at}")
    literal = number.group()
    return (_double(literal) if number.group(1) or number.group(2) else _integer(literal)), number.end()


class _TooBig(Exception):
    """A number literal (args[0]) beyond a double's range."""


def _first_wins(pairs: list[tuple]) -> dict:
    document = {}
    for key, value in pairs:
        document.setdefault(key, value)
    return document


def _double(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise _TooBig(literal)
    return value


def _integer(literal: str) -> int:
    """An integer literal; rapidjson reads one beyond 64 bits as a double (and over 309 digits it is
    always beyond a double: Python's int() is not even asked, it refuses 4300 digits)."""
    if len(literal.lstrip("-")) > 309 or abs(int(literal)) >= _DOUBLE_LIMIT:
        raise _TooBig(literal)
    return int(literal)


def is_b64(value) -> bool:
    return isinstance(value, dict) and list(value) == ["b64"]


# ---------------------------------------------------------------------------------------------
# Request values


def _check(value, shape: list[int], level: int, dtype: str) -> None:
    """Every list has the size of its level's first list; every leaf fits `dtype`."""
    if isinstance(value, list):
        if level >= len(shape):
            raise invalid(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
        if len(value) != shape[level]:
            raise invalid(f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: "
                          f"{shape[level]}")
        for item in value:
            _check(item, shape, level + 1, dtype)
    elif level != len(shape):
        raise invalid(f"JSON Value: {debug(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                      f"Expected at level: {len(shape)}")
    else:
        _check_leaf(value, dtype)


def _check_leaf(value, dtype: str) -> None:
    if dtype not in JSON_DTYPES:
        raise ServingError("UNIMPLEMENTED", f"Conversion of JSON Value: {debug(value)} to type: {type_name(dtype)}")
    if dtype == "DT_STRING" and isinstance(value, dict):
        if not (is_b64(value) and isinstance(value["b64"], str)):
            raise invalid(f"JSON Value: {debug(value)} not formatted correctly for base64 data")
        try:
            base64.b64decode(value["b64"], validate=True)
        except binascii.Error:
            raise invalid("Unable to base64 decode") from None
        return
    if not _fits(value, dtype):
        raise invalid(f"JSON Value: {debug(value)} Type: {json_type(value)} is not of expected type: "
                      f"{type_name(dtype)}")


def _fits(value, dtype: str) -> bool:
    if dtype == "DT_STRING":
        return isinstance(value, str)
    if dtype == "DT_BOOL" or isinstance(value, bool):
        return isinstance(value, bool) and dtype == "DT_BOOL"
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):
        return isinstance(value, (int, float))
    low, high = _INT_RANGES[dtype]
    return isinstance(value, int) and low <= value <= high


def tensor(value, dtype: str) -> np.ndarray:
    """One tensor from a JSON value (scalar or nested list), checked as TF Serving checks it."""
    shape = rest_json_fast.shape_of(value)
    if len(shape) > _MAX_DIMS:  # before the recursive checks below
        raise invalid(f"JSON Value: lists nested {len(shape)} levels deep; a tensor has at most {_MAX_DIMS} "
                      "dimensions")
    fast = rest_json_fast.tensor(value, shape, dtype)
    if fast is not None:
        return fast
    _check(value, shape, 0, dtype)
    try:
        return decode_tensor(value, dtype)
    except ValueError as error:  # more dimensions than numpy allows, a value out of the dtype's range
        raise invalid(str(error)) from None


def _wrapped(index: int, error: ServingError, key: str | None = None) -> ServingError:
    where = f"{index} key: {key}" if key is not None else f"{index}"
    return invalid(f"Failed to process element: {where} of 'instances' list. Error: {error}")


def instances(rows, inputs: dict[str, str]) -> dict[str, np.ndarray]:
    """Row format: a list with one entry per batch item (docs/tf-serving.md §4.5, FillTensorMapFromInstancesList)."""
    if not isinstance(rows, list):
        raise invalid(f"JSON Value: {debug(rows)} Expecting 'instances' to be an list/array")
    if not rows:
        raise invalid(f"JSON Value: {debug(rows)} No values in 'instances' array")
    fast = rest_json_fast.columns(rows, inputs)
    if fast is not None:
        return fast
    named = isinstance(rows[0], dict) and not is_b64(rows[0])
    if not named and len(inputs) != 1:
        raise invalid("instances is a plain list, but expecting list of objects as multiple input tensors required "
                      "as per tensorinfo_map")
    columns: dict[str, list[np.ndarray]] = {alias: [] for alias in inputs}
    for index, row in enumerate(rows):
        if named:
            if not isinstance(row, dict) or is_b64(row):
                raise invalid(f"Expecting object but got list at item {index} of input list")
            items = row
        elif isinstance(row, dict) and not is_b64(row):
            raise invalid(f"Expecting value/list but got object at item {index} of input list")
        else:
            items = {next(iter(inputs)): row}
        for key, value in items.items():
            if key not in inputs:
                error = invalid(f"JSON object: does not have named input: {key}")
                raise _wrapped(index, error, key)
            columns[key].append(_element(index, key if named else None, value, inputs[key], columns[key]))
        if len(items) != len(inputs):
            raise invalid(f"Failed to process element: {index} of 'instances' list. JSON object: {debug(row)} keys "
                          f"must be equal to: {','.join(sorted(inputs))}")
    return {alias: np.stack(values) for alias, values in columns.items()}


def _element(index: int, key: str | None, value, dtype: str, previous: list[np.ndarray]) -> np.ndarray:
    try:
        array = tensor(value, dtype)
        if previous and array.shape != previous[0].shape:
            if array.size != previous[0].size:
                raise invalid(f"Expecting tensor size: {previous[0].size} but got: {array.size}")
            raise invalid(f"Expecting shape {_dims(previous[0].shape)} but got: {_dims(array.shape)}")
    except ServingError as error:
        raise _wrapped(index, error, key) from None
    return array


def _dims(shape) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def columns(value, inputs: dict[str, str]) -> dict[str, np.ndarray]:
    """Columnar format: one value per input, any shape; extra keys are ignored (FillTensorMapFromInputsMap)."""
    if not isinstance(value, dict) or is_b64(value):
        if len(inputs) != 1:
            raise invalid("inputs is a plain value/list, but expecting an object as multiple input tensors "
                          "required as per tensorinfo_map")
        value = {next(iter(inputs)): value}
    for alias in inputs:
        if alias not in value:
            raise invalid(f"Missing named input: {alias} in 'inputs' object.")
    return {alias: tensor(value[alias], dtype) for alias, dtype in inputs.items()}
