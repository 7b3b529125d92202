"""The Python workers' side: each process loads the source and the artifact once (a per-process
cache, reused by every task Spark gives it) with the runtimes the server uses, scores each Arrow
batch with both, and folds the comparison into one partition's statistics (tfsconvert.parity.stats).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np

from tfsconvert import dtypes, rest_codec
from tfsconvert.dtypes import label_array
from tfsconvert.errors import InputError, TfsConvertError, one_line, root_cause
from tfsconvert.naming import LABEL, PREDICTION, probability_field
from tfsconvert.parity import data, oracle, pieces, remote
from tfsconvert.parity.plan import SIGNATURE, Job
from tfsconvert.parity.stats import FieldErrors, FieldStats, PartitionStats, TopK, compare_field

PREDICTION_COLUMN = "__tfsconvert_prediction"  # a Spark source's answers, computed by Spark before the workers
PROBABILITY_COLUMN = "__tfsconvert_probability"
_CACHE: dict = {}
THREADS = 1  # per runtime in a worker: Spark runs one worker per core already


def partition_scorer(job: Job, rows_done=None):
    """The function `mapInPandas` runs on each partition of Spark's rows: one row of JSON statistics out."""

    def score(batches):
        import pandas as pd

        yield pd.DataFrame({"stats": [_scored(job, batches, rows_done)]})

    return score


def piece_scorer(job: Job, rows_done=None):
    """The function `mapPartitions` runs on a task's pieces of the files (tfsconvert.parity.pieces): the
    worker reads them itself, and sends back one line of JSON statistics."""

    def score(tasks):
        yield _scored(job, (frame for task in tasks for piece in task for frame in pieces.frames(piece, job.columns)),
                      rows_done)

    return score


def _scored(job: Job, frames, rows_done) -> str:
    try:
        return json.dumps(_score_partition(job, frames, rows_done).to_json())
    except Exception as error:  # noqa: BLE001 - every failure reaches the driver as one marked line
        raise remote.wrap(error) from None


def _where() -> str:
    from pyspark import TaskContext

    context = TaskContext.get()
    return f"partition {context.partitionId() if context else 0} on {socket.gethostname()}"


def scorer(job: Job) -> "Scorer":
    """This process's Scorer for `job` (loaded on first use)."""
    key = (job.source, job.artifact, job.pmml_engine)
    if key not in _CACHE:
        for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
            os.environ.setdefault(name, str(THREADS))
        _CACHE.clear()
        _CACHE[key] = Scorer(job)
    return _CACHE[key]


class Scorer:
    """The source and the artifact of one job, loaded in this process."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.source = _loaded("source", job.source, lambda: _load_source(job))
        self.artifact = _loaded("artifact", job.artifact, lambda: _load_artifact(job))

    def score(self, frame, inputs: dict[str, np.ndarray]) -> tuple[dict, dict]:
        """(expected, actual): field -> array over the batch's rows."""
        job = self.job
        try:
            if job.source_kind == "spark-pipeline":
                expected = _spark_answers(job, frame)
            elif job.source_kind == "sklearn":
                expected = self.source.answers(inputs)
            else:
                expected = self.source(inputs)
        except TfsConvertError:
            raise
        except Exception as error:  # noqa: BLE001
            raise InputError("source-failed", f"the source {job.source} failed on the rows of {_where()}: "
                             f"{one_line(root_cause(error))}", "check those rows in --data") from None
        try:
            actual = self.artifact(inputs)
        except TfsConvertError:
            raise
        except Exception as error:  # noqa: BLE001
            raise InputError("artifact-failed", f"the artifact {job.artifact} failed on the rows of {_where()}: "
                             f"{one_line(root_cause(error))}", "check those rows in --data") from None
        return expected, actual


def _loaded(what: str, path: str, load):
    try:
        return load()
    except TfsConvertError as error:
        raise type(error)(error.code, f"{error.message} (loading the {what} in {_where()})", error.hint) from None
    except Exception as error:  # noqa: BLE001
        raise InputError("load-failed", f"the {what} {path} failed to load in {_where()}: "
                         f"{one_line(root_cause(error))}", "check that it loads: tfsconvert inspect " + path) from None


def _load_source(job: Job):
    """The reference: the original source run by its own framework (tfsconvert.parity.oracle)."""
    if job.source_kind == "spark-pipeline":
        return None  # Spark scored it before the workers
    if job.source_kind == "sklearn":
        return oracle.load_tabular(Path(job.source), job.feature_names)
    from tfsconvert.parity import oracle_tf

    return oracle_tf.load(Path(job.source), job.source_kind, [c.name for c in job.columns], list(job.fields))


def _load_artifact(job: Job):
    """A function inputs -> field arrays, through the server's runtime for the format."""
    path = job.model_file
    if job.artifact_format == "pmml":
        import importlib
        import sys

        from tfsconvert.runtimes.pmml import PmmlModel

        # Spark puts its spark-core jar on the workers' sys.path, where its org/ directory would shadow the Java
        # packages JPype imports as `org.jpmml...`.
        sys.path[:] = [entry for entry in sys.path if not entry.endswith(".jar")]
        if ".jar" in str(getattr(sys.modules.get("org"), "__path__", "")):
            del sys.modules["org"]
        importlib.invalidate_caches()

        return PmmlModel(path, job.pmml_engine, threads=THREADS).predict
    if job.artifact_format == "onnx":
        from tfsconvert.runtimes.onnx import OnnxModel

        model = OnnxModel(path, threads=THREADS)
        return model.predict if model.task else model.run
    from tfsconvert.runtimes.tf import ServingSession

    session = ServingSession(Path(job.artifact), threads=(THREADS, THREADS))
    return lambda feeds: session.run(SIGNATURE, feeds)


