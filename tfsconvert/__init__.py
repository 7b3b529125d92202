"""tfsconvert: get models into TensorFlow Serving without the classic deployment failures.

The Python API (docs/api.md): `saved_model`, `onnx`, `pmml`, `inspect` and `validate`, loaded on first
use so that `import tfsconvert` stays light.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "inspect", "onnx", "pmml", "saved_model", "validate"]
_API = frozenset(__all__) - {"__version__"}

if TYPE_CHECKING:
    from tfsconvert.api import inspect, onnx, pmml, saved_model, validate


def __getattr__(name: str) -> Any:
    if name in _API:
        from tfsconvert import api

        return getattr(api, name)
    raise AttributeError(f"module 'tfsconvert' has no attribute {name!r}")


class _Package(types.ModuleType):
    """`tfsconvert.inspect` and `tfsconvert.validate` stay the API's functions once the subpackages of
    the same names are imported (the import system would set them as attributes here)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return  # still importable by name (sys.modules); the attribute is the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
