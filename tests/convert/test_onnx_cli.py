"""`tfsconvert onnx` for TensorFlow sources: model.onnx named by the aliases, parity, golden replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsconvert import golden
from tfsconvert.compare import compare
from tfsconvert.convert.onnx_writer import onnx_runner
from tfsconvert.inspect import onnx_model
from tfsconvert.rest_codec import request_tensors, response_tensors

SOURCES = {
    "frozen-pb": ("frozen_mlp_pb", []),
    "keras": ("keras_keras", []),
    "checkpoint": ("tf1_checkpoint", ["--input", "features=x", "--output", "probabilities=y"]),
    "savedmodel": ("keras_export_savedmodel", ["--input", "features=keras_tensor", "--output", "probabilities=output_0"]),
}


@pytest.mark.parametrize("kind", SOURCES)
def test_tensorflow_sources_become_onnx_with_the_signature_names(kind, convert, fixture_path, tmp_path):
    name, flags = SOURCES[kind]
    result = convert("onnx", fixture_path(name), "--version", "2", *flags)
    assert result.exit_code == 0, result.stdout + result.stderr
    data = result.json()
    artifact = tmp_path / data["artifact"]
    assert sorted(p.name for p in artifact.iterdir()) == ["assets.extra", "model.onnx"]
    assert data["parity"]["ok"] and all(d["atol"] == 1e-5 for d in data["parity"]["outputs"])
    signature = onnx_model.describe(artifact / "model.onnx").versions[0].signatures["serving_default"]
    assert (list(signature.inputs), list(signature.outputs)) == (["features"], ["probabilities"])
    assert signature.inputs["features"].shape == [-1, 4]
    run = onnx_runner(artifact / "model.onnx")
    records = golden.read_golden(artifact / "assets.extra" / "golden.jsonl")
    assert len(records) == 8
    for record in records:
        feeds = request_tensors(record.request, signature.inputs)
        expected = response_tensors(record.response, signature.outputs)
        assert all(d.ok for d in compare(expected, run(feeds), record.atol, record.rtol))


def test_unsupported_op_names_the_op_and_the_opset(convert, fixture_path, tmp_path):
    result = convert("onnx", fixture_path("frozen_unsupported_op_pb"), "--opset", "15")
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "unsupported-op"
    assert error["message"] == "tf2onnx 1.17.0 cannot convert Lgamma at opset 15"
    assert not (tmp_path / "models").exists()


def test_a_non_tensorflow_source_is_refused_clearly(convert, fixture_path):
    result = convert("onnx", fixture_path("onnx_model"))
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "unsupported-format" and "onnx" in error["message"]


def test_output_file_is_readable_by_inspect_as_a_versioned_base_path(cli, convert, fixture_path, tmp_path):
    data = convert("onnx", fixture_path("frozen_mlp_pb")).json()
    described = cli("inspect", Path(data["base_path"]), "--json").json()
    assert described["format"] == "onnx-base-path" and described["diagnostics"] == []
