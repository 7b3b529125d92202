"""Benchmark: `tfsconvert validate` wall time, against the floor of the same work, and on broken models.

Every command is a fresh process (what a user or a CI step pays), the commands are interleaved
(each round runs every one once, so noise on this shared 2-core machine hits all alike), and the
figures are medians. Commands:
  - floor: a bare `python -c` that imports TensorFlow, loads the SavedModel with the TF1 session
    loader (`tf.compat.v1.saved_model.loader.load(sess, ["serve"], dir)`) and runs the model's 100
    golden requests one by one in-process, checking each answer: validate's work without the
    static checks, the sandbox, the server and the two protocols;
  - `python -c "import tensorflow"`, the start-up every TensorFlow process pays;
  - `tfsconvert validate BASE` on the SavedModel converted from the fixture frozen graph with 100
    golden requests (`tfsconvert saved-model mlp.pb --version 1 --samples 100`), replayed over
    REST and gRPC (200 replays); target: at most 2x the floor;
  - `tfsconvert validate` of the broken layout `broken_nonnumeric_versions` (SavedModels in v1/,
    1.0/, latest/), with and without `--static-only`; target: under 1 s;
  - `tfsconvert validate` of `validate_unknown_op` (passes the static checks, fails to load in the
    sandbox: op not registered); target: within 10 s (TF Serving retries for about 5 minutes).
With `--profile`, also `validate BASE --protocol rest` / `--protocol grpc` and the unknown-op model
with `--protocol rest` (no gRPC client import). Each validate run's JSON report gives the split of
its time (server start, REST and gRPC replays, the rest).

Usage: python bench/validate_speed.py [--repeat 3] [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import fixtures  # noqa: E402

RATIO_TARGET, STATIC_TARGET, LOAD_FAILURE_TARGET = 2.0, 1.0, 10.0

FLOOR = """
import json, sys
import numpy as np
import tensorflow as tf
directory = sys.argv[1]
records = [json.loads(line) for line in open(directory + "/assets.extra/golden.jsonl")]
with tf.compat.v1.Session(graph=tf.Graph()) as session:
    meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], directory)
    signature = meta.signature_def["serving_default"]
    feed, fetch = signature.inputs["features"].name, signature.outputs["probabilities"].name
    for record in records:
        out = session.run(fetch, {feed: np.asarray(record["request"]["inputs"]["features"], np.float32)})
        assert np.allclose(out, record["response"]["outputs"], rtol=1e-5, atol=1e-6), record["id"]
