"""`tfsconvert serving-config`: the files it writes parse back under TF Serving's rules (docs/tf-serving.md §6.2, §6.4),
validate and the embedded server accept them, and layouts TF Serving would refuse get no config."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import requests
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

from conftest import run_cli
from tfsconvert import tfproto
from tfsconvert.server import hardware
from tfsconvert.server.batching_config import BadBatchingParameters, BatchingParameters, \
    format_batching_parameters, parse_batching_parameters, read_batching_parameters
from server.harness import started


def _base(fixture_path, root: Path, name: str, fixture: str = "savedmodel_base") -> Path:
    """A copy of a base-path fixture at root/name (the model is named after the directory)."""
    shutil.copytree(fixture_path(fixture), root / name)
    return root / name


def _onnx_base(fixture_path, root: Path, name: str) -> Path:
    (root / name / "1").mkdir(parents=True)
    shutil.copy(fixture_path("onnx_model"), root / name / "1" / "model.onnx")
    return root / name


def _model_config(path: Path):
    return tfproto.parse_text("ModelServerConfig", path.read_text(), strict=True).model_config_list.config


def _official_batching_parameters():
    """BatchingParameters exactly as tensorflow_serving/servables/tensorflow/session_bundle_config.proto
    declares it (fields 1-7, real google.protobuf wrappers). tensorflow-serving-api 2.21.0 does not ship
    session_bundle_config_pb2, so the descriptor is built here from the .proto's declarations."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    fdp = descriptor_pb2.FileDescriptorProto(name="tensorflow_serving/session_bundle_config.proto",
                                             package="tensorflow.serving", syntax="proto3",
                                             dependency=["google/protobuf/wrappers.proto"])
    msg = fdp.message_type.add(name="BatchingParameters")
    F = descriptor_pb2.FieldDescriptorProto
    for name, number, wrapper in [("max_batch_size", 1, "Int64Value"), ("batch_timeout_micros", 2, "Int64Value"),
                                  ("max_enqueued_batches", 3, "Int64Value"), ("num_batch_threads", 4, "Int64Value"),
                                  ("thread_pool_name", 5, "StringValue")]:
        msg.field.add(name=name, number=number, label=F.LABEL_OPTIONAL, type=F.TYPE_MESSAGE,
                      type_name=f".google.protobuf.{wrapper}")
    msg.field.add(name="allowed_batch_sizes", number=6, label=F.LABEL_REPEATED, type=F.TYPE_INT64)
    msg.field.add(name="pad_variable_length_inputs", number=7, label=F.LABEL_OPTIONAL, type=F.TYPE_BOOL)
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))()


@pytest.fixture(scope="module")
def written(fixture_path, tmp_path_factory):
    """serving-config for one SavedModel base path (versions 1, 2) tuned for 4 CPUs: (JSON result, out dir)."""
    root = tmp_path_factory.mktemp("one")
    base = _base(fixture_path, root, "mlp")
    result = run_cli("serving-config", base, "--out", root / "serving", "--cpus", 4, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.json(), root / "serving"


def test_model_config_has_absolute_base_path_platform_and_policy(written):
    data, out = written
    (entry,) = _model_config(out / "models.config")
    assert (entry.name, entry.base_path, entry.model_platform) == ("mlp", str(out.parent / "mlp"), "tensorflow")
    assert entry.model_version_policy.latest.num_versions == 1
    (docker,) = _model_config(out / "models.docker.config")
    assert (docker.name, docker.base_path, docker.model_platform) == ("mlp", "/models/mlp", "tensorflow")
    assert data["files"] == {"model_config": str(out / "models.config"),
                             "docker_model_config": str(out / "models.docker.config"),
                             "batching_parameters": str(out / "batching_parameters.txt")}
    assert [v["version"] for v in data["models"][0]["versions"]] == [2]
    assert data["ok"] is True and data["tf_serving_compatible"] is True and data["findings"] == []


def test_batching_parameters_parse_with_the_official_message(written):
    _, out = written
    official = _official_batching_parameters()
    text_format.Parse((out / "batching_parameters.txt").read_text(), official)  # unknown fields would raise
    assert (official.max_batch_size.value, official.batch_timeout_micros.value, official.max_enqueued_batches.value,
            official.num_batch_threads.value) == (128, 0, 1_000_000, 2)  # the measured defaults: 4 CPUs / 2
    assert list(official.allowed_batch_sizes) == [8, 16, 32, 64, 128]
    assert official.pad_variable_length_inputs is False
    assert not official.HasField("thread_pool_name")


def test_batching_parameters_read_back_and_explain_every_field(written):
    data, out = written
    params = read_batching_parameters(out / "batching_parameters.txt")
    assert params == BatchingParameters(128, 0, 1_000_000, 2, "batch_threads", (8, 16, 32, 64, 128), False)
    assert data["batching_parameters"] == params.to_json()
    assert (data["batching_from"], data["session_parallelism"], data["calibration"]) == ("measured", 1, None)
    lines = (out / "batching_parameters.txt").read_text().splitlines()
    fields = [line for line in lines if not line.startswith("#")]
    for field in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
                  "pad_variable_length_inputs"):
        (line,) = [f for f in fields if f.startswith(field)]
        assert lines[lines.index(line) - 1].startswith("# "), field  # the reason right above the field
    assert "# 2 = 4 CPUs (--cpus) / 2, with --tensorflow_session_parallelism=1: Best worst case across our fixtures " \
           "at 32 concurrent requests on 2 cores (docs/benchmarks.md);" in lines
    assert "# Start the server with --tensorflow_session_parallelism=1 (in the commands serving-config prints)." \
        in lines


