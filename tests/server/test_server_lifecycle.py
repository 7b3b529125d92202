"""Process lifecycle (docs/tf-serving.md §0): load before the ports open, `Failed to start server` and exit 255,
retries (§2.5), a missing base path (§1.5), config-file errors (§6.2) and SIGTERM."""

from __future__ import annotations

import socket
import time

import pytest

from harness import ServerProcess, config_file
from tfsconvert.server import backends
from tfsconvert.server.flags import parse as parse_flags
from tfsconvert.server.status import finding_code

BUNDLE_MISSING = ("NOT_FOUND: Specified file path does not appear to contain a SavedModel bundle (should have a file "
                  "called `saved_model.pb`)\nSpecified file path: {}")
TAGS = ("NOT_FOUND: Could not find meta graph def matching supplied tags: { serve }. To inspect available tag-sets "
        "in the SavedModel, please use the SavedModel CLI: `saved_model_cli`")


def exits(*flags: str) -> tuple[int, str, str]:
    server = ServerProcess(*flags)
    code, stdout = server.finish()
    return code, stdout, server.stderr


def test_empty_version_fails_start_up_with_tf_servings_status_spec_7_7(fixture_path):
    base = fixture_path("broken_empty_version")
    code, stdout, stderr = exits("--model_name=m", f"--model_base_path={base}", "--max_num_load_retries=0")
    status = f"{{{{{{name: m version: 1}} due to error: {BUNDLE_MISSING.format(base / '1')}}}, }}"
    assert (code, stdout) == (255, f"Failed to start server. Error: UNKNOWN: 1 servable(s) did not become available: "
                                   f"{status}\n")
    assert f"Loading servable: {{name: m version: 1}} failed: {BUNDLE_MISSING.format(base / '1')}" in stderr
    assert "Running gRPC ModelServer" not in stderr  # the ports never opened


def test_retries_then_failure_spec_2_5(fixture_path):
    base = fixture_path("broken_empty_version")
    started = time.monotonic()
    code, _, stderr = exits("--model_name=m", f"--model_base_path={base}", "--max_num_load_retries=2",
                            "--load_retry_interval_micros=200000")
    assert code == 255 and time.monotonic() - started >= 0.4
    assert stderr.count("Loading servable: {name: m version: 1} failed: NOT_FOUND") == 3
    assert "Retrying of Loading servable: {name: m version: 1} retry: 2" in stderr
    assert "Retrying of Loading servable: {name: m version: 1} exhausted max_num_retries: 2" in stderr


@pytest.mark.slow
def test_broken_savedmodels_spec_7_cases_7_9_10_12(fixture_path, tmp_path):
    names = {"empty": "broken_empty_version", "frozen": "broken_frozen_as_savedmodel",
             "no_tag": "broken_no_serve_tag", "truncated": "broken_truncated_savedmodel"}
    bases = {name: fixture_path(fixture) for name, fixture in names.items()}
    started = time.monotonic()
    code, stdout, stderr = exits(f"--model_config_file={config_file(tmp_path / 'm.config', bases)}",
                                 "--max_num_load_retries=0")
    errors = {"empty": BUNDLE_MISSING.format(bases["empty"] / "1"), "frozen": TAGS, "no_tag": TAGS,
              "truncated": f"DATA_LOSS: Can't parse {bases['truncated'] / '1' / 'saved_model.pb'} as binary proto"}
    entries = "".join(f"{{{{name: {name} version: 1}} due to error: {error}}}, " for name, error in errors.items())
    assert (code, stdout) == (255, f"Failed to start server. Error: UNKNOWN: 4 servable(s) did not become "
                                   f"available: {{{entries}}}\n")
    assert time.monotonic() - started < 60
    for name, error in errors.items():
        assert f"Loading servable: {{name: {name} version: 1}} failed: {error}" in stderr
    assert [finding_code(error) for error in errors.values()] == [
        "not-a-savedmodel", "missing-serve-tag", "missing-serve-tag", "corrupt-model-file"]


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_missing_base_path_waits_with_ports_closed_spec_7_1(tmp_path):
    base = tmp_path / "nowhere"
    server = ServerProcess("--model_name=m", f"--model_base_path={base}")
    message = (f"FileSystemStoragePathSource encountered a filesystem access error: Could not find base path {base} "
               f"for servable m with error NOT_FOUND: {base} not found")
    assert server.wait_for(message, timeout=60), server.stderr
    time.sleep(1.2)  # polled again a second later (--file_system_poll_wait_seconds defaults to 1)
    assert server.stderr.count(message) >= 2 and server.proc.poll() is None
    assert _refused(server.port) and _refused(server.rest_port)
    assert server.terminate() == 0


