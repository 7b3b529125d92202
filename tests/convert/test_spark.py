"""`tfsconvert pmml` / `onnx` for Spark ML PipelineModels: pyspark2pmml and onnxmltools in the one
Spark session of the test process, parity with pypmml and ONNX Runtime, golden rows, the schema
options, pre-flight and one-line errors. Conversions are made once per module and shared. Tests
that only need a Spark fixture are marked slow too (a cache miss builds it with Spark, ~25 s)."""

from __future__ import annotations

import csv
import json
import re
import stat
import xml.etree.ElementTree as ElementTree
from importlib import metadata
from pathlib import Path

import onnx
import pytest

from conftest import assert_one_line_error, assert_serves, converted
from test_sklearn_onnx import assert_golden_matches_onnx, io_of
from test_sklearn_pmml import assert_golden_matches_pmml
from tfsconvert import golden
from tfsconvert.convert import spark_session, spark_source
from tfsconvert.errors import EnvironmentProblem, InputError

LR_SCHEMA = '{"a": "double", "b": "double", "c": "double"}'
RF_INPUTS = ["color", "sepal_length", "sepal_width", "petal_length"]  # the order the pipeline reads them
RF_SCHEMA = json.dumps({"sepal_length": "double", "sepal_width": "double", "petal_length": "double",
                        "color": "string"})
SPECIES = ["setosa", "versicolor", "virginica"]  # the label StringIndexer's order (by frequency, then name)
PYSPARK = metadata.version("pyspark")
PYSPARK2PMML = metadata.version("pyspark2pmml")
ONNXMLTOOLS = metadata.version("onnxmltools")


def rf_csv(fixture_path):
    return fixture_path("spark_rf").parent / "spark_rf.csv"


@pytest.fixture(scope="module")
def lr_pmml(fixture_path, tmp_path_factory):
    return converted(fixture_path, tmp_path_factory, "pmml", "spark_pipeline", "--schema", LR_SCHEMA)


@pytest.fixture(scope="module")
def lr_onnx(fixture_path, tmp_path_factory):
    return converted(fixture_path, tmp_path_factory, "onnx", "spark_pipeline", "--schema", LR_SCHEMA)


@pytest.fixture(scope="module")
def rf_pmml(fixture_path, tmp_path_factory):
    return converted(fixture_path, tmp_path_factory, "pmml", "spark_rf", "--sample-data", rf_csv(fixture_path))


@pytest.fixture(scope="module")
def rf_onnx(fixture_path, tmp_path_factory):
    # Spark compares doubles, ONNX's trees float32: rows within float32 rounding of a threshold flip.
    return converted(fixture_path, tmp_path_factory, "onnx", "spark_rf", "--schema", RF_SCHEMA,
                     "--allow-flips", "0.03")


# ---------------------------------------------------------------------------------------------
# LogisticRegression pipeline (numeric 0/1 label)


