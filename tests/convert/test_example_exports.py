"""Exports whose input is serialized tf.Examples: an Estimator-style SavedModel with classify,
regress and predict signatures, and a frozen graph with a dense-only ParseExampleV2.

References are computed here from the untouched originals (TF's SavedModel loader on the source
directory, TF's GraphDef parser on the source bytes) on tf.Examples this file builds itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

ATOL = RTOL = 1e-6
EXAMPLES = 256
ESTIMATOR_METHODS = {"serving_default": "tensorflow/serving/classify", "classification": "tensorflow/serving/classify",
                     "regression": "tensorflow/serving/regress", "predict": "tensorflow/serving/predict"}


def _examples(count: int, build) -> np.ndarray:
    """`count` serialized tf.Examples, `build(rng, features)` filling each one."""
    import tensorflow as tf

    rng = np.random.default_rng(42)
    out = np.empty(count, dtype=object)
    for i in range(count):
        example = tf.train.Example()
        build(rng, example.features.feature)
        out[i] = example.SerializeToString()
    return out


def _estimator_features(rng, feature) -> None:
    feature["age"].float_list.value.append(float(rng.uniform(18, 90)))
    if rng.random() < 0.7:  # income has a default: sometimes left out
        feature["income"].float_list.value.append(float(rng.normal()))
    feature["visits"].int64_list.value.append(int(rng.integers(0, 20)))
    tags = [f"tag{int(k)}".encode() for k in rng.integers(0, 6, int(rng.integers(0, 4)))]
    if tags:
        feature["tags"].bytes_list.value.extend(tags)


def _dense_features(rng, feature) -> None:
    feature["x"].float_list.value.extend(rng.normal(size=3).tolist())
    if rng.random() < 0.5:
        feature["bias"].float_list.value.append(float(rng.normal()))
    if rng.random() < 0.5:
        feature["bucket"].int64_list.value.append(int(rng.integers(0, 5)))


def _run_savedmodel(export_dir: Path, key: str, examples: np.ndarray) -> dict[str, np.ndarray]:
    """Signature `key` of a SavedModel, loaded by TF's own TF1 loader, on `examples`."""
    import tensorflow as tf

    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(export_dir))
        signature = meta_graph.signature_def[key]
        (info,) = signature.inputs.values()
        aliases = sorted(signature.outputs)
        values = session.run([signature.outputs[a].name for a in aliases], {info.name: examples})
    return dict(zip(aliases, values))


def _run_frozen(path: Path, examples: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef.FromString(path.read_bytes())
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        tf.graph_util.import_graph_def(graph_def, name="")
        return session.run("probabilities:0", {"examples:0": examples})


def _close(expected: np.ndarray, actual: np.ndarray) -> None:
    assert expected.shape == actual.shape and expected.dtype == actual.dtype
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, atol=ATOL, rtol=RTOL)
    else:
        assert (expected == actual).all()


