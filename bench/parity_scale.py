"""Benchmark: `tfsconvert parity` rows/s on Spark against a single-process pandas loop, local[1] against
local[2], and the driver's memory as the row count grows.

Models (built here, seeded): a scikit-learn Pipeline(SimpleImputer, GradientBoostingClassifier 50
trees) on 8 numeric columns converted to ONNX and to PMML, and a Keras MLP (8 -> 64 -> 64 -> 3)
converted to a SavedModel. Data: generated Parquet with x0..x7 and a `features` list column (row
groups of 65,536 rows). For each size and model:
  - loop: one fresh Python process reads the Parquet in 10,000-row Arrow batches and does one Spark
    task's work on all of them (tfsconvert.parity.scoring: the same loaders, runtimes and statistics),
    without Spark; it is timed from before its first import, as a Spark worker's imports and model
    loads count in Spark's time;
  - local[1] and local[2]: `tfsconvert parity` in a fresh process per (size, master), scoring time
    from its report, peak RSS of the driver's Python process (getrusage) and of the Spark JVM (VmHWM),
    which in local mode also runs the executors. Printed apart: Spark's start, and its first job (a
    no-op mapInPandas over the same columns: the JVM's warm-up and the Python workers' start, which
    the first model of a session would otherwise carry alone), and the cores the machine kept busy
    while each model was scored (/proc/stat).
Targets: local[2] >= 1.6x local[1]; local[2] >= the loop at 1M rows; driver RSS flat from 1M to 10M.

Usage: python bench/parity_scale.py [--rows 1000000,10000000] [--models gbt-onnx,gbt-pmml,mlp]
                                    [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FEATURES = [f"x{i}" for i in range(8)]
MODELS = {"gbt-onnx": ("gbt.joblib", "gbt-onnx"), "gbt-pmml": ("gbt.joblib", "gbt-pmml"),
          "mlp": ("mlp.keras", "mlp-savedmodel")}


def env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")


def cli(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "tfsconvert", *args], env=env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"tfsconvert {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def build(work: Path) -> None:
    """The two sources and their three artifacts (skipped when present)."""
    import numpy as np

    if not (work / "gbt.joblib").exists():
        import joblib
        import pandas as pd
        from sklearn.ensemble import GradientBoostingClassifier
        from sklearn.pipeline import Pipeline
        from sklearn.impute import SimpleImputer

        rng = np.random.default_rng(0)
        x = pd.DataFrame(rng.normal(0, 1, (5000, 8)), columns=FEATURES)
        y = ((x.x0 + x.x1 * x.x2 - x.x3) > 0).astype(int)
        # No StandardScaler: skl2onnx scales in float32 where scikit-learn scales in float64, and ~13% of
        # the rows then land on the other side of a split (the conversion refuses it).
        model = Pipeline([("impute", SimpleImputer(strategy="median")),
                          ("gbt", GradientBoostingClassifier(n_estimators=50, max_depth=3, random_state=0))])
        joblib.dump(model.fit(x, y), work / "gbt.joblib")
    if not (work / "mlp.keras").exists():
        import keras

        keras.utils.set_random_seed(0)
        inputs = keras.Input((8,), name="features")
        hidden = keras.layers.Dense(64, activation="relu")(keras.layers.Dense(64, activation="relu")(inputs))
        keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probabilities")(hidden)).save(
            work / "mlp.keras")
    for command, source, base in (("onnx", "gbt.joblib", "gbt-onnx"), ("pmml", "gbt.joblib", "gbt-pmml"),
                                  ("saved-model", "mlp.keras", "mlp-savedmodel")):
        if not (work / "models" / base / "1").exists():
            extra = ["--pmml-evaluator", "jpmml"] if command == "pmml" else []
            cli(command, str(work / source), "--base-path", str(work / "models" / base), *extra)


def data(work: Path, rows: int) -> Path:
    """x0..x7 (doubles) and `features` (the same 8 values as a list of floats), seeded."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = work / f"rows-{rows}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(rows)
    with pq.ParquetWriter(path, pa.schema([*[(f, pa.float64()) for f in FEATURES],
                                           ("features", pa.list_(pa.float32()))])) as writer:
        for start in range(0, rows, 1 << 16):
            values = rng.normal(0, 1, (min(1 << 16, rows - start), 8))
            columns = [pa.array(values[:, i]) for i in range(8)]
            lists = pa.FixedSizeListArray.from_arrays(pa.array(values.astype(np.float32).ravel()), 8)
            writer.write_table(pa.table(columns + [lists.cast(pa.list_(pa.float32()))], names=[*FEATURES,
                                                                                                "features"]))
    return path


def loop(job_file: Path, path: Path) -> dict:
    """One fresh process doing one Spark task's work over the whole file (read, score both sides, compare,
    keep the worst rows); timed from before its first import, as a Spark worker's imports count."""
    started = time.monotonic()
    import pickle

    import pyarrow.parquet as pq

    from tfsconvert.parity import scoring

    job = pickle.loads(job_file.read_bytes())
    scoring.scorer(job)
    loaded = time.monotonic()
    frames = (batch.to_pandas() for batch in pq.ParquetFile(path).iter_batches(
        10_000, columns=[c.name for c in job.columns], use_threads=False))
    result = scoring._score_partition(job, frames, None)
    seconds = time.monotonic() - started
    assert all(f.rows_over == 0 for f in result.fields.values()), result.to_json()
    return {"rows": result.rows, "seconds": seconds, "load_seconds": loaded - started,
            "rows_per_second": result.rows / seconds}


