"""Graphs with control flow (v1 Switch/Merge frames, v2 If/While) and PlaceholderWithDefault inputs.

inspect names the real outputs and the optional inputs; `saved-model` and `onnx` convert every
variant; the served SavedModel answers like TensorFlow's own run of the ORIGINAL file (defaults not
fed); `validate` passes over REST and gRPC; the ambiguous-outputs hint works when pasted.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest

from conftest import converted, run_cli
from tfsconvert import tfproto
from tfsconvert.convert.onnx_writer import onnx_runner
from tfsconvert.inspect import onnx_model
from tfsconvert.runtimes.tf import ServingSession

pytestmark = pytest.mark.slow  # TensorFlow in-process, and a server process for validate

# variant -> (fixture, real outputs, nodes nothing reads that are neither inputs nor outputs: control-flow
# plumbing, and the Placeholders TF2's freezing leaves)
VARIANTS = {
    "v1": ("frozen_cond_v1_pb", ["probabilities"], {"cond/switch_f", "cond_1/switch_f", "rnn/while/Exit"}),
    "v2": ("frozen_cond_v2_pb", ["probabilities", "class_id"],
           {"rnn/while/Identity", "rnn/while/Identity_1", "rnn/while/Identity_2", "rnn/while/Identity_4",
            "rnn/while/Identity_5"}),
    "checkpoint": ("tf1_checkpoint_cond", ["probabilities"], {"cond/switch_f", "cond_1/switch_f", "rnn/while/Exit"}),
    "tf2-frozen": ("frozen_cond_tf2_pb", ["Identity"], {"unused_control_flow_input", "unused_control_flow_input_2"}),
}
OPTIONAL = {"is_training": ("DT_BOOL", False), "keep_prob": ("DT_FLOAT", 1.0)}
ROWS = 256


def _graph_def(path: Path):
    """The graph as stored (frozen .pb, or the checkpoint's .meta), read without TensorFlow."""
    if path.suffix == ".pb":
        return tfproto.parse_binary("GraphDef", path.read_bytes())
    return tfproto.parse_binary("MetaGraphDef", path.with_name(path.name + ".meta").read_bytes()).graph_def


def _unconsumed(graph_def) -> set[str]:
    consumed = {i.lstrip("^").split(":")[0] for n in graph_def.node for i in n.input}
    return {n.name for n in graph_def.node if n.name not in consumed}


def _hint_flags(hint: str) -> list[str]:
    """`name them, e.g. --output a=a:0 ...` -> the flags, as a shell would split them."""
    return shlex.split(hint.split("e.g. ", 1)[1])


@pytest.fixture(scope="module")
def saved(fixture_path, tmp_path_factory):
    """variant -> (conversion JSON, base path); v2 with the flags its ambiguous-outputs hint gives."""
    results = {}
    for variant, (fixture, _, _) in VARIANTS.items():
        flags = []
        if variant == "v2":
            scratch = tmp_path_factory.mktemp("ambiguous") / "models"
            error = run_cli("saved-model", fixture_path(fixture), "--base-path", scratch, "--json").json()["error"]
            flags = _hint_flags(error["hint"])
        results[variant] = converted(fixture_path, tmp_path_factory, "saved-model", fixture, "--version", "1", *flags)
    return results


def _rows() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((ROWS, 4)).astype(np.float32)


def _reference(path: Path, outputs: list[str], features: np.ndarray) -> dict[str, np.ndarray]:
    """TensorFlow's own run of the original file, only `features` fed (the defaults are not)."""
    import tensorflow as tf

    with tf.Graph().as_default() as g, tf.compat.v1.Session(graph=g) as session:
        if path.suffix == ".pb":
            tf.graph_util.import_graph_def(tf.compat.v1.GraphDef.FromString(path.read_bytes()), name="")
        else:
            saver = tf.compat.v1.train.import_meta_graph(str(path) + ".meta", clear_devices=True)
            saver.restore(session, str(path))
        values = session.run([f"{name}:0" for name in outputs], {"features:0": features})
    return dict(zip(outputs, values))


@pytest.mark.parametrize("variant", VARIANTS)
def test_inspect_lists_the_real_outputs_and_the_optional_inputs(cli, fixture_path, variant):
    fixture, outputs, noise = VARIANTS[variant]
    path = fixture_path(fixture)
    assert noise < _unconsumed(_graph_def(path))  # the file really holds those
    data = cli("inspect", path, "--json").json()
    details = data["versions"][0]["details"]
    assert details["inputs"] == {"features": {"dtype": "DT_FLOAT", "shape": [-1, 4], "name": "features:0"}}
    assert details["optional_inputs"] == {
        name: {"dtype": dtype, "shape": [], "name": f"{name}:0", "default": default}
        for name, (dtype, default) in OPTIONAL.items()}
    assert list(details["outputs"]) == outputs


def test_human_inspect_shows_the_optional_inputs_with_their_defaults(cli, fixture_path):
    result = cli("inspect", fixture_path("frozen_cond_v1_pb"))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "optional_inputs")
    table = "\n".join(lines[start:start + 5])
    assert "default" in table and "is_training:0" in table and "false" in table and "1.0" in table


