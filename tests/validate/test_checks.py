"""validate's static checks on real fixtures: exact codes, severities, paths, hints and TF Serving lines."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from fixtures import REGISTRY
from tfsconvert import tfproto
from tfsconvert.errors import InputError
from tfsconvert.model import Signature, TensorSpec, VersionInfo
from tfsconvert.tfrecord import read_records, write_records
from tfsconvert.validate.checks import static_check
from tfsconvert.validate.model_config import VersionPolicy
from tfsconvert.validate.signature_diff import breaking_changes

WARMUP = "assets.extra/tf_serving_warmup_requests"
NO_TAGS = ("NOT_FOUND: Could not find meta graph def matching supplied tags: { serve }. To inspect available "
           "tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`")
VALIDATE_FIXTURES = [f for f in REGISTRY.values() if f.validate_codes or f.name.startswith("validate_")]


def only(report, code):
    [found] = [f for f in report.findings if f.code == code]
    return found


def served(report):
    return {m.name: [v.version for v in m.versions] for m in report.models}


@pytest.mark.parametrize("fx", VALIDATE_FIXTURES, ids=lambda f: f.name)
def test_registry_validate_codes_are_exactly_what_static_check_reports(fixture_path, fx):
    report = static_check(fixture_path(fx.name))
    assert {f.code for f in report.findings} == fx.validate_codes, [f.to_json() for f in report.findings]


# ---------------------------------------------------------------------------------------------
# Served models per PATH kind (docs/tf-serving.md §1.4: default policy latest 1)


def test_base_path_serves_the_latest_version(fixture_path):
    base = fixture_path("savedmodel_base")
    report = static_check(base)
    assert (report.kind, report.findings, report.ignored) == ("base-path", [], [])
    [model] = report.models
    assert (model.name, model.base_path, model.policy.to_json()) == ("base", str(base), {"kind": "latest",
                                                                                          "num_versions": 1})
    [version] = model.versions
    assert (version.version, version.path, version.format, version.errors) == (2, str(base / "2"), "savedmodel", [])
    sig = version.signatures["serving_default"]
    assert (sig.inputs["features"].dtype, sig.inputs["features"].shape) == ("DT_FLOAT", [-1, 4])
    assert list(sig.outputs) == ["probabilities"]


def test_model_name_overrides_the_directory_name(fixture_path):
    assert served(static_check(fixture_path("savedmodel_base"), model_name="iris")) == {"iris": [2]}


def test_version_dir_serves_only_that_version(fixture_path):
    base = fixture_path("savedmodel_base")
    report = static_check(base / "1")
    assert report.kind == "version-dir" and served(report) == {"base": [1]}
    assert report.models[0].policy.to_json() == {"kind": "specific", "versions": [1]}
    assert report.models[0].base_path == str(base)


def test_saved_model_pb_as_path_is_its_directory(fixture_path):
    report = static_check(fixture_path("savedmodel_base") / "2" / "saved_model.pb")
    assert report.kind == "version-dir" and served(report) == {"base": [2]}


def test_model_repository_serves_each_child(fixture_path):
    repo = fixture_path("validate_model_repository")
    report = static_check(repo)
    assert report.kind == "model-repository"
    assert served(report) == {"exported": [], "good": [2], "scores": [1]}
    assert [v.format for m in report.models for v in m.versions] == ["savedmodel", "onnx"]
    assert report.ignored == [{"path": str(repo / "README.md"), "reason": "holds no model"}]
    exported = only(report, "no-version-directory")
    assert (exported.path, exported.severity) == (str(repo / "exported"), "error")
    assert exported.hint.startswith(f"tfsconvert saved-model {repo / 'exported'} --base-path models/exported --version 1")
    assert exported.tf_serving == (f"No versions of servable exported found under base path {repo / 'exported'}. "
                                   f"Did you forget to name your leaf directory as a number (eg. '/1/')?")


def test_good_config_serves_by_each_policy(fixture_path):
    config = fixture_path("validate_model_configs")
    models = config.parent.parent / "models"
    report = static_check(config)
    assert report.kind == "model-config" and report.findings == []
    assert served(report) == {"a": [2, 1], "b": [1]}
    assert [(m.base_path, m.policy.to_json()) for m in report.models] == [
        (str(models / "a"), {"kind": "latest", "num_versions": 2}),
        (str(models / "b"), {"kind": "latest", "num_versions": 1})]


def test_model_name_is_refused_for_several_models(fixture_path):
    with pytest.raises(InputError) as error:
        static_check(fixture_path("validate_model_configs"), model_name="a")
    assert error.value.code == "bad-option"


def test_missing_path_and_unknown_file_are_input_errors(fixture_path, tmp_path):
    with pytest.raises(InputError) as missing:
        static_check(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(InputError) as unknown:
        static_check(tmp_path / "notes.txt")
    assert (missing.value.code, unknown.value.code) == ("path-not-found", "unsupported-format")


def test_empty_directory_is_a_base_path_without_versions(tmp_path):
    report = static_check(tmp_path)
    assert report.kind == "base-path" and served(report) == {tmp_path.name: []}
    assert [(f.code, f.severity, f.path) for f in report.findings] == [("no-version-directory", "error", str(tmp_path))]


# ---------------------------------------------------------------------------------------------
# Layout and load findings (reused from inspect, with TF Serving's line)


def test_frozen_pb_as_path(fixture_path):
    pb = fixture_path("frozen_mlp_pb")
    report = static_check(pb)
    assert report.kind == "model-file" and report.models == []
    f = only(report, "not-a-savedmodel")
    assert (f.severity, f.path, f.hint) == ("error", str(pb), f"tfsconvert saved-model {pb} --version 1")


def test_frozen_graph_in_version_dir(fixture_path):
    base = fixture_path("broken_frozen_as_savedmodel")
    report = static_check(base)
    f = only(report, "not-a-savedmodel")
    assert (f.severity, f.path, f.tf_serving) == ("error", str(base / "1" / "saved_model.pb"), NO_TAGS)
    assert report.models[0].versions[0].errors == ["not-a-savedmodel"]


def test_empty_version_dir(fixture_path):
    base = fixture_path("broken_empty_version")
    f = only(static_check(base), "not-a-savedmodel")
    assert f.tf_serving == ("NOT_FOUND: Specified file path does not appear to contain a SavedModel bundle (should "
                            f"have a file called `saved_model.pb`) Specified file path: {base / '1'}")


def test_savedmodel_without_version_dir(fixture_path):
    path = fixture_path("broken_savedmodel_in_base")
    report = static_check(path)
    assert report.kind == "unversioned-model" and served(report) == {"base": []}
    f = only(report, "no-version-directory")
    assert f.hint.startswith(f"tfsconvert saved-model {path} --base-path models/base --version 1")


def test_nonnumeric_versions(fixture_path):
    base = fixture_path("broken_nonnumeric_versions")
    report = static_check(base)
    assert served(report) == {"base": []}
    hints = sorted((f.severity, f.hint) for f in report.findings if f.code == "bad-version-name")
    assert hints == sorted(("warning", f"mv {base / old} {base / new}") for old, new in [("1.0", "1"), ("latest", "2"),
                                                                                         ("v1", "3")])
    assert only(report, "no-version-directory").tf_serving.startswith("No versions of servable base found under")


def test_duplicate_versions(fixture_path):
    base = fixture_path("broken_duplicate_versions")
    f = only(static_check(base), "duplicate-version")
    assert (f.severity, f.path, f.hint) == ("warning", str(base),
                                            f"rm -r {base / '01'}  (or renumber them: one directory per version)")
    assert f.tf_serving == "Duplicate version directories detected. Version 1 will be loaded from 1, 01 will be ignored."


@pytest.mark.parametrize("name, code, tf_serving", [
    ("broken_no_serve_tag", "missing-serve-tag", NO_TAGS),
    ("broken_no_default_signature", "missing-default-signature",
     'Serving signature name: "serving_default" not found in signature def'),
    ("broken_missing_variable_data", "missing-variables",
     "the load fails in the variables restore op with NOT_FOUND or DATA_LOSS"),
])
def test_load_findings_carry_tf_serving_lines(fixture_path, name, code, tf_serving):
    report = static_check(fixture_path(name))
    f = only(report, code)
    assert f.tf_serving == tf_serving and f.path.startswith(str(fixture_path(name) / "1"))


def test_corrupt_saved_model(fixture_path):
    pb = fixture_path("broken_truncated_savedmodel") / "1" / "saved_model.pb"
    f = only(static_check(pb.parent.parent), "corrupt-model-file")
    assert (f.severity, f.path, f.tf_serving) == ("error", str(pb), f"DATA_LOSS: Can't parse {pb} as binary proto")


def test_generic_names(fixture_path):
    report = static_check(fixture_path("keras_export_savedmodel"))
    assert {(f.severity, "--output NAME=output_0" in f.hint) for f in report.findings
            if f.code == "unnamed-signature-io"} == {("warning", True)}


def test_problems_of_unserved_versions_are_information(fixture_path, tmp_path):
    base = tmp_path / "m"
    shutil.copytree(fixture_path("savedmodel_base"), base)
    pb = base / "1" / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:100])
    report = static_check(base)
    f = only(report, "corrupt-model-file")
    assert f.severity == "info" and f.message.startswith("version 1 is not served under the version policy "
                                                         "(latest {num_versions: 1}); if it were: ")
    assert all(f.severity != "error" for f in report.findings) and served(report) == {"m": [2]}


# ---------------------------------------------------------------------------------------------
# bad-warmup-file (docs/tf-serving.md §2.6, §7 cases 16–19)


@pytest.mark.parametrize("name, message, tf_serving", [
    ("validate_warmup_not_tfrecord", "is not a TFRecord file (corrupted record at 0 (Is this even a TFRecord file?))",
     "DATA_LOSS: corrupted record at 0 (Is this even a TFRecord file?). Please verify your warmup data is in "
     "TFRecord format."),
    ("validate_warmup_too_many", "has more than 1000 records",
     "INVALID_ARGUMENT: Number of warmup records exceeds the maximum (1000) at {path}"),
    ("validate_warmup_session_run", "record 2 uses session_run_log, which warmup does not replay",
     "UNIMPLEMENTED: Unsupported log_type for warmup: 5"),
    ("validate_warmup_unparsable", "record 2 is not a serialized PredictionLog",
     "INVALID_ARGUMENT: Failed to parse warmup record: b'\\xff\\xff\\xff\\xff'… from {path}"),
    ("validate_warmup_bad_signature", "record 1 asks for signature 'predict', which version 1 does not have",
     'FAILED_PRECONDITION: Serving signature key "predict" not found.'),
])
def test_bad_warmup_file(fixture_path, name, message, tf_serving):
    base = fixture_path(name)
    path = base / "1" / WARMUP
    report = static_check(base)
    f = only(report, "bad-warmup-file")
    assert (f.severity, f.path) == ("error", str(path))
    assert f.message.startswith(f"{path} {message}; TF Serving fails the load of this version")
    assert f.tf_serving == tf_serving.format(path=path)
    assert f.hint.endswith(f", or delete it (warmup is optional): rm {path}")
    assert report.models[0].versions[0].errors == ["bad-warmup-file"]


def test_warmup_with_an_extra_input(fixture_path, tmp_path):
    base = tmp_path / "m"
    shutil.copytree(fixture_path("validate_warmup_bad_signature"), base)
    path = base / "1" / WARMUP
    log = tfproto.parse_binary("PredictionLog", next(read_records(path)))
    log.predict_log.request.model_spec.signature_name = ""  # empty means serving_default
    log.predict_log.request.inputs["extra"].dtype = 1
    write_records(path, [log.SerializeToString()])
    f = only(static_check(base), "bad-warmup-file")
    assert f.tf_serving == ("INVALID_ARGUMENT: input size does not match signature: 2!=1 len({extra,features}) != "
                            "len({features}). Sent extra: {extra}. Missing but required: {}.")


def test_empty_warmup_file_is_fine(fixture_path, tmp_path):
    base = tmp_path / "m"
    shutil.copytree(fixture_path("validate_warmup_not_tfrecord"), base)
    (base / "1" / WARMUP).write_bytes(b"")  # reads as end of file: 0 records (docs/tf-serving.md §2.6)
    assert static_check(base).findings == []


# ---------------------------------------------------------------------------------------------
# breaking-signature-change and bad-golden-file


def test_breaking_rename_hint_restores_the_old_alias(fixture_path):
    base = fixture_path("validate_breaking_rename")
    f = only(static_check(base), "breaking-signature-change")
    assert (f.severity, f.path) == ("error", str(base / "2"))
    assert f.message == (f"version 2 of {base} breaks clients of version 1, signature 'serving_default': "
                         f"input 'features' was renamed to 'measurements'")
    assert f.hint.startswith(f"keep the old names in a new version: tfsconvert saved-model {base / '2'} "
                             f"--base-path {base} --version 3 --input features=measurements  (or ")


def test_breaking_dtype_shape_and_output_count(fixture_path):
    base = fixture_path("validate_breaking_dtype")
    f = only(static_check(base), "breaking-signature-change")
    assert f.message.endswith(
        "input 'features' dtype DT_FLOAT -> DT_DOUBLE; input 'features' shape [-1, 4] -> [-1, 5]; REST responses "
        'change from {"outputs": <tensor>} to {"outputs": {"<alias>": <tensor>, ...}} (1 -> 2 outputs)')
    assert f.hint == (f"serve version 2 as a new model and move clients to it when they are ready: "
                      f"mkdir -p {base}-v2 && mv {base / '2'} {base}-v2/1")


def _version(number, inputs, outputs):
    def specs(d):
        return {alias: TensorSpec("DT_FLOAT", shape) for alias, shape in d.items()}
    return VersionInfo(number, f"/m/{number}", signatures={"serving_default": Signature(
        "tensorflow/serving/predict", specs(inputs), specs(outputs))})


@pytest.mark.parametrize("old_in, new_in, old_out, new_out, changes", [
    ({"x": [-1, 4]}, {"x": [-1, 4]}, {"y": [-1, 3]}, {"y": [-1, -1]}, []),  # freeing an output dim is fine
    ({"x": [-1, 4]}, {"x": [-1, -1]}, {"y": [-1, 3]}, {"y": [-1, 3]}, []),  # freeing an input dim is fine
    ({"x": [-1, 4]}, {"x": [8, 4]}, {"y": [-1]}, {"y": [-1]}, ["input 'x' shape [-1, 4] -> [8, 4]"]),
    ({"x": [-1, 4]}, {"x": [-1, 4, 1]}, {"y": [-1]}, {"y": [-1]}, ["input 'x' shape [-1, 4] -> [-1, 4, 1]"]),
    ({"x": [-1, 4]}, {"x": None}, {"y": [-1]}, {"y": [-1]}, []),  # unknown rank: not judged
    ({"x": [-1]}, {"x": [-1], "z": [-1]}, {"y": [-1]}, {"y": [-1], "w": [-1]},
     ["new required input 'z'", "REST responses change from {\"outputs\": <tensor>} to "
      "{\"outputs\": {\"<alias>\": <tensor>, ...}} (1 -> 2 outputs)"]),
    ({"x": [-1]}, {"x": [-1]}, {"y": [-1], "p": [-1, 3]}, {"y": [-1], "q": [-1, 2]}, ["output 'p' was removed"]),
])
def test_which_changes_break_clients(old_in, new_in, old_out, new_out, changes, tmp_path):
    findings = breaking_changes(tmp_path, _version(2, new_in, new_out), _version(1, old_in, old_out), "savedmodel")
    assert [f.message.split("'serving_default': ")[1] for f in findings] == (["; ".join(changes)] if changes else [])


def test_renamed_output_hint_lists_every_output(tmp_path):
    [f] = breaking_changes(tmp_path, _version(2, {"x": [-1]}, {"scores": [-1], "label": [-1, 1]}),
                           _version(1, {"x": [-1]}, {"probs": [-1], "label": [-1, 1]}), "savedmodel")
    assert f.hint.startswith(f"keep the old names in a new version: tfsconvert saved-model /m/2 --base-path {tmp_path} "
                             f"--version 1 --output probs=scores --output label=label  (or ")


def test_bad_golden_file_is_a_warning(fixture_path):
    path = fixture_path("validate_bad_golden") / "1" / "assets.extra" / "golden.jsonl"
    f = only(static_check(path.parent.parent.parent), "bad-golden-file")
    assert (f.severity, f.path) == ("warning", str(path))
    assert f.message == (f"{path}:2: not valid JSON: Expecting value at column 24; validate cannot replay these "
                         f"golden requests")


# ---------------------------------------------------------------------------------------------
# Model config files (docs/tf-serving.md §6.2, §7 cases 20–26, 30)


def test_config_errors(fixture_path, monkeypatch):
    config = fixture_path("validate_model_configs").parent / "errors.config"
    models = config.parent.parent / "models"
    monkeypatch.chdir(models.parent)  # where the relative base path 'models/b' exists
    report = static_check(config)
    assert [(f.code, f.tf_serving) for f in report.findings if f.code == "bad-model-config"] == [
        ("bad-model-config", "FAILED_PRECONDITION: Request to assign label to version 2 of model a, which is not "
                             "currently available for inference"),
        ("bad-model-config", "Illegal to list model a multiple times in config list"),
        ("bad-model-config", "Expected model relative to have an absolute path or URI; got base_path()=models/b"),
        ("bad-model-config", "INVALID_ARGUMENT: Illegal setting neither ModelServerConfig::model_type (deprecated) "
                             "nor ModelServerConfig::model_platform, model name is noplatform"),
        ("bad-model-config", "Model lite requests unsupported platform tflite"),
    ]
    relative = report.findings[2]
    assert (relative.severity, relative.path) == ("error", str(config))
    assert relative.hint == f'base_path: "{models / "b"}"  (absolute, without the version directory)'
    gone = only(report, "base-path-not-found")
    assert (gone.severity, gone.path) == ("error", str(models / "gone"))
    assert gone.tf_serving == (f"FileSystemStoragePathSource encountered a filesystem access error: Could not find "
                               f"base path {models / 'gone'} for servable gone with error NOT_FOUND: "
                               f"{models / 'gone'} not found")
    assert f"so no other model of {config} loads either" in gone.message
    pinned = only(report, "no-version-directory")
    assert (pinned.severity, pinned.path) == ("warning", str(models / "b"))
    assert pinned.tf_serving.startswith("Version 3 of servable pinned, which was requested to be served as a "
                                        "'specific' version")
    # The duplicate 'a' and the relative entry are not served; the others are checked on disk.
    assert served(report) == {"a": [2], "noplatform": [1], "lite": [1], "pinned": [1]}


def test_config_syntax_error(fixture_path):
    config = fixture_path("validate_model_configs").parent / "syntax.config"
    report = static_check(config)
    f = only(report, "bad-model-config")
    assert report.models == [] and f.tf_serving == f"INVALID_ARGUMENT: Invalid protobuf file: '{config}'"
    assert 'has no field named "base_pth"' in f.message and "tensorflow.serving.ModelConfig" in f.message


def test_version_policies():
    assert VersionPolicy("latest", num_versions=0).select([1, 3, 2]) == [3]
    assert VersionPolicy("latest", num_versions=2).select([1, 3, 2]) == [3, 2]
    assert VersionPolicy("all").select([1, 3, 2]) == [3, 2, 1]
    assert VersionPolicy("specific", versions=(1, 7)).select([1, 3, 2]) == [1]


def test_report_json_shape(fixture_path):
    report = static_check(fixture_path("validate_warmup_session_run")).to_json()
    assert set(report) == {"path", "kind", "models", "findings", "ignored"}
    assert set(report["models"][0]) == {"name", "base_path", "policy", "versions"}
    assert set(report["models"][0]["versions"][0]) == {"version", "path", "format", "signatures", "errors"}
    assert report["findings"][0]["tf_serving"] == "UNIMPLEMENTED: Unsupported log_type for warmup: 5"
    unnamed = static_check(fixture_path("keras_export_savedmodel")).to_json()["findings"]
    assert "tf_serving" not in [f for f in unnamed if f["code"] == "unnamed-signature-io"][0]


def test_static_check_imports_nothing_heavy(fixture_path):
    names = ["validate_model_repository", "validate_warmup_too_many", "validate_breaking_dtype", "frozen_mlp_pb",
             "validate_model_configs", "broken_truncated_savedmodel"]
    code = ("import sys; from tfsconvert.validate.checks import static_check\n"
            "for path in sys.argv[1:]: static_check(path)\n"
            "print(','.join(sorted(m for m in ('tensorflow', 'keras', 'sklearn', 'pyspark', 'onnxruntime', 'torch', "
            "'tensorflow_serving') if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code, *map(str, map(fixture_path, names))], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_serving_declarations_match_tensorflow_serving(fixture_path):
    """Our PredictionLog / ModelServerConfig field numbers are the official ones (tensorflow_serving protos)."""
    from tensorflow_serving.apis import prediction_log_pb2
    from tensorflow_serving.config import model_server_config_pb2
    from google.protobuf import text_format

    errors = (fixture_path("validate_model_configs").parent / "errors.config").read_text().rstrip()
    config_text = errors.removesuffix("}") + (
        'config { name: "x" model_type: TENSORFLOW logging_config { log_collector_config { type: "t" } '
        'sampling_config { sampling_rate: 0.5 per_task_sampling_configs { dc: "d" } } } '
        'model_version_policy { all {} } } }')
    real = text_format.Parse(config_text, model_server_config_pb2.ModelServerConfig())
    ours = tfproto.parse_text("ModelServerConfig", config_text, strict=True)
    assert ours.SerializeToString(deterministic=True) == real.SerializeToString(deterministic=True)

    warmup = fixture_path("validate_warmup_session_run") / "1" / WARMUP
    for data in read_records(warmup):
        real_log = prediction_log_pb2.PredictionLog.FromString(data)
        ours = tfproto.parse_binary("PredictionLog", data)
        assert [f.name for f, _ in ours.ListFields()] == [real_log.WhichOneof("log_type")]
    [first, _] = list(read_records(warmup))
    real_request = prediction_log_pb2.PredictionLog.FromString(first).predict_log.request
    our_request = tfproto.parse_binary("PredictionLog", first).predict_log.request
    assert (list(our_request.inputs), our_request.model_spec.signature_name) == (["features"], "serving_default")
    assert list(our_request.inputs["features"].float_val) == list(real_request.inputs["features"].float_val)
