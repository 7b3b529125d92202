"""Decide what a path is from names and a few magic bytes (nothing heavy is imported)."""

from __future__ import annotations

import stat
from pathlib import Path

from tfsconvert.errors import InputError, special_kind
from tfsconvert.layout import TEMP_PREFIX, parse_version

SAVEDMODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
# Files that make a directory a model a version directory could hold.
VERSION_CONTENT = (*SAVEDMODEL_FILES, "model.onnx", "model.pmml", "export.meta")

EXPECTED = ("a TF Serving base path (<base>/<N>/...), a SavedModel dir, a frozen .pb/.pbtxt, .keras/.h5, "
            "a TF1 checkpoint, .onnx, .pmml, a scikit-learn pickle/joblib, an XGBoost .json/.ubj or LightGBM .txt "
            "model file or a Spark PipelineModel dir")

_SUFFIX_FORMATS = {
    ".pbtxt": "frozen-graph",
    ".meta": "tf1-checkpoint",
    ".index": "tf1-checkpoint",
    ".keras": "keras",
    ".h5": "keras",
    ".hdf5": "keras",
    ".onnx": "onnx",
    ".pmml": "pmml",
    ".xml": "pmml",
    ".pkl": "sklearn",
    ".pickle": "sklearn",
    ".joblib": "sklearn",
}

_MAGIC_FORMATS = (
    (b"PK\x03\x04", "keras"),  # .keras zip archive
    (b"\x89HDF\r\n\x1a\n", "keras"),
    (b"\x80", "sklearn"),  # pickle protocol 2+
    (b"<", "pmml"),
)


def checkpoint_prefix_exists(path: Path) -> bool:
    """True when `path` is a TF1 checkpoint prefix (`model.ckpt` next to `model.ckpt.index`)."""
    return any(path.with_name(path.name + ext).is_file() for ext in (".index", ".meta"))


def detect(path: Path) -> str:
    """The inspect format of `path` (a key of tfsconvert.inspect._READERS); InputError if none."""
    if not path.exists():
        if checkpoint_prefix_exists(path):
            return "tf1-checkpoint"
        raise InputError("path-not-found", f"{path}: no such file or directory",
                         f"check the path; inspect expects {EXPECTED}")
    mode = path.stat().st_mode
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):  # a FIFO would block the read, a device never end
        raise InputError("unsupported-format", f"{path} is a {special_kind(mode)}, not a model file or directory",
                         f"give the model file itself (copy it to a regular file first); expected {EXPECTED}")
    return _detect_dir(path) if path.is_dir() else _detect_file(path)


def holds_model(directory: Path) -> bool:
    return any((directory / name).exists() for name in VERSION_CONTENT)


def _detect_dir(path: Path) -> str:
    if any((path / name).is_file() for name in SAVEDMODEL_FILES):
        return "savedmodel"
    if (path / "metadata").is_dir():
        return "spark-pipeline"
    if (path / "checkpoint").is_file() or any(path.glob("*.meta")):
        return "tf1-checkpoint"
    children = list(path.iterdir())
    if not children:
        raise InputError(
            "empty-directory", f"{path} is an empty directory, not a model",
            f"a TF Serving base path needs a numbered version inside: "
            f"tfsconvert saved-model MODEL --base-path {path} --version 1")
    if any(parse_version(c.name) is not None or c.name.startswith(TEMP_PREFIX) or (c.is_dir() and holds_model(c))
           for c in children):
        return "base-path"
    raise InputError("unsupported-format", f"{path} holds no model I recognise",
                     f"inspect expects {EXPECTED}")


def _detect_file(path: Path) -> str:
    if path.name in SAVEDMODEL_FILES:
        return "savedmodel"
    if path.suffix == ".pb":
        return _sniff_pb(path)
    if path.suffix in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[path.suffix]
    if ".data-" in path.name:
        return "tf1-checkpoint"
    from tfsconvert.inspect.boosters import native_kind

    if native_kind(path):  # XGBoost/LightGBM model files: read as their scikit-learn estimators
        return "sklearn"
    head = path.read_bytes()[:8] if path.stat().st_size else b""
    for magic, fmt in _MAGIC_FORMATS:
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(magic):
            return fmt
    raise InputError("unsupported-format", f"{path}: unrecognised file type", f"inspect expects {EXPECTED}")


def _sniff_pb(path: Path) -> str:
    """SavedModel starts with field 1 (varint) or 2; a GraphDef with field 1 (nodes, length-delimited)."""
    with path.open("rb") as f:
        first = f.read(1)
    return "savedmodel" if first in (b"\x08", b"\x12") else "frozen-graph"
