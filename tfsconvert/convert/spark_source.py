"""A saved Spark ML PipelineModel as a conversion source: its input columns and their types (the
schema), its rows, and its answers from Spark's `transform` as the named response fields of
docs/tabular.md (`label` / `probability(<class>)` / `prediction`).

Everything that can go wrong without Spark (not a Spark model, no classifier or regressor, a bad
`--schema`, bad `--sample-data`) is checked by `prepare` before the ~20 s Spark start; `load`
then starts (or reuses) the process's Spark session and loads the pipeline.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfsconvert.convert import tabular
from tfsconvert.convert.sklearn_source import (LABEL, NUMERIC, PREDICTION, STRING, Feature, SklearnSource,
                                               label_array, probability_field)
from tfsconvert.errors import InputError
from tfsconvert.inspect import spark_model

# --schema type names (Spark's simpleString names and the usual aliases) -> Spark simpleString.
SCHEMA_TYPES = {"double": "double", "float": "float", "int": "int", "integer": "int", "bigint": "bigint",
                "long": "bigint", "string": "string"}
_INTEGER_TYPES = {"int", "bigint"}
_PARQUET_TYPES = {"double": "double", "float": "float", "int8": "int", "int16": "int", "int32": "int",
                  "int64": "bigint", "string": "string", "large_string": "string"}
_TASKS = {"org.apache.spark.ml.classification.": "classifier", "org.apache.spark.ml.regression.": "regressor"}
_STRING_INDEXER = "org.apache.spark.ml.feature.StringIndexerModel"
_INDEX_TO_STRING = "org.apache.spark.ml.feature.IndexToString"
_THRESHOLD = re.compile(r"feature (\d+) <= (-?[\d.]+(?:[eE][-+]?\d+)?)")
_SCHEMA_EXAMPLE = '{"a": "double", "b": "double", "color": "string"}'


@dataclass
class Stage:
    """One stage of the (flattened) pipeline, from its metadata."""

    index: str
    cls: str  # full Java class name
    uid: str
    inputs: list[str]
    outputs: list[str]
    serving: bool  # False: only builds the label column at fitting time
    params: dict = field(default_factory=dict)  # the metadata's paramMap over its defaultParamMap

    @property
    def short(self) -> str:
        return spark_model._short(self.cls)

    def describe(self) -> str:
        return f"{self.short} (stage {self.index}, uid {self.uid})"


@dataclass
class SparkPlan:
    """What the metadata, `--schema` and `--sample-data` settle before Spark starts."""

    path: Path
    stages: list[Stage]
    predictor: int  # position in `stages`
    task: str
    schema: dict[str, str]  # input column -> Spark type
    label_schema: dict[str, str]  # label column(s) -> Spark type (JPMML needs them; serving does not)
    schema_from: str
    rows: list[dict] | None  # from --sample-data, else synthesized after loading

    @property
    def features(self) -> list[Feature]:
        return [Feature(name, STRING if kind == "string" else NUMERIC) for name, kind in self.schema.items()]


@dataclass
class SparkSource(SklearnSource):
    """A loaded PipelineModel. It reuses SklearnSource's response-field logic (label dtype, field
    names), so the PMML and ONNX writers' signatures and output mappings apply unchanged."""

    plan: SparkPlan | None = None
    session: Any = None
    flat: list = field(default_factory=list)  # pyspark stage objects in `plan.stages` order

    @property
    def class_name(self) -> str:
        return "Spark PipelineModel (" + ", ".join(s.short for s in self.plan.stages) + ")"

    @property
    def predictor(self):
        return self.flat[self.plan.predictor]

    @property
    def label_column(self) -> str:
        return next(iter(self.plan.label_schema), self.predictor.getLabelCol())

    def struct(self, with_labels: bool = False):
        """The Spark StructType of the input columns (and the label columns, for JPMML)."""
        from pyspark.sql import types

        spark_types = {"double": types.DoubleType, "float": types.FloatType, "int": types.IntegerType,
                       "bigint": types.LongType, "string": types.StringType}
        columns = {**self.plan.schema, **(self.plan.label_schema if with_labels else {})}
        return types.StructType([types.StructField(name, spark_types[kind](), True) for name, kind in columns.items()])

    def frame(self, rows: list[dict]):
        """The rows as a Spark DataFrame with the schema's types."""
        schema = self.plan.schema
        records = [tuple(int(row[name]) if kind in _INTEGER_TYPES and row[name] is not None else row[name]
                         for name, kind in schema.items()) for row in rows]
        return self.session.createDataFrame(records, self.struct())

    def predict(self, rows: list[dict]) -> list[dict[str, np.ndarray]]:
        """Spark's answer for every row (`transform`), as response field -> one-element array."""
        from tfsconvert.convert.spark_session import quiet

        predictor = self.predictor
        columns = [predictor.getPredictionCol()] + ([predictor.getProbabilityCol()] if self.has_proba else [])
        try:
            with quiet():
                answers = self.model.transform(self.frame(rows)).select(*columns).collect()
        except Exception as error:  # noqa: BLE001 - Spark reports bad rows as many exception types
            raise InputError("predict-failed", f"Spark cannot transform the sample rows with {self.path}: "
                             f"{java_message(error)}",
                             "pass rows the model accepts with --sample-data FILE (CSV or Parquet with one "
                             "column per input)") from None
        out = []
        for answer in answers:
            if self.task == "regressor":
                out.append({PREDICTION: np.asarray([answer[0]], dtype=np.float64)})
                continue
            fields = {LABEL: label_array([self.classes[int(answer[0])]], self.label_dtype())}
            if self.has_proba:
                proba = np.asarray(answer[1].toArray(), dtype=np.float64)
                fields.update({probability_field(c): proba[j:j + 1] for j, c in enumerate(self.classes)})
            out.append(fields)
        return out


