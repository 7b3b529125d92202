"""Benchmark: the batching parameters `serving-config` writes, against the best of a fuller sweep in the same run.

Models get golden requests by conversion (`tfsconvert saved-model` / `onnx` of a fixture, 8 golden requests).
Every server is our embedded server in `bench`'s sandbox (tfsconvert.serving.calibrate.Servers), measured over
REST at 32 concurrent requests with the C load generator.

Default (the benchmark ranker, `ctr_ranker`):
1. a fuller sweep: num_batch_threads 1,2,5 x session parallelism 0,1 x max_batch_size 8,16,32,128 (timeout 0),
   then timeouts 1000 and 5000 on the grid's best: each setting's server is started and measured in turn with a
   reference server (the field's rule) that stays up, twice each, and scored by QPS / the reference's QPS, so the
   machine getting busier does not pick the winner;
2. `tfsconvert serving-config BASE --calibrate` (the real command, its default 60 s budget unless
   --calibrate-seconds) and
   `tfsconvert serving-config BASE` (the uncalibrated defaults) and `--batching-defaults field-rule`;
3. servers for the sweep's top 3, the calibrated file, the defaults and the field rule (one per distinct
   setting), all up, measured in turn for --rounds rounds; medians. The sweep's best is the best median of its top 3. Prints calibrated /
   best and defaults / best (targets 0.9 and 0.7).

`--fixtures`: step 1 without max_batch_size 32 (the worst at 32 concurrent requests in a first pass) on each
fixture model (ctr_ranker SavedModel, the frozen MLP as SavedModel and as ONNX),
then every grid setting's score relative to each model's best: the defaults are the setting with the highest
worst-case score.

Usage: python bench/calibrate.py [--fixtures [--models ctr_ranker,mlp_savedmodel,mlp_onnx]] [--rounds 3]
                                 [--run-seconds 1.0] [--calibrate-seconds 60]
This machine has 2 cores shared with other work: read ratios, not absolute QPS.
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
from itertools import product
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import fixtures  # noqa: E402
from tfsconvert.server import hardware  # noqa: E402
from tfsconvert.server.batching_config import read_batching_parameters  # noqa: E402
from tfsconvert.serving import tuning  # noqa: E402
from tfsconvert.serving.calibrate import CONCURRENCY, Servers, Setting, with_value  # noqa: E402

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
GRID = {"num_batch_threads": (1, 2, 5), "session_parallelism": (0, 1), "max_batch_size": (8, 16, 32, 128)}
QUICK_GRID = {"num_batch_threads": (1, 2, 5), "session_parallelism": (0, 1), "max_batch_size": (8, 16, 128)}
TIMEOUTS = (1000, 5000)
TOP = 3  # the sweep's best settings re-measured with the others (one pair each is noisy on a shared machine)


def cli(*args) -> str:
    done = subprocess.run([sys.executable, "-m", "tfsconvert", *map(str, args)], env=ENV, capture_output=True,
                          text=True)
    if done.returncode != 0:
        sys.exit(f"tfsconvert {' '.join(map(str, args))} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


MODELS = {"ctr_ranker": ("saved-model", "ctr_ranker"), "mlp_savedmodel": ("saved-model", "frozen_mlp_pb"),
          "mlp_onnx": ("onnx", "frozen_mlp_pb")}


def models(scratch: Path, names: list[str]) -> dict[str, Path]:
    """Base paths with golden requests, converted from the fixtures."""
    out = {}
    for name in names:
        command, fixture = MODELS[name]
        source = fixtures.get(fixture) / "1" if fixture == "ctr_ranker" else fixtures.get(fixture)
        out[name] = scratch / name
        cli(command, source, "--base-path", out[name], "--version", "1", "--json")
    return out


def grid(base: Setting, axes: dict = GRID) -> list[Setting]:
    settings = []
    for values in product(*axes.values()):
        setting = base
        for axis, value in zip(axes, values):
            setting = with_value(setting, axis, value)
        settings.append(setting)
    return settings


def sweep(base: Path, run_seconds: float, reference: Setting, settings: list[Setting],
          more: list[str] = ()) -> dict[Setting, float]:
    """Score = a setting's QPS / the reference's (kept up), the two measured in turn twice."""
    scores: dict[Setting, float] = {}
    with Servers(base, None, CONCURRENCY, run_seconds) as servers:
        ref_stack, ref_box = servers.start(reference)
        servers.measure(reference, ref_box)  # warm
        todo = list(settings)
        while todo:
            setting = todo.pop(0)
            stack, box = servers.start(setting)
            trial, ref = servers.compare(setting, box, reference, ref_box)
            servers.stop(stack)
            scores[setting] = trial.qps / ref.qps if trial.errors == 0 and ref.qps else 0.0
            print(f"  {scores[setting]:5.2f}  {trial.qps:7.0f} QPS p99 {trial.p99_ms or 0:6.1f} ms  (ref "
                  f"{ref.qps:6.0f})  {setting.label()}", flush=True)
            if not todo and "timeouts" in more:
                best = max(scores, key=scores.get)
                todo = [with_value(best, "batch_timeout_micros", t) for t in TIMEOUTS]
                more = ()
        servers.stop(ref_stack)
    return scores


def written(base: Path, scratch: Path, name: str, *args) -> tuple[Setting, float]:
    """serving-config's file and session parallelism (from its commands), and the command's wall time."""
    out = scratch / f"serving-{name}"
    started = time.monotonic()
    data = json.loads(cli("serving-config", base, "--out", out, "--json", *args))
    seconds = time.monotonic() - started
    params = read_batching_parameters(out / "batching_parameters.txt")
    flag = "--tensorflow_session_parallelism="
    command = data["commands"]["tensorflow_model_server"]
    parallelism = int(command.split(flag)[1].split()[0]) if flag in command else 0
    return Setting(params, parallelism), seconds


def final(base: Path, run_seconds: float, rounds: int, settings: dict[str, Setting]) -> dict[str, list[float]]:
    """One server per distinct setting, all up, each measured once per round, in turn (names sharing a
    setting, e.g. calibrated = defaults, share its measurements)."""
    qps: dict[Setting, list[float]] = {setting: [] for setting in settings.values()}
    with Servers(base, None, CONCURRENCY, run_seconds) as servers:
        live = {setting: servers.start(setting) for setting in qps}
        for setting, (_, box) in live.items():  # warm
            servers.measure(setting, box)
        for _ in range(rounds):
            for setting, (_, box) in live.items():
                trial = servers.measure(setting, box)
                qps[setting].append(trial.qps if trial.errors == 0 else 0.0)
        for stack, _ in live.values():
            servers.stop(stack)
    return {name: qps[setting] for name, setting in settings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", action="store_true", help="sweep every fixture model (the defaults)")
    parser.add_argument("--models", default=",".join(MODELS), help="--fixtures: which models (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--run-seconds", type=float, default=1.0)
    parser.add_argument("--calibrate-seconds", type=float, default=60.0, help="the --calibrate run's budget")
    args = parser.parse_args()
    machine = hardware.detect()
    params, _, parallelism = tuning.recommend(machine, "field-rule")
    field_rule = Setting(params, parallelism)
    with tempfile.TemporaryDirectory(prefix="bench-calibrate-") as scratch:
        scratch = Path(scratch)
        bases = models(scratch, args.models.split(",") if args.fixtures else ["ctr_ranker"])
        if args.fixtures:
            table = {}
            for name, base in bases.items():
                print(f"{name}: sweep against the field rule", flush=True)
                scores = sweep(base, args.run_seconds, field_rule, grid(field_rule, QUICK_GRID))
                top = max(scores.values())
                table[name] = {s: v / top for s, v in scores.items()}
            print("\nscore / the model's best (worst model first column):")
            rows = sorted(grid(field_rule, QUICK_GRID), key=lambda s: -min(t[s] for t in table.values()))
            for setting in rows:
                print(f"  worst {min(t[setting] for t in table.values()):.2f}  "
                      + "  ".join(f"{n} {t[setting]:.2f}" for n, t in table.items()) + f"  {setting.label()}")
            return
        base = bases["ctr_ranker"]
        print(f"ctr_ranker: fuller sweep against the field rule ({machine.cpus} CPUs)", flush=True)
        started = time.monotonic()
        scores = sweep(base, args.run_seconds, field_rule, grid(field_rule), more=["timeouts"])
        sweep_seconds = time.monotonic() - started
        top = sorted(scores, key=scores.get, reverse=True)[:TOP]
        calibrated, calibrate_seconds = written(base, scratch, "calibrated", "--calibrate", "--calibrate-seconds",
                                                args.calibrate_seconds)
        print((scratch / "serving-calibrated" / "batching_parameters.txt").read_text(), flush=True)
        defaults, _ = written(base, scratch, "defaults")
        rule, _ = written(base, scratch, "field-rule", "--batching-defaults", "field-rule")
        settings = {**{f"sweep #{i + 1}": s for i, s in enumerate(top)}, "calibrated": calibrated,
                    "defaults": defaults, "field rule": rule}
        qps = final(base, args.run_seconds, args.rounds, settings)
    median = {name: statistics.median(values) for name, values in qps.items()}
    best = max(median[f"sweep #{i + 1}"] for i in range(len(top)))
    print(f"\nsweep: {len(scores)} settings in {sweep_seconds:.0f} s; serving-config --calibrate took "
          f"{calibrate_seconds:.0f} s; the sweep's best = the best median of its top {len(top)} re-measured here")
    print(f"{'setting':<12} {'median QPS':>10} {'vs sweep best':>14}  runs; setting")
    for name, value in median.items():
        runs = ", ".join(f"{v:.0f}" for v in qps[name])
        print(f"{name:<12} {value:>10.0f} {value / best:>13.2f}x  {runs}; {settings[name].label()}")
    print(f"\ncalibrated reaches {median['calibrated'] / best:.0%} of the sweep's best (target >= 90%), defaults "
          f"{median['defaults'] / best:.0%} (target >= 70%), field rule {median['field rule'] / best:.0%}; "
          f"{args.rounds} interleaved rounds, medians")


if __name__ == "__main__":
    main()
