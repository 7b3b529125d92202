"""`tfsconvert pmml` for scikit-learn sources: sklearn2pmml (JVM), parity with pypmml, golden rows,
pre-flight checks (Java, version skew) and one-line errors. Real JVM runs: conversions are made
once per module and shared."""

from __future__ import annotations

import json
import math
import os
import stat
from importlib import metadata

import pytest

from conftest import converted
from tfsconvert import golden
from tfsconvert.convert import pmml_writer
from tfsconvert.errors import EnvironmentProblem
from tfsconvert.runtimes import pmml as pmml_runtime

CLASSES = ["setosa", "versicolor", "virginica"]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "color"]
SKLEARN = metadata.version("scikit-learn")
SKLEARN2PMML = metadata.version("sklearn2pmml")


@pytest.fixture(scope="module")
def pipeline_pmml(fixture_path, tmp_path_factory):
    return converted(fixture_path, tmp_path_factory, "pmml", "sklearn_pipeline")


@pytest.fixture(scope="module")
def regressor_pmml(fixture_path, tmp_path_factory):
    # sklearn's trees compare float32 values, the PMML doubles: rows one ulp off a threshold disagree.
    return converted(fixture_path, tmp_path_factory, "pmml", "sklearn_regressor", "--feature-names",
                     "income,age,rooms,distance,score", "--allow-flips", "0.1")


def replay(artifact, records: list[golden.GoldenRecord], engine: str) -> list[dict]:
    """One engine's answers (response field -> value) for the golden requests, from the written PMML."""
    rows = [record.request["instances"][0] for record in records]
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    fields = pmml_runtime.evaluate(artifact / "model.pmml", engine, columns)
    return [{name: values.tolist()[i] for name, values in fields.items()} for i in range(len(rows))]


def assert_golden_matches_pmml(artifact, classes=None):
    """Every golden line parses, and both engines on the written PMML give its response within its tolerances."""
    records = golden.read_golden(artifact / "assets.extra" / "golden.jsonl")
    assert 8 <= len(records) <= 16 and {r.signature_name for r in records} == {"serving_default"}
    for engine in pmml_runtime.ENGINES:
        for record, result in zip(records, replay(artifact, records, engine)):
            (expected,) = record.response["predictions"]
            assert set(result) == set(expected), (engine, record.id, result)
            for field, value in expected.items():
                if field == "label":
                    assert result[field] == value, (engine, record.id, result)
                else:
                    assert math.isclose(result[field], value, rel_tol=record.rtol, abs_tol=record.atol), (
                        engine, record.id, field)
            if classes is not None:
                assert set(expected) == {"label", *(f"probability({c})" for c in classes)}
                assert math.isclose(sum(expected[f"probability({c})"] for c in classes), 1.0, abs_tol=1e-9)
    return records


def test_pipeline_with_scaler_and_one_hot_becomes_versioned_pmml(pipeline_pmml):
    data, base = pipeline_pmml
    artifact = base / "1"
    assert data["artifact"] == str(artifact) and data["version"] == 1 and data["target"] == "pmml"
    assert data["source_format"] == "sklearn" and data["model_name"] == "pipeline"
    assert sorted(p.name for p in artifact.iterdir()) == ["assets.extra", "model.pmml"]
    assert not [p for p in base.iterdir() if p.name != "1"]  # no temp dir left behind
    assert data["files"] == {"model": str(artifact / "model.pmml"),
                             "golden": str(artifact / "assets.extra" / "golden.jsonl")}
    signature = data["signature"]
    assert list(signature["inputs"]) == FEATURES
    assert signature["inputs"]["color"]["dtype"] == "DT_STRING"
    assert {signature["inputs"][f]["dtype"] for f in FEATURES[:3]} == {"DT_DOUBLE"}
    assert list(signature["outputs"]) == ["label", *(f"probability({c})" for c in CLASSES)]
    assert signature["outputs"]["label"] == {"dtype": "DT_STRING", "shape": [-1], "name": "y", "native_dtype": "string"}


def test_pipeline_parity_is_reported_per_output(pipeline_pmml):
    parity = pipeline_pmml[0]["parity"]
    assert parity["ok"] and parity["samples"] == 1024 and parity["rows"] == "synthesized"
    rows = {d["alias"]: d for d in parity["outputs"]}
    assert list(rows) == ["label", *(f"probability({c})" for c in CLASSES)]
    assert rows["label"]["dtype"] == "DT_STRING" and rows["label"]["max_abs"] is None
    for c in CLASSES:
        row = rows[f"probability({c})"]
        assert row["atol"] == 1e-6 and row["rtol"] == 1e-6 and row["ok"]
        assert row["max_abs"] is not None and row["max_abs"] < 1e-9  # both sides compute in double