def java_message(error: Exception) -> str:
    """The first line of what Spark/JPMML said, without the Java stack trace."""
    java = getattr(error, "java_exception", None)
    text = None
    if java is not None:
        try:
            cause = java
            while cause.getCause() is not None:  # the job failure wraps the task's exception
                cause = cause.getCause()
            text = f"{cause.getClass().getSimpleName()}: {cause.getMessage()}"
        except Exception:  # noqa: BLE001 - the gateway may be gone
            text = None
    text = text or getattr(error, "desc", None) or str(error) or type(error).__name__
    return (text.strip().splitlines() or [""])[0][:300]


# ---------------------------------------------------------------------------------------------
# Before Spark: the metadata, the schema and the rows


def prepare(path: Path, schema_text: str | None, sample_data: Path | None, count: int | None) -> SparkPlan:
    """Read the pipeline's metadata, settle the schema and read `--sample-data`, all without Spark."""
    path = Path(path)
    details = spark_model.describe(path).versions[0].details  # not a Spark model: one-line errors
    full = spark_model._stages(path, spark_model._metadata(path))
    stages = [Stage(s["index"], f["class"], s["uid"], s["inputs"], s["outputs"], "serving" not in s, f["params"])
              for s, f in zip(details["stages"], full)]
    predictor, task = _predictor(path, stages)
    kinds = _input_kinds(path, details["inputs"], stages, predictor)
    if schema_text is not None:
        given, schema_from = parse_schema(schema_text), "--schema"
        missing = [column for column in kinds if column not in given]
        if missing:
            raise InputError("bad-schema", f"--schema has no type for {', '.join(missing)}; {path} reads "
                             f"{', '.join(kinds)}", "give every input column a type, e.g. --schema '"
                             + _example(kinds) + "'")
    elif sample_data is not None:
        given, schema_from = _file_types(Path(sample_data), kinds), f"--sample-data {sample_data}"
    else:
        raise InputError("missing-schema",
                         f"{path} is a Spark model: converting it needs the types of its input columns "
                         f"({', '.join(kinds)}), from --sample-data or --schema",
                         f"pass --sample-data FILE (a CSV or Parquet file with those columns), or --schema '"
                         f"{_example(kinds)}' (types guessed from the pipeline's stages: check them)")
    schema = {column: given.get(column, kind) for column, kind in kinds.items()}
    labels = {column: given.get(column, "string" if _indexed(stages, column) else "double")
              for column in details["label_columns"]}
    plan = SparkPlan(path, stages, predictor, task, schema, labels, schema_from, None)
    if sample_data is not None:
        plan.rows = _integral(tabular.read_rows(Path(sample_data), plan.features, count), schema, sample_data)
    return plan


