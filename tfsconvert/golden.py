"""Golden requests (docs/architecture.md "Golden requests"): the golden.jsonl file format.

A golden line holds a REST `:predict` body and the response TF Serving would give, encoded
exactly as TF Serving encodes values (tfsconvert.rest_codec), so a user can replay it with curl. No
TensorFlow here: static validation reads golden files without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfsconvert.errors import InputError


@dataclass
class GoldenRecord:
    """One line of golden.jsonl: a REST request and the response the source model gave."""

    id: str
    signature_name: str
    request: dict
    response: dict
    rtol: float | None = None
    atol: float | None = None

    def to_json(self) -> dict:
        out = {"id": self.id, "model_spec": {"signature_name": self.signature_name},
               "request": self.request, "response": self.response}
        for key in ("rtol", "atol"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str) -> "GoldenRecord":
        """Parse one golden line; `where` (`path:line`) prefixes any InputError."""
        if not isinstance(obj, dict):
            raise _bad_golden(where, "a line must be a JSON object")
        for key, kind in (("id", str), ("model_spec", dict), ("request", dict), ("response", dict)):
            if not isinstance(obj.get(key), kind):
                raise _bad_golden(where, f"'{key}' must be a JSON {'string' if kind is str else 'object'}")
        signature_name = obj["model_spec"].get("signature_name")
        if not isinstance(signature_name, str):
            raise _bad_golden(where, "'model_spec.signature_name' must be a JSON string")
        tolerances = {key: _tolerance(obj, key, where) for key in ("rtol", "atol")}
        return cls(obj["id"], signature_name, obj["request"], obj["response"], **tolerances)


def _tolerance(obj: dict, key: str, where: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise _bad_golden(where, f"'{key}' must be a non-negative number")
    return float(value)


def _bad_golden(where: str, problem: str) -> InputError:
    return InputError("bad-golden-file", f"{where}: {problem}",
                      'fix or delete the line (format: docs/architecture.md "Golden requests"), '
                      "or re-record with tfsconvert")


def write_golden(path: Path, records: list[GoldenRecord]) -> None:
    """Write one compact JSON object per line (UTF-8; NaN/Infinity as TF Serving writes them)."""
    lines = (json.dumps(record.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n" for record in records)
    Path(path).write_text("".join(lines), encoding="utf-8")


def read_golden(path: Path) -> list[GoldenRecord]:
    """Read golden.jsonl; InputError `bad-golden-file` naming `path:line` for a bad line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("path-not-found", f"{path}: no such file", "check the path") from None
    except UnicodeDecodeError:
        raise _bad_golden(str(path), "not UTF-8 text") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as error:
            raise _bad_golden(where, f"not valid JSON: {error.msg} at column {error.colno}") from None
        records.append(GoldenRecord.from_json(obj, where))
    return records