def test_field_rule_is_the_documented_alternative(fixture_path, tmp_path):
    base = _base(fixture_path, tmp_path, "mlp")
    result = run_cli("serving-config", base, "--out", tmp_path / "serving", "--cpus", 4, "--batching-defaults",
                     "field-rule", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    data = result.json()
    params = read_batching_parameters(tmp_path / "serving" / "batching_parameters.txt")
    assert params == BatchingParameters(128, 0, 1_000_000, 9, "batch_threads", (8, 16, 32, 64, 128), False)
    assert (data["batching_from"], data["session_parallelism"]) == ("field-rule", 0)
    assert "# 9 = 2 x 4 CPUs (--cpus) + 1: batches run in parallel, one per thread." in \
        (tmp_path / "serving" / "batching_parameters.txt").read_text().splitlines()
    assert all("parallelism" not in command for command in data["commands"].values())


def test_commands_mount_each_base_path_where_the_docker_config_points(written):
    data, out = written
    base = out.parent / "mlp"
    assert data["commands"] == {
        "docker": f"docker run --rm -p 8500:8500 -p 8501:8501 -v {base}:/models/mlp:ro -v {out}:/config:ro "
                  f"tensorflow/serving --model_config_file=/config/models.docker.config --enable_batching "
                  f"--batching_parameters_file=/config/batching_parameters.txt --enable_model_warmup "
                  f"--tensorflow_session_parallelism=1",
        "tensorflow_model_server": f"tensorflow_model_server --port=8500 --rest_api_port=8501 "
                                   f"--model_config_file={out}/models.config --enable_batching "
                                   f"--batching_parameters_file={out}/batching_parameters.txt --enable_model_warmup "
                                   f"--tensorflow_session_parallelism=1",
        "tfsconvert_serve": f"tfsconvert serve --model-config-file {out}/models.config --enable-batching "
                            f"--batching-parameters-file {out}/batching_parameters.txt "
                            f"--tensorflow_session_parallelism=1"}


def test_validate_accepts_the_generated_config(written):
    _, out = written
    result = run_cli("validate", out / "models.config", "--static-only", "--json")
    assert result.exit_code == 0, result.stdout
    report = result.json()
    assert (report["kind"], report["ok"], report["summary"]["error"], report["summary"]["warning"]) == \
        ("model-config", True, 0, 0)
    assert [(v["model"], v["version"], v["path"]) for v in report["versions"]] == [("mlp", 2, str(out.parent / "mlp" /
                                                                                                 "2"))]


def test_embedded_server_serves_the_generated_config(written):
    _, out = written
    server = started(f"--model_config_file={out / 'models.config'}", "--enable_batching",
                     f"--batching_parameters_file={out / 'batching_parameters.txt'}",
                     "--tensorflow_session_parallelism=1")
    try:
        status = requests.get(server.url("/v1/models/mlp"), timeout=30).json()
    finally:
        assert server.terminate() == 0
    assert [(s["version"], s["state"]) for s in status["model_version_status"]] == [("2", "AVAILABLE")]


def test_human_output_lists_files_models_and_commands(fixture_path, tmp_path):
    base = _base(fixture_path, tmp_path, "mlp")
    result = run_cli("serving-config", base, "--out", tmp_path / "serving", "--cpus", 2)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"wrote {tmp_path / 'serving'}  (tuned for 2 CPU(s) [--cpus], 0 GPU(s); batching: measured)"
    assert f"  model mlp: {base} -> /models/mlp in Docker; latest {{num_versions: 1}}, serving version 2" in lines
    assert lines[-6:-4] == ["# serve with Docker (the tensorflow/serving image)",
                            f"docker run --rm -p 8500:8500 -p 8501:8501 -v {base}:/models/mlp:ro -v "
                            f"{tmp_path / 'serving'}:/config:ro tensorflow/serving --model_config_file=/config/"
                            f"models.docker.config --enable_batching --batching_parameters_file=/config/"
                            f"batching_parameters.txt --enable_model_warmup --tensorflow_session_parallelism=1"]


def test_gpus_switch_the_recipe_and_the_image(fixture_path, tmp_path):
    base = _base(fixture_path, tmp_path, "mlp")
    data = run_cli("serving-config", base, "--out", tmp_path / "serving", "--gpus", 2, "--cpus", 16, "--json").json()
    params = read_batching_parameters(tmp_path / "serving" / "batching_parameters.txt")
    assert params.num_batch_threads == 2
    assert data["hardware"] == {"cpus": 16, "cpus_source": "--cpus", "gpus": 2}
    assert " --gpus 2 " in data["commands"]["docker"] and " tensorflow/serving:latest-gpu " in data["commands"]["docker"]


def test_model_repository_and_several_paths_give_one_entry_per_model(fixture_path, tmp_path):
    repo = tmp_path / "repo"
    _base(fixture_path, repo, "b")
    _base(fixture_path, repo, "a")
    other = _base(fixture_path, tmp_path, "c")
    result = run_cli("serving-config", repo, other, "--out", tmp_path / "serving", "--json")
    assert result.exit_code == 0, result.stdout
    entries = _model_config(tmp_path / "serving" / "models.config")
    assert [(e.name, e.base_path) for e in entries] == [("a", str(repo / "a")), ("b", str(repo / "b")),
                                                        ("c", str(other))]
    assert [e.base_path for e in _model_config(tmp_path / "serving" / "models.docker.config")] == \
        ["/models/a", "/models/b", "/models/c"]
    assert all(f" -v {base}:/models/{base.name}:ro " in result.json()["commands"]["docker"]
               for base in (repo / "a", repo / "b", other))


def test_model_name_and_version_dir(fixture_path, tmp_path):
    base = _base(fixture_path, tmp_path, "mlp")
    result = run_cli("serving-config", base / "1", "--model-name", "iris", "--out", tmp_path / "serving", "--json")
    assert result.exit_code == 0, result.stdout
    (entry,) = _model_config(tmp_path / "serving" / "models.config")
    assert (entry.name, entry.base_path, list(entry.model_version_policy.specific.versions)) == ("iris", str(base),
                                                                                               [1])


def test_duplicate_names_are_refused_naming_both_paths(fixture_path, tmp_path):
    first, second = _base(fixture_path, tmp_path / "x", "m"), _base(fixture_path, tmp_path / "y", "m")
    result = run_cli("serving-config", first, second, "--out", tmp_path / "serving")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"error [duplicate-model-name]: two models would be named 'm': {first} and {second} (from {second}); TF "
        f"Serving refuses the config: `Illegal to list model m multiple times in config list`")
    assert not (tmp_path / "serving").exists()