def _predictor(path: Path, stages: list[Stage]) -> tuple[int, str]:
    """The last classification or regression stage, and the task."""
    for position in reversed(range(len(stages))):
        for prefix, task in _TASKS.items():
            if stages[position].cls.startswith(prefix):
                return position, task
    raise InputError("unsupported-estimator",
                     f"{path} has no classification or regression stage (stages: "
                     f"{', '.join(s.short for s in stages)})",
                     "tfsconvert pmml / onnx convert Spark ML pipelines ending in a classifier or a regressor")


def _input_kinds(path: Path, inputs: dict, stages: list[Stage], predictor: int) -> dict[str, str]:
    """Raw input column -> "string" or "double", as the reading stage suggests (tfsconvert inspect)."""
    kinds = {}
    for column, spec in inputs.items():
        if spec["shape"] != [-1]:
            reader = next((s for s in stages if column in s.inputs), stages[predictor])
            raise InputError("unsupported-format",
                             f"{path}: input column '{column}' is a vector column (read by {reader.describe()}); "
                             "a served request needs one plain field per column",
                             "fit the pipeline on plain columns, with a VectorAssembler building the vector")
        kinds[column] = "string" if spec["dtype"] == "DT_STRING" else "double"
    return kinds


def _indexed(stages: list[Stage], column: str) -> bool:
    """Whether a label-only StringIndexer reads `column` (a string label, e.g. species -> label)."""
    return any(s.cls == _STRING_INDEXER and not s.serving and column in s.inputs for s in stages)


def _example(kinds: dict[str, str]) -> str:
    return json.dumps(kinds)


def parse_schema(text: str) -> dict[str, str]:
    """`--schema`: inline JSON or a JSON file; `{"column": "type"}` or Spark's `df.schema.json()`."""
    hint = f"give a JSON object of column -> type, e.g. --schema '{_SCHEMA_EXAMPLE}', or a file holding one"
    if not text.lstrip().startswith(("{", "[")):
        file = Path(text)
        if not file.is_file():
            raise InputError("path-not-found", f"--schema {text}: no such file (and not inline JSON)", hint)
        text = file.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError("bad-schema", f"--schema is not valid JSON: {error}", hint) from None
    if isinstance(data, dict) and data.get("type") == "struct" and isinstance(data.get("fields"), list):
        data = {f.get("name"): f.get("type") for f in data["fields"] if isinstance(f, dict)}
    if not isinstance(data, dict) or not data:
        raise InputError("bad-schema", "--schema must be a non-empty JSON object of column -> type", hint)
    bad = [f"{name}: {kind!r}" for name, kind in data.items()
           if not isinstance(kind, str) or kind.lower() not in SCHEMA_TYPES]
    if bad:
        raise InputError("bad-schema", f"--schema: unsupported type for {', '.join(bad)}",
                         "use one of double, float, int, bigint, string (also integer, long)")
    return {str(name): SCHEMA_TYPES[kind.lower()] for name, kind in data.items()}


def _file_types(path: Path, kinds: dict[str, str]) -> dict[str, str]:
    """Column types a sample file states: a Parquet file's own types; a CSV has none, so the
    pipeline's stages decide (string for a StringIndexer's input, double otherwise)."""
    if path.suffix.lower() not in (".parquet", ".pq") or not path.is_file():
        return dict(kinds)  # tabular.read_rows reports a missing file or an unknown format
    try:
        import pyarrow.parquet as pq

        arrow = pq.read_schema(path)
    except ImportError:
        return dict(kinds)  # read_rows explains that Parquet needs pyarrow
    except Exception as error:  # noqa: BLE001 - pyarrow raises many types for a file it cannot parse
        raise InputError("bad-sample-data", f"--sample-data {path} cannot be read: {str(error)[:200]}",
                         "pass a .csv or .parquet file with one column per input") from None
    return {name: _PARQUET_TYPES.get(str(arrow.field(name).type), kinds.get(name, "double"))
            for name in arrow.names}


def _integral(rows: list[dict], schema: dict[str, str], source) -> list[dict]:
    for column, kind in schema.items():
        if kind not in _INTEGER_TYPES:
            continue
        for i, row in enumerate(rows):
            if row[column] is not None and not float(row[column]).is_integer():
                raise InputError("bad-sample-data", f"--sample-data {source}: row {i + 1}, column '{column}' is "
                                 f"{row[column]!r}, but the schema says {kind}", "give whole numbers in integer "
                                 "columns, or declare the column double with --schema")
    return rows


# ---------------------------------------------------------------------------------------------
# With Spark: load the pipeline, its classes and what the fitted stages say about the columns


