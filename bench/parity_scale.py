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
  - local[1] and local[2]: `tfsconvert parity` in a fresh process and Spark session per (size, master,
    model), so that no model finds a worker another model warmed; scoring time from its report, peak
    RSS of the driver's Python process (getrusage) and of the Spark JVM (VmHWM), which in local mode
    also runs the executors. Printed apart: Spark's start, its first job (an empty task per core: the
    JVM's warm-up and the workers' start, nothing imported beyond the standard library), a job after
    the model that only reads every row as parity's workers do (the reading floor), and the cores the
    machine kept busy while the model was scored (/proc/stat).
Targets: local[2] >= 1.6x local[1]; local[2] >= the loop at 1M rows; driver RSS flat from 1M to 10M.

Usage: python bench/parity_scale.py [--rows 1000000,10000000] [--models gbt-onnx,gbt-pmml,mlp]
                                    [--repeat N] [--work DIR]
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


def spark_child(work: Path, path: Path, master: str, model: str) -> dict:
    """In a fresh process and Spark session: `parity` for `model` on `master`; its scoring rows/s, then a job
    that only reads the rows (parity's reading floor), and the driver's memory."""
    from tfsconvert.convert import spark_session
    from tfsconvert.parity.run import ParityOptions, parity

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # as `tfsconvert parity` sets it for its workers
    started = time.monotonic()
    spark = spark_session.session(master)
    out = {"spark_start_seconds": time.monotonic() - started}
    started = time.monotonic()
    cores = spark.sparkContext.defaultParallelism
    assert len(set(spark.sparkContext.parallelize(range(cores), cores).mapPartitions(_worker_pid).collect())) == cores
    out["first_job_seconds"] = time.monotonic() - started
    source, base = MODELS[model]
    began, busy = time.monotonic(), _busy_seconds()
    report = parity(work / source, work / "models" / base, ParityOptions(path, spark_master=master))
    assert report.ok, report.lines()
    wall = time.monotonic() - began
    out.update({"rows": report.rows, "seconds": report.seconds, "wall": wall,
                "rows_per_second": report.rows_per_second, "partitions": report.partitions,
                "cores_busy": (_busy_seconds() - busy) / wall})
    started = time.monotonic()
    assert _read_only(spark, path) == report.rows
    out["read_seconds"] = time.monotonic() - started
    from pyspark import SparkContext

    out["driver_python_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    status = Path(f"/proc/{SparkContext._gateway.proc.pid}/status").read_text()
    out["jvm_peak_rss_mb"] = int(next(line.split()[1] for line in status.splitlines()
                                      if line.startswith("VmHWM"))) / 1024
    return out


def _worker_pid(_) -> list[int]:
    """An empty task that lasts long enough for every core's Python worker to start."""
    time.sleep(0.5)
    return [os.getpid()]


def _busy_seconds() -> float:
    """CPU time of the whole machine so far (every core, every process), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _read_only(spark, path: Path) -> int:
    """A job that reads every row as parity's workers do (their pieces of the file, as pandas frames), and
    scores nothing."""
    from tfsconvert.parity import pieces
    from tfsconvert.parity.plan import Column

    columns = [Column(name, "DT_DOUBLE") for name in FEATURES]
    tasks = pieces.parquet_tasks(pieces.parquet_groups([path], columns), spark.sparkContext.defaultParallelism * 4)
    return sum(spark.sparkContext.parallelize(tasks, len(tasks)).mapPartitions(
        lambda mine: [sum(len(frame) for task in mine for piece in task for frame in pieces.frames(piece, columns))]
    ).collect())


def median_run(repeat: int, command: list[str]) -> dict:
    """The run of median scoring time among `repeat` fresh runs of a child printing its result as JSON."""
    runs = []
    for _ in range(repeat):
        proc = subprocess.run(command, env=env(), capture_output=True, text=True, cwd=REPO)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    runs.sort(key=lambda run: run["seconds"])
    return {**runs[len(runs) // 2], "all_seconds": [round(run["seconds"], 2) for run in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--models", default="gbt-onnx,gbt-pmml,mlp")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tfsconvert-parity-bench"))
    parser.add_argument("--repeat", type=int, default=1, help="fresh runs of each measurement; the median is kept")
    parser.add_argument("--child", nargs=2, metavar=("DATA", "MASTER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    models = args.models.split(",")
    if args.child:
        print(json.dumps(spark_child(args.work, Path(args.child[0]), args.child[1], args.models)))
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
            result["loop"][model] = median_run(args.repeat, [
                sys.executable, "-c", f"import json, sys; sys.path.insert(0, {str(REPO)!r}); from bench.parity_scale "
                f"import loop; from pathlib import Path; print(json.dumps(loop(Path({str(job_file)!r}), "
                f"Path({str(path)!r}))))"])
            print(rows, "loop", model, result["loop"][model], flush=True)
        for master in ("local[1]", "local[2]"):
            result[master] = {}
            for model in models:
                result[master][model] = median_run(args.repeat, [
                    sys.executable, str(Path(__file__).resolve()), "--work", str(args.work), "--models", model,
                    "--child", str(path), master])
                print(rows, master, model, result[master][model], flush=True)
        results[rows] = result
    print("\nrows/s (scoring, loading the models included; loop = one process, same work)")
    for rows, result in results.items():
        for model in models:
            one, two = result["local[1]"][model], result["local[2]"][model]
            base = result["loop"][model]["rows_per_second"]
            print(f"{rows:>11,} {model:9} loop {base:>9,.0f}  local[1] {one['rows_per_second']:>9,.0f}  local[2] "
                  f"{two['rows_per_second']:>9,.0f}  local[2]/local[1] {two['rows_per_second'] / one['rows_per_second']:.2f}"
                  f"  local[2]/loop {two['rows_per_second'] / base:.2f}  cores busy {one['cores_busy']:.2f} / "
                  f"{two['cores_busy']:.2f}")
            if args.repeat > 1:
                print(f"{'':>21} runs' seconds: loop {result['loop'][model]['all_seconds']}  local[1] "
                      f"{one['all_seconds']}  local[2] {two['all_seconds']}")
        for master in ("local[1]", "local[2]"):
            runs = result[master].values()
            print(f"{rows:>11,} {master}: Spark start {min(r['spark_start_seconds'] for r in runs):.1f}-"
                  f"{max(r['spark_start_seconds'] for r in runs):.1f} s, first job (starts the workers) "
                  f"{min(r['first_job_seconds'] for r in runs):.1f}-{max(r['first_job_seconds'] for r in runs):.1f} s, "
                  f"reading every row (no scoring) {min(r['read_seconds'] for r in runs):.1f}-"
                  f"{max(r['read_seconds'] for r in runs):.1f} s; driver peak RSS: python "
                  f"{max(r['driver_python_rss_mb'] for r in runs):.0f} MB, Spark JVM "
                  f"{max(r['jvm_peak_rss_mb'] for r in runs):.0f} MB")
    (args.work / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
