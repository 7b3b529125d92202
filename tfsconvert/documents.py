"""The JSON documents tfsconvert writes (`--json`, `--json-file`, the API's `.to_dict()`): each result's
data after its schema version and tfsconvert's version."""

from __future__ import annotations

from tfsconvert import __version__

SCHEMA_VERSION = 1  # of every document; raised when a field changes meaning or goes away


def document(data: dict) -> dict:
    """`data` as a document: {"schema_version", "tfsconvert_version", **data}."""
    return {"schema_version": SCHEMA_VERSION, "tfsconvert_version": __version__, **data}
