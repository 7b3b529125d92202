"""`tfsconvert parity`, on the driver: settle the job, start Spark, cut the data into tasks (the workers read
Parquet and TFRecord files themselves, Spark reads CSV), score every partition in the Python workers,
merge their statistics, report, and write golden requests."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from tfsconvert.errors import InfrastructureError, InputError, TfsConvertError
from tfsconvert.naming import LABEL
from tfsconvert.parity import data, golden_writer, oracle, pieces, plan, remote, scoring, stats
from tfsconvert.parity.report import ParityReport, field_reports

PROGRESS_SECONDS = 5.0


@dataclass
class ParityOptions:
    data: Path
    atol: float | None = None
    rtol: float | None = None
    allow_flips: float | None = None
    spark_master: str | None = None
    spark_conf: list[str] = field(default_factory=list)
    pmml_evaluator: str = "jpmml"
    trust_pickle: bool = False
    feature_names: str | None = None  # a scikit-learn model fitted on a plain array
    worst: int = 10
    write_golden: int | None = None
    force: bool = False
    seed: int = 0


def parse_conf(items: list[str]) -> dict[str, str]:
    """`--spark-conf k=v` (repeatable) as a dict."""
    conf = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError("bad-option", f"--spark-conf {item!r} is not KEY=VALUE",
                             "e.g. --spark-conf spark.sql.execution.arrow.maxRecordsPerBatch=20000")
        conf[key.strip()] = value
    return conf


def check_master(master: str | None) -> None:
    """A spark:// master that does not answer is reported before Spark spends a minute retrying it."""
    if not master or not master.startswith("spark://"):
        return
    for address in master[len("spark://"):].split(","):
        url = urlparse("spark://" + address)
        try:
            with socket.create_connection((url.hostname, url.port or 7077), timeout=5):
                return
        except (OSError, ValueError) as error:
            reason = getattr(error, "strerror", None) or str(error)
    raise InfrastructureError("spark-master-unreachable", f"--spark-master {master} does not answer: {reason}",
                              "check the URL and that the Spark master is running (or leave --spark-master out "
                              "for local[*])")


def parity(src: Path, artifact: Path, options: ParityOptions, progress=lambda _: None) -> ParityReport:
    from tfsconvert.convert.tabular import parse_feature_names
    from tfsconvert.convert.tabular_parity import check_allow_flips

    kind = plan.source_kind(src)
    version, fmt = plan.artifact_version(artifact)
    atol, rtol = plan.tolerances(kind, fmt, options.atol, options.rtol)
    allow_flips = check_allow_flips(options.allow_flips) or 0.0
    conf = parse_conf(options.spark_conf)
    names = parse_feature_names(options.feature_names)
    if options.write_golden is not None and options.write_golden < 1:
        raise InputError("bad-option", f"--write-golden {options.write_golden}: give at least 1 row",
                         "e.g. --write-golden 16")
    golden_path = golden_writer.target(version, options.force) if options.write_golden else None
    data_kind, files = data.data_format(options.data)  # a missing or unknown --data before Spark starts
    check_master(options.spark_master)
    if fmt == "pmml":
        from tfsconvert.runtimes.pmml import check_installed

        check_installed(options.pmml_evaluator)
    job = plan.Job(str(src.resolve()), kind, str(version.resolve()), fmt, [], {}, atol, rtol,
                   pmml_engine=options.pmml_evaluator, worst=options.worst,
                   golden=options.write_golden or 0, sample=options.write_golden or 0, seed=options.seed,
                   feature_names=names)
    signature = None
    if kind == "sklearn":
        progress(f"loading {src}")
        plan.tabular_source(src, job, names, options.trust_pickle)
    elif kind != "spark-pipeline":
        signature = plan.tf_signature(version, fmt)
        job.columns, job.fields = plan.tf_columns(version, signature)

    groups = pieces.parquet_groups(files, job.columns) if kind != "spark-pipeline" and data_kind == "parquet" else []

    spark = _session(options.spark_master, conf, progress)
    master = spark.sparkContext.master
    frame, work = _rows(spark, src, job, options, (data_kind, files, groups), progress)
    started = time.monotonic()
    parts = _score(spark, job, progress, frame, work)
    seconds = time.monotonic() - started
    total = stats.merge(parts, job.worst, job.golden, job.sample)
    report = ParityReport(str(src), kind, str(version), fmt, str(options.data), master, atol, rtol, allow_flips,
                          total.rows, len(parts), seconds, field_reports(total, job.fields, allow_flips),
                          total.worst, evaluator=options.pmml_evaluator if fmt == "pmml" else None)
    if golden_path is not None and report.ok:
        rows = [r for _, r in total.golden]
        seen = {r["row"] for r in rows}
        rows += [r for _, r in total.sample if r["row"] not in seen]
        written = golden_writer.records(job, rows, signature)
        golden_writer.write(golden_path, written)
        report.golden, report.golden_records = str(golden_path), len(written)
    return report


def _session(master: str | None, conf: dict, progress):
    """The Spark session, with the Python workers running this interpreter and importing this tfsconvert."""
    from tfsconvert.convert import spark_session
    from tfsconvert.convert.pmml_writer import check_java, installed

    root = str(Path(__file__).resolve().parents[2])
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *filter(None, paths)])
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    installed("pyspark", "pyspark", "spark")
    check_java(users="Spark")
    session = spark_session.session(master, progress, conf or None)
    session.sparkContext.pythonExec = os.environ["PYSPARK_PYTHON"]
    return session


