"""TFRecord framing without TensorFlow, so warmup files can be written and checked statically.

Each record is: uint64 little-endian length, uint32 masked CRC32C of those 8 bytes, the data,
uint32 masked CRC32C of the data. Read errors use the wording of TensorFlow's
`record_reader.cc`, which TF Serving reports for a bad warmup file (docs/tf-serving.md §2.6).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterable, Iterator

_CASTAGNOLI = 0x82F63B78  # CRC32C polynomial, reflected
_MASK_DELTA = 0xA282EAD8
_HEADER = 12  # length (8) + its CRC (4)
_FOOTER = 4


class TFRecordError(ValueError):
    """A file that is not valid TFRecord data; `offset` is where TensorFlow would report it."""

    def __init__(self, problem: str, offset: int) -> None:
        # TensorFlow adds this reminder at offset 0: TFRecord files have no magic number.
        suffix = " (Is this even a TFRecord file?)" if offset == 0 and problem == "corrupted record" else ""
        super().__init__(f"{problem} at {offset}{suffix}")
        self.problem, self.offset = problem, offset


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CASTAGNOLI if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli) of `data`; pure Python, fine for warmup-sized files."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """The masked CRC TFRecord stores (masking keeps CRCs of CRCs from being trivial)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def write_records(path: Path, records: Iterable[bytes]) -> int:
    """Write `records` as a TFRecord file; returns how many were written."""
    count = 0
    with open(path, "wb") as out:
        for record in records:
            length = struct.pack("<Q", len(record))
            out.write(length + struct.pack("<I", masked_crc(length)))
            out.write(record + struct.pack("<I", masked_crc(record)))
            count += 1
    return count


def read_records(path: Path) -> Iterator[bytes]:
    """Yield the records of a TFRecord file, accepting and rejecting what TensorFlow 2.21 does.

    A bad CRC is a `corrupted record` at the start of the checksummed part (the record, or
    its data 12 bytes in); data cut short is a `truncated record` at the record's start.
    Fewer than 12 bytes after the last record read as end of file, as in TensorFlow.
    """
    yield from records_in(Path(path).read_bytes())


def records_in(data: bytes) -> Iterator[bytes]:
    """The records of TFRecord bytes, checked as read_records checks a file (offsets into `data`)."""
    offset = 0
    while len(data) - offset >= _HEADER:
        length = struct.unpack("<Q", _checksummed(data, offset, 8))[0]
        start = offset + _HEADER
        if start + length + _FOOTER > len(data):
            raise TFRecordError("truncated record", offset)
        yield _checksummed(data, start, length)
        offset = start + length + _FOOTER


def _checksummed(data: bytes, start: int, size: int) -> bytes:
    """`size` bytes at `start`, checked against the masked CRC that follows them."""
    end = start + size
    body = data[start:end]
    if struct.unpack("<I", data[end:end + _FOOTER])[0] != masked_crc(body):
        raise TFRecordError("corrupted record", start)
    return body