def test_no_version_directory_waits_spec_7_3(fixture_path):
    base = fixture_path("broken_savedmodel_in_base")
    server = ServerProcess("--model_name=m", f"--model_base_path={base}")
    assert server.wait_for(f"No versions of servable m found under base path {base}. Did you forget to name your "
                           "leaf directory as a number (eg. '/1/')?", timeout=60), server.stderr
    assert server.proc.poll() is None and _refused(server.rest_port)
    assert server.terminate() == 0


CONFIG_ERRORS = [
    ("7.20 no platform", 'config { name: "m" base_path: "/models/m" }',
     "INVALID_ARGUMENT: Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
     "ModelServerConfig::model_platform, model name is m"),
    ("7.21 other platform", 'config { name: "m" base_path: "/models/m" model_platform: "tflite" }',
     "INVALID_ARGUMENT: Model m requests unsupported platform tflite"),
    ("7.22 duplicate name", 'config { name: "m" base_path: "/a" model_platform: "tensorflow" } '
                            'config { name: "m" base_path: "/b" model_platform: "tensorflow" }',
     "INVALID_ARGUMENT: Illegal to list model m multiple times in config list"),
    ("7.23 relative base path", 'config { name: "m" base_path: "models/m" model_platform: "tensorflow" }',
     "INVALID_ARGUMENT: Expected model m to have an absolute path or URI; got base_path()=models/m"),
    ("7.25 labels", 'config { name: "m" base_path: "/m" model_platform: "tensorflow" '
                    'version_labels { key: "stable" value: 42 } }',
     "FAILED_PRECONDITION: Request to assign label to version 42 of model m, which is not currently available for "
     "inference"),
]


@pytest.mark.parametrize("case", CONFIG_ERRORS, ids=[case[0] for case in CONFIG_ERRORS])
def test_config_file_errors_exit_at_once_spec_7(tmp_path, case):
    _, entries, status = case
    config = tmp_path / "models.config"
    config.write_text(f"model_config_list {{ {entries} }}")
    assert exits(f"--model_config_file={config}")[:2] == (255, f"Failed to start server. Error: {status}\n")


def test_config_syntax_error_spec_7_24(tmp_path):
    config = tmp_path / "models.config"
    config.write_text("model_config_list { config { name: ")
    code, stdout, stderr = exits(f"--model_config_file={config}")
    assert (code, stdout) == (255, f"Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file: "
                                   f"'{config}'\n")
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig: " in stderr


def test_flag_errors_spec_6_1():
    assert exits()[:2] == (255, "Failed to start server. Error: INVALID_ARGUMENT: Both server_options.model_base_path "
                                "and server_options.model_config_file are empty!\n")
    assert exits("--model_base_path=/m", "--batching_parameters_file=/b.txt")[:2] == (
        255, "Failed to start server. Error: INVALID_ARGUMENT: server_options.batching_parameters_file is set without "
             "setting server_options.enable_batching to true.\n")
    threads = ("--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=1",
               "--tensorflow_session_parallelism=2")
    assert exits("--model_base_path=/m", *threads)[:2] == (
        255, "Failed to start server. Error: INVALID_ARGUMENT: Either configure "
             "server_options.tensorflow_session_parallelism or (server_options.tensorflow_intra_op_parallelism, "
             "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure all.\n")


@pytest.mark.parametrize("flags, expected", [
    ((), (0, 0)), (("--tensorflow_session_parallelism=2",), (2, 2)),
    (("--tensorflow_intra_op_parallelism=1", "--tensorflow_session_parallelism=3"), (1, 3)),
    (("--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=4"), (1, 4)),
])
def test_tensorflow_thread_flags_spec_6_1(flags, expected):
    assert parse_flags(list(flags)).tf_threads == expected


def test_tensorflow_thread_pools_reach_the_session(fixture_path):
    servable = backends.load(fixture_path("savedmodel_base") / "1", ("serve",), (1, 2))
    try:
        config = servable._session.session._config
        assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (1, 2)
    finally:
        servable.close()


def test_version_flag_spec_0_1():
    code, stdout, _ = exits("--version")
    assert code == 0 and stdout.startswith("TensorFlow ModelServer: tfsconvert-")
    assert "\nTensorFlow Library: 2." in stdout
