"""`--help`, inspect of SavedModel/GraphDef/ONNX/PMML and converter usage errors must not import
TensorFlow, nor `onnx` (docs/architecture.md "Conventions"): they answer in a fraction of a second."""

import os
import subprocess
import sys

import pytest

from conftest import REPO

HEAVY = ("tensorflow", "keras", "pyspark", "sklearn", "onnxruntime", "onnx", "torch")  # onnx: tfsconvert.onnxproto reads

PROBE = """
import sys
from typer.testing import CliRunner
from tfsconvert.cli import app
expected = int(sys.argv[1])
result = CliRunner().invoke(app, sys.argv[2:])
assert result.exit_code == expected, (result.exit_code, result.output)
print(",".join(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def heavy_modules_after(*args: str, exit_code: int = 0, heavy: tuple[str, ...] = HEAVY) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=heavy), str(exit_code), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("command", [[], ["saved-model"], ["onnx"], ["pmml"], ["validate"], ["serve"]])
def test_help_imports_nothing_heavy(command):
    assert heavy_modules_after(*command, "--help") == ""


@pytest.mark.parametrize("flags", [["--version", "0"], ["--output", "bad"], ["--input", "=x"]])
def test_converter_usage_errors_are_found_before_tensorflow_loads(fixture_path, flags, tmp_path):
    assert heavy_modules_after("saved-model", fixture_path("frozen_mlp_pb"), "--base-path", tmp_path, *flags,
                               exit_code=2) == ""


@pytest.mark.parametrize("command", ["pmml", "onnx"])
def test_sklearn_conversion_usage_errors_are_found_before_sklearn_loads(fixture_path, command, tmp_path):
    assert heavy_modules_after(command, fixture_path("sklearn_pipeline"), "--base-path", tmp_path, "--version", "v2",
                               exit_code=2) == ""


@pytest.mark.parametrize("name", ["savedmodel_base", "broken_savedmodel_in_base", "frozen_mlp_pb",
                                  "frozen_mlp_pbtxt", "tf1_checkpoint", "onnx_model", "pmml_model"])
def test_inspect_imports_nothing_heavy(fixture_path, name):
    """numpy too: its import alone is a third of inspect's 0.3 s budget."""
    assert heavy_modules_after("inspect", fixture_path(name), "--json", heavy=(*HEAVY, "numpy")) == ""


def test_serving_config_imports_nothing_heavy(fixture_path, tmp_path):
    assert heavy_modules_after("serving-config", fixture_path("savedmodel_base"), "--out", tmp_path / "serving",
                               "--json") == ""


@pytest.mark.parametrize("name, exit_code", [("savedmodel_base", 0), ("broken_nonnumeric_versions", 1),
                                             ("frozen_mlp_pb", 1), ("validate_model_configs", 0)])
def test_static_validation_imports_nothing_heavy(fixture_path, name, exit_code):
    assert heavy_modules_after("validate", fixture_path(name), "--static-only", "--json",
                               exit_code=exit_code) == ""


@pytest.mark.slow  # starts a sandboxed server (which imports TensorFlow in its own process)
def test_validation_over_rest_and_grpc_imports_nothing_heavy_in_the_validator(fixture_path):
    assert heavy_modules_after("validate", fixture_path("savedmodel_base"), "--json") == ""


def test_the_python_api_imports_nothing_heavy_until_used(fixture_path):
    """`import tfsconvert` and a look at its API functions load nothing; inspect of a SavedModel neither."""
    code = ("import sys, tfsconvert\n"
            "assert callable(tfsconvert.saved_model) and callable(tfsconvert.pmml) and callable(tfsconvert.onnx)\n"
            f"assert tfsconvert.inspect({str(fixture_path('savedmodel_base'))!r}).versions\n"
            "assert callable(tfsconvert.validate)\n"
            f"print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_help_leaves_the_rendering_unloaded():
    """`tfsconvert --help` starts fast (docs/benchmarks.md): rich and the renderer load when a command runs."""
    code = ("import runpy, sys\n"
            "sys.argv = ['tfsconvert', '--help']\n"
            "try:\n    runpy.run_module('tfsconvert', run_name='__main__')\n"
            "except SystemExit as done:\n    assert done.code in (0, None)\n"
            "print(','.join(sorted(m for m in ('rich', 'tfsconvert.output', 'tfsconvert.model') if m in sys.modules)),"
            " file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0 and "Usage:" in proc.stdout, proc.stderr
    assert proc.stderr.strip() == ""
