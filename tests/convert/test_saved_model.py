"""`tfsconvert saved-model`: every TensorFlow source kind, naming, golden/warmup files, refusals.

Each artifact is checked the way TF Serving would use it: loaded with the TF1 session loader
and tags {serve}, golden requests replayed against it, warmup records parsed with the official
protos.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, read_warmup, tree_digest
from tfsconvert import golden
from tfsconvert.compare import compare
from tfsconvert.inspect.savedmodel import read_savedmodel
from tfsconvert.rest_codec import request_tensors, response_tensors
from tfsconvert.runtimes.tf import ServingSession

# fixture, extra flags, expected input and output aliases (a kept signature's parity rows are `key/alias`)
SOURCES = {
    "frozen-pb": ("frozen_mlp_pb", [], ["features"], ["probabilities"]),
    "frozen-pbtxt": ("frozen_mlp_pbtxt", [], ["features"], ["probabilities"]),
    "keras": ("keras_keras", [], ["features"], ["probabilities"]),
    "keras-h5": ("keras_h5", [], ["features"], ["probabilities"]),
    "checkpoint": ("tf1_checkpoint", ["--input", "features=x", "--output", "probabilities=y:0"],
                   ["features"], ["probabilities"]),
    "savedmodel-rename": ("keras_export_savedmodel",
                          ["--input", "features=keras_tensor", "--output", "probabilities=output_0"],
                          ["features"], ["probabilities", "serve/probabilities"]),
}


def _artifact_checks(artifact: Path, inputs: list[str], outputs: list[str], samples: int = 8) -> None:
    """What TF Serving needs (docs/tf-serving.md §2.2), read back from disk and by loading it like the server."""
    info, findings = read_savedmodel(artifact, int(artifact.name))
    assert [f.code for f in findings if f.severity == "error"] == []
    assert info.tags == [["serve"]]
    signature = info.signatures["serving_default"]
    assert signature.method == "tensorflow/serving/predict"
    assert sorted(signature.inputs) == sorted(inputs) and sorted(signature.outputs) == sorted(outputs)
    assert all(spec.shape[0] == -1 for spec in (*signature.inputs.values(), *signature.outputs.values()))
    assert (artifact / "variables").is_dir()
    with ServingSession(artifact) as served:
        assert golden_replayed(artifact, served) == samples
        warmup = read_warmup(artifact / "assets.extra" / "tf_serving_warmup_requests")
        kept = len(info.signatures) - 1  # other signatures of a SavedModel source keep their records
        assert len(warmup) == samples * (1 + kept)
        request = warmup[0].predict_log.request
        assert request.model_spec.signature_name == "serving_default"
        assert sorted(request.inputs) == sorted(inputs)
        served.run("serving_default", {alias: _ndarray(tensor) for alias, tensor in request.inputs.items()})


def _ndarray(tensor_proto) -> np.ndarray:
    import tensorflow as tf

    return tf.make_ndarray(tensor_proto)


def golden_replayed(artifact: Path, served: ServingSession) -> int:
    """Send every golden request to the loaded model; each response must match its line."""
    signature = read_savedmodel(artifact, None)[0].signatures["serving_default"]
    records = [record for record in golden.read_golden(artifact / "assets.extra" / "golden.jsonl")
               if record.signature_name == "serving_default"]
    for record in records:
        assert record.request["signature_name"] == "serving_default" and "inputs" in record.request
        actual = served.run(record.signature_name, request_tensors(record.request, signature.inputs))
        expected = response_tensors(record.response, signature.outputs)
        diffs = compare(expected, actual, record.atol, record.rtol)
        assert all(d.ok for d in diffs), (record.id, diffs)
    return len(records)


@pytest.mark.parametrize("kind", SOURCES)
def test_every_source_kind_becomes_a_servable_version(kind, convert, fixture_path, tmp_path):
    name, flags, inputs, outputs = SOURCES[kind]
    source = fixture_path(name)
    result = convert("saved-model", source, "--version", "3", *flags)
    assert result.exit_code == 0, result.stdout + result.stderr
    data = result.json()
    artifact = Path(data["artifact"])
    assert artifact.name == "3" and artifact.parent == Path(data["base_path"])
    assert (tmp_path / artifact).is_dir()
    assert data["parity"]["ok"] and data["parity"]["samples"] == 256  # golden and warmup: the first 8
    assert {d["alias"] for d in data["parity"]["outputs"]} == set(outputs)
    assert all(d["max_abs"] <= d["atol"] for d in data["parity"]["outputs"])
    assert sorted(data["signature"]["inputs"]) == sorted(inputs)
    _artifact_checks(tmp_path / artifact, inputs, [alias for alias in outputs if "/" not in alias])


def test_a_checkpoint_can_be_given_by_its_meta_file(convert, fixture_path):
    meta = fixture_path("tf1_checkpoint").with_name("model.ckpt.meta")
    data = convert("saved-model", meta, "--input", "features=x", "--output", "probabilities=y").json()
    assert (data["source_format"], data["model_name"], data["parity"]["ok"]) == ("tf1-checkpoint", "model", True)


def test_default_names_come_from_the_graph_and_the_base_path_from_the_stem(convert, fixture_path, tmp_path):
    result = convert("saved-model", fixture_path("frozen_mlp_pb"))
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert (data["model_name"], data["base_path"], data["version"]) == ("mlp", "models/mlp", 1)
    assert data["signature"]["inputs"]["features"] == {"dtype": "DT_FLOAT", "shape": [-1, 4], "name": "features:0"}
    assert data["signature"]["outputs"]["probabilities"]["name"] == "probabilities:0"
    assert data["findings"] == []
    second = convert("saved-model", fixture_path("frozen_mlp_pb"))
    assert second.json()["version"] == 2  # the next free version


def test_checkpoint_default_names_are_generic_and_the_warning_gives_the_flags(convert, fixture_path):
    result = convert("saved-model", fixture_path("tf1_checkpoint"))
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert (list(data["signature"]["inputs"]), list(data["signature"]["outputs"])) == (["x"], ["y"])
    [warning] = data["findings"]
    assert warning["code"] == "unnamed-signature-io" and warning["severity"] == "warning"
    assert "--input NAME=x:0" in warning["hint"] and "--output NAME=y:0" in warning["hint"]


def test_generic_graph_names_are_flagged(convert, fixture_path):
    data = convert("saved-model", fixture_path("frozen_generic_pb")).json()
    assert (list(data["signature"]["inputs"]), list(data["signature"]["outputs"])) == (["input_1"], ["Identity"])
    assert [f["code"] for f in data["findings"]] == ["unnamed-signature-io"]
    assert "--input NAME=input_1:0 --output NAME=Identity:0" in data["findings"][0]["hint"]


def test_explicit_names_with_two_inputs_of_different_dtypes(convert, fixture_path, tmp_path):
    result = convert("saved-model", fixture_path("frozen_two_io_pb"), "--output", "score=score",
                     "--output", "class=class_id:0", "--input", "dense=dense_features", "--input", "ids=ids:0")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["signature"]["inputs"]["ids"]["dtype"] == "DT_INT64"
    assert data["signature"]["outputs"]["class"] == {"dtype": "DT_INT64", "shape": [-1], "name": "class_id:0"}
    line = json.loads((tmp_path / data["files"]["golden"]).read_text().splitlines()[0])
    ids = line["request"]["inputs"]["ids"]
    assert all(isinstance(v, int) and 0 <= v < 10 for v in ids)  # sensible ids, exact JSON integers
    assert isinstance(line["response"]["outputs"]["class"][0], int)
    _artifact_checks(tmp_path / data["artifact"], ["dense", "ids"], ["score", "class"])


def test_several_candidate_outputs_are_listed_and_an_output_is_asked_for(convert, fixture_path):
    result = convert("saved-model", fixture_path("frozen_two_io_pb"))
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "ambiguous-outputs"
    assert "score" in error["message"] and "class_id" in error["message"]
    assert "--output score=score:0 --output class_id=class_id:0" in error["hint"]


def test_unknown_tensor_lists_close_matches(convert, fixture_path, tmp_path):
    result = convert("saved-model", fixture_path("frozen_mlp_pb"), "--output", "probs=probabilites:0")
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "tensor-not-found"
    assert "'probabilites:0'" in error["message"] and "probabilities" in error["message"]
    assert not (tmp_path / "models").exists()


def test_placeholder_not_connected_to_the_outputs(convert, fixture_path):
    result = convert("saved-model", fixture_path("frozen_unused_input_pb"), "--output", "probabilities=probabilities",
                     "--input", "mask=debug_mask")
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "input-not-connected"
    assert "debug_mask:0 does not feed the outputs (probabilities:0)" in error["message"]


def test_a_needed_placeholder_missing_from_explicit_inputs(convert, fixture_path):
    result = convert("saved-model", fixture_path("frozen_two_io_pb"), "--output", "score=score",
                     "--input", "dense=dense_features")
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "missing-input"
    assert "ids" in error["message"] and "--input ids=ids:0" in error["hint"]


def test_unconnected_placeholders_are_not_inputs(convert, fixture_path):
    data = convert("saved-model", fixture_path("frozen_unused_input_pb"), "--output", "probabilities=probabilities").json()
    assert list(data["signature"]["inputs"]) == ["features"]


def test_savedmodel_given_as_a_frozen_pb(convert, fixture_path, tmp_path):
    saved_model_pb = fixture_path("savedmodel_base") / "1" / "saved_model.pb"
    result = convert("saved-model", saved_model_pb)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "not-a-frozen-graph"
    assert error["hint"] == f"pass the directory: tfsconvert saved-model {saved_model_pb.parent}"
    renamed = tmp_path / "model.pb"
    shutil.copy(saved_model_pb, renamed)
    assert convert("saved-model", renamed).json()["error"]["code"] == "not-a-frozen-graph"


def test_frozen_graph_given_as_a_savedmodel(convert, fixture_path):
    version_dir = fixture_path("broken_frozen_as_savedmodel") / "1"
    result = convert("saved-model", version_dir)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "not-a-savedmodel"
    assert "frozen GraphDef" in error["message"] and "tfsconvert saved-model ./frozen.pb" in error["hint"]


def test_checkpoint_without_meta(convert, fixture_path):
    result = convert("saved-model", fixture_path("bad_checkpoint_no_meta"))
    assert result.exit_code == 2 and result.json()["error"]["code"] == "checkpoint-without-meta"


def test_errors_are_one_line_without_traceback(cli_subprocess, fixture_path, tmp_path):
    result = cli_subprocess("saved-model", fixture_path("frozen_mlp_pb"), "--output", "p=nope",
                            "--base-path", tmp_path / "base")
    assert_one_line_error(result, fixture_path("frozen_mlp_pb"), "tensor-not-found")
    assert not (tmp_path / "base").exists()


@pytest.mark.parametrize("version", ["0", "-1", "v3", "3.0", "03"])
def test_bad_versions_are_rejected_before_anything_is_written(version, convert, fixture_path, tmp_path):
    result = convert("saved-model", fixture_path("frozen_mlp_pb"), "--version", version)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "bad-version" and repr(version) in error["message"]
    assert not (tmp_path / "models").exists()


def test_an_existing_version_is_never_overwritten_without_force(convert, fixture_path, tmp_path):
    source = fixture_path("frozen_mlp_pb")
    assert convert("saved-model", source, "--version", "3", "--samples", "2").exit_code == 0
    golden_file = tmp_path / "models/mlp/3/assets.extra/golden.jsonl"
    before = golden_file.read_bytes()
    refused = convert("saved-model", source, "--version", "3")
    error = refused.json()["error"]
    assert refused.exit_code == 2 and error["code"] == "version-exists"
    assert "--force" in error["hint"] and "--version 4" in error["hint"]
    assert golden_file.read_bytes() == before
    replaced = convert("saved-model", source, "--version", "3", "--samples", "5", "--force")
    assert replaced.exit_code == 0, replaced.stderr
    assert len(golden_file.read_text().splitlines()) == 5
    assert sorted(p.name for p in (tmp_path / "models/mlp").iterdir()) == ["3"]  # no temp dirs left


def test_parity_failure_exits_1_and_publishes_nothing(convert, fixture_path, tmp_path):
    noisy = fixture_path("frozen_noisy_pb")
    result = convert("saved-model", noisy, "--output", "probabilities=probabilities")
    error = result.json()["error"]
    assert result.exit_code == 1 and error["code"] == "parity-failed"
    assert "probabilities" in error["message"] and "max abs" in error["message"]
    assert not (tmp_path / "models").exists()


def test_parity_failure_with_force_keeps_the_existing_version(convert, fixture_path, tmp_path):
    base = tmp_path / "base"
    assert convert("saved-model", fixture_path("frozen_mlp_pb"), "--base-path", base, "--version", "1").exit_code == 0
    before = (base / "1" / "saved_model.pb").read_bytes()
    result = convert("saved-model", fixture_path("frozen_noisy_pb"), "--base-path", base, "--version", "1", "--force")
    assert result.exit_code == 1
    assert (base / "1" / "saved_model.pb").read_bytes() == before
    assert sorted(p.name for p in base.iterdir()) == ["1"]


def test_the_source_is_never_modified(convert, fixture_path, tmp_path):
    source = tmp_path / "exported"
    shutil.copytree(fixture_path("keras_export_savedmodel"), source)
    before = tree_digest(source)
    result = convert("saved-model", source, "--output", "probabilities=output_0")
    assert result.exit_code == 0, result.stderr
    assert tree_digest(source) == before


def test_a_version_dir_is_reversioned_next_to_itself(convert, fixture_path, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(fixture_path("savedmodel_base"), base)
    result = convert("saved-model", base / "2")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert (data["model_name"], Path(data["artifact"])) == ("base", base / "3")
    assert sorted(p.name for p in base.iterdir()) == ["1", "2", "3"]


def test_a_savedmodel_in_its_base_path_cannot_be_published_into_itself(convert, fixture_path, tmp_path):
    source = tmp_path / "models" / "m"
    shutil.copytree(fixture_path("broken_savedmodel_in_base"), source)
    result = convert("saved-model", source)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "target-is-source"
    assert "--base-path" in error["hint"]
    fixed = convert("saved-model", source, "--base-path", tmp_path / "serving" / "m", "--version", "1")
    assert fixed.exit_code == 0, fixed.stderr


def test_renamed_savedmodel_keeps_other_signatures_and_tf2_loaders_see_the_new_names(convert, fixture_path,
                                                                                     tmp_path):
    result = convert("saved-model", fixture_path("keras_export_savedmodel"), "--output", "probabilities=output_0")
    data = result.json()
    assert any("serve" in note for note in data["notes"])
    artifact = tmp_path / data["artifact"]
    info, _ = read_savedmodel(artifact, 1)
    assert sorted(info.signatures) == ["serve", "serving_default"]  
    assert sorted(info.signatures["serve"].outputs) == ["probabilities"]  # the same renames, same aliases
    assert not (artifact / "fingerprint.pb").exists()  # it hashed the old saved_model.pb
    import tensorflow as tf

    loaded = tf.saved_model.load(str(artifact))
    outputs = loaded.signatures["serving_default"](keras_tensor=tf.zeros([2, 4]))
    assert list(outputs) == ["probabilities"]


def test_sample_inputs_file_is_used_for_parity_and_golden(convert, fixture_path, tmp_path):
    samples = tmp_path / "samples.json"
    rows = [[0.5, 1.0, -1.0, 2.0], [0.0, 0.0, 0.0, 0.0], [1.5, -2.5, 3.0, 0.25]]
    samples.write_text(json.dumps({"features": rows}))
    data = convert("saved-model", fixture_path("frozen_mlp_pb"), "--sample-inputs", samples).json()
    assert data["parity"]["samples"] == 3
    lines = [json.loads(line) for line in (tmp_path / data["files"]["golden"]).read_text().splitlines()]
    assert [line["request"]["inputs"]["features"] for line in lines] == [[row] for row in rows]
    both = convert("saved-model", fixture_path("frozen_mlp_pb"), "--sample-inputs", samples, "--samples", "2")
    assert both.exit_code == 2 and both.json()["error"]["code"] == "bad-option"


def test_human_output_shows_the_signature_and_the_parity_table(cli, fixture_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("saved-model", fixture_path("frozen_mlp_pb"), "--version", "3")
    assert result.exit_code == 0, result.stderr
    assert "wrote models/mlp/3" in result.stdout
    assert "signature serving_default  method: tensorflow/serving/predict" in result.stdout
    assert "features:0" in result.stdout and "parity on 256 samples" in result.stdout
    assert "assets.extra/golden.jsonl" in result.stdout and "tf_serving_warmup_requests" in result.stdout


def test_the_fix_inspect_suggests_runs_as_given(cli, fixture_path, tmp_path, monkeypatch):
    import shlex

    monkeypatch.chdir(tmp_path)
    shutil.copytree(fixture_path("keras_export_savedmodel"), tmp_path / "exported")
    diagnostics = cli("inspect", "exported", "--json").json()["diagnostics"]
    hint = next(d["hint"] for d in diagnostics if d["code"] == "unnamed-signature-io")
    command = shlex.split(hint.split("  (")[0].replace("NAME=keras_tensor", "features=keras_tensor")
                          .replace("NAME=output_0", "probabilities=output_0"))
    assert command[:2] == ["tfsconvert", "saved-model"]
    result = cli(*command[1:], "--json")
    assert result.exit_code == 0, result.stdout
    assert cli("inspect", result.json()["base_path"], "--json").json()["diagnostics"] == []