@pytest.mark.slow
def test_lr_pipeline_becomes_versioned_pmml(lr_pmml):
    data, base = lr_pmml
    artifact = base / "1"
    assert {key: data[key] for key in ("artifact", "version", "target", "source_format", "model_name")} == {
        "artifact": str(artifact), "version": 1, "target": "pmml", "source_format": "spark-pipeline",
        "model_name": "spark_lr"}
    assert sorted(p.name for p in artifact.iterdir()) == ["assets.extra", "model.pmml"] == sorted(
        Path(f).relative_to(artifact).parts[0] for f in data["files"].values())
    assert [p.name for p in base.iterdir()] == ["1"]  # no temp dir left behind
    signature = data["signature"]
    assert {name: spec["dtype"] for name, spec in signature["inputs"].items()} == dict.fromkeys("abc", "DT_DOUBLE")
    assert signature["outputs"] == {
        "label": {"dtype": "DT_INT64", "shape": [-1], "name": "label", "native_dtype": "integer"},
        "probability(0)": {"dtype": "DT_DOUBLE", "shape": [-1], "name": "probability(0)", "native_dtype": "double"},
        "probability(1)": {"dtype": "DT_DOUBLE", "shape": [-1], "name": "probability(1)", "native_dtype": "double"}}
    parity = data["parity"]
    assert parity["ok"] and parity["samples"] == 1024 and parity["rows"] == "synthesized"
    assert all(row["max_abs"] is None or row["max_abs"] < 1e-9 for row in parity["outputs"])  # double both sides
    assert data["notes"] == ["Spark PipelineModel (VectorAssembler, LogisticRegression) (classifier); schema from "
                             "--schema; parity rows: 1024 rows synthesized from the schema and the fitted stages "
                             "(seed 0)", f"model.pmml: JPMML-SparkML (pyspark2pmml {PYSPARK2PMML}); target field label",
                             "pypmml vs the source: max abs " + data["notes"][-2].rsplit(" ", 1)[-1],
                             "parity used only synthesized rows (1024, at the model's split thresholds and "
                             "categories); check rows like the ones it will serve with --sample-data FILE (CSV or "
                             "Parquet)"]
    assert float(data["notes"][-2].rsplit(" ", 1)[-1]) < 1e-9
    assert data["findings"] == []
    text = (artifact / "model.pmml").read_text()
    assert all(f'<DataField name="{c}" optype="continuous" dataType="double"/>' in text for c in "abc")
    assert '<DataField name="label" optype="categorical" dataType="double">' in text


@pytest.mark.slow
def test_lr_golden_rows_replay_against_the_written_pmml(lr_pmml):
    records = assert_golden_matches_pmml(lr_pmml[1] / "1", [0, 1])
    assert all(list(r.request["instances"][0]) == ["a", "b", "c"] for r in records)
    assert {r.response["predictions"][0]["label"] for r in records} == {0, 1}


@pytest.mark.slow
def test_lr_pipeline_becomes_onnx(lr_onnx):
    data, base = lr_onnx
    artifact = base / "1"
    assert data["parity"]["ok"] and data["source_format"] == "spark-pipeline" and data["target"] == "onnx"
    inputs, outputs, model = io_of(artifact / "model.onnx")
    assert inputs == [(c, "float", [None, 1]) for c in "abc"]
    assert outputs == [("label", "int64", [None]), ("probabilities", "float", [None, 2])]
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["tfsconvert.classes"]) == [0, 1] and json.loads(meta["tfsconvert.features"]) == list("abc")
    # One import of the default domain (onnxmltools writes "" and "ai.onnx"), within its opset 15.
    (default,) = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    assert default.domain == "" and default.version <= 15
    onnx.checker.check_model(model)
    records = assert_golden_matches_onnx(artifact, data["signature"], [0, 1])
    assert {r.response["predictions"][0]["label"] for r in records} == {0, 1}


# ---------------------------------------------------------------------------------------------
# RandomForest pipeline: string label (StringIndexer + IndexToString), one-hot string feature


@pytest.mark.slow
def test_rf_pipeline_to_pmml_with_rows_and_schema_from_sample_data(rf_pmml, fixture_path):
    data, base = rf_pmml
    assert data["parity"]["ok"]
    signature = data["signature"]
    assert list(signature["inputs"]) == RF_INPUTS and signature["inputs"]["color"]["dtype"] == "DT_STRING"
    assert list(signature["outputs"]) == ["label", *(f"probability({s})" for s in SPECIES)]
    assert signature["outputs"]["label"]["name"] == "species" and signature["outputs"]["label"]["dtype"] == "DT_STRING"
    source = rf_csv(fixture_path)
    assert data["notes"][0].endswith(f"schema from --sample-data {source}; parity rows: the first 20 rows of {source}")
    records = assert_golden_matches_pmml(base / "1", SPECIES)
    with open(source, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r.id for r in records[:8]] == [f"sample-{i}" for i in range(8)]  # then the worst rows
    assert [r.request["instances"][0] for r in records] == [
        {"color": row["color"], **{c: float(row[c]) for c in RF_INPUTS[1:]}}
        for row in (rows[int(r.id.split("-")[1])] for r in records)]
    assert {r.response["predictions"][0]["label"] for r in records} == set(SPECIES)
    text = (base / "1" / "model.pmml").read_text()
    assert '<DataField name="species" optype="categorical" dataType="string">' in text


