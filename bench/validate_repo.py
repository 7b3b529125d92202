"""Benchmark: `tfsconvert validate` of a model repository, one pass against the floor and against
one server process per version.

The repository: 40 small models, copies under different names of three converted fixtures (24
SavedModels of the frozen MLP, 10 ONNX and 6 PMML of the scikit-learn iris pipeline), each with its
golden requests. PMML versions are served with both engines (the default), so 46 servings.
Measured in the same run, each command a fresh process:
  - one pass: `tfsconvert validate REPO` (default --jobs: the CPU count);
  - one pass with `--jobs 1`;
  - per version: `tfsconvert validate REPO --server-per-version --jobs 1` (one server process per
    version and engine, one after another: how validate ran before);
  - the floor: one TensorFlow import, plus each version loaded in one process by the server's own
    loaders (tfsconvert.server.backends.load, PMML with both engines), plus the time the one-pass
    run's requests took (the sum of its golden results' seconds, REST and gRPC).
Targets: one pass within 2x the floor, and at least 5x faster than per version.

Usage: python bench/validate_repo.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import fixtures  # noqa: E402

COPIES = {"savedmodel": 24, "onnx": 10, "pmml": 6}
FLOOR_TARGET, PER_VERSION_TARGET = 2.0, 5.0

LOADS = """
import sys, time
started = time.monotonic()
import tensorflow
print(time.monotonic() - started)
from pathlib import Path
from tfsconvert.server import backends
started = time.monotonic()
for directory in sys.argv[1:]:
    for engine in (("jpmml", "pypmml") if (Path(directory) / "model.pmml").is_file() else ("jpmml",)):
        backends.load(Path(directory), ("serve",), (0, 0), engine).close()
print(time.monotonic() - started)
"""


def tfsconvert(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tfsconvert", *args], cwd=REPO, capture_output=True, text=True)


def build(root: Path) -> Path:
    """The repository of 40 models under root/models."""
    sources = {"savedmodel": ("saved-model", "frozen_mlp_pb", []),
               "onnx": ("onnx", "sklearn_pipeline", []),
               "pmml": ("pmml", "sklearn_pipeline", ["--target-name", "species"])}
    models = root / "models"
    for fmt, (command, fixture, flags) in sources.items():
        base = root / "sources" / fmt
        done = tfsconvert(command, str(fixtures.get(fixture)), "--base-path", str(base), "--version", "1", *flags,
                          "--json")
        if done.returncode != 0:
            sys.exit(f"{command} {fixture} failed: {done.stdout}{done.stderr}")
        for index in range(COPIES[fmt]):
            shutil.copytree(base, models / f"{fmt}_{index:02d}")
    return models


def validate(models: Path, *flags: str) -> tuple[float, dict]:
    """Seconds and report of one validate run; --timeout 300 so that a busy machine's slow start is not
    reported as the model's (the limit does not change how fast a server starts)."""
    started = time.monotonic()
    done = tfsconvert("validate", str(models), "--json", "--timeout", "300", *flags)
    seconds = time.monotonic() - started
    report = json.loads(done.stdout)
    if not report["ok"]:
        errors = [f"{v['model']}/{v['version']}: {f['code']}: {f['message'][:200]}" for v in report["versions"]
                  for f in v["findings"] if f["severity"] == "error"]
        sys.exit(f"validate {' '.join(flags)} found errors after {seconds:.1f} s: " + "; ".join(errors))
    print(f"  (validate {' '.join(flags) or '(defaults)'}: {seconds:.1f} s)", file=sys.stderr, flush=True)
    return seconds, report


def floor(models: Path, report: dict) -> dict[str, float]:
    directories = [v["path"] for v in report["versions"]]
    done = subprocess.run([sys.executable, "-c", LOADS, *directories], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        sys.exit(f"the floor's loads failed: {done.stderr[-2000:]}")
    tf_import, loads = (float(line) for line in done.stdout.split()[-2:])
    requests = sum(r["seconds"] for v in report["versions"] for r in v["golden"])
    return {"tf_import": tf_import, "loads": loads, "requests": requests, "floor": tf_import + loads + requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build the repository here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="validate-repo-"))
    try:
        models = build(root) if not (root / "models").is_dir() else root / "models"
        one_pass, report = validate(models)
        one_job, _ = validate(models, "--jobs", "1")
        parts = floor(models, report)
        per_version, slow = validate(models, "--server-per-version", "--jobs", "1")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    servings = sum(len({r["engine"] for r in v["golden"]}) for v in report["versions"])
    print(f"repository: {len(report['versions'])} models, {servings} servings "
          f"({', '.join(f'{n} {fmt}' for fmt, n in COPIES.items())}); {os.cpu_count()} CPUs")
    print(f"floor {parts['floor']:.1f} s = TensorFlow import {parts['tf_import']:.1f} s + loads {parts['loads']:.1f} s "
          f"+ requests {parts['requests']:.1f} s")
    print(f"one pass (--jobs {report['jobs']}): {one_pass:.1f} s, {report['servers']} server processes "
          f"-> {one_pass / parts['floor']:.2f}x the floor (target <= {FLOOR_TARGET:g}x)")
    print(f"one pass (--jobs 1): {one_job:.1f} s -> {one_job / parts['floor']:.2f}x the floor")
    print(f"per version: {per_version:.1f} s, {slow['servers']} server processes -> "
          f"{per_version / one_pass:.1f}x slower than one pass (target >= {PER_VERSION_TARGET:g}x)")


if __name__ == "__main__":
    main()