@pytest.fixture(scope="module")
def estimator(fixture_path, tmp_path_factory):
    """(source version dir, conversion JSON, published base path)."""
    source = fixture_path("estimator_savedmodel") / "1"
    base = tmp_path_factory.mktemp("estimator") / "models" / "estimator"
    result = run_cli("saved-model", source, "--base-path", base, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    return source, result.json(), base


@pytest.fixture(scope="module")
def dense(fixture_path, tmp_path_factory):
    source = fixture_path("frozen_dense_parse_pb")
    base = tmp_path_factory.mktemp("dense") / "models" / "dense"
    result = run_cli("saved-model", source, "--base-path", base, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    return source, result.json(), base


def test_estimator_export_keeps_every_signature_with_its_method(estimator):
    from tfsconvert.inspect.savedmodel import read_savedmodel

    _, data, _ = estimator
    info, findings = read_savedmodel(Path(data["artifact"]), 1)
    assert {key: sig.method for key, sig in info.signatures.items()} == ESTIMATOR_METHODS
    assert sorted(info.signatures["serving_default"].inputs) == ["inputs"]
    assert sorted(info.signatures["serving_default"].outputs) == ["classes", "scores"]
    assert sorted(info.signatures["regression"].outputs) == ["outputs"]
    assert sorted(info.signatures["predict"].inputs) == ["examples"]
    assert {key: sig["method"] for key, sig in data["signatures"].items()} == ESTIMATOR_METHODS
    assert findings == [] and data["findings"] == []


def test_estimator_parity_on_every_signature(estimator):
    source, data, _ = estimator
    parity = data["parity"]
    assert parity["ok"] and parity["samples"] == 256
    assert {row["alias"] for row in parity["outputs"]} == {
        "classes", "scores", "classification/classes", "classification/scores", "regression/outputs",
        "predict/probabilities", "predict/logits"}
    assert all(row["max_abs"] is None or row["max_abs"] <= ATOL for row in parity["outputs"])
    examples = _examples(EXAMPLES, _estimator_features)
    for key in ESTIMATOR_METHODS:
        expected = _run_savedmodel(source, key, examples)
        actual = _run_savedmodel(Path(data["artifact"]), key, examples)
        assert sorted(actual) == sorted(expected)
        for alias in expected:
            _close(expected[alias], actual[alias])
    # the model really depends on its features: the scores vary over the examples
    assert np.ptp(expected["probabilities"][:, 1]) > 0.1


def test_estimator_golden_records_are_valid_examples_with_their_api_forms(estimator):
    from tfsconvert import golden

    _, data, _ = estimator
    records = golden.read_golden(Path(data["files"]["golden"]))
    by_signature = {key: [r for r in records if r.signature_name == key] for key in ESTIMATOR_METHODS}
    assert {key: len(rs) for key, rs in by_signature.items()} == dict.fromkeys(ESTIMATOR_METHODS, 8)
    for key in ("serving_default", "classification", "regression"):
        for record in by_signature[key]:
            (example,) = record.request["examples"]
            assert {"age", "visits"} <= set(example)  # required features are always there
            assert all(isinstance(v, float) for v in example["age"]) and isinstance(example["visits"][0], int)
            assert list(record.response) == ["results"]
    first = by_signature["serving_default"][0].response["results"][0]
    assert [label for label, _ in first] == ["0", "1"] and abs(sum(score for _, score in first) - 1) < 1e-6
    assert isinstance(by_signature["regression"][0].response["results"][0], float)
    assert "inputs" in by_signature["predict"][0].request  # the predict signature keeps :predict
    # optional features are sometimes left out, sparse ones hold 0..3 values
    examples = [r.request["examples"][0] for rs in by_signature.values() for r in rs if "examples" in r.request]
    assert any("income" not in e for e in examples) and any("income" in e for e in examples)
    assert {len(e.get("tags", [])) for e in examples} >= {0, 1}


def test_estimator_warmup_holds_classify_regress_and_predict_logs(estimator):
    from tensorflow_serving.apis import prediction_log_pb2

    from tfsconvert.tfrecord import read_records

    _, data, _ = estimator
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in read_records(Path(data["files"]["warmup"]))]
    kinds = [(log.WhichOneof("log_type"), getattr(log, log.WhichOneof("log_type")).request.model_spec.signature_name)
             for log in logs]
    assert sorted(set(kinds)) == [("classify_log", "classification"), ("classify_log", "serving_default"),
                                  ("predict_log", "predict"), ("regress_log", "regression")]
    assert len(logs) == 32
    example = next(log for log in logs if log.HasField("classify_log")).classify_log.request.input.example_list
    assert len(example.examples) == 1 and "age" in example.examples[0].features.feature


def test_inspect_does_not_ask_to_rename_the_api_keys(estimator, fixture_path):
    _, data, base = estimator
    for path in (base, fixture_path("estimator_savedmodel")):
        diagnostics = run_cli("inspect", path, "--json").json()["diagnostics"]
        assert [d for d in diagnostics if d["code"] == "unnamed-signature-io"] == []


def test_validate_replays_classify_and_regress_golden_records_over_rest_and_grpc(estimator):
    _, _, base = estimator
    result = run_cli("validate", base, "--json")
    report = result.json()
    assert result.exit_code == 0 and report["ok"], json.dumps(report)[:2000]
    (version,) = report["versions"]
    assert version["findings"] == [] and version["golden_source"].endswith("golden.jsonl")
    for protocol in ("rest", "grpc"):
        done = [g for g in version["golden"] if g["protocol"] == protocol]
        assert len(done) == 32 and all(g["ok"] and g["values_checked"] for g in done)
        assert {g["signature_name"] for g in done} == set(ESTIMATOR_METHODS)
        classify = next(g for g in done if g["signature_name"] == "classification")
        assert {o["alias"] for o in classify["outputs"]} == {"classes", "scores"}
        regress = next(g for g in done if g["signature_name"] == "regression")
        assert [o["alias"] for o in regress["outputs"]] == ["outputs"]
    assert report["summary"]["golden_passed"] == 64 and report["summary"]["golden_failed"] == 0


def test_validate_passes_the_raw_estimator_export(fixture_path):
    """No golden file: one synthesized request per signature, made of valid tf.Examples."""
    result = run_cli("validate", fixture_path("estimator_savedmodel"), "--json")
    report = result.json()
    assert result.exit_code == 0 and report["summary"]["error"] == 0, json.dumps(report)[:2000]
    (version,) = report["versions"]
    assert [f["code"] for f in version["findings"]] == ["values-not-checked"]
    assert len(version["golden"]) == 8 and all(g["ok"] for g in version["golden"])


def test_renaming_a_classify_api_key_is_refused(fixture_path, tmp_path):
    result = run_cli("saved-model", fixture_path("estimator_savedmodel") / "1", "--base-path", tmp_path / "m",
                     "--output", "probabilities=scores", "--json")
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "bad-name-mapping"
    assert "'scores'" in error["message"] and "--source-signature predict" in error["hint"]


def test_renames_apply_to_the_predict_signature(fixture_path, tmp_path):
    result = run_cli("saved-model", fixture_path("estimator_savedmodel") / "1", "--base-path", tmp_path / "m",
                     "--source-signature", "predict", "--signature-name", "predict", "--input",
                     "serialized_examples=examples", "--samples", "16", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    signatures = result.json()["signatures"]
    assert list(signatures["predict"]["inputs"]) == ["serialized_examples"]
    assert list(signatures["serving_default"]["inputs"]) == ["inputs"]  # classify keeps its API key


def test_bad_sample_inputs_for_a_classify_signature_is_one_clear_line(cli_subprocess, fixture_path, tmp_path):
    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps({"inputs": ["age=31", "age=45"]}))
    result = cli_subprocess("saved-model", fixture_path("estimator_savedmodel") / "1", "--base-path",
                            tmp_path / "m", "--sample-inputs", samples)
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error [samples-rejected]"), lines
    assert str(samples) in lines[0] and "ParseExample" in lines[0]
    assert not (tmp_path / "m").exists()


def test_dense_only_parse_graph_converts_with_parity(dense):
    source, data, _ = dense
    assert data["parity"]["ok"] and data["parity"]["samples"] == 256
    examples = _examples(EXAMPLES, _dense_features)
    expected = _run_frozen(source, examples)
    actual = _run_savedmodel(Path(data["artifact"]), "serving_default", examples)["probabilities"]
    _close(expected, actual)
    assert np.ptp(expected[:, 0]) > 0.1


def test_dense_only_parse_graph_validates(dense):
    _, _, base = dense
    result = run_cli("validate", base, "--json")
    report = result.json()
    assert result.exit_code == 0 and report["ok"], json.dumps(report)[:2000]
    assert report["summary"]["golden_passed"] == 16


def test_sample_makers_follow_every_kind_of_parse_spec():
    """ParseExampleV2 (dense, sequence, sparse, ragged features) and the legacy ParseExample: every
    made example parses, required features are always there, others vary."""
    import tensorflow as tf

    from tfsconvert.samples import synthesize
    from tfsconvert.convert.input_meaning import graph_makers
    from tfsconvert.model import TensorSpec

    with tf.Graph().as_default() as graph:
        v2_input = tf.compat.v1.placeholder(tf.string, [None], name="v2")
        v2 = tf.io.parse_example(tf.identity(v2_input), {
            "dense": tf.io.FixedLenFeature([2], tf.float32),
            "sequence": tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True),
            "ragged": tf.io.RaggedFeature(tf.string),
            "sparse": tf.io.VarLenFeature(tf.float32),
            "word": tf.io.FixedLenFeature([], tf.string, default_value="none"),
        })
        v1_input = tf.compat.v1.placeholder(tf.string, [None], name="v1")
        v1 = tf.raw_ops.ParseExample(
            serialized=v1_input, names=[], sparse_keys=["ids"], dense_keys=["x"], sparse_types=[tf.int64],
            dense_defaults=[tf.constant([], tf.float32)], dense_shapes=[[3]])
        text = tf.compat.v1.placeholder(tf.string, [None], name="text")
        makers = graph_makers(graph, {"v2": v2_input, "v1": v1_input, "text": text})
        assert sorted(makers) == ["v1", "v2"]  # a string nobody parses keeps plain strings
        specs = {alias: TensorSpec("DT_STRING", [-1]) for alias in makers}
        samples = synthesize(specs, 64, makers=makers)
        batch = {alias: np.concatenate([s[alias] for s in samples]) for alias in makers}
        with tf.compat.v1.Session(graph=graph) as session:
            parsed_v2, parsed_v1 = session.run([v2, v1], {v2_input: batch["v2"], v1_input: batch["v1"]})
    assert parsed_v2["dense"].shape == (64, 2) and np.ptp(parsed_v2["dense"]) > 1
    assert 0 < (parsed_v2["word"] == b"none").sum() < 64  # the defaulted feature is sometimes left out
    assert set(np.diff(parsed_v2["ragged"].row_splits)) == {0, 1, 2, 3}
    assert len(parsed_v2["sparse"].values) and parsed_v2["sequence"].shape[0] == 64
    assert parsed_v1.dense_values[0].shape == (64, 3) and len(parsed_v1.sparse_values[0])