@pytest.mark.slow
def test_rf_pipeline_to_onnx_with_rows_synthesized_from_the_schema(rf_onnx):
    data, base = rf_onnx
    artifact = base / "1"
    assert data["parity"]["ok"]
    inputs, outputs, model = io_of(artifact / "model.onnx")
    assert inputs == [("color", "string", [None, 1])] + [(c, "float", [None, 1]) for c in RF_INPUTS[1:]]
    assert outputs == [("label", "string", [None]), ("probabilities", "float", [None, 3])]
    assert json.loads({p.key: p.value for p in model.metadata_props}["tfsconvert.classes"]) == SPECIES
    assert "LabelEncoder" in {n.op_type for n in model.graph.node}  # the color StringIndexer
    assert data["notes"][2].startswith("not in model.onnx (not needed to serve the fields): StringIndexer (stage 0")
    assert "IndexToString (stage 5" in data["notes"][2]
    records = assert_golden_matches_onnx(artifact, data["signature"], SPECIES)
    rows = [r.request["instances"][0] for r in records]
    assert {row["color"] for row in rows} <= {"red", "green", "blue"}  # drawn from the StringIndexer's labels
    # Drawn across the forest's split thresholds, so the rows reach every class.
    assert {r.response["predictions"][0]["label"] for r in records} == set(SPECIES)
    assert max(row["petal_length"] for row in rows) - min(row["petal_length"] for row in rows) > 2
    assert "rows synthesized from the schema and the fitted stages" in data["notes"][0]


@pytest.mark.slow
def test_rf_pmml_and_onnx_serve_their_golden_files(rf_pmml, rf_onnx):
    for data, base in (rf_pmml, rf_onnx):
        assert_serves(base, len(golden.read_golden(base / "1" / "assets.extra" / "golden.jsonl")))
    label = rf_onnx[0]["parity"]["outputs"][0]
    assert label["alias"] == "label" and label["flips"] <= 0.03 * 1024 and label["rows"] == 1024


# ---------------------------------------------------------------------------------------------
# GBTClassifier pipeline: numeric 0/1 label, one-hot string feature


@pytest.fixture(scope="module")
def gbt_pmml(fixture_path, tmp_path_factory):
    return converted(fixture_path, tmp_path_factory, "pmml", "spark_gbt", "--schema", RF_SCHEMA)


@pytest.fixture(scope="module")
def gbt_onnx(fixture_path, tmp_path_factory):
    return converted(fixture_path, tmp_path_factory, "onnx", "spark_gbt", "--schema", RF_SCHEMA,
                     "--allow-flips", "0.03")


@pytest.mark.slow
def test_gbt_pipeline_to_pmml_serves_probabilities(gbt_pmml):
    data, base = gbt_pmml
    assert data["parity"]["ok"] and data["parity"]["samples"] >= 1024
    assert list(data["signature"]["outputs"]) == ["label", "probability(0)", "probability(1)"]
    # JPMML-SparkML puts them in the model chain's last segment, where both engines return them.
    pmml = ElementTree.parse(base / "1" / "model.pmml").getroot()
    (model,) = [child for child in pmml if child.tag.endswith("MiningModel")]
    top = [f.get("name") for f in model.find(f"{pmml.tag[:-4]}Output")]
    assert "probability(0)" not in top
    records = assert_golden_matches_pmml(base / "1", [0, 1])
    assert {r.response["predictions"][0]["label"] for r in records} == {0, 1}
    assert_serves(base, len(records))


