"""The C accelerators and their pure-Python twins: `load("tfsconvert.server", "_http")` is the C module
when it is built and `TFSCONVERT_PURE_PYTHON` is not set (to anything but "" or "0"), else
`tfsconvert.server._http_py`, which has the same interface and behaviour (docs/serve.md "C
accelerators and the pure-Python path")."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

ENV = "TFSCONVERT_PURE_PYTHON"


def pure_python() -> bool:
    """True if the user asked for the pure-Python path."""
    return os.environ.get(ENV, "") not in ("", "0")


def load(package: str, name: str) -> ModuleType:
    """The C module `package.name`, or its twin `package.name_py` if asked for or not built."""
    if not pure_python():
        try:
            return importlib.import_module(f"{package}.{name}")
        except ImportError:  # not built: no compiler, or a platform the C code does not serve (no epoll)
            pass
    return importlib.import_module(f"{package}.{name}_py")


def is_c(module: ModuleType) -> bool:
    return not module.__name__.endswith("_py")
