"""One poll of a model's base path, as FileSystemStoragePathSource does it (docs/tf-serving.md §1.2-§1.5)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tfsconvert.server import logs
from tfsconvert.server.config import ModelConfig
from tfsconvert.server.status import ServingError, invalid

_WHERE = "sources/storage_path/file_system_storage_path_source.cc"
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
# absl::SimpleAtoi, base 10: optional ASCII whitespace around an optionally signed run of digits (docs/tf-serving.md §1.3).
_ATOI = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)[ \t\n\v\f\r]*")


def parse_version(name: str) -> int | None:
    """The version a child name stands for, or None if TF Serving ignores it (`1.0`, `v1`, `0x10`)."""
    match = _ATOI.fullmatch(name)
    if match is None:
        return None
    value = int(match.group(1))
    return value if _INT64[0] <= value <= _INT64[1] else None


def aspired_versions(model: ModelConfig) -> dict[int, Path]:
    """version -> directory that the model's version policy aspires to now (maybe empty).

    ServingError (after the ERROR log TF Serving writes) if the base path cannot be listed.
    """
    base = Path(model.base_path)
    policy = model.policy
    try:
        if not base.exists():
            raise invalid(f"Could not find base path {base} for servable {model.name} with error "
                          f"NOT_FOUND: {base} not found")
        children = sorted(os.listdir(base), key=os.fsencode)  # byte order, like std::set<string>
    except OSError as error:
        raise ServingError("FAILED_PRECONDITION", f"{base}; {error.strerror}") from None
    except ServingError as error:
        logs.error(_WHERE + ":353", f"FileSystemStoragePathSource encountered a filesystem access error: "
                   f"{error.message}")
        raise
    by_version: dict[int, str] = {}
    for child in children:
        version = parse_version(child)
        if version is None:
            continue
        if version in by_version and policy.kind != "all":
            logs.warning(_WHERE + ":162", f"Duplicate version directories detected. Version {version} will be "
                         f"loaded from {child}, {by_version[version]} will be ignored.")
        by_version[version] = child
    chosen = _apply_policy(model, sorted(by_version, reverse=True))
    if not chosen:
        logs.warning(_WHERE + ":276", f"No versions of servable {model.name} found under base path {base}. "
                     "Did you forget to name your leaf directory as a number (eg. '/1/')?")
    return {version: base / by_version[version] for version in chosen}


def _apply_policy(model: ModelConfig, versions: list[int]) -> list[int]:
    policy = model.policy
    if policy.kind == "all":
        return versions
    if policy.kind == "latest":
        return versions[:policy.num_versions]
    if not policy.versions:
        logs.warning(_WHERE + ":214", f"No specific versions requested for servable {model.name}.")
    for version in policy.versions:
        if version not in versions:
            logs.warning(_WHERE + ":233", f"Version {version} of servable {model.name}, which was requested to be "
                         "served as a 'specific' version in the servable's version policy, was not found in the "
                         "file system")
    return [version for version in versions if version in policy.versions]