def test_layout_with_errors_gets_no_config(fixture_path, tmp_path):
    result = run_cli("serving-config", fixture_path("broken_savedmodel_in_base"), "--out", tmp_path / "serving",
                     "--json")
    assert result.exit_code == 1
    data = result.json()
    assert data["ok"] is False and data["files"] == {} and data["commands"] == {}
    assert [f["code"] for f in data["findings"] if f["severity"] == "error"] == ["no-version-directory"]
    assert not (tmp_path / "serving").exists()
    human = run_cli("serving-config", fixture_path("broken_savedmodel_in_base"), "--out", tmp_path / "serving")
    assert human.exit_code == 1
    assert human.stdout.splitlines()[0] == "nothing written: TF Serving would not serve these models (errors below)"
    assert "error   no-version-directory: " in human.stdout


def test_onnx_model_is_written_with_a_warning(fixture_path, tmp_path):
    base = _onnx_base(fixture_path, tmp_path, "scores")
    result = run_cli("serving-config", base, "--out", tmp_path / "serving", "--json")
    assert result.exit_code == 0, result.stdout
    data = result.json()
    assert data["tf_serving_compatible"] is False
    (warning,) = data["findings"]
    assert (warning["code"], warning["severity"], warning["path"]) == ("not-a-savedmodel", "warning", str(base / "1"))
    assert warning["message"].startswith("version 1 of model 'scores' is ONNX, not a SavedModel: ")
    assert [e.name for e in _model_config(tmp_path / "serving" / "models.config")] == ["scores"]