@pytest.mark.slow
def test_gbt_pipeline_to_onnx_serves_a_probability_tensor(gbt_onnx):
    data, base = gbt_onnx
    inputs, outputs, model = io_of(base / "1" / "model.onnx")
    assert outputs == [("label", "int64", [None]), ("probabilities", "float", [None, 2])]
    # The one-hot slots' splits compare by value (onnxmltools writes `in {1.0}` as `<= 1.0`).
    modes = {m for n in model.graph.node if n.op_type.startswith("TreeEnsemble")
             for a in n.attribute if a.name == "nodes_modes" for m in a.strings}
    assert b"BRANCH_EQ" in modes
    parity = {o["alias"]: o for o in data["parity"]["outputs"]}
    assert parity["label"]["flips"] <= 0.03 * parity["label"]["rows"]
    records = assert_golden_matches_onnx(base / "1", data["signature"], [0, 1])
    assert_serves(base, len(records))


# ---------------------------------------------------------------------------------------------
# Parity on 10,000 realistic rows: the RandomForest and GBT pipelines, PMML through both engines

REALISTIC_ROWS = 10_000


def realistic_csv(path: Path, species: bool) -> Path:
    """10,000 seeded rows on the 0.01 grid the training data has, across and beyond its range, every colour;
    `species`: the label column the RandomForest pipeline's StringIndexer reads."""
    import random

    rng = random.Random(21)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sepal_length", "sepal_width", "petal_length", "color"] + (["species"] if species else []))
        for _ in range(REALISTIC_ROWS):
            writer.writerow([round(rng.uniform(4.0, 8.0), 2), round(rng.uniform(2.0, 4.5), 2),
                             round(rng.uniform(0.8, 7.0), 2), rng.choice(["red", "green", "blue"])]
                            + ([rng.choice(SPECIES)] if species else []))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["spark_rf", "spark_gbt"])
@pytest.mark.parametrize("command", ["pmml", "onnx"])
def test_parity_on_10000_realistic_rows(fixture_path, tmp_path_factory, spark, fixture, command):
    """Spark's own transform of the original PipelineModel against the artifact on 10,000 rows: PMML through
    JPMML-Evaluator and pypmml without a flip; ONNX (float32 trees against Spark's doubles) with its flips
    counted and at most 0.5%."""
    rows = realistic_csv(tmp_path_factory.mktemp("rows") / "rows.csv", species=fixture == "spark_rf")
    flags = ["--allow-flips", "0.005"] if command == "onnx" else []
    data, _ = converted(fixture_path, tmp_path_factory, command, fixture, "--sample-data", rows, *flags)
    parity = data["parity"]
    assert parity["ok"] and parity["samples"] == REALISTIC_ROWS and parity["rows"] != "synthesized", parity
    outputs = {o["alias"]: o for o in parity["outputs"]}
    label = outputs.pop("label")
    assert label["rows"] == REALISTIC_ROWS and len(outputs) >= 2  # label and its probabilities
    worst = max(o["max_abs"] or 0.0 for o in outputs.values())
    print(f"\nTABLE {fixture} {command}: flips {label['flips']}/{REALISTIC_ROWS} ({label['flip_rate']:.4%}), "
          f"probability max abs {worst:.3g}, notes {[n for n in data['notes'] if 'vs the source' in n]}")
    if command == "pmml":
        assert label["flips"] == 0 and worst < 1e-9, outputs  # doubles on both sides
        assert data["findings"] == []  # pypmml agrees with JPMML-Evaluator (no pmml-evaluators-disagree)
        assert any(n.startswith("pypmml vs the source: max abs") for n in data["notes"]), data["notes"]
    else:
        assert label["flip_rate"] <= 0.005, label  # the rows past --allow-flips would have failed the conversion


@pytest.mark.slow
def test_pmml_without_probability_fields_promises_none(fixture_path, tmp_path_factory, monkeypatch):
    from tfsconvert.convert import spark_pmml

    def without_probabilities(path, wanted):
        """A model without probability fields: they are taken out of the written file."""
        text = path.read_text()
        for name in wanted:
            text = re.sub(rf'<OutputField name="{re.escape(name)}".*?(/>|</OutputField>)', "", text, flags=re.S)
        path.write_text(text)
        return False

    monkeypatch.setattr(spark_pmml, "serve_probabilities", without_probabilities)
    data, base = converted(fixture_path, tmp_path_factory, "pmml", "spark_gbt", "--schema", RF_SCHEMA)
    assert list(data["signature"]["outputs"]) == ["label"]
    assert [o["alias"] for o in data["parity"]["outputs"]] == ["label"]
    assert any(n.startswith("JPMML-SparkML wrote no probability fields for GBTClassifier_") for n in data["notes"])
    records = golden.read_golden(base / "1" / "assets.extra" / "golden.jsonl")
    assert all(list(r.response["predictions"][0]) == ["label"] for r in records)


