"""The C accelerators are optional: where they cannot be imported (not built) or TFSCONVERT_PURE_PYTHON=1
is set, the pure-Python twins are used (tfsconvert/accel.py); the REST tests run on both paths."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO

PROBE = """
import importlib.abc, sys
C_MODULES = ("tfsconvert.server._http", "tfsconvert.server._rest_json", "tfsconvert.serving._loadgen")

class NotBuilt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in C_MODULES:
            raise ImportError(f"No module named {name!r}")  # as on a machine without a compiler

if sys.argv[1] == "not-built":
    sys.meta_path.insert(0, NotBuilt())
from tfsconvert import accel
from tfsconvert.server import http_server, rest_json
modules = [http_server._http, rest_json._rest_json, accel.load("tfsconvert.serving", "_loadgen")]
print(" ".join(module.__name__.rsplit(".", 1)[1] for module in modules))
"""


@pytest.mark.parametrize("case, env, expected", [
    ("built", {}, "_http _rest_json _loadgen"),
    ("built", {"TFSCONVERT_PURE_PYTHON": "0"}, "_http _rest_json _loadgen"),
    ("built", {"TFSCONVERT_PURE_PYTHON": "1"}, "_http_py _rest_json_py _loadgen_py"),
    ("not-built", {}, "_http_py _rest_json_py _loadgen_py"),
])
def test_the_c_modules_or_their_twins(case, env, expected):
    if "_http " in expected:
        pytest.importorskip("tfsconvert.server._http", reason="the C modules are not built here")
    environment = {key: value for key, value in os.environ.items() if key != "TFSCONVERT_PURE_PYTHON"}
    proc = subprocess.run([sys.executable, "-c", PROBE, case], capture_output=True, text=True, timeout=120,
                          env={**environment, **env, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == expected.split()