def test_existing_files_need_force(fixture_path, tmp_path):
    base = _base(fixture_path, tmp_path, "mlp")
    out = tmp_path / "serving"
    out.mkdir()
    (out / "models.config").write_text("keep me")
    refused = run_cli("serving-config", base, "--out", out)
    assert refused.exit_code == 2 and refused.stderr.startswith(f"error [output-exists]: {out / 'models.config'} ")
    assert (out / "models.config").read_text() == "keep me" and sorted(p.name for p in out.iterdir()) == \
        ["models.config"]
    assert run_cli("serving-config", base, "--out", out, "--force").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["batching_parameters.txt", "models.config",
                                                     "models.docker.config"]  # no temp file left
    assert _model_config(out / "models.config")[0].name == "mlp"


@pytest.mark.parametrize("args, message", [
    (["--model-name", "m", "a", "b"], "--model-name names one model, but 2 paths were given"),
    (["--cpus", "0", "a"], "--cpus must be at least 1 and --gpus at least 0 (got 0, 0)"),
    (["--batching-defaults", "fast", "a"], "--batching-defaults fast: measured or field-rule"),
    (["--calibrate", "--cpus", "4", "a"], "--calibrate measures this machine's CPUs with the embedded server: it does "
                                          "not combine with --cpus, --gpus or --batching-defaults"),
    (["--calibrate", "--calibrate-seconds", "0", "a"], "--calibrate-seconds must be positive and "
                                                       "--calibrate-concurrency at least 1 (got 0, 32)"),
])
def test_bad_options(tmp_path, args, message):
    result = run_cli("serving-config", *args, "--out", tmp_path / "serving")
    assert result.exit_code == 2 and result.stderr.splitlines()[0] == f"error [bad-option]: {message}"
    assert not (tmp_path / "serving").exists()


def test_a_config_file_is_not_a_path_to_write_a_config_for(written, tmp_path):
    _, out = written
    result = run_cli("serving-config", out / "models.config", "--out", tmp_path / "serving")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error [bad-option]: {out / 'models.config'} is a model config file already")


# --calibrate: a short sweep against the embedded server (a few trials on the small MLP)

CALIBRATE_SECONDS = 30  # the start and two or three trials on this machine when idle; the start alone when busy


@pytest.fixture(scope="module")
def mlp_with_golden(fixture_path, tmp_path_factory) -> Path:
    """The frozen MLP converted to a SavedModel base path, with golden requests."""
    base = tmp_path_factory.mktemp("converted") / "mlp"
    converted = run_cli("saved-model", fixture_path("frozen_mlp_pb"), "--base-path", base, "--version", 1, "--json")
    assert converted.exit_code == 0, converted.stdout + converted.stderr
    return base


