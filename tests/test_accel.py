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


REST_FRONT_END = ["tests/server/test_server_rest.py", "tests/server/test_rest_lanes.py",
                  "tests/server/test_rest_hardening.py", "tests/server/test_rest_limits.py",
                  "tests/server/test_rest_json_fast.py", "tests/server/test_tf_serving_cases.py"]


def test_every_rest_front_end_test_runs_on_both_paths():
    """Each REST front-end test is collected twice, once per path: its id with `c` and with `pure`."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           *REST_FRONT_END], capture_output=True, text=True, timeout=300, cwd=REPO)
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    assert proc.returncode == 0 and len(ids) > 1000, proc.stdout[-2000:]
    variants = {}
    for test_id in ids:
        name, _, params = test_id.partition("[")
        parts = params.rstrip("]").split("-")
        path = "pure" if "pure" in parts else "c" if "c" in parts else None
        assert path is not None, f"{test_id} is not run on both paths"
        variants.setdefault((name, "-".join(part for part in parts if part != path)), set()).add(path)
    assert all(found == {"c", "pure"} for found in variants.values())
    assert {path.split("::")[0] for path in ids} == set(REST_FRONT_END)