def load(plan: SparkPlan, count: int | None, master: str | None, progress) -> tuple[SparkSource, list[dict]]:
    """Start (or reuse) Spark, load the pipeline; the source and its sample rows."""
    from tfsconvert.convert import spark_session

    session = spark_session.session(master, progress)
    progress(f"loading {plan.path} in Spark")
    with spark_session.quiet():
        from pyspark.ml import PipelineModel

        try:
            model = PipelineModel.load(str(plan.path.resolve()))  # the JVM has its own working directory
        except Exception as error:  # noqa: BLE001 - a bad stage directory fails in many ways
            raise InputError("corrupt-model-file", f"Spark cannot load {plan.path}: {java_message(error)}",
                             "save the PipelineModel again with pipelineModel.write().overwrite().save(path)"
                             ) from None
    flat = _flatten(model)
    if [s.uid for s in flat] != [s.uid for s in plan.stages]:
        raise InputError("corrupt-model-file", f"{plan.path}: the stages Spark loads differ from its metadata",
                         "save the PipelineModel again with pipelineModel.write().overwrite().save(path)")
    predictor = flat[plan.predictor]
    classes, has_proba = None, False
    if plan.task == "classifier":
        classes = _classes(plan, flat, predictor)
        has_proba = hasattr(predictor, "getProbabilityCol") and bool(predictor.getProbabilityCol())
    source = SparkSource(plan.path, model, plan.features, plan.task, classes, True, has_proba, plan=plan,
                         session=session, flat=flat)
    if plan.rows is not None:
        return source, plan.rows
    with spark_session.quiet():
        _describe_columns(source)
    rows = tabular.synthesize(source.features, count)
    for column, kind in plan.schema.items():
        if kind in _INTEGER_TYPES:
            for row in rows:
                row[column] = None if row[column] is None else float(round(row[column]))
    return source, rows


def _flatten(model) -> list:
    out = []
    for stage in model.stages:
        out.extend(_flatten(stage) if hasattr(stage, "stages") else [stage])
    return out


def _classes(plan: SparkPlan, flat: list, predictor) -> list:
    """Class j of the probability vector: the label indexer's labels, an IndexToString's labels, else j."""
    count = int(predictor.numClasses)
    label = predictor.getLabelCol()
    prediction = predictor.getPredictionCol()
    for meta, stage in zip(plan.stages, flat):
        if meta.cls == _STRING_INDEXER and label in meta.outputs:
            return list(stage.labelsArray[meta.outputs.index(label)])[:count]
        if meta.cls == _INDEX_TO_STRING and prediction in meta.inputs and stage.getLabels():
            return list(stage.getLabels())[:count]
    return list(range(count))


def _describe_columns(source: SparkSource) -> None:
    """Categories of the columns a StringIndexer reads, and split thresholds (and value ranges) from a
    tree model's debug string."""
    by_name = {f.name: f for f in source.features}
    for meta, stage in zip(source.plan.stages, source.flat):
        if meta.cls != _STRING_INDEXER or not meta.serving:
            continue
        for column, labels in zip(meta.inputs, stage.labelsArray):
            feature = by_name.get(column)
            if feature is not None:
                feature.categories = [v if feature.kind == STRING else float(v) for v in labels]
                feature.accepts_unseen = stage.getHandleInvalid() == "keep"
    predictor = source.predictor
    debug = getattr(predictor, "toDebugString", "")
    splits = _THRESHOLD.findall(debug) if isinstance(debug, str) else []
    if not splits:
        return
    empty = source.session.createDataFrame([], source.struct())
    attrs = source.model.transform(empty).schema[predictor.getFeaturesCol()].metadata.get("ml_attr", {})
    slots = {a["idx"]: a.get("name") for group in attrs.get("attrs", {}).values() for a in group}
    thresholds: dict[str, list[float]] = {}
    for slot, value in splits:
        feature = by_name.get(slots.get(int(slot)))
        if feature is not None and feature.kind == NUMERIC and not feature.categories:
            thresholds.setdefault(feature.name, []).append(float(value))
    for name, values in thresholds.items():
        by_name[name].thresholds = values
        low, high = min(values), max(values)
        margin = max(0.1 * (high - low), 0.5 if high == low else 0.0)
        by_name[name].distribution, by_name[name].a, by_name[name].b = "uniform", low - margin, high + margin
