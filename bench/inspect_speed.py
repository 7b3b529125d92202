"""Benchmark: `tfsconvert inspect` against `saved_model_cli show --all` on the same models.

Runs every command as a fresh process (what a user or CI pays), interleaving them so noise on
this shared machine hits all alike, and prints medians and ratios against baselines measured
in the same run:
  - `saved_model_cli show --all --dir DIR` (TensorFlow's own inspector) for SavedModels;
  - `python -c pass` (bare interpreter start-up), the floor of any Python CLI;
  - for ONNX, `python -c "import onnx; onnx.load(...)"`: what reading the model with `onnx` costs (inspect
    reads it with tfsconvert.onnxproto instead; target: `inspect ONNX` within 0.3 s).

Usage: python bench/inspect_speed.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import fixtures  # noqa: E402

BIN = Path(sys.executable).parent


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall s, CPU s: user + system of the child), the CPU time being less sensitive to a busy machine."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    savedmodel = fixtures.get("savedmodel_base") / "2"
    inspect = [sys.executable, "-m", "tfsconvert", "inspect"]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "saved_model_cli show --all": [str(BIN / "saved_model_cli"), "show", "--all", "--dir", str(savedmodel)],
        "inspect SavedModel": [*inspect, str(savedmodel), "--json"],
        "inspect base path": [*inspect, str(fixtures.get("savedmodel_base")), "--json"],
        "inspect frozen .pb": [*inspect, str(fixtures.get("frozen_mlp_pb")), "--json"],
        "inspect ONNX": [*inspect, str(fixtures.get("onnx_model")), "--json"],
        "python: onnx.load": [sys.executable, "-c", f"import onnx; onnx.load({str(fixtures.get('onnx_model'))!r})"],
        "inspect PMML": [*inspect, str(fixtures.get("pmml_model")), "--json"],
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for name, cmd in commands.items():  # warm the page cache once
        timed(cmd)
    for _ in range(args.repeat):
        for name, cmd in commands.items():
            times[name].append(timed(cmd))

    median = {name: statistics.median(wall for wall, _ in t) for name, t in times.items()}
    cpu = {name: statistics.median(used for _, used in t) for name, t in times.items()}
    cli, floor = median["saved_model_cli show --all"], median["python -c pass"]
    print(f"{'command':<28} {'median s':>9} {'CPU s':>7} {'vs saved_model_cli':>19} {'vs python -c pass':>18}")
    for name, value in median.items():
        print(f"{name:<28} {value:>9.3f} {cpu[name]:>7.3f} {value / cli:>18.3f}x {value / floor:>17.2f}x")
    speedup = cli / median["inspect SavedModel"]
    print(f"\ninspect SavedModel is {speedup:.1f}x faster than saved_model_cli show --all "
          f"(target >= 10x), {args.repeat} runs each, medians")
    print(f"inspect ONNX takes {median['inspect ONNX']:.3f} s, {cpu['inspect ONNX']:.3f} s CPU (target <= 0.3 s), "
          f"{median['inspect ONNX'] / median['inspect SavedModel']:.2f}x inspect SavedModel; importing onnx to load "
          f"the model alone takes {median['python: onnx.load']:.3f} s")


if __name__ == "__main__":
    main()
