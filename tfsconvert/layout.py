"""TF Serving version directories: which names count as versions (spec §1.3)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

INT64_MAX = 2**63 - 1
_ASCII_SPACE = " \t\n\v\f\r"


def parse_version(name: str) -> int | None:
    """Parse a child name the way TF Serving does (`absl::SimpleAtoi` into int64), else None.

    Surrounding ASCII whitespace, one sign and leading zeros are accepted; anything else
    (`1.0`, `v1`, `0x10`, `1e3`) is not a version (spec §1.3).
    """
    text = name.strip(_ASCII_SPACE)
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    value = int(text)
    return value if -INT64_MAX - 1 <= value <= INT64_MAX else None


def is_canonical_version(name: str) -> bool:
    """A positive integer in plain decimal: the only form we ever write (DESIGN.md §4.3)."""
    value = parse_version(name)
    return value is not None and value > 0 and name == str(value)


@dataclass
class Child:
    """One entry of a base path, with the version TF Serving would read from its name."""

    name: str
    path: Path
    version: int | None


def scan_children(base: Path) -> list[Child]:
    """Children of a base path in TF Serving's order (byte-lexicographic), files included."""
    names = sorted(p.name for p in base.iterdir())
    names.sort(key=lambda n: n.encode())
    return [Child(n, base / n, parse_version(n)) for n in names]


def versions_by_number(children: list[Child]) -> dict[int, list[Child]]:
    """Group version children by number; the *last* of each group in sorted order is loaded."""
    grouped: dict[int, list[Child]] = {}
    for child in children:
        if child.version is not None:
            grouped.setdefault(child.version, []).append(child)
    return grouped
