"""Benchmark: `tfsconvert saved-model` / `onnx` against the floor of the same work on the same graph.

Converts the fixture frozen graph (features float[-1,4] -> probabilities). Every command is a
fresh process (what a user or CI step pays), commands are interleaved (each round runs every
command once, so noise on this shared machine hits all alike), each run writes into a fresh
temp dir, and the figures are medians. Baselines measured in the same run:
  - floor: one bare `python -c` that imports TensorFlow, parses the GraphDef, imports it into a
    tf.Graph and writes a SavedModel with tf.compat.v1.saved_model.Builder and a serving_default
    signature (features -> probabilities): our work minus the parity check, golden and warmup;
  - `python -m tf2onnx.convert --graphdef ... --opset 17`, the ONNX path's floor;
  - `python -c "import tensorflow"`, the cost every TensorFlow command starts with.

Usage: python bench/convert_speed.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import fixtures  # noqa: E402

TARGET = 1.3  # tfsconvert saved-model within 1.3x of the floor

FLOOR_SAVEDMODEL = """
import sys
import tensorflow as tf
graph_def = tf.compat.v1.GraphDef()
with open(sys.argv[1], "rb") as f:
    graph_def.ParseFromString(f.read())
graph = tf.Graph()
with graph.as_default():
    tf.graph_util.import_graph_def(graph_def, name="")
v1 = tf.compat.v1.saved_model
with tf.compat.v1.Session(graph=graph) as session:
    signature = v1.signature_def_utils.build_signature_def(
        inputs={"features": v1.utils.build_tensor_info(graph.get_tensor_by_name("features:0"))},
        outputs={"probabilities": v1.utils.build_tensor_info(graph.get_tensor_by_name("probabilities:0"))},
        method_name="tensorflow/serving/predict")
    builder = v1.Builder(sys.argv[2])
    builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"serving_default": signature},
                                         strip_default_attrs=True)
    builder.save()
"""


def timed(cmd: list[str], cwd: Path, expect: Path) -> float:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or not expect.exists():
        sys.exit(f"{' '.join(cmd)} failed (exit {proc.returncode}, {expect} written: {expect.exists()}):\n"
                 + proc.stderr.decode(errors="replace"))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    pb = str(fixtures.get("frozen_mlp_pb"))
    py, ours = sys.executable, [sys.executable, "-m", "tfsconvert"]
    # name -> (command in a fresh work dir, the file it must have written)
    commands: dict[str, Callable[[Path], tuple[list[str], Path]]] = {
        "python -c 'import tensorflow'": lambda d: ([py, "-c", "import tensorflow"], d),
        "floor: bare SavedModel": lambda d: ([py, "-c", FLOOR_SAVEDMODEL, pb, str(d / "base" / "1")],
                                             d / "base" / "1" / "saved_model.pb"),
        "tfsconvert saved-model": lambda d: ([*ours, "saved-model", pb, "--base-path", str(d / "base"),
                                              "--version", "1", "--json"],
                                             d / "base" / "1" / "assets.extra" / "tf_serving_warmup_requests"),
        "tf2onnx.convert --graphdef": lambda d: ([py, "-m", "tf2onnx.convert", "--graphdef", pb,
                                                  "--inputs", "features:0", "--outputs", "probabilities:0",
                                                  "--output", str(d / "x.onnx"), "--opset", "17"], d / "x.onnx"),
        "tfsconvert onnx": lambda d: ([*ours, "onnx", pb, "--base-path", str(d / "base"), "--version", "1",
                                       "--json"], d / "base" / "1" / "model.onnx"),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory(prefix="tfsconvert-bench-") as scratch:
        runs = 0

        def run(make: Callable[[Path], tuple[list[str], Path]]) -> float:
            nonlocal runs
            runs += 1
            work = Path(scratch) / str(runs)  # a fresh base path every run
            work.mkdir()
            cmd, expect = make(work)
            return timed(cmd, work, expect)

        for make in commands.values():  # warm the page cache once
            run(make)
        for _ in range(args.repeat):
            for name, make in commands.items():
                times[name].append(run(make))

    median = {name: statistics.median(t) for name, t in times.items()}
    tf_import = median["python -c 'import tensorflow'"]
    floors = {"tfsconvert saved-model": "floor: bare SavedModel", "tfsconvert onnx": "tf2onnx.convert --graphdef"}
    print(f"{'command':<30} {'median s':>9} {'min s':>7} {'max s':>7} {'vs floor':>9} {'vs import tf':>13}")
    for name, value in median.items():
        vs_floor = f"{value / median[floors[name]]:.2f}x" if name in floors else ""
        print(f"{name:<30} {value:>9.3f} {min(times[name]):>7.3f} {max(times[name]):>7.3f} {vs_floor:>9} "
              f"{value / tf_import:>12.2f}x")
    saved = median["tfsconvert saved-model"] / median["floor: bare SavedModel"]
    onnx = median["tfsconvert onnx"] / median["tf2onnx.convert --graphdef"]
    verdict = "met" if saved <= TARGET else "NOT met"
    print(f"\ntfsconvert saved-model / floor = {saved:.2f}x (target <= {TARGET}x: {verdict}); "
          f"tfsconvert onnx / tf2onnx.convert = {onnx:.2f}x; {args.repeat} runs each, medians")


if __name__ == "__main__":
    main()
