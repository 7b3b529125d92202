"""Reader for saved Spark ML PipelineModels: reads the metadata JSON directly, no Spark needed.

Layout (Spark 2.x-4.x): `<dir>/metadata/part-00000*` holds one JSON object (`class`, `uid`,
`sparkVersion`, `paramMap`, `defaultParamMap`); stage `i` lives in `<dir>/stages/<i>_<uid>/`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tfsconvert.errors import InputError
from tfsconvert.findings import finding
from tfsconvert.model import ModelDescription, TensorSpec
from tfsconvert.naming import is_generic

PIPELINE_MODEL = "org.apache.spark.ml.PipelineModel"
_INPUT_PARAMS = ("inputCol", "inputCols", "featuresCol")
_LABEL_PARAMS = ("labelCol",)  # needed to fit, not to serve
_OUTPUT_PARAMS = ("outputCol", "outputCols", "predictionCol", "probabilityCol", "rawPredictionCol")
# What a stage's raw input columns hold, by stage class (short name without the `Model` suffix).
_STRING_INPUTS = {"StringIndexer", "Tokenizer", "RegexTokenizer", "FeatureHasher"}
_NUMERIC_INPUTS = {"VectorAssembler", "OneHotEncoder", "Bucketizer", "QuantileDiscretizer", "Imputer",
                   "Binarizer", "Interaction"}


def _short(cls: str) -> str:
    name = cls.rsplit(".", 1)[-1]
    return name[:-5] if name.endswith("Model") and name != "PipelineModel" else name


def _metadata(directory: Path) -> dict:
    parts = sorted(p for p in (directory / "metadata").glob("part-*") if not p.name.endswith(".crc"))
    if not parts:
        raise InputError(
            "unsupported-format", f"{directory} is not a saved Spark ML model: no metadata/part-* file",
            "pass the directory written by pipelineModel.write().save(path)",
        )
    try:
        line = parts[0].read_text(encoding="utf-8").strip().splitlines()[0]
        meta = json.loads(line)
    except (OSError, UnicodeDecodeError, IndexError, json.JSONDecodeError) as error:
        raise InputError(
            "corrupt-model-file",
            f"{parts[0]} is not Spark ML metadata: cannot parse it as JSON ({error})",
            "save the PipelineModel again with pipelineModel.write().overwrite().save(path)",
        ) from None
    if not isinstance(meta, dict) or "class" not in meta:
        raise InputError("corrupt-model-file", f"{parts[0]} is not Spark ML metadata: no 'class' field",
                         "save the PipelineModel again with pipelineModel.write().overwrite().save(path)")
    return meta


def _params(meta: dict) -> dict:
    return {**meta.get("defaultParamMap", {}), **meta.get("paramMap", {})}


def _columns(params: dict, names) -> list[str]:
    out = []
    for name in names:
        value = params.get(name)
        out.extend(value if isinstance(value, list) else [value] if value else [])
    return out


def _stages(directory: Path, meta: dict, prefix: str = "") -> list[dict]:
    """The stages in order, nested PipelineModels flattened."""
    stages_dir = directory / "stages"
    dirs = {p.name.split("_", 1)[-1]: p for p in stages_dir.iterdir() if p.is_dir()} if stages_dir.is_dir() else {}
    result = []
    for index, uid in enumerate(_params(meta).get("stageUids", [])):
        stage_dir = dirs.get(uid)
        if stage_dir is None:
            raise InputError(
                "corrupt-model-file", f"{directory} lists stage {uid} but has no stages/<n>_{uid} directory",
                "copy the whole PipelineModel directory, or save it again",
            )
        stage_meta = _metadata(stage_dir)
        if stage_meta["class"] == PIPELINE_MODEL:
            result.extend(_stages(stage_dir, stage_meta, f"{prefix}{index}."))
            continue
        params = _params(stage_meta)
        result.append({
            "index": f"{prefix}{index}", "class": stage_meta["class"], "uid": stage_meta.get("uid", uid),
            "inputs": _columns(params, _INPUT_PARAMS), "label": _columns(params, _LABEL_PARAMS),
            "outputs": _columns(params, _OUTPUT_PARAMS), "params": params,
        })
    return result


def _serving_inputs(stages: list[dict]) -> tuple[dict[str, dict], list[str], list[bool]]:
    """Raw columns each live stage consumes that no earlier stage produced, and label-only columns.

    A stage whose outputs only feed `labelCol` (e.g. StringIndexer species -> label) is needed to
    fit but not to serve: Spark's StringIndexerModel skips a missing input column at transform time.
    """
    feature_uses, label_uses, live = set(), set(), [True] * len(stages)
    for i in reversed(range(len(stages))):
        stage = stages[i]
        outputs = set(stage["outputs"])
        if outputs and outputs <= (label_uses - feature_uses):
            live[i] = False
            label_uses |= set(stage["inputs"])
            continue
        feature_uses |= set(stage["inputs"])
        label_uses |= set(stage["label"])
    produced, raw = set(), {}
    for stage, is_live in zip(stages, live):
        for column in stage["inputs"] if is_live else []:
            if column not in produced:
                raw.setdefault(column, stage)
        produced |= set(stage["outputs"])
    labels = sorted(c for c in label_uses - feature_uses if c not in produced)
    return raw, labels, live


def _input_spec(column: str, stage: dict) -> TensorSpec:
    kind = _short(stage["class"])
    if kind in _STRING_INPUTS:
        return TensorSpec("DT_STRING", [-1], column, "string")
    if kind in _NUMERIC_INPUTS:
        return TensorSpec("DT_DOUBLE", [-1], column, "numeric")
    # any other stage (a scaler, a predictor's featuresCol) reads a Vector column
    return TensorSpec("DT_DOUBLE", [-1, -1], column, "vector (unknown size)")


def describe(path: Path) -> ModelDescription:
    """Describe a saved Spark ML PipelineModel directory from its metadata files."""
    path = Path(path)
    if not path.is_dir():
        raise InputError("unsupported-format", f"{path} is not a Spark ML PipelineModel: not a directory",
                         "pass the directory written by pipelineModel.write().save(path)")
    meta = _metadata(path)
    if meta["class"] != PIPELINE_MODEL:
        fitted = "an unfitted Pipeline" if meta["class"] == "org.apache.spark.ml.Pipeline" else meta["class"]
        raise InputError(
            "unsupported-format", f"{path} is {fitted}, expected a fitted {PIPELINE_MODEL}",
            "fit the pipeline and save the result: pipeline.fit(df).write().save(path)",
        )
    stages = _stages(path, meta)
    raw, labels, live = _serving_inputs(stages)
    consumed = {c for stage in stages for c in stage["inputs"] + stage["label"]}
    outputs = [c for stage in stages for c in stage["outputs"] if c not in consumed]

    details = {
        "spark_version": meta.get("sparkVersion"),
        "uid": meta.get("uid"),
        "stages": [
            {"index": s["index"], "class": _short(s["class"]), "uid": s["uid"],
             "inputs": s["inputs"], **({"label": s["label"]} if s["label"] else {}), "outputs": s["outputs"],
             **({} if is_live else {"serving": "skipped (label only)"})}
            for s, is_live in zip(stages, live)
        ],
        "inputs": {column: _input_spec(column, stage).to_json() for column, stage in raw.items()},
        "label_columns": labels,
        "output_columns": outputs,
    }

    diagnostics = []
    generic = [column for column in raw if is_generic(column)]
    if generic:
        diagnostics.append(finding(
            "unnamed-signature-io",
            f"pipeline input columns have generic names ({', '.join(generic)}); clients will have to send these names",
            "rename the DataFrame columns before fitting (df.withColumnRenamed('x1', 'sepal_length')), "
            "or pass --feature-names a,b,c when converting",
            path,
        ))
    return ModelDescription.single(path, "spark-pipeline", details=details, diagnostics=diagnostics)
