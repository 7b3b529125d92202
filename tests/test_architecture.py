"""The layers of docs/architecture.md, checked on every import of the package (function-level ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tfsconvert"

# Layer -> the layers it may import besides itself (the table in docs/architecture.md "Layers").
ALLOWED = {
    "core": set(),
    "runtimes": {"core"},
    "inspect": {"core"},
    "convert": {"core", "runtimes", "inspect"},
    "server": {"core", "runtimes", "inspect"},
    "validate": {"core", "runtimes", "inspect", "convert", "server"},
    "serving": {"core", "runtimes", "inspect", "server", "validate"},
    "parity": {"core", "runtimes", "inspect", "convert", "validate"},
    "cli": {"core", "runtimes", "inspect", "convert", "server", "validate", "serving", "parity"},
}
CLI_MODULES = {"cli", "__main__", "output", "api"}  # top-level modules of the cli layer; the others are core
REEXPORTS = {("tfsconvert", "tfsconvert.api")}  # the package root hands out the Python API, loaded on first use
# What opens a model for serving: a TF1 SavedModel session, an ONNX Runtime session, a PMML evaluator.
MODEL_OPENERS = ("saved_model.loader.load(", "saved_model.load(", "InferenceSession(", "make_evaluator(",
                 "from pypmml import", "_make_callable_from_options(")
# Parity's reference side: the source run by its own framework, independent of the converters and readers.
ORACLE = sorted((PACKAGE / "parity").glob("oracle*.py"))
ORACLE_OPENERS = ("saved_model.load(",)  # a SavedModel source, by TensorFlow's own loader


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    """Whether `tfsconvert.a.b` is a module or package of ours (a C extension counts by its source)."""
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file() or path.with_suffix(".c").is_file()


def layer(module: str) -> str:
    """`tfsconvert.server.backends.tf` -> server; `tfsconvert.golden` -> core; `tfsconvert.cli` -> cli."""
    parts = module.split(".")
    if len(parts) == 1:
        return "core"  # the package itself: __version__
    if (PACKAGE / parts[1] / "__init__.py").is_file():
        return parts[1]
    return "cli" if parts[1] in CLI_MODULES else "core"


def package(module: str) -> str:
    """What a private name is private to: a layer's package (`tfsconvert.server`), or one core module."""
    name = layer(module)
    return f"tfsconvert.{name}" if name not in ("core", "cli") else module


def imports(path: Path) -> list[tuple[str, str]]:
    """(imported module, imported name or '') for every tfsconvert import in the file, at any depth."""
    own = module_name(path)
    base = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                anchor = base.rsplit(".", node.level - 1)[0] if node.level > 1 else base
                module = f"{anchor}.{module}" if module else anchor
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.append((submodule, "") if is_module(submodule) else (module, alias.name))
    return [(module, name) for module, name in found if module.split(".")[0] == "tfsconvert"]


def edges() -> list[tuple[str, str, str]]:
    """(importer, imported module, imported name) over the whole package."""
    return [(module_name(path), module, name) for path in sorted(PACKAGE.rglob("*.py"))
            for module, name in imports(path)]


def layering_violations() -> list[str]:
    return [f"{importer} ({layer(importer)}) imports {module} ({layer(module)})"
            for importer, module, _ in edges()
            if layer(module) != layer(importer) and layer(module) not in ALLOWED[layer(importer)]
            and (importer, module) not in REEXPORTS]


def private_imports() -> set[tuple[str, str]]:
    """(importer, module.name) where a name or module starting with one underscore crosses packages."""
    found = set()
    for importer, module, name in edges():
        target = f"{module}.{name}" if name else module
        private = any(part.startswith("_") and not part.startswith("__") for part in target.split(".")[1:])
        if private and package(importer) != package(module):
            found.add((importer, target))
    return found


def test_every_module_is_in_a_layer_of_the_table():
    modules = {module_name(path) for path in PACKAGE.rglob("*.py")}
    assert {layer(module) for module in modules} == set(ALLOWED)


@pytest.mark.parametrize("rule", [("server", "validate"), ("server", "serving"), ("server", "convert"),
                                  ("server", "cli"), ("runtimes", "inspect"), ("runtimes", "server"),
                                  ("inspect", "runtimes"), ("validate", "serving"), ("convert", "server"),
                                  ("parity", "server"), ("validate", "parity"), ("serving", "parity")])
def test_forbidden_directions_stay_forbidden(rule):
    """The directions docs/architecture.md promises never to take (a guard on the table itself)."""
    importer, imported = rule
    assert imported not in ALLOWED[importer]


def test_only_runtimes_open_a_model_for_serving():
    """runtimes/{tf,onnx,pmml}.py own loading and running an artifact (the source side of a parity check
    is loaded by its own framework, never through these)."""
    openers = [f"{path.relative_to(PACKAGE.parent)}: {opener}" for path in sorted(PACKAGE.rglob("*.py"))
               if layer(module_name(path)) != "runtimes"
               for opener in MODEL_OPENERS if opener in path.read_text(encoding="utf-8")
               and not (path in ORACLE and opener in ORACLE_OPENERS)]
    assert openers == []


def test_the_parity_oracle_shares_no_code_with_the_converters():
    """The source side of `parity` imports nothing of convert/ or inspect/ (function-level imports too): a bug
    there would otherwise be on both sides of the comparison."""
    assert {path.name for path in ORACLE} >= {"oracle.py", "oracle_tf.py"}
    shared = [f"{module_name(path)} imports {module}" for path in ORACLE for module, _ in imports(path)
              if layer(module) in ("convert", "inspect")]
    assert shared == []


def test_imports_follow_the_layers():
    assert layering_violations() == []


def test_no_private_name_crosses_a_package():
    assert private_imports() == set()
