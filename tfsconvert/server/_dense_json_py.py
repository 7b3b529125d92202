"""The pure-Python twin of `_dense_json.c`: the common predict body read into doubles, for the REST
lanes (one dense float tensor in row or columnar form, optionally with a signature name). It takes
the bodies the C reader takes: the text checked by regular expressions (only brackets, braces,
commas, colons, numbers, and strings of printable ASCII without escapes; no integer over 19 digits),
then read by orjson, whose numbers are the general path's by definition; anything else is None, for
the general path (orjson and rest_json) to answer."""

from __future__ import annotations

import re

import orjson

from tfsconvert.server._rest_json_py import doubles

MAX_DIMS = 32
_MAX_NAME = 255  # characters of a signature name or alias
_PLAIN_NAME = re.compile(rb'"[\x20\x21\x23-\x5b\x5d-\x7e]*"')  # printable ASCII, no escapes
_OTHER = b"[]{},:0123456789.eE+- \t\n\r"  # what else the body may hold (orjson checks the grammar)
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_INTEGER = re.compile(rb"(?<![0-9.eE+])(?<![eE]-)[0-9]{20,}(?![0-9.eE])")  # not a fraction or exponent


def _shape(value) -> list[int] | None:
    shape = []
    while type(value) is list and value:
        shape.append(len(value))
        value = value[0]
    return shape if type(value) in (int, float) and len(shape) <= MAX_DIMS else None


def _name(value) -> bool:
    return type(value) is str and len(value) <= _MAX_NAME


def read_body(data) -> tuple[bool, str | None, str | None, bytes, tuple[int, ...]] | None:
    """(rows, signature_name, alias, values, shape) of a dense predict body, else None."""
    data = bytes(data)
    skeleton = _PLAIN_NAME.sub(b'""', data)  # names may hold digits and colons
    if skeleton.translate(None, _OTHER).replace(b'""', b"") or (
            b"0" * 20 in skeleton.translate(_DIGITS) and _LONG_INTEGER.search(skeleton)):
        return None
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if type(document) is not dict:
        return None
    signature = document.pop("signature_name", None)
    if (signature is not None and not _name(signature)) or len(document) != 1:
        return None
    key, tensor = document.popitem()
    alias = None
    if key == "inputs" and type(tensor) is dict:
        if len(tensor) != 1:
            return None
        alias, tensor = tensor.popitem()
        if not _name(alias):
            return None
    elif key != "instances" and key != "inputs":
        return None
    rows = key == "instances"
    shape = _shape(tensor)
    if shape is None or len(shape) < 1 + rows:
        return None
    values = doubles(tensor, shape)
    if values is None or skeleton.count(b":") != 1 + (signature is not None) + (alias is not None):
        return None  # a key repeated: orjson kept the last
    return rows, signature, alias, values, tuple(shape)