@pytest.mark.slow  # a Spark fixture (built by a Spark run on a cache miss); Spark itself is not started
def test_onnx_one_hot_settings_are_refused_before_spark_starts(cli, fixture_path, tmp_path, monkeypatch):
    import shutil
    import time

    src = tmp_path / "rf_droplast"
    shutil.copytree(fixture_path("spark_rf"), src)
    meta = next((src / "stages").glob("2_OneHotEncoder_*/metadata/part-*"))
    doc = json.loads(meta.read_text())
    doc["paramMap"]["dropLast"] = True  # OneHotEncoder's default, which onnxmltools cannot convert
    meta.write_text(json.dumps(doc))

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark was started")

    monkeypatch.setattr(spark_session, "session", no_spark)
    monkeypatch.chdir(tmp_path)
    began = time.monotonic()
    result = cli("onnx", src, "--schema", RF_SCHEMA)
    assert time.monotonic() - began < 10
    assert_one_line_error(result, src, "unsupported-stage")
    assert (f"OneHotEncoder (stage 2, uid {doc['uid']}) in {src} has handleInvalid 'error' with dropLast=True"
            in result.stderr)
    assert "OneHotEncoder(dropLast=False)" in result.stderr and not (tmp_path / "models").exists()


@pytest.mark.slow
def test_one_spark_session_serves_every_conversion(lr_pmml, rf_onnx, spark):
    from pyspark import SparkContext

    session = spark_session.session()
    assert session.sparkContext is spark.sparkContext and SparkContext._active_spark_context is session.sparkContext


# ---------------------------------------------------------------------------------------------
# Stages a converter does not support


