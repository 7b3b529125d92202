"""The contract every TensorFlow source implements, and the helpers they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from tfsconvert import tfproto
from tfsconvert.model import Signature, TensorSpec
from tfsconvert.samples import ValueMaker


class TfSource(ABC):
    """A loaded TensorFlow model: resolve its signature, run it, write it as a SavedModel."""

    kind: str  # the inspect format name: frozen-graph, keras, tf1-checkpoint, savedmodel

    def __init__(self, path: Path) -> None:
        self.path = path
        self.notes: list[str] = []  # what the conversion changed besides names, for the summary

    @abstractmethod
    def resolve(self, inputs: dict[str, str], outputs: dict[str, str]) -> Signature:
        """Choose the signature from `--input/--output ALIAS=NAME` maps (empty: derive them)."""

    @abstractmethod
    def source_names(self) -> dict[str, str]:
        """Alias -> the tensor/layer/old-alias name a `--input/--output` flag would use."""

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the source model in-process on inputs keyed by alias; outputs keyed by alias."""

    def close(self) -> None:
        """Release the TensorFlow session, if any."""

    def value_makers(self) -> dict[str, ValueMaker]:
        """Sample makers for inputs whose meaning the source knows (by alias; see samples.synthesize)."""
        return {}

    def kept_signatures(self, signature_name: str) -> dict[str, Signature]:
        """Signatures of the source written as they are next to the converted one (key -> Signature)."""
        return {}

    def kept_makers(self, key: str) -> dict[str, ValueMaker]:
        """Sample makers for the inputs of the kept signature `key`."""
        return {}

    def run_kept(self, key: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the kept signature `key` of the source in-process."""
        raise KeyError(key)

    @abstractmethod
    def write_savedmodel(self, dest: Path, signature_name: str) -> None:
        """Write a SavedModel (tags {serve}) into the empty dir `dest`: the converted signature as
        `signature_name`, and the kept ones."""

    def onnx_input(self, scratch: Path, signature_name: str) -> tuple[Path, str, dict[str, str] | None]:
        """What tf2onnx converts: a SavedModel dir, its signature key, ONNX names (None: the aliases)."""
        saved = scratch / "savedmodel"
        self.write_savedmodel(saved, signature_name)
        return saved, signature_name, None


def spec_of(tensor) -> TensorSpec:
    """TensorSpec of a graph tensor: TF enum dtype name, -1 for unknown dims, None for unknown rank."""
    shape = tensor.shape
    dims = None if shape.rank is None else [-1 if d is None else int(d) for d in shape.as_list()]
    return TensorSpec(dtype=tfproto.dtype_name(tensor.dtype.as_datatype_enum), shape=dims, name=tensor.name)