@pytest.fixture(scope="module")
def calibrated(mlp_with_golden, tmp_path_factory):
    """serving-config --calibrate on the frozen MLP converted with golden requests: (JSON, out dir, progress lines)."""
    root = tmp_path_factory.mktemp("calibrate")
    result = run_cli("serving-config", mlp_with_golden, "--out", root / "serving", "--calibrate", "--calibrate-seconds",
                     CALIBRATE_SECONDS, "--calibrate-concurrency", 8, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.json(), root / "serving", result.progress


def test_calibrated_file_parses_and_is_the_best_swept_setting(calibrated):
    data, out, _ = calibrated
    params = read_batching_parameters(out / "batching_parameters.txt")
    calibration = data["calibration"]
    assert data["batching_from"] == "calibrated" and data["batching_parameters"] == params.to_json()
    best = calibration["best"]
    assert best["batching_parameters"] == params.to_json()
    assert best["session_parallelism"] == data["session_parallelism"]
    swept = [(t["batching_parameters"], t["session_parallelism"]) for t in calibration["trials"]]
    assert (best["batching_parameters"], best["session_parallelism"]) in swept
    assert calibration["trials"][0]["best_after"] is None  # the start: the measured defaults
    assert all(t["best_after"] is not None for t in calibration["trials"][1:])
    assert calibration["concurrency"] == 8 and calibration["requests_from"].endswith("golden.jsonl")
    assert best["errors"] == 0 and 0 < best["p99_ms"] <= calibration["latency_budget_ms"]
    assert calibration["seconds"] <= CALIBRATE_SECONDS + 15  # the last trial may start just before the budget ends
    assert calibration["not_measured"] or len(swept) >= 5  # the start and every other value of the four axes
    flag = f"--tensorflow_session_parallelism={best['session_parallelism']}"
    assert all((flag in command) == (best["session_parallelism"] > 0) for command in data["commands"].values())


def test_calibrated_file_comments_carry_the_measured_figures(calibrated):
    data, out, progress = calibrated
    text = (out / "batching_parameters.txt").read_text()
    best = data["calibration"]["best"]
    (qps, p99), = re.findall(r"^# best: (\d+) QPS, p99 ([0-9.]+) ms \(num_batch_threads ", text, re.M)
    assert abs(int(qps) - best["qps"]) <= 1 and abs(float(p99) - best["p99_ms"]) <= 0.06  # JSON rounds too
    assert "# model mlp version 1 in the embedded server, its golden requests over REST," in text
    trials = re.findall(r"^# +(\d+) +([0-9.]+) (?:\(start\)|vs \d+)", text, re.M)
    assert len(trials) == len(data["calibration"]["trials"])
    for (qps, p99), trial in zip(trials, data["calibration"]["trials"]):
        assert abs(int(qps) - trial["qps"]) <= 1 and abs(float(p99) - trial["p99_ms"]) <= 0.06
    lines = [line for line in progress if "] calibrate: " in line]
    assert len(lines) >= len(data["calibration"]["trials"]) + 1 and "best after" in lines[-1]


def test_calibration_axes_and_the_measured_defaults_per_machine():
    from tfsconvert.serving import tuning
    from tfsconvert.serving.calibrate import Setting, axes, with_value

    assert axes(2, 32) == [("num_batch_threads", [1, 2, 5]), ("session_parallelism", [0, 1]),
                           ("max_batch_size", [8, 16, 32]), ("batch_timeout_micros", [0, 2000])]
    assert axes(1, 12)[0] == ("num_batch_threads", [1, 3]) and axes(1, 12)[2] == ("max_batch_size", [8, 12])
    params, _, parallelism = tuning.recommend(hardware.Hardware(8, 0, "--cpus"))
    assert (params.num_batch_threads, params.max_batch_size, params.allowed_batch_sizes, parallelism) == \
        (4, 128, (8, 16, 32, 64, 128), 1)
    wider = with_value(Setting(params, parallelism), "max_batch_size", 32)
    assert (wider.params.max_batch_size, wider.params.allowed_batch_sizes) == (32, (8, 16, 32))
    assert with_value(wider, "session_parallelism", 0) == Setting(wider.params, 0)


def test_calibrate_needs_golden_requests(fixture_path, tmp_path):
    base = _base(fixture_path, tmp_path, "mlp")  # no assets.extra/golden.jsonl
    result = run_cli("serving-config", base, "--out", tmp_path / "serving", "--calibrate")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"error [no-golden-requests]: {base / '2'} has no golden requests (assets.extra/golden.jsonl): calibration "
        f"replays them against the server")
    assert "Traceback" not in result.stderr and not (tmp_path / "serving").exists()


def test_calibrate_names_a_version_that_does_not_load(mlp_with_golden, tmp_path):
    """A graph that passes the static checks but that TensorFlow refuses to load: exit 1, one line naming it."""
    base = tmp_path / "broken"
    shutil.copytree(mlp_with_golden, base)
    saved_model = base / "1" / "saved_model.pb"
    message = tfproto.parse_binary("SavedModel", saved_model.read_bytes())
    node = next(n for n in message.meta_graphs[0].graph_def.node if n.op == "AddV2")
    node.input[1] = "missing_node"
    saved_model.write_bytes(message.SerializeToString())
    result = run_cli("serving-config", base, "--out", tmp_path / "serving", "--calibrate", "--calibrate-seconds", 10)
    assert result.exit_code == 1, result.stdout + result.stderr
    error = result.stderr.splitlines()
    assert error[0].startswith(f"error [load-failed]: {base / '1'}: the model does not serve")
    assert "Unknown input node 'missing_node'" in error[0] and "Traceback" not in result.stderr
    assert error[1] == f"  fix: run tfsconvert validate {base / '1'} for the finding and its fix"
    assert not (tmp_path / "serving").exists()