@pytest.fixture(scope="module")
def hasher_pipeline(spark, tmp_path_factory):
    """VectorAssembler-free pipeline whose first stage (FeatureHasher) neither converter supports."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import FeatureHasher

    path = tmp_path_factory.mktemp("hasher") / "hasher"
    rows = spark.createDataFrame([(float(i), "abc"[i % 3], float(i % 2)) for i in range(20)], ["x", "kind", "label"])
    Pipeline(stages=[FeatureHasher(inputCols=["x", "kind"], outputCol="features", numFeatures=16),
                     LogisticRegression(maxIter=5)]).fit(rows).write().save(str(path))
    uid = json.loads(next((path / "metadata").glob("part-*")).read_text().splitlines()[0])["paramMap"]["stageUids"][0]
    return path, uid


@pytest.mark.slow
@pytest.mark.parametrize("command, converter, other", [
    ("pmml", f"JPMML-SparkML (pyspark2pmml {PYSPARK2PMML}) has no converter for", "onnx"),
    ("onnx", f"onnxmltools {ONNXMLTOOLS} has no Spark converter for", "pmml"),
])
def test_unsupported_stage_is_named(cli, hasher_pipeline, tmp_path, monkeypatch, command, converter, other):
    monkeypatch.chdir(tmp_path)
    path, uid = hasher_pipeline
    result = cli(command, path, "--schema", '{"x": "double", "kind": "string"}')
    assert_one_line_error(result, path, "unsupported-stage")
    assert result.stderr.splitlines()[0] == (f"error [unsupported-stage]: {converter} FeatureHasher (stage 0, uid "
                                             f"{uid}) in {path}")
    assert f"tfsconvert {other} {path}" in result.stderr.splitlines()[1]
    assert not (tmp_path / "models").exists()


# ---------------------------------------------------------------------------------------------
# Before Spark starts: schema, pre-flight, not a Spark model, options


@pytest.mark.slow  # a Spark fixture (built by a Spark run on a cache miss); Spark itself is not started
@pytest.mark.parametrize("command", ["pmml", "onnx"])
def test_missing_schema_says_which_options_give_one(convert, fixture_path, tmp_path, command):
    src = fixture_path("spark_pipeline")
    result = convert(command, src)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "missing-schema"
    assert error["message"] == (f"{src} is a Spark model: converting it needs the types of its input columns "
                                "(a, b, c), from --sample-data or --schema")
    assert error["hint"] == ("pass --sample-data FILE (a CSV or Parquet file with those columns), or --schema "
                             "'{\"a\": \"double\", \"b\": \"double\", \"c\": \"double\"}' (types guessed from the "
                             "pipeline's stages: check them)")
    assert not (tmp_path / "models").exists()


@pytest.mark.slow  # a Spark fixture (built by a Spark run on a cache miss); Spark itself is not started
@pytest.mark.parametrize("schema, code, message", [
    ('{"a": "double", "b": "double"}', "bad-schema", "--schema has no type for c; {src} reads a, b, c"),
    ('{"a": "double", "b": "decimal", "c": "double"}', "bad-schema", "--schema: unsupported type for b: 'decimal'"),
    ('{"a": "double",', "bad-schema", "--schema is not valid JSON: Expecting property name enclosed in double "
                                      "quotes: line 1 column 16 (char 15)"),
    ("no-such-schema.json", "path-not-found", "--schema no-such-schema.json: no such file (and not inline JSON)"),
])
def test_bad_schema(convert, fixture_path, schema, code, message):
    src = fixture_path("spark_pipeline")
    error = convert("pmml", src, "--schema", schema).json()["error"]
    assert error["code"] == code and error["message"] == message.format(src=src)


def test_schema_from_a_file_in_spark_json_form(tmp_path):
    # What `df.schema.json()` prints, with Spark's type names ("integer", "long") and a label column.
    spark_json = {"type": "struct", "fields": [
        {"name": "a", "type": "double", "nullable": True, "metadata": {}},
        {"name": "n", "type": "integer", "nullable": True, "metadata": {}},
        {"name": "big", "type": "long", "nullable": True, "metadata": {}},
        {"name": "color", "type": "string", "nullable": True, "metadata": {}}]}
    (tmp_path / "schema.json").write_text(json.dumps(spark_json))
    assert spark_source.parse_schema(str(tmp_path / "schema.json")) == {"a": "double", "n": "int", "big": "bigint",
                                                                         "color": "string"}
    assert spark_source.parse_schema('{"a": "Double"}') == {"a": "double"}
    with pytest.raises(InputError, match="non-empty JSON object"):
        spark_source.parse_schema("[]")


@pytest.mark.slow  # a Spark fixture (built by a Spark run on a cache miss); Spark itself is not started
def test_parquet_sample_data_gives_its_types(fixture_path, tmp_path):
    import pandas as pd

    rows = pd.read_csv(rf_csv(fixture_path))
    rows["sepal_length"] = rows["sepal_length"].astype("float32")
    rows.to_parquet(tmp_path / "rows.parquet")
    plan = spark_source.prepare(fixture_path("spark_rf"), None, tmp_path / "rows.parquet", 3)
    assert plan.schema == {"color": "string", "sepal_length": "float", "sepal_width": "double",
                           "petal_length": "double"}
    assert plan.label_schema == {"species": "string"}
    assert plan.schema_from == f"--sample-data {tmp_path / 'rows.parquet'}"
    assert len(plan.rows) == 3 and plan.rows[0]["color"] == rows["color"][0]


@pytest.mark.slow  # a Spark fixture (built by a Spark run on a cache miss); Spark itself is not started
def test_spark_version_skew_from_the_table(convert, fixture_path, tmp_path, monkeypatch):
    monkeypatch.setattr(spark_session, "SPARK_SUPPORT", {PYSPARK2PMML: ("3.4", "4.1")})
    result = convert("pmml", fixture_path("spark_pipeline"), "--schema", LR_SCHEMA)
    error = result.json()["error"]
    assert result.exit_code == 3 and error["code"] == "spark-version-unsupported"
    assert error["message"] == (f"Spark {PYSPARK} is not supported by pyspark2pmml {PYSPARK2PMML} (it supports "
                                "Spark 3.4 to 4.1)")
    assert error["hint"] == ("pip install 'pyspark==4.1.*', or pip install --upgrade pyspark2pmml (a newer release "
                             "supports newer Spark)")
    assert not (tmp_path / "models").exists()


def test_spark_version_table_is_a_parameter():
    table = {"0.12.0": ("3.4", "4.2")}
    for fine in ("3.4.0", "4.2.1", "4.0.0"):
        spark_session.check_spark_version(fine, "0.12.0", table)
    spark_session.check_spark_version("9.0.0", "9.9.9", table)  # unknown pyspark2pmml: not judged up front
    for skewed in ("4.3.0", "3.3.2", "5.0.0.dev0"):
        with pytest.raises(EnvironmentProblem) as caught:
            spark_session.check_spark_version(skewed, "0.12.0", table)
        assert caught.value.exit_code == 3 and caught.value.message.startswith(f"Spark {skewed} is not supported")
    assert spark_session.SPARK_SUPPORT["0.12.0"] == ("3.4", "4.2")  # docs/architecture.md "Supported versions"
    translated = spark_session.translate_skew("ValueError: Apache Spark version 4.3.0 is not supported", "0.12.0")
    assert translated.code == "spark-version-unsupported" and "Spark 4.3.0" in translated.message


@pytest.mark.slow  # a Spark fixture (built by a Spark run on a cache miss); Spark itself is not started
def test_java_too_old_for_spark(convert, fixture_path, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = bin_dir / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))
    for command, users in (("pmml", "Spark and the PMML evaluators"), ("onnx", "Spark and onnxmltools' Spark converters")):
        result = convert(command, fixture_path("spark_pipeline"), "--schema", LR_SCHEMA)
        error = result.json()["error"]
        assert result.exit_code == 3 and error["code"] == "java-too-old"
        assert error["message"] == f"{java} is Java 11; {users} need Java 17 or newer"


@pytest.mark.parametrize("command", ["pmml", "onnx"])
@pytest.mark.parametrize("content, why", [(None, "it is empty"), ("random", "it has no metadata/ directory")])
def test_directory_that_is_not_a_spark_model(cli, tmp_path, monkeypatch, command, content, why):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model"
    path.mkdir()
    if content:
        (path / "part-00000").write_bytes(bytes(range(256)))
        (path / "notes.txt").write_text("not a model\n")
    result = cli(command, path)
    assert_one_line_error(result, path, "unsupported-format")
    what = "a Spark ML PipelineModel" if command == "pmml" else "a SavedModel or Spark ML PipelineModel"
    assert result.stderr.splitlines()[0] == f"error [unsupported-format]: {path} is not {what} directory: {why}"
    assert not (tmp_path / "models").exists()


def test_bad_empty_dir_fixture(cli, fixture_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = fixture_path("bad_empty_dir")
    assert_one_line_error(cli("pmml", path), path, "unsupported-format")


def test_spark_metadata_that_is_not_json(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model"
    (path / "metadata").mkdir(parents=True)
    (path / "metadata" / "part-00000").write_text("{not json\n")
    result = cli("onnx", path)
    assert_one_line_error(result, path, "corrupt-model-file")


@pytest.mark.slow  # a Spark fixture (built by a Spark run on a cache miss); Spark itself is not started
@pytest.mark.parametrize("flags, fragment", [
    (["--feature-names", "a,b,c"], "--feature-names cannot be used with a Spark ML source"),
    (["--trust-pickle"], "--trust-pickle cannot be used with a Spark ML source"),
])
def test_scikit_learn_options_are_refused(convert, fixture_path, flags, fragment):
    error = convert("pmml", fixture_path("spark_pipeline"), *flags).json()["error"]
    assert error["code"] == "bad-option" and fragment in error["message"]


def test_spark_options_are_refused_for_other_sources(convert, fixture_path):
    error = convert("pmml", fixture_path("sklearn_pipeline"), "--schema", "{}").json()["error"]
    assert error["code"] == "bad-option" and "--schema cannot be used with a scikit-learn source" in error["message"]
    error = convert("onnx", fixture_path("frozen_mlp_pb"), "--spark-master", "local[2]").json()["error"]
    assert error["code"] == "bad-option"
    assert "--spark-master cannot be used with a TensorFlow source" in error["message"]


@pytest.mark.slow  # a Spark fixture (built by a Spark run on a cache miss); Spark itself is not started
def test_opset_beyond_onnxmltools_is_refused(convert, fixture_path):
    error = convert("onnx", fixture_path("spark_pipeline"), "--schema", LR_SCHEMA, "--opset", "17").json()["error"]
    assert error["code"] == "unsupported-opset"
    assert error["message"] == f"onnxmltools {ONNXMLTOOLS} converts Spark models up to ONNX opset 15, not 17"


def test_status_line_while_spark_starts(monkeypatch):
    from pyspark import SparkContext

    started = []
    monkeypatch.setattr(spark_session, "_state", {"session": None, "master": None, "log": None, "conf": {}})
    monkeypatch.setattr(SparkContext, "_active_spark_context", None)
    monkeypatch.setattr(spark_session, "_start", lambda master, conf=None: started.append(master) or "session")
    lines = []
    assert spark_session.session("local[2]", lines.append) == "session"
    assert lines == ["starting Spark (local[2]; about 20 s the first time)"] and started == ["local[2]"]


# ---------------------------------------------------------------------------------------------
# A regressor, and rows Spark refuses (pipelines fitted here, in the shared session)


@pytest.fixture(scope="module")
def regression_pipeline(spark, tmp_path_factory):
    """VectorAssembler(rooms, area) + LinearRegression predicting `price`."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import LinearRegression

    path = tmp_path_factory.mktemp("regression") / "prices"
    rows = spark.createDataFrame([(float(i % 5 + 1), 40.0 + 7 * i, 1000.0 + 50 * (i % 5) + 3 * i) for i in range(30)],
                                 ["rooms", "area", "price"])
    Pipeline(stages=[VectorAssembler(inputCols=["rooms", "area"], outputCol="features"),
                     LinearRegression(labelCol="price", maxIter=10)]).fit(rows).write().save(str(path))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("command", ["pmml", "onnx"])