def test_pipeline_written_pmml_names_the_fields(pipeline_pmml):
    text = (pipeline_pmml[1] / "1" / "model.pmml").read_text()
    for name in FEATURES:
        assert f'<DataField name="{name}"' in text
    assert '<DataField name="y" optype="categorical" dataType="string">' in text
    assert 'name="x1"' not in text


def test_pipeline_golden_rows_replay_against_the_written_pmml(pipeline_pmml):
    records = assert_golden_matches_pmml(pipeline_pmml[1] / "1", CLASSES)
    instances = [r.request["instances"] for r in records]
    assert all(len(i) == 1 and list(i[0]) == FEATURES for i in instances)
    assert {i[0]["color"] for i in instances} <= {"red", "green", "blue"}  # drawn from the encoder's categories
    assert all(isinstance(i[0]["sepal_length"], float) for i in instances)
    # Synthesized around the StandardScaler's mean (5.8), not standard normal.
    assert 4 < sum(i[0]["sepal_length"] for i in instances) / len(instances) < 8
    assert len({r.response["predictions"][0]["label"] for r in records}) > 1


def test_tree_ensemble_with_integer_labels_and_a_target_name(fixture_path, tmp_path_factory):
    data, base = converted(fixture_path, tmp_path_factory, "pmml", "sklearn_tree_ensemble", "--target-name",
                           "is_virginica", "--allow-flips", "0.01")
    assert data["parity"]["ok"]
    # A row one ulp from a split threshold goes another way in pypmml than in JPMML-Evaluator.
    (found,) = data["findings"]
    assert found["code"] == "pmml-evaluators-disagree" and "disagree on 1 of 1024 rows" in found["message"]
    label = data["parity"]["outputs"][0]
    assert label["alias"] == "label" and label["flips"] == 0  # JPMML-Evaluator compares float32, as sklearn does
    outputs = data["signature"]["outputs"]
    assert list(outputs) == ["label", "probability(0)", "probability(1)"]
    assert outputs["label"] == {"dtype": "DT_INT64", "shape": [-1], "name": "is_virginica", "native_dtype": "integer"}
    assert '<DataField name="is_virginica"' in (base / "1" / "model.pmml").read_text()
    records = assert_golden_matches_pmml(base / "1", [0, 1])
    labels = [r.response["predictions"][0]["label"] for r in records]
    assert set(labels) == {0, 1}  # rows drawn across the split thresholds reach both classes
    assert "GradientBoostingClassifier" in data["notes"][0]


def test_regressor_with_feature_names(regressor_pmml, cli):
    data, base = regressor_pmml
    assert data["parity"]["ok"] and list(data["signature"]["inputs"]) == ["income", "age", "rooms", "distance",
                                                                          "score"]
    assert data["signature"]["outputs"] == {"prediction": {"dtype": "DT_DOUBLE", "shape": [-1], "name": "y",
                                                           "native_dtype": "double"}}
    assert "feature names from --feature-names" in data["notes"][0]
    assert '<DataField name="income"' in (base / "1" / "model.pmml").read_text()
    records = assert_golden_matches_pmml(base / "1")
    assert all(set(r.response["predictions"][0]) == {"prediction"} for r in records)
    # The default target name `y` is the regressor's output field: flagged as `inspect` flags the PMML.
    # JPMML-Evaluator reproduces the source exactly; pypmml, comparing doubles, not near thresholds.
    found, disagree = data["findings"]
    assert found["code"] == "unnamed-signature-io" and "--target-name" in found["hint"]
    assert disagree["code"] == "pmml-evaluators-disagree" and "disagree on 78 of 1024 rows" in disagree["message"]
    assert all(row["max_abs"] == 0.0 for row in data["parity"]["outputs"])
    described = cli("inspect", base / "1" / "model.pmml", "--json").json()
    assert [d["code"] for d in described["diagnostics"]] == ["unnamed-signature-io"]