def _spark_answers(job: Job, frame) -> dict[str, np.ndarray]:
    """A Spark source's answers from the columns Spark added (prediction index, probability vector)."""
    spark = job.spark
    prediction = frame[PREDICTION_COLUMN].to_numpy(dtype=np.float64)
    if spark["task"] == "regressor":
        return {PREDICTION: prediction}
    classes = spark["classes"]
    out = {LABEL: label_array([classes[int(i)] for i in prediction], spark["label_dtype"])}
    if spark["has_proba"]:
        proba = np.stack(frame[PROBABILITY_COLUMN].to_numpy()).astype(np.float64)
        out.update({probability_field(c): proba[:, j] for j, c in enumerate(classes)})
    return out


# ---------------------------------------------------------------------------------------------
# One partition


def _score_partition(job: Job, batches, rows_done) -> PartitionStats:
    from pyspark import TaskContext

    context = TaskContext.get()
    part = context.partitionId() if context else 0
    fields = {name: FieldStats() for name in job.fields}
    worst, best_golden = TopK(job.worst), TopK(job.golden)
    sample: list = []
    rng = np.random.default_rng([job.seed, part])
    model = None
    rows = 0
    for frame in batches:
        n = len(frame)
        if n == 0:
            continue
        model = model or scorer(job)
        inputs = data.arrays(frame, job.columns)
        expected, actual = model.score(frame, inputs)
        errors = {name: _field_errors(job, name, expected, actual, n) for name in job.fields}
        for name, found in errors.items():
            fields[name].add(found)
        over = np.sum([e.over for e in errors.values()], axis=0)
        score = np.max([e.abs for e in errors.values()], axis=0)
        usable = (over == 0) & _complete(inputs, n)

        def record(i: int) -> dict:
            return _record(job, f"{part}:{rows + i}", inputs, expected, actual, i)

        for i in np.lexsort((-score, -over))[:job.worst]:
            key = (int(over[i]), float(score[i]))
            if worst.would_take(key):
                worst.offer(key, record(int(i)))
        if job.golden:
            for i in np.flatnonzero(usable)[np.argsort(-score[usable], kind="stable")][:job.golden]:
                if best_golden.would_take((float(score[i]),)):
                    best_golden.offer((float(score[i]),), record(int(i)))
        if job.sample:
            keys = np.where(usable, rng.random(n), np.inf)
            chosen = np.argsort(keys, kind="stable")[:job.sample]
            sample = sorted(sample + [(float(keys[i]), record(int(i))) for i in chosen if np.isfinite(keys[i])],
                            key=lambda item: item[0])[:job.sample]
        rows += n
        if rows_done is not None:
            rows_done.add(n)
    return PartitionStats(rows, fields, worst.items(), best_golden.items(), sample)


def _field_errors(job: Job, name: str, expected: dict, actual: dict, n: int) -> FieldErrors:
    if name not in actual or name not in expected:
        side = "artifact" if name not in actual else "source"
        return FieldErrors(np.full(n, np.inf), None, np.ones(n, bool), None, f"missing output (the {side} has none)")
    return compare_field(np.asarray(expected[name]), np.asarray(actual[name]), job.atol, job.rtol,
                         name in job.label_fields)


def _complete(inputs: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Rows without a blank (a REST instance cannot carry a missing value)."""
    ok = np.ones(n, bool)
    for values in inputs.values():
        if values.dtype.kind == "f":
            ok &= ~np.isnan(values.reshape(n, -1)).any(axis=1)
        elif values.dtype.kind == "O" and values.ndim == 1:
            ok &= np.asarray([v is not None for v in values], dtype=bool)
    return ok


def _record(job: Job, row: str, inputs: dict, expected: dict, actual: dict, i: int) -> dict:
    """One row as JSON: its inputs (TF Serving's REST encoding for tensors) and both answers."""
    def encode(values: dict, types: dict) -> dict:
        out = {}
        for name, array in values.items():
            value = np.asarray(array)[i]
            out[name] = rest_codec.encode_tensor(np.asarray(value), types.get(name) or dtypes.dtype_name(
                np.asarray(array)), name)
        return out

    column_types = {c.name: ("DT_DOUBLE" if job.tabular and not c.string else c.dtype) for c in job.columns}
    shown = {name: _plain(values[i]) for name, values in inputs.items()} if job.tabular else encode(
        inputs, column_types)
    return {"row": row, "inputs": shown, "expected": encode({k: v for k, v in expected.items() if k in job.fields},
                                                            job.fields),
            "actual": encode({k: v for k, v in actual.items() if k in job.fields}, {})}


def _plain(value):
    """A tabular cell as JSON: a number, text, or None for a blank."""
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and np.isnan(value) else value
