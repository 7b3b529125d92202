"""Serialized tf.Examples for Classify/Regress, from gRPC `Input` protos or REST JSON (spec §4.7, §5.2)."""

from __future__ import annotations

import base64
import binascii
import json

from tfsconvert import tfproto
from tfsconvert.validate.server.status import invalid

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


def debug(value) -> str:
    """A JSON value as TF Serving quotes it in messages (compact, cut at 256 bytes)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)[:256]


def from_json(body: dict, method: str) -> list[bytes]:
    """`{"context"?: {...}, "examples": [{feature: value | [values]}, ...]}` -> serialized examples."""
    examples = body.get("examples")
    if "examples" not in body:
        raise invalid(f"JSON Value: {debug(body)} When method is {method}, key 'examples' is expected and was "
                      "not found")
    if not isinstance(examples, list):
        raise invalid(f"JSON Value: {debug(examples)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise invalid(f"JSON Value: {debug(examples)} 'examples' value is an empty array")
    context = _example(body["context"]).SerializeToString() if "context" in body else b""
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