def test_regressor_without_feature_names_is_refused_before_java_converts(convert, fixture_path, tmp_path):
    src = fixture_path("sklearn_regressor")
    result = convert("pmml", src)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "missing-feature-names"
    assert str(src) in error["message"] and "5 inputs" in error["message"] and "x1..x5" in error["message"]
    assert "--feature-names" in error["hint"]
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("flags, code, fragment", [
    (["--feature-names", "a,b"], "bad-feature-names", "gives 2 names but"),
    (["--feature-names", "a,b,,c,d"], "bad-feature-names", "empty name"),
    (["--feature-names", "a,b,a,c,d"], "bad-feature-names", "repeats a"),
])
def test_bad_feature_names(convert, fixture_path, flags, code, fragment):
    result = convert("pmml", fixture_path("sklearn_regressor"), *flags)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == code and fragment in error["message"]


def test_feature_names_cannot_rename_a_model_fitted_with_names(convert, fixture_path):
    result = convert("pmml", fixture_path("sklearn_pipeline"), "--feature-names", "a,b,c,d")
    assert result.exit_code == 2 and result.json()["error"]["code"] == "feature-names-mismatch"


def test_unsupported_estimator_is_named_without_a_java_stack_trace(cli, fixture_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = fixture_path("sklearn_unsupported")
    result = cli("pmml", src)
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == (f"error [unsupported-estimator]: JPMML-SkLearn (sklearn2pmml {SKLEARN2PMML}) has no "
                        f"converter for sklearn.semi_supervised.LabelSpreading (step 'spread') in {src}")
    assert lines[1].startswith("  fix: ") and f"tfsconvert onnx {src}" in lines[1] and len(lines) == 2
    assert result.stdout == "" and "Stack trace" not in result.stderr + result.stdout
    assert not (tmp_path / "models").exists()


def test_version_skew_from_the_table_names_both_versions_and_the_ways_out(convert, fixture_path, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(pmml_writer, "SKLEARN_SUPPORT", {SKLEARN2PMML: "1.8.0"})
    result = convert("pmml", fixture_path("sklearn_pipeline"))
    error = result.json()["error"]
    assert result.exit_code == 3 and error["code"] == "sklearn-version-unsupported"
    assert error["message"] == (f"scikit-learn {SKLEARN} is newer than sklearn2pmml {SKLEARN2PMML} supports "
                                "(up to scikit-learn 1.8.0)")
    assert "pip install 'scikit-learn==1.8.0'" in error["hint"]
    assert "pip install --upgrade sklearn2pmml" in error["hint"]
    assert not (tmp_path / "models").exists()


def test_version_table_is_a_parameter():
    pmml_writer.check_sklearn_version("1.9.0", "0.133.1", {"0.133.1": "1.9.0"})  # the newest supported passes
    pmml_writer.check_sklearn_version("1.9.1", "9.9.9", {"0.133.1": "1.9.0"})  # unknown release: JPMML decides
    for installed in ("1.9.1", "1.10.0", "2.0.dev0"):
        with pytest.raises(EnvironmentProblem) as caught:
            pmml_writer.check_sklearn_version(installed, "0.133.1", {"0.133.1": "1.9.0"})
        assert caught.value.exit_code == 3 and f"scikit-learn {installed} is newer" in caught.value.message
    assert pmml_writer.SKLEARN_SUPPORT["0.133.1"] == "1.9.0"  # docs/architecture.md "Supported versions"


def test_jpmml_version_message_becomes_the_same_one_line_error(convert, fixture_path, tmp_path, monkeypatch):
    # scikit-learn stamps `_sklearn_version` into every pickled estimator; sklearn2pmml re-pickles
    # the pipeline, so JPMML itself sees a 1.9.1 model and refuses it.
    import sklearn.base

    monkeypatch.setattr(sklearn.base, "__version__", "1.9.1")
    result = convert("pmml", fixture_path("sklearn_pipeline"))
    error = result.json()["error"]
    assert result.exit_code == 3 and error["code"] == "sklearn-version-unsupported", error
    assert error["message"] == (f"scikit-learn 1.9.1 is newer than sklearn2pmml {SKLEARN2PMML} supports "
                                "(up to scikit-learn 1.9.0)")
    assert "scikit-learn==1.9.0" in error["hint"] and "Stack trace" not in json.dumps(error)
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("text, major", [
    ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
    ('java version "1.8.0_392"\nJava(TM) SE Runtime Environment', 8),
    ('openjdk version "21" 2023-09-19', 21),
    ("no version here", None),
])
def test_java_major_version(text, major):
    assert pmml_writer.java_major(text) == major


def _fake_java(directory, version_line: str):
    java = directory / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("java, code", [("11", "java-too-old"), (None, "java-missing")])
def test_java_missing_or_too_old_is_an_environment_problem(convert, fixture_path, tmp_path, monkeypatch, java, code):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if java:
        _fake_java(bin_dir, f'openjdk version "{java}.0.2" 2019-01-15')
    monkeypatch.setenv("PATH", str(bin_dir))
    result = convert("pmml", fixture_path("sklearn_pipeline"))
    error = result.json()["error"]
    assert result.exit_code == 3 and error["code"] == code
    assert "Java 17 or newer" in error["message"] and "default-jre-headless" in error["hint"]
    if java:
        assert "is Java 11" in error["message"]


@pytest.mark.parametrize("command", ["pmml", "onnx"])
def test_garbage_pickle_is_one_line(cli, fixture_path, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = fixture_path("bad_garbage_pickle")
    result = cli(command, src)
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"error [corrupt-model-file]: {src} is not a readable pickle") and len(lines) == 2
    assert "Traceback" not in result.stderr and not (tmp_path / "models").exists()


@pytest.mark.parametrize("command", ["pmml", "onnx"])
def test_malicious_pickle_is_refused_and_never_runs(convert, fixture_path, command, tmp_path):
    src = fixture_path("bad_malicious_pickle")
    result = convert(command, src)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "untrusted-pickle" and "os.system" in error["message"]
    assert "--trust-pickle" in error["hint"]
    assert not (src.parent / "PWNED").exists() and not (tmp_path / "models").exists()


def test_existing_version_is_not_overwritten(pipeline_pmml, convert, fixture_path):
    base = pipeline_pmml[1]
    before = (base / "1" / "model.pmml").stat().st_mtime_ns
    result = convert("pmml", fixture_path("sklearn_pipeline"), "--base-path", base, "--version", "1")
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "version-exists" and "--version 2" in error["hint"]
    assert (base / "1" / "model.pmml").stat().st_mtime_ns == before


@pytest.mark.parametrize("write, code, fragment", [
    (None, "path-not-found", "no such file"),
    ("sepal_length,sepal_width,petal_length\n5.1,3.5,1.4\n", "bad-sample-data", "has no column(s) color"),
    ("sepal_length,sepal_width,petal_length,color\n5.1,abc,1.4,red\n", "bad-sample-data",
     "row 1, column 'sepal_width' is 'abc', not a number"),
    ("sepal_length,sepal_width,petal_length,color\n5.1,,1.4,red\n", "bad-sample-data", "row 1, column 'sepal_width' "
     "is blank, and the model cannot take a missing value"),
    ("sepal_length,sepal_width,petal_length,color\n", "bad-sample-data", "has no rows"),
])
def test_bad_sample_data(convert, fixture_path, tmp_path, write, code, fragment):
    data = tmp_path / "rows.csv"
    if write is not None:
        data.write_text(write)
    result = convert("pmml", fixture_path("sklearn_pipeline"), "--sample-data", data)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == code and fragment in error["message"], error
    assert str(data) in error["message"] and not (tmp_path / "models").exists()


def test_sample_data_of_an_unknown_format(convert, fixture_path, tmp_path):
    data = tmp_path / "rows.txt"
    data.write_text("x")
    error = convert("pmml", fixture_path("sklearn_pipeline"), "--sample-data", data).json()["error"]
    assert error["code"] == "bad-sample-data" and ".csv or .parquet" in error["message"]


@pytest.mark.parametrize("name, code", [("frozen_mlp_pb", "unsupported-format"), ("pmml_model", "unsupported-format")])
def test_pmml_of_a_non_sklearn_source_is_refused(convert, fixture_path, name, code):
    result = convert("pmml", fixture_path(name))
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == code and "not a scikit-learn pickle" in error["message"]


def test_evaluator_leaves_no_java_process(pipeline_pmml):
    artifact = pipeline_pmml[1] / "1"
    before = _java_children()
    for engine in pmml_runtime.ENGINES:
        pmml_runtime.evaluate(artifact / "model.pmml", engine, {"sepal_length": [5.0], "sepal_width": [3.0],
                                                                "petal_length": [1.5], "color": ["red"]})
    assert _java_children() == before


def _java_children() -> set[int]:
    """Java processes anywhere below this test process."""
    found, mine = set(), {os.getpid()}
    for proc in sorted(os.listdir("/proc"), key=lambda p: int(p) if p.isdigit() else 0):
        if not proc.isdigit():
            continue
        try:
            fields = open(f"/proc/{proc}/stat").read().rsplit(")", 1)[1].split()
            name = open(f"/proc/{proc}/comm").read().strip()
        except OSError:
            continue
        if int(fields[1]) in mine:
            mine.add(int(proc))
            if name == "java" and fields[0] != "Z":
                found.add(int(proc))
    return found