print(len(records))
"""


def run(cmd: list[str], expect_exit: int) -> tuple[float, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if proc.returncode != expect_exit:
        sys.exit(f"{' '.join(cmd)}: exit {proc.returncode}, expected {expect_exit}:\n"
                 + proc.stdout.decode(errors="replace")[-2000:] + proc.stderr.decode(errors="replace")[-2000:])
    return elapsed, proc.stdout.decode(errors="replace")


def check_report(name: str, text: str, golden: int | None = None, code: str | None = None) -> dict:
    """The JSON report, after checking it says what the model should make it say."""
    report = json.loads(text)
    codes = {f["code"] for f in report["findings"]} | {f["code"] for v in report["versions"] for f in v["findings"]}
    if golden is not None and report["summary"]["golden_passed"] != golden:
        sys.exit(f"{name}: {report['summary']} (expected {golden} golden replays passed)")
    if code is not None and code not in codes:
        sys.exit(f"{name}: findings {sorted(codes)}, expected {code}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round, no warm-up round")
    parser.add_argument("--profile", action="store_true", help="also each protocol alone")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat

    py, ours = sys.executable, [sys.executable, "-m", "tfsconvert"]
    broken = str(fixtures.get("broken_nonnumeric_versions"))
    unknown = str(fixtures.get("validate_unknown_op"))
    with tempfile.TemporaryDirectory(prefix="tfsconvert-bench-") as scratch:
        base = Path(scratch) / "mlp"
        run([*ours, "saved-model", str(fixtures.get("frozen_mlp_pb")), "--base-path", str(base), "--version", "1",
             "--samples", "100", "--json"], 0)
        records = len((base / "1" / "assets.extra" / "golden.jsonl").read_text().splitlines())
        assert records == 100, records
        validate = [*ours, "validate"]
        # name -> (command, expected exit code, check of stdout -> JSON report or None)
        commands = {
            "python -c 'import tensorflow'": ([py, "-c", "import tensorflow"], 0, None),
            "floor: load + 100 in-process": ([py, "-c", FLOOR, str(base / "1")], 0, None),
            "validate (REST + gRPC)": ([*validate, str(base), "--json"], 0,
                                       lambda name, out: check_report(name, out, golden=2 * records)),
            "broken layout --static-only": ([*validate, broken, "--static-only", "--json"], 1,
                                            lambda name, out: check_report(name, out, code="no-version-directory")),
            "broken layout": ([*validate, broken, "--json"], 1,
                              lambda name, out: check_report(name, out, code="no-version-directory")),
            "unknown op (load fails)": ([*validate, unknown, "--json"], 1,
                                        lambda name, out: check_report(name, out, code="unknown-op")),
        }
        if args.profile:
            commands.update({
                "validate --protocol rest": ([*validate, str(base), "--protocol", "rest", "--json"], 0,
                                             lambda name, out: check_report(name, out, golden=records)),
                "validate --protocol grpc": ([*validate, str(base), "--protocol", "grpc", "--json"], 0,
                                             lambda name, out: check_report(name, out, golden=records)),
                "unknown op --protocol rest": ([*validate, unknown, "--protocol", "rest", "--json"], 1,
                                               lambda name, out: check_report(name, out, code="unknown-op")),
            })
        times: dict[str, list[float]] = {name: [] for name in commands}
        reports: dict[str, list[tuple[float, dict]]] = {name: [] for name in commands}
        rounds = repeat if args.quick else repeat + 1  # the first round warms the page cache, not counted
        for round_ in range(rounds):
            for name, (cmd, code, check) in commands.items():
                elapsed, out = run(cmd, code)
                report = check(name, out) if check else None
                if args.quick or round_ > 0:
                    times[name].append(elapsed)
                    if report is not None:
                        reports[name].append((elapsed, report))

    median = {name: statistics.median(t) for name, t in times.items()}
    floor, tf_import = median["floor: load + 100 in-process"], median["python -c 'import tensorflow'"]
    print(f"{'command':<32} {'median s':>9} {'min s':>7} {'max s':>7} {'vs floor':>9} {'vs import tf':>13}")
    for name, value in median.items():
        print(f"{name:<32} {value:>9.3f} {min(times[name]):>7.3f} {max(times[name]):>7.3f} {value / floor:>8.2f}x "
              f"{value / tf_import:>12.2f}x")

    print("\nwhere validate's time goes (medians of the JSON reports of the runs above, seconds):")
    print(f"{'command':<32} {'wall':>6} {'outside':>8} {'server up':>10} {'REST':>6} {'gRPC':>6} {'other':>6}")
    for name, runs in reports.items():
        if not runs or not any(v["served"] or v["findings"] for r in runs for v in r[1]["versions"]):
            continue
        split = []
        for wall, report in runs:
            golden = [g for v in report["versions"] for g in v.get("golden", [])]
            rest = sum(g["seconds"] for g in golden if g["protocol"] == "rest")
            grpc = sum(g["seconds"] for g in golden if g["protocol"] == "grpc")
            up = sum(v["load_seconds"] or 0 for v in report["versions"])
            split.append((wall, wall - report["seconds"], up, rest, grpc, report["seconds"] - up - rest - grpc))
        m = [statistics.median(column) for column in zip(*split)]
        print(f"{name:<32} {m[0]:>6.2f} {m[1]:>8.2f} {m[2]:>10.2f} {m[3]:>6.2f} {m[4]:>6.2f} {m[5]:>6.2f}")
    print("  outside: CLI start-up and interpreter exit (after TensorFlow was imported for the gRPC client); "
          "server up: start to both ports open; other: staging, metadata call, waiting for the gRPC client "
          "import, server stop (for a load failure: the server's whole life, up to its exit)")

    ratio = median["validate (REST + gRPC)"] / floor
    static, failing = median["broken layout --static-only"], median["unknown op (load fails)"]
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    print(f"\nvalidate / floor = {ratio:.2f}x (target <= {RATIO_TARGET:g}x: {verdict(ratio <= RATIO_TARGET)}); "
          f"broken layout reported in {static:.2f} s static-only, {median['broken layout']:.2f} s without "
          f"(target < {STATIC_TARGET:g} s: {verdict(max(static, median['broken layout']) < STATIC_TARGET)}); "
          f"load failure reported in {failing:.2f} s (target <= {LOAD_FAILURE_TARGET:g} s: "
          f"{verdict(failing <= LOAD_FAILURE_TARGET)}); {repeat} run(s) each, medians")


if __name__ == "__main__":
    main()
