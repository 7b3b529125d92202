"""A binary GraphDef's bytes (alone, or in a MetaGraphDef or SavedModel) without its large tensor values, read from
the file without loading it.

Frozen graphs keep their weights in Const nodes (`attr { key: "value" value { tensor {
tensor_content: ... } } }`); inspect never looks at those values. This walks the protobuf wire
format over a read-only mmap: every field up to LIMIT bytes is copied as written; a larger node, function,
attr entry or attr value is walked the same way, and a large TensorProto keeps only its dtype,
shape and version (the values are skipped, never read). Parsing the result gives the full parse
minus those values, at the memory cost of the graph's structure instead of its weights.

Anything the walk does not expect (groups, a length past its parent, a truncated file) returns
the whole file instead, so the real parser decides, with its own error.
"""

from __future__ import annotations

import mmap
from pathlib import Path

LIMIT = 4096  # fields up to this size are copied whole

# Per message: the fields walked when larger than LIMIT (rule of their own message), or dropped (None).
_TENSOR: dict = {number: None for number in range(4, 20)}  # TensorProto: all but dtype, shape, version
_ATTR_VALUE = {8: _TENSOR}  # AttrValue.tensor
_NODE = {5: {2: _ATTR_VALUE}}  # NodeDef.attr map entry -> its value
GRAPH_DEF = {1: _NODE, 2: {1: {3: _NODE}}}  # GraphDef.node, GraphDef.library.function[].node_def
META_GRAPH = {2: GRAPH_DEF}  # MetaGraphDef.graph_def (a checkpoint's .meta)
SAVED_MODEL = {2: META_GRAPH}  # SavedModel.meta_graphs[]


class _Irregular(Exception):
    """The bytes are not a plain wire-format message: leave them to the real parser."""


def read(path: Path, rule: dict = GRAPH_DEF) -> bytes:
    """The bytes of `path` with tensor values over LIMIT bytes dropped (the file as is if irregular).

    `rule`: GRAPH_DEF for a frozen graph, META_GRAPH for a checkpoint's .meta, SAVED_MODEL for a
    saved_model.pb.
    """
    with path.open("rb") as f:
        if f.seek(0, 2) == 0:
            return b""
        # Only the pages holding what is copied are read; skipped values are never touched.
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            try:
                return bytes(_Walk(mapped).message(len(mapped), rule))
            except _Irregular:
                return mapped[:]


class _Walk:
    """A position in the mapped file and the wire-format steps from it."""

    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.pos = data, 0

    def message(self, end: int, rule: dict) -> bytearray:
        """The fields from the position to `end`, large ones walked or dropped per `rule`."""
        out = bytearray()
        while self.pos < end:
            start = self.pos
            key = self.varint()
            key_end = self.pos
            number, wire = key >> 3, key & 7
            if wire == 0:
                self.varint()
            elif wire == 2:
                length = self.varint()
                value = self.pos
                self.pos += length
            elif wire in (1, 5):
                self.pos += 8 if wire == 1 else 4
            else:  # groups (deprecated) and invalid wire types
                raise _Irregular
            if self.pos > end:
                raise _Irregular
            if number in rule and rule[number] is None:
                continue
            if wire == 2 and length > LIMIT and number in rule:
                self.pos = value
                inner = self.message(value + length, rule[number])
                out += self.data[start:key_end] + _encode_varint(len(inner)) + inner
            else:
                out += self.data[start:self.pos]
        return out

    def varint(self) -> int:
        """A base-128 varint read at the position."""
        value = shift = 0
        while True:
            if self.pos >= len(self.data) or shift > 63:
                raise _Irregular
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
