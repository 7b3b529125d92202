"""Frozen graphs whose meaning hangs on attrs set to 0, false or "": converted, they must answer
like TensorFlow's own run of the original file (computed here, not by tfsconvert)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import assert_serves
from tfsconvert.runtimes.tf import ServingSession

ROWS = 256
TEXTS = [b"a  b", b"tea for two", b"", b" lead and trail ", b"xyz", b"  ", b"one"]
STRING_OUTPUTS = ("--output", "consonants=consonants:0", "--output", "tokens=tokens:0")


def _tensorflow_run(pb: Path, fetches: list[str], feeds: dict[str, np.ndarray], edit=None) -> list[np.ndarray]:
    """The original file, parsed and run by TensorFlow alone; `edit(graph_def)` changes it first."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef.FromString(pb.read_bytes())
    if edit:
        edit(graph_def)
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(fetches, feeds)


def _features() -> np.ndarray:
    return np.random.default_rng(7).normal(0, 2, (ROWS, 8)).astype(np.float32)


def _set_attr(op: str, key: str, **value):
    def edit(graph_def):
        for node in graph_def.node:
            if node.op == op:
                node.attr[key].Clear()
                for field, v in value.items():
                    setattr(node.attr[key], field, v)
    return edit


@pytest.mark.parametrize("op, key, value", [("FusedBatchNormV3", "is_training", {"b": True}),
                                            ("LeakyRelu", "alpha", {"f": 0.2})])
def test_the_traps_change_the_answers_when_an_attr_falls_back_to_its_default(fixture_path, op, key, value):
    pb = fixture_path("frozen_numeric_traps_pb")
    feeds = {"features:0": _features()}
    (original,) = _tensorflow_run(pb, ["probabilities:0"], feeds)
    (defaulted,) = _tensorflow_run(pb, ["probabilities:0"], feeds, _set_attr(op, key, **value))
    assert np.abs(original - defaulted).max() > 0.01


def test_numeric_traps_savedmodel_answers_like_tensorflow(convert, fixture_path, tmp_path):
    pb = fixture_path("frozen_numeric_traps_pb")
    result = convert("saved-model", pb, "--version", "1")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["parity"]["ok"] and data["parity"]["samples"] == ROWS
    features = _features()
    (expected,) = _tensorflow_run(pb, ["probabilities:0"], {"features:0": features})
    with ServingSession(tmp_path / data["artifact"]) as served:
        actual = served.run("serving_default", {"features": features})["probabilities"]
    np.testing.assert_allclose(actual, expected, atol=1e-6, rtol=1e-6)
    assert_serves(tmp_path / data["base_path"], records=8)


def test_numeric_traps_onnx_answers_like_tensorflow(convert, fixture_path, tmp_path):
    from tfsconvert.convert.onnx_writer import onnx_runner

    pb = fixture_path("frozen_numeric_traps_pb")
    result = convert("onnx", pb, "--version", "1")
    assert result.exit_code == 0, result.stderr
    features = _features()
    (expected,) = _tensorflow_run(pb, ["probabilities:0"], {"features:0": features})
    actual = onnx_runner(tmp_path / result.json()["artifact"] / "model.onnx")({"features": features})
    np.testing.assert_allclose(actual["probabilities"], expected, atol=1e-5, rtol=1e-5)


def test_string_traps_savedmodel_answers_like_tensorflow(convert, fixture_path, tmp_path):
    import json

    pb = fixture_path("frozen_string_traps_pb")
    samples = tmp_path / "texts.json"
    samples.write_text(json.dumps({"text": [t.decode() for t in TEXTS]}))
    result = convert("saved-model", pb, "--version", "1", *STRING_OUTPUTS, "--sample-inputs", samples)
    assert result.exit_code == 0, result.stderr
    texts = np.array(TEXTS, dtype=object)
    consonants, tokens = _tensorflow_run(pb, ["consonants:0", "tokens:0"], {"text:0": texts})
    assert list(tokens[:2]) == [3, 3]  # empty tokens count: skip_empty=false was kept
    with ServingSession(tmp_path / result.json()["artifact"]) as served:
        actual = served.run("serving_default", {"text": texts})
    assert actual["consonants"].tolist() == consonants.tolist()
    assert actual["tokens"].tolist() == tokens.tolist()
    assert_serves(tmp_path / result.json()["base_path"], records=len(TEXTS))


def test_string_traps_to_onnx_is_a_clear_unsupported_op(convert, fixture_path):
    result = convert("onnx", fixture_path("frozen_string_traps_pb"), *STRING_OUTPUTS)
    assert result.exit_code == 2
    error = result.json()["error"]
    assert error["code"] == "unsupported-op" and "StaticRegexReplace" in error["message"]
