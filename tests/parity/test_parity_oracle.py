"""`parity`'s reference is the original source run by its own framework: an artifact converted from a damaged copy
of a frozen graph (its batch norm's `is_training: false` attr dropped, so it runs in training mode, as a reader that
drops false-valued attrs would load it) disagrees with the original file on the rows, and agrees with the copy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from tfsconvert.errors import InputError

ROWS = 300
ATOL = RTOL = 1e-6  # a frozen graph against a SavedModel (docs/parity.md "Tolerances")


def damaged_copy(src: Path, dest: Path) -> Path:
    import tensorflow as tf

    graph = tf.compat.v1.GraphDef.FromString(src.read_bytes())
    node = next(n for n in graph.node if n.op.startswith("FusedBatchNorm"))
    assert node.attr["is_training"].HasField("b") and not node.attr["is_training"].b
    del node.attr["is_training"]  # the op's default: training mode, normalized by the batch's own statistics
    dest.write_bytes(graph.SerializeToString())
    return dest


def answers(path: Path, features: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(tf.compat.v1.GraphDef.FromString(path.read_bytes()), name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run("probabilities:0", {"features:0": features})


@pytest.mark.slow
def test_an_artifact_of_a_damaged_copy_disagrees_with_the_original(spark, fixture_path, tmp_path):
    original = fixture_path("frozen_numeric_traps_pb")
    damaged = damaged_copy(original, tmp_path / "damaged.pb")
    base = tmp_path / "models" / "m"
    result = run_cli("saved-model", damaged, "--base-path", base, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    features = np.random.default_rng(4).normal(0, 1, (ROWS, 8)).astype(np.float32)
    data = tmp_path / "rows.parquet"
    pd.DataFrame({"features": list(features)}).to_parquet(data)  # one row group: one partition, one batch
    expected, moved = answers(original, features), answers(damaged, features)
    outside = int(np.count_nonzero((np.abs(moved - expected) > ATOL + RTOL * np.abs(expected)).any(axis=1)))
    assert outside > 0

    result = run_cli("parity", original, base, "--data", data, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and not report["ok"], report
    assert report["rows"] == ROWS and report["source_format"] == "frozen-graph"
    [found] = report["outputs"]
    assert found["name"] == "probabilities" and found["rows_over"] == outside, found

    result = run_cli("parity", damaged, base, "--data", data, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["ok"] and report["outputs"][0]["rows_over"] == 0, report


def test_a_source_without_the_artifacts_names_is_a_signature_mismatch(fixture_path):
    from tfsconvert.parity import oracle_tf

    with pytest.raises(InputError) as raised:
        oracle_tf.load(fixture_path("frozen_mlp_pb"), "frozen-graph", ["pixels"], ["probabilities"])
    assert raised.value.code == "signature-mismatch"
    assert raised.value.message == ("the source's inputs/outputs (features -> probabilities) are not the "
                                    "artifact's (pixels -> probabilities)")


def test_a_pickle_goes_through_the_gate_before_it_is_unpickled(fixture_path, tmp_path):
    """The reference side unpickles with joblib; the driver's restricted unpickler refuses a pickle that runs
    code first (before Spark starts), unless --trust-pickle."""
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "1" / "model.onnx").write_bytes(b"")
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    result = run_cli("parity", fixture_path("bad_malicious_pickle"), tmp_path / "m", "--data", tmp_path / "rows.csv")
    assert result.exit_code == 2 and "error [untrusted-pickle]: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_savedmodel_saved_for_training_and_serving_answers_with_its_serve_graph(fixture_path):
    """TensorFlow's `load` refuses a SavedModel of several meta graphs without tags; the oracle takes the one TF
    Serving serves (its {train} graph here answers through dropout)."""
    import tensorflow as tf

    from tfsconvert.parity import oracle_tf

    version = fixture_path("savedmodel_serve_and_train") / "1"
    features = np.random.default_rng(5).normal(0, 1, (50, 4)).astype(np.float32)
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(version))
        signature = meta.signature_def["serving_default"]
        expected = session.run(signature.outputs["probabilities"].name,
                               {signature.inputs["features"].name: features})
    run = oracle_tf.load(version, "savedmodel", ["features"], ["probabilities"])
    np.testing.assert_allclose(run({"features": features})["probabilities"], expected, rtol=1e-6, atol=1e-7)