def _job(work: Path, model: str):
    """The Job `tfsconvert parity` would build for `model` (plan's functions, no Spark)."""
    from tfsconvert.parity import plan

    source, base = MODELS[model]
    version, fmt = plan.artifact_version(work / "models" / base)
    kind = plan.source_kind(work / source)
    atol, rtol = plan.tolerances(kind, fmt, None, None)
    job = plan.Job(str(work / source), kind, str(version), fmt, [], {}, atol, rtol)
    if kind == "sklearn":
        plan.tabular_source(work / source, job, None, False)
    else:
        job.columns, job.fields = plan.tf_columns(version, plan.tf_signature(version, fmt))
    return job


def spark_child(work: Path, path: Path, master: str, models: list[str]) -> dict:
    """In a fresh process: `parity` for each model on `master`; scoring rows/s and the driver's memory."""
    from tfsconvert.convert import spark_session
    from tfsconvert.parity.run import ParityOptions, parity

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # as `tfsconvert parity` sets it for its workers
    started = time.monotonic()
    spark = spark_session.session(master)
    out = {"spark_start_seconds": time.monotonic() - started, "models": {}}
    started = time.monotonic()
    spark.read.parquet(str(path)).select(*FEATURES).mapInPandas(_count_rows, "rows long").collect()
    out["first_job_seconds"] = time.monotonic() - started
    for model in models:
        source, base = MODELS[model]
        began, busy = time.monotonic(), _busy_seconds()
        report = parity(work / source, work / "models" / base, ParityOptions(path, spark_master=master))
        assert report.ok, report.lines()
        wall = time.monotonic() - began
        out["models"][model] = {"rows": report.rows, "seconds": report.seconds, "wall": wall,
                                "rows_per_second": report.rows_per_second, "partitions": report.partitions,
                                "cores_busy": (_busy_seconds() - busy) / wall}
    from pyspark import SparkContext

    out["driver_python_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    status = Path(f"/proc/{SparkContext._gateway.proc.pid}/status").read_text()
    out["jvm_peak_rss_mb"] = int(next(line.split()[1] for line in status.splitlines()
                                      if line.startswith("VmHWM"))) / 1024
    return out


def _busy_seconds() -> float:
    """CPU time of the whole machine so far (every core, every process), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _count_rows(batches):
    import pandas as pd

    yield pd.DataFrame({"rows": [sum(len(batch) for batch in batches)]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--models", default="gbt-onnx,gbt-pmml,mlp")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tfsconvert-parity-bench"))
    parser.add_argument("--child", nargs=2, metavar=("DATA", "MASTER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    models = args.models.split(",")
    if args.child:
        print(json.dumps(spark_child(args.work, Path(args.child[0]), args.child[1], models)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    build(args.work)
    results = {}
    for rows in (int(r) for r in args.rows.split(",")):
        path = data(args.work, rows)
        result = {"loop": {}}
        for model in models:
            job_file = args.work / f"job-{model}.pickle"
            job_file.write_bytes(pickle.dumps(_job(args.work, model)))
            proc = subprocess.run([sys.executable, "-c", f"import json, sys; sys.path.insert(0, {str(REPO)!r}); "
                                   f"from bench.parity_scale import loop; from pathlib import Path; print(json.dumps("
                                   f"loop(Path({str(job_file)!r}), Path({str(path)!r}))))"],
                                  env=env(), capture_output=True, text=True, cwd=REPO)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
            result["loop"][model] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(rows, "loop", model, result["loop"][model], flush=True)
        for master in ("local[1]", "local[2]"):
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--work", str(args.work),
                                   "--models", args.models, "--child", str(path), master],
                                  env=env(), capture_output=True, text=True, cwd=REPO)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-3000:])
            result[master] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(rows, master, result[master], flush=True)
        results[rows] = result
    print("\nrows/s (scoring, loading the models included; loop = one process, same work)")
    for rows, result in results.items():
        for model in models:
            one, two = result["local[1]"]["models"][model], result["local[2]"]["models"][model]
            base = result["loop"][model]["rows_per_second"]
            print(f"{rows:>11,} {model:9} loop {base:>9,.0f}  local[1] {one['rows_per_second']:>9,.0f}  local[2] "
                  f"{two['rows_per_second']:>9,.0f}  local[2]/local[1] {two['rows_per_second'] / one['rows_per_second']:.2f}"
                  f"  local[2]/loop {two['rows_per_second'] / base:.2f}  cores busy {one['cores_busy']:.2f} / "
                  f"{two['cores_busy']:.2f}")
        print(f"{rows:>11,} driver peak RSS: python {result['local[2]']['driver_python_rss_mb']:.0f} MB, "
              f"Spark JVM {result['local[2]']['jvm_peak_rss_mb']:.0f} MB (local[2])")
        for master in ("local[1]", "local[2]"):
            print(f"{rows:>11,} {master}: Spark start {result[master]['spark_start_seconds']:.1f} s, first job "
                  f"(no-op over the data) {result[master]['first_job_seconds']:.1f} s")
    (args.work / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
