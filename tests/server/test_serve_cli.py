"""`tfsconvert serve`'s command line: its own options, tensorflow_model_server flags passed through,
and an unknown flag refused (exit 2) rather than ignored with the server started anyway."""

from __future__ import annotations

import json

import pytest
import requests
import typer

from conftest import assert_one_line_error
from harness import ServerProcess, config_file, started
from tfsconvert.cli import app
from tfsconvert.server import flags


@pytest.mark.parametrize("arguments, expected", [
    (["base", "--rest_api_num_threads=2"], (["--rest_api_num_threads=2"], ["base"], [])),
    (["--rest_api_num_threads", "2", "base"], (["--rest_api_num_threads", "2"], ["base"], [])),
    (["--enable_model_warmup", "base"], (["--enable_model_warmup"], ["base"], [])),
    (["--enable_model_warmup", "false", "base"], (["--enable_model_warmup", "false"], ["base"], [])),
    (["base", "--bogus=1", "--rest_api_port"], (["--rest_api_port"], ["base"], ["--bogus=1"])),
    (["-x", "--version"], (["--version"], [], ["-x"])),
])
def test_split_tells_server_flags_from_positionals_and_unknown_flags(arguments, expected):
    assert flags.split(arguments) == expected


@pytest.mark.parametrize("extra", [["--bogus_flag=1"], ["--rest_api_num_thread=2"], ["-p", "1"]])
def test_an_unknown_flag_is_refused_with_exit_2_before_anything_starts(fixture_path, extra):
    process = ServerProcess(str(fixture_path("savedmodel_base")), *extra, cli=True)
    code, _ = process.finish(timeout=60)
    assert code == 2
    assert f"error [bad-option]: {extra[0]}: not an option of tfsconvert serve" in process.stderr
    assert "Loading servable" not in process.stderr


def test_two_base_paths_or_none_are_refused(fixture_path):
    base = str(fixture_path("savedmodel_base"))
    for arguments in ([base, base], []):
        process = ServerProcess(*arguments, cli=True)
        assert process.finish(timeout=60)[0] == 2
        assert "give one BASE_PATH or --model-config-file" in process.stderr


def test_a_missing_base_path_or_config_file_is_one_line_and_exit_2(cli, tmp_path):
    """Through the CLI's error boundary, before the server starts (the server binary itself would wait)."""
    for arguments, path in (([tmp_path / "absent"], tmp_path / "absent"),
                            (["--model-config-file", tmp_path / "absent.config"], tmp_path / "absent.config")):
        assert_one_line_error(cli("serve", *arguments), path, "path-not-found")


def test_an_unknown_flag_goes_through_the_error_boundary(cli, tmp_path):
    assert_one_line_error(cli("serve", tmp_path, "--bogus_flag=1"), "--bogus_flag=1", "bad-option")


def test_model_config_file_with_pass_through_flags_serves(fixture_path, tmp_path):
    config = config_file(tmp_path / "models.config", {"m": fixture_path("savedmodel_base")})
    server = started("--model-config-file", str(config), "--rest_api_num_threads=2", "--enable_model_warmup",
                     "false", "--max_num_load_retries", "0", cli=True)
    try:
        status = requests.get(server.url("/v1/models/m"), timeout=10).json()
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        assert server.terminate() == 0


def test_json_prints_one_document_once_serving(fixture_path):
    base = fixture_path("savedmodel_base")
    server = started(str(base), "--json", cli=True)
    try:
        lines = [server.proc.stdout.readline()]
        while lines[-1] not in ("}\n", ""):  # the indented document ends with a lone closing brace
            lines.append(server.proc.stdout.readline())
        document = json.loads("".join(lines))
        status = requests.get(server.url(f"/v1/models/{base.name}"), timeout=10).json()
    finally:
        assert server.terminate() == 0
    assert list(document)[:2] == ["schema_version", "tfsconvert_version"] and document["serving"]
    assert document["grpc_address"] == f"127.0.0.1:{server.port}"
    assert document["rest_url"] == f"http://127.0.0.1:{server.rest_port}"
    assert document["models"] == {base.name: [int(v["version"]) for v in status["model_version_status"]
                                              if v["state"] == "AVAILABLE"]} and document["models"][base.name]


def test_json_prints_the_error_document_when_start_up_fails(tmp_path):
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    process = ServerProcess(str(tmp_path / "m"), "--json", "--max_num_load_retries=0", cli=True)
    code, stdout = process.finish(timeout=120)
    error = json.loads(stdout)["error"]
    assert code == 1 and error["code"] == "serve-failed" and error["hint"]
    assert error["message"].startswith("Failed to start server. Error: ") and "m" in error["message"]


def test_model_name_serves_under_that_name(fixture_path):
    server = started(str(fixture_path("savedmodel_base")), "--model-name", "renamed", cli=True)
    try:
        assert requests.get(server.url("/v1/models/renamed"), timeout=10).status_code == 200
    finally:
        server.terminate()


@pytest.mark.parametrize("command", ["serve", "saved-model", "onnx", "pmml", "validate", "serving-config"])
def test_every_command_takes_model_name_with_name_as_alias(command):
    group = typer.main.get_command(app)
    options = {option for param in group.commands[command].params if param.param_type_name == "option"
               for option in param.opts}
    assert {"--model-name", "--name"} <= options