def test_calibrate_measures_one_model(fixture_path, tmp_path):
    repo = tmp_path / "repo"
    _base(fixture_path, repo, "a")
    _base(fixture_path, repo, "b")
    result = run_cli("serving-config", repo, "--out", tmp_path / "serving", "--calibrate")
    assert result.exit_code == 2 and result.stderr.startswith("error [bad-option]: --calibrate measures one model")


# read_batching_parameters: what the server's --batching_parameters_file reader relies on (docs/tf-serving.md §6.4, §7 case 28)

def test_defaults_are_tf_servings(tmp_path):
    (tmp_path / "b.txt").write_text("# nothing set\n")
    assert read_batching_parameters(tmp_path / "b.txt") == BatchingParameters(
        max_batch_size=1000, batch_timeout_micros=0, max_enqueued_batches=10,
        num_batch_threads=hardware.schedulable_cpus(), thread_pool_name="batch_threads", allowed_batch_sizes=(),
        pad_variable_length_inputs=False, enable_large_batch_splitting=False, max_execution_batch_size=None)


def test_case_28_last_allowed_size_must_match_max_batch_size():
    with pytest.raises(BadBatchingParameters) as raised:
        parse_batching_parameters("max_batch_size { value: 32 } allowed_batch_sizes: 8 allowed_batch_sizes: 16",
                                  "b.txt")
    assert raised.value.code == "bad-batching-parameters" and raised.value.exit_code == 2
    assert raised.value.tf_serving == ["INVALID_ARGUMENT: Last entry in allowed_batch_sizes must match "
                                       "max_batch_size; last entry was 16; expected 32"]


def test_every_problem_is_reported():
    with pytest.raises(BadBatchingParameters) as raised:
        parse_batching_parameters("num_batch_threads { value: 0 } max_enqueued_batches { value: 0 } "
                                  "batch_timeout_micros { value: -1 } allowed_batch_sizes: 64 allowed_batch_sizes: 8")
    assert raised.value.tf_serving == [
        "INVALID_ARGUMENT: num_batch_threads must be positive; was 0",
        "INVALID_ARGUMENT: batch_timeout_micros must be non-negative; was -1",
        "INVALID_ARGUMENT: max_enqueued_batches must be positive; was 0",
        "INVALID_ARGUMENT: allowed_batch_sizes entries must be positive and in increasing order; got 64, 8",
        "INVALID_ARGUMENT: Last entry in allowed_batch_sizes must match max_batch_size; last entry was 8; "
        "expected 1000"]


def test_large_batch_splitting_checks_max_execution_batch_size():
    params = parse_batching_parameters("max_batch_size { value: 256 } enable_large_batch_splitting { value: true } "
                                       "max_execution_batch_size { value: 64 } allowed_batch_sizes: 32 "
                                       "allowed_batch_sizes: 64")
    assert (params.execution_batch_size, params.allowed_batch_sizes) == (64, (32, 64))


@pytest.mark.parametrize("text, detail", [
    ("max_batch_size: 128", "1:17 : 'max_batch_size: 128': Expected \"{\"."),  # a wrapped field without { value: }
    ("max_batch_size { value: 128 } batch_size { value: 1 }", '1:31 : Message type '
     '"tensorflow.serving.BatchingParameters" has no field named "batch_size".'),
])
def test_syntax_errors_are_tf_servings_start_up_failure(tmp_path, text, detail):
    (tmp_path / "b.txt").write_text(text)
    with pytest.raises(BadBatchingParameters) as raised:
        read_batching_parameters(tmp_path / "b.txt")
    assert raised.value.tf_serving == [f"INVALID_ARGUMENT: Invalid protobuf file: '{tmp_path / 'b.txt'}'"]
    assert detail in raised.value.message


def test_format_round_trips_non_default_fields():
    params = BatchingParameters(64, 500, 8, 3, "pool", (16, 64), True, True, 64)
    assert parse_batching_parameters(format_batching_parameters(params)) == params


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "250000 100000\n"}, 3),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
    ({}, None),
])
def test_cgroup_quota(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    assert hardware.cgroup_quota(tmp_path) == expected