def test_ambiguous_outputs_name_only_the_real_outputs(convert, fixture_path, tmp_path):
    result = convert("saved-model", fixture_path("frozen_cond_v2_pb"))
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "ambiguous-outputs"
    assert "2 candidate outputs (probabilities, class_id)" in error["message"]
    assert _hint_flags(error["hint"]) == ["--output", "probabilities=probabilities:0",
                                          "--output", "class_id=class_id:0"]
    assert not (tmp_path / "models").exists()
    diagnostics = convert("inspect", fixture_path("frozen_cond_v2_pb")).json()["diagnostics"]
    [several] = [d for d in diagnostics if d["code"] == "unnamed-signature-io"]
    assert shlex.split(several["hint"].split(": ", 1)[1]) == _hint_flags(error["hint"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_served_savedmodel_answers_like_tensorflow_on_the_original(saved, fixture_path, variant):
    fixture, outputs, _ = VARIANTS[variant]
    data, base = saved[variant]
    assert data["parity"]["ok"] and data["parity"]["samples"] == 256
    assert list(data["signature"]["inputs"]) == ["features"]  # the optional inputs are not served
    assert sorted(data["signature"]["outputs"]) == sorted(outputs)
    [note] = data["notes"]
    assert "left at their defaults and not in the signature: is_training=false, keep_prob=1.0" in note
    features = _rows()
    expected = _reference(fixture_path(fixture), outputs, features)
    with ServingSession(base / "1") as served:
        actual = served.run("serving_default", {"features": features})
    for name in outputs:
        assert actual[name].shape[0] == ROWS
        if expected[name].dtype.kind == "f":
            np.testing.assert_allclose(actual[name], expected[name], atol=1e-6, rtol=1e-6)
        else:
            np.testing.assert_array_equal(actual[name], expected[name])


@pytest.mark.parametrize("variant", VARIANTS)
def test_validate_passes_over_rest_and_grpc(saved, variant):
    _, base = saved[variant]
    result = run_cli("validate", base, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report
    [version] = report["versions"]
    assert version["served"] and version["golden_failed"] == 0 and version["golden_passed"] == 16
    assert sorted({r["protocol"] for r in version["golden"]}) == ["grpc", "rest"]


def test_the_flags_the_note_gives_serve_the_optional_inputs_with_their_defaults_as_samples(saved, convert,
                                                                                           fixture_path, tmp_path):
    note = saved["v1"][0]["notes"][0]
    flags = shlex.split(note.split("add ", 1)[1].split(";")[0])
    assert flags == ["--input", "features=features:0", "--input", "is_training=is_training:0",
                     "--input", "keep_prob=keep_prob:0"]
    result = convert("saved-model", fixture_path("frozen_cond_v1_pb"), "--version", "1", *flags)
    assert result.exit_code == 0, result.stdout + result.stderr
    data = result.json()
    assert data["notes"] == []
    inputs = data["signature"]["inputs"]
    assert {alias: (spec["dtype"], spec["shape"]) for alias, spec in inputs.items()} == {
        "features": ("DT_FLOAT", [-1, 4]), "is_training": ("DT_BOOL", []), "keep_prob": ("DT_FLOAT", [])}
    records = [json.loads(line) for line in (tmp_path / data["files"]["golden"]).read_text().splitlines()]
    # Synthesized samples give an optional input its default: random ones would switch dropout on.
    assert {(r["request"]["inputs"]["is_training"], r["request"]["inputs"]["keep_prob"]) for r in records} == {
        (False, 1.0)}
    report = json.loads(run_cli("validate", tmp_path / data["base_path"], "--json").stdout)
    assert report["versions"][0]["golden_passed"] == 16 and report["versions"][0]["golden_failed"] == 0


@pytest.mark.parametrize("variant", ["v1", "checkpoint", "tf2-frozen"])
def test_onnx_answers_like_tensorflow_on_the_original(convert, fixture_path, tmp_path, variant):
    fixture, [output], _ = VARIANTS[variant]
    result = convert("onnx", fixture_path(fixture))
    assert result.exit_code == 0, result.stdout + result.stderr
    model = tmp_path / result.json()["files"]["model"]
    signature = onnx_model.describe(model).versions[0].signatures["serving_default"]
    assert (list(signature.inputs), list(signature.outputs)) == (["features"], [output])
    features = _rows()
    actual = onnx_runner(model)({"features": features})
    expected = _reference(fixture_path(fixture), [output], features)
    np.testing.assert_allclose(actual[output], expected[output], atol=1e-5, rtol=1e-5)


def test_onnx_serves_named_optional_inputs_as_required_inputs(convert, fixture_path, tmp_path):
    flags = ["--input", "features=features", "--input", "is_training=is_training", "--input", "keep_prob=keep_prob"]
    result = convert("onnx", fixture_path("frozen_cond_v1_pb"), "--version", "1", *flags)
    assert result.exit_code == 0, result.stdout + result.stderr
    data = result.json()
    signature = onnx_model.describe(tmp_path / data["files"]["model"]).versions[0].signatures["serving_default"]
    assert {alias: (spec.dtype, spec.shape) for alias, spec in signature.inputs.items()} == {
        "features": ("DT_FLOAT", [-1, 4]), "is_training": ("DT_BOOL", []), "keep_prob": ("DT_FLOAT", [])}
    report = json.loads(run_cli("validate", tmp_path / data["base_path"], "--json").stdout)
    assert report["versions"][0]["golden_passed"] == 16 and report["versions"][0]["golden_failed"] == 0


def test_onnx_of_control_flow_v2_is_a_clear_unsupported_op(convert, fixture_path, tmp_path):
    result = convert("onnx", fixture_path("frozen_cond_v2_pb"), "--output", "probabilities=probabilities")
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "unsupported-op"
    assert "If, StatelessWhile" in error["message"] and "disable_control_flow_v2" in error["hint"]
    assert not (tmp_path / "models" / "cond_loop_v2" / "1").exists()
