"""`--help`, and inspect of SavedModel/GraphDef/ONNX/PMML, must not import TensorFlow (DESIGN.md §3)."""

import os
import subprocess
import sys

import pytest

from conftest import REPO

HEAVY = ("tensorflow", "keras", "pyspark", "sklearn", "onnxruntime", "torch")

PROBE = """
import sys
from typer.testing import CliRunner
from tfsconvert.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
assert result.exit_code == 0, (result.exit_code, result.output)
print(",".join(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def heavy_modules_after(*args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_help_imports_nothing_heavy():
    assert heavy_modules_after("--help") == ""


@pytest.mark.parametrize("name", ["savedmodel_base", "broken_savedmodel_in_base", "frozen_mlp_pb",
                                  "frozen_mlp_pbtxt", "tf1_checkpoint", "onnx_model", "pmml_model"])
def test_inspect_imports_nothing_heavy(fixture_path, name):
    assert heavy_modules_after("inspect", fixture_path(name), "--json") == ""
