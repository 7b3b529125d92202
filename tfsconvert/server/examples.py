"""Serialized tf.Examples for Classify/Regress, from gRPC `Input` protos or REST JSON (docs/tf-serving.md §4.7, §5.2)."""

from __future__ import annotations

import base64
import binascii
import math

from tfsconvert import tfproto
from tfsconvert.server.status import invalid

_INT64_MAX = 2 ** 63 - 1


def from_input(input_proto) -> list[bytes]:
    """The examples of an `Input`; with a context each is context + example (a protobuf merge),
    as TF Serving builds them."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        return [example.SerializeToString() for example in input_proto.example_list.examples]
    if kind == "example_list_with_context":
        with_context = input_proto.example_list_with_context
        context = with_context.context.SerializeToString()
        return [context + example.SerializeToString() for example in with_context.examples]
    return []


def json_type(value) -> str:
    """rapidjson's type name of a parsed JSON value, as TF Serving's messages print it."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


_DEBUG_BYTES = 256  # kMaxJsonDebugStringBytes
_REFUSED = "\0refused"  # marks the piece after which the writer stopped
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def debug(value) -> str:
    """A JSON value as TF Serving quotes it in messages: rapidjson's PrettyWriter (objects one member
    a line, indented by 4; arrays on one line), cut off at the first piece that starts past 256 bytes."""
    text, size = [], 0
    for piece in _pieces(value, []):
        if size >= _DEBUG_BYTES:
            break
        text.append(piece)
        size += len(piece.encode("utf-8", "surrogatepass"))
        if piece.endswith(_REFUSED):
            break
    return "".join(text).removesuffix(_REFUSED)


def _pieces(value, levels: list[list]):
    """What the writer writes for each value, key and end of object or array, in order."""
    prefix = _prefix(levels)
    if isinstance(value, dict):
        yield prefix + "{"
        levels.append([False, 0])
        for key, item in value.items():
            yield _prefix(levels) + _string(key)
            yield from _pieces(item, levels)
        members = levels.pop()[1]
        yield ("\n" + "    " * len(levels) if members else "") + "}"
    elif isinstance(value, list):
        yield prefix + "["
        levels.append([True, 0])
        for item in value:
            yield from _pieces(item, levels)
        levels.pop()
        yield "]"
    elif isinstance(value, float) and not math.isfinite(value):
        yield prefix + _REFUSED  # the writer refuses NaN and Infinity: the text ends here
    else:
        yield prefix + _scalar(value)


def _prefix(levels: list[list]) -> str:
    if not levels:
        return ""
    level = levels[-1]
    in_array, count = level
    level[1] += 1
    if in_array:
        return ", " if count else ""
    if count % 2:
        return ": "
    return (",\n" if count else "\n") + "    " * len(levels)


def _string(text: str) -> str:
    return '"' + "".join(_ESCAPES.get(ch) or (f"\\u{ord(ch):04X}" if ch < " " else ch) for ch in text) + '"'


def _scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int) and -(2 ** 63) <= value < 2 ** 64:
        return str(value)
    return _double(float(value))


def _double(value: float) -> str:
    """rapidjson's shortest form of a double: `1.0`, `0.001`, `1e30`, `1.5e-7`, `12340000000.0`."""
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0.0"
    digits, exponent = _shortest(abs(value))
    point = len(digits) + exponent  # where the decimal point goes
    if 0 <= exponent and point <= 21:
        text = digits + "0" * exponent + ".0"
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    elif len(digits) == 1:
        text = f"{digits}e{point - 1}"
    else:
        text = f"{digits[0]}.{digits[1:]}e{point - 1}"
    return sign + text


def _shortest(value: float) -> tuple[str, int]:
    """The shortest digits that read back as `value`, and the power of ten of the last one."""
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    power = int(exponent or 0) - len(fraction)
    stripped = digits.rstrip("0")
    return stripped, power + len(digits) - len(stripped)


def from_json(body: dict) -> list[bytes]:
    """`{"context"?: {...}, "examples": [{feature: value | [values]}, ...]}` -> serialized examples,
    checked in TF Serving's order (the context first) and with its messages, which quote the whole
    request and say "classify" for Regress too."""
    context = _example(body["context"]).SerializeToString() if "context" in body else b""
    examples = body.get("examples")
    if "examples" not in body:
        raise invalid(f"JSON Value: {debug(body)} When method is classify, key 'examples' is expected and was not "
                      "found")
    if not isinstance(examples, list):
        raise invalid(f"JSON Value: {debug(body)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise invalid(f"JSON Value: {debug(body)} 'examples' value is an empty array")
    return [context + _example(example).SerializeToString() for example in examples]


def _example(obj):
    if not isinstance(obj, dict):
        raise invalid(f"Example must be JSON object but got JSON {json_type(obj)}")
    example = tfproto.message_class("Example")()  # tf.Example's wire format, without TensorFlow
    for name, value in obj.items():
        _fill_feature(example.features.feature[name], name, value if isinstance(value, list) else [value])
    return example


def _fill_feature(feature, name: str, values: list) -> None:
    """Each JSON token picks a kind: fraction/exponent -> float, integer/bool -> int64, string or
    {"b64": ...} -> bytes; a feature must not mix kinds."""
    kinds = [_kind(name, value) for value in values]
    for kind in kinds:
        if kind != kinds[0]:
            raise invalid(f"Unexpected element type in feature: {name} expecting type: {kinds[0]}")
    if not kinds:
        return
    target = {"float": feature.float_list, "int64": feature.int64_list, "bytes": feature.bytes_list}[kinds[0]]
    target.value.extend(_decode(value) for value in values)


def _kind(name: str, value) -> str:
    if isinstance(value, float):
        return "float"
    if isinstance(value, int):  # bools too: true/false -> 1/0
        if value > _INT64_MAX:
            raise invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        return "int64"
    if isinstance(value, str) or (isinstance(value, dict) and list(value) == ["b64"]):
        return "bytes"
    raise invalid(f"Feature: {name} has element with unexpected JSON type: {json_type(value)}")


def _decode(value):
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError):
            raise invalid("Unable to base64 decode") from None
    return int(value) if isinstance(value, bool) else value