def _rows(spark, src: Path, job: plan.Job, options: ParityOptions, found: tuple, progress):
    """(a Spark DataFrame, None) for Spark to read the rows (CSV; any data beside a Spark source), or (None,
    the tasks' pieces) for the workers to read Parquet or TFRecord files themselves."""
    data_kind, files, groups = found
    tasks = spark.sparkContext.defaultParallelism * data.TASKS_PER_CORE
    if job.source_kind == "spark-pipeline":
        return _spark_source_frame(spark, src, job, options, progress), None
    if data_kind == "parquet":
        return None, pieces.parquet_tasks(groups, tasks)
    if data_kind == "tfrecord":
        return None, pieces.tfrecord_tasks(files, tasks)
    frame = data.read(spark, options.data, job.columns)
    data.check_columns(data.spark_types(frame.schema), job.columns, str(options.data))
    return frame.select(*[c.name for c in job.columns]), None


def _spark_source_frame(spark, src: Path, job: plan.Job, options: ParityOptions, progress):
    """A Spark PipelineModel source is scored by Spark itself: its prediction (and probability vector) become
    two more columns of the data, next to the input columns the workers give the artifact."""
    from pyspark.sql import functions

    from tfsconvert.inspect import spark_model

    inputs = spark_model.describe(src).versions[0].details["inputs"]
    guessed = [plan.Column(name, "DT_STRING" if spec["dtype"] == "DT_STRING" else "DT_DOUBLE")
               for name, spec in inputs.items()]
    frame = data.read(spark, options.data, guessed)
    data.check_columns(data.spark_types(frame.schema), guessed, str(options.data))
    types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    schema = {c.name: types[c.name] if types[c.name] in oracle.SPARK_TYPES else
              ("string" if c.string else "double") for c in guessed}
    progress(f"loading {src} in Spark")
    source = oracle.load_pipeline(src)
    job.columns = [plan.Column(name, "DT_STRING" if kind == "string" else "DT_DOUBLE") for name, kind in schema.items()]
    job.fields = source.fields()
    job.label_fields = (LABEL,) if source.task == "classifier" else ()
    job.spark = {"task": source.task, "classes": source.classes,
                 "label_dtype": job.fields[LABEL] if source.task == "classifier" else None,
                 "has_proba": source.has_proba}
    typed = frame.select(*[functions.col(n).cast(k).alias(n) for n, k in schema.items()])
    return source.answered(typed, scoring.PREDICTION_COLUMN, scoring.PROBABILITY_COLUMN)


def _score(spark, job: plan.Job, progress, frame=None, work=None) -> list[stats.PartitionStats]:
    """Every partition scored in the Python workers, one JSON line of statistics back from each: mapInPandas
    over Spark's rows (`frame`), or mapPartitions over the workers' own pieces of the files (`work`)."""
    from tfsconvert.convert.spark_session import quiet

    context = spark.sparkContext
    rows_done = context.accumulator(0)
    partitions = len(work) if work is not None else frame.rdd.getNumPartitions()
    progress(f"scoring {partitions} partitions")
    done, started = threading.Event(), time.monotonic()
    reporter = threading.Thread(target=_report_progress, args=(context, rows_done, partitions, done, progress),
                                daemon=True)
    reporter.start()
    try:
        with quiet():
            if work is not None:
                collected = context.parallelize(work, max(1, partitions)).mapPartitions(
                    scoring.piece_scorer(job, rows_done)).collect()
            else:
                collected = [row["stats"] for row in frame.mapInPandas(
                    scoring.partition_scorer(job, rows_done), "stats string").collect()]
    except TfsConvertError:
        raise
    except Exception as error:  # noqa: BLE001 - Py4J/Spark wrap the worker's error in their own
        found = remote.unwrap(error)
        if found is not None:
            raise found from None
        from tfsconvert.convert.spark_source import java_message

        raise InfrastructureError("spark-job-failed", f"the Spark job failed: {java_message(error)}",
                                  "re-run with --debug to see Spark's log") from None
    finally:
        done.set()
        reporter.join()
    parts = [stats.PartitionStats.from_json(json.loads(line)) for line in collected]
    _rate(progress, sum(p.rows for p in parts), started, f"all {partitions} partitions done")
    return parts


def _report_progress(context, rows_done, partitions: int, done: threading.Event, progress) -> None:
    """Rows scored (from finished tasks) and rows/s, every PROGRESS_SECONDS until the job ends."""
    started = time.monotonic()
    while not done.wait(PROGRESS_SECONDS):
        tracker = context.statusTracker()
        finished = sum(info.numCompletedTasks for stage in tracker.getActiveStageIds()
                       if (info := tracker.getStageInfo(stage)) is not None)
        _rate(progress, rows_done.value, started, f"{finished} of {partitions} partitions done")


def _rate(progress, rows: int, started: float, where: str) -> None:
    elapsed = time.monotonic() - started
    progress(f"scored {rows:,} rows ({where}), {rows / elapsed if elapsed else 0:,.0f} rows/s")