def test_regressor_pipeline(convert, regression_pipeline, command):
    result = convert(command, regression_pipeline, "--schema", '{"rooms": "double", "area": "double"}')
    data = result.json()
    assert result.exit_code == 0, data
    assert list(data["signature"]["outputs"]) == ["prediction"] and data["parity"]["ok"]
    (row,) = data["parity"]["outputs"]
    assert row["alias"] == "prediction" and row["max_rel"] < (1e-12 if command == "pmml" else 1e-5)
    assert "LinearRegression) (regressor)" in data["notes"][0]
    if command == "onnx":
        inputs, outputs, _ = io_of(data["artifact"] + "/model.onnx")
        assert [name for name, _, _ in inputs] == ["rooms", "area"] and [o[0] for o in outputs] == ["prediction"]
    else:
        assert data["signature"]["outputs"]["prediction"]["name"] == "prediction"  # JPMML's OutputField
        assert '<DataField name="price" optype="continuous" dataType="double"/>' in Path(
            data["files"]["model"]).read_text()


@pytest.mark.slow
def test_rows_spark_refuses_are_one_line(cli, fixture_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = tmp_path / "rows.csv"
    rows.write_text("sepal_length,sepal_width,petal_length,color\n5.1,3.5,1.4,purple\n")
    src = fixture_path("spark_rf")
    result = cli("pmml", src, "--sample-data", rows)
    assert_one_line_error(result, src, "predict-failed")
    assert "purple" in result.stderr.splitlines()[0]
    assert not (tmp_path / "models").exists()
