"""TF Serving base path reader: which children are versions, which one is served (docs/tf-serving.md §1)."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from tfsconvert.errors import InputError
from tfsconvert.findings import finding
from tfsconvert.inspect.detect import holds_model
from tfsconvert.inspect.savedmodel import NO_BUNDLE, NO_VERSIONS, read_savedmodel
from tfsconvert.layout import TEMP_PREFIX, Child, scan_children, versions_by_number
from tfsconvert.model import Finding, ModelDescription, VersionInfo


def describe(base: Path, name: str | None = None) -> ModelDescription:
    """Every version TF Serving would see under `base`, the children it ignores, and why.

    `name` is the servable name quoted in TF Serving's messages (default: the base dir's name).
    """
    children = scan_children(base)
    grouped = versions_by_number(children)
    desc = ModelDescription(path=str(base), format="savedmodel-base-path")
    kinds = set()
    for number in sorted(grouped, reverse=True):
        *ignored, loaded = grouped[number]  # the last in sorted order wins (docs/tf-serving.md §1.3)
        if ignored:
            desc.diagnostics.append(_duplicate(base, number, loaded, ignored))
        if loaded.name != str(number) or number <= 0:
            desc.diagnostics.append(_odd_number(base, loaded))
        info, findings, kind = read_version(loaded.path, number)
        kinds.add(kind)
        desc.versions.append(info)
        desc.diagnostics += findings
    if desc.versions:
        desc.versions[0].details["served_by_default"] = True  # default policy: latest, 1 version
    next_free = max([n for n in grouped if n > 0], default=0) + 1
    for child in (c for c in children if c.version is None):
        reason, looks_like_version = _why_not_a_version(child)
        desc.ignored.append({"name": child.name, "reason": reason})
        if looks_like_version:
            desc.diagnostics.append(finding(
                "bad-version-name",
                f"{child.path} holds a model but '{child.name}' is not a version number; TF Serving ignores it",
                f"mv {child.path} {base / str(next_free)}", child.path))
            next_free += 1
    if not desc.versions:
        desc.diagnostics.insert(0, _no_versions(base, name or base.name))
    if len(kinds) == 1 and kinds != {"savedmodel"}:
        desc.format = f"{kinds.pop()}-base-path"
    return desc


def read_version(path: Path, number: int) -> tuple[VersionInfo, list[Finding], str]:
    """Describe one version directory whatever it holds: SavedModel, model.onnx or model.pmml."""
    if not path.is_dir():
        return VersionInfo(number, str(path)), [finding(
            "not-a-savedmodel",
            f"{path} is a regular file; TF Serving counts it as version {number} and its load fails",
            f"rm {path}  (or move it out of the base path)", path, tf_serving=NO_BUNDLE.format(dir=path))], "savedmodel"
    kind = version_format(path)
    if kind in _FILE_FORMATS:
        filename, module = _FILE_FORMATS[kind]
        return _describe_file(path / filename, number, module) + (kind,)
    return read_savedmodel(path, number) + ("savedmodel",)


# Version formats other than SavedModel: the model file and its inspect reader module.
_FILE_FORMATS = {"onnx": ("model.onnx", "onnx_model"), "pmml": ("model.pmml", "pmml")}


def version_format(path: Path) -> str:
    """What a version directory holds: `onnx` (model.onnx), `pmml` (model.pmml), else `savedmodel`."""
    return next((kind for kind, (filename, _) in _FILE_FORMATS.items() if (path / filename).is_file()), "savedmodel")


def _describe_file(model_file: Path, number: int, module: str) -> tuple[VersionInfo, list[Finding]]:
    try:
        desc = import_module(f"tfsconvert.inspect.{module}").describe(model_file)
    except InputError as error:
        return VersionInfo(number, str(model_file.parent)), [
            finding("corrupt-model-file", error.message, error.hint, model_file)]
    info = desc.versions[0]
    info.version, info.path = number, str(model_file.parent)
    return info, desc.diagnostics


def _duplicate(base: Path, number: int, loaded: Child, ignored: list[Child]) -> Finding:
    names = ", ".join(c.name for c in ignored)
    log = (f"Duplicate version directories detected. Version {number} will be loaded from {loaded.name}, "
           f"{names} will be ignored.")
    return finding(
        "duplicate-version", f"{base} has several directories for version {number}; TF Serving: `{log}`",
        " && ".join(f"rm -r {c.path}" for c in ignored) + "  (or renumber them: one directory per version)",
        base, tf_serving=log)


def _odd_number(base: Path, child: Child) -> Finding:
    if child.version <= 0:
        effect = (f"TF Serving loads it as version {child.version}, but REST URLs (/versions/\\d+) cannot "
                  f"address it and tfsconvert only writes positive versions")
    else:
        effect = f"TF Serving reads it as version {child.version}; clients and tools will look for '{child.version}'"
    return finding(
        "bad-version-name", f"'{child.name}' in {base} is not a plain positive version number: {effect}",
        f"mv '{child.path}' {base / str(abs(child.version) or 1)}", child.path)


def _why_not_a_version(child: Child) -> tuple[str, bool]:
    """Why TF Serving skips a child, and whether it looks like a misnamed version."""
    if child.name.startswith(TEMP_PREFIX):
        return "an unfinished tfsconvert publish (a killed run); removed by the next publish", False
    if not child.path.is_dir():
        return "a file whose name is not an integer", False
    if holds_model(child.path):
        return "holds a model, but TF Serving only reads integer names", True
    return "not an integer name", False


def _no_versions(base: Path, name: str) -> Finding:
    return finding(
        "no-version-directory",
        f"no numeric version directory under {base}; TF Serving logs `No versions of servable <name> found "
        f"under base path {base}. Did you forget to name your leaf directory as a number (eg. '/1/')?` "
        f"and never becomes ready",
        f"put the model in {base}/1/: tfsconvert saved-model MODEL --base-path {base} --version 1", base,
        tf_serving=NO_VERSIONS.format(name=name, base=base))
