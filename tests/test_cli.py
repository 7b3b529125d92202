"""The CLI's contracts: exit codes, one-line errors, JSON errors, --debug tracebacks."""

import json

import pytest

from tfsconvert import __version__


def test_help_lists_inspect(cli):
    result = cli("--help")
    assert result.exit_code == 0
    assert "inspect" in result.stdout


def test_missing_path_is_one_line_exit_2(cli, tmp_path):
    missing = tmp_path / "nope"
    result = cli("inspect", missing)
    assert result.exit_code == 2
    first, *rest = result.stderr.strip().splitlines()
    assert str(missing) in first and "path-not-found" in first
    assert len(rest) == 1 and rest[0].strip().startswith("fix:")
    assert result.stdout == ""


def test_json_error_shape(cli, tmp_path):
    result = cli("inspect", tmp_path / "nope", "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "path-not-found"
    assert str(tmp_path / "nope") in error["message"]
    assert error["hint"]


def test_debug_keeps_the_traceback(cli_subprocess, tmp_path):
    plain = cli_subprocess("inspect", tmp_path / "nope")
    debug = cli_subprocess("--debug", "inspect", tmp_path / "nope")
    assert plain.exit_code == 2 and "Traceback" not in plain.stderr
    assert debug.exit_code != 0 and "Traceback" in debug.stderr and "InputError" in debug.stderr


# ---------------------------------------------------------------------------------------------
# Conventions shared by every command: -h, completion, --json, the documents' versions, progress


COMMANDS = ["inspect", "saved-model", "onnx", "pmml", "validate", "serve", "serving-config", "bench"]


def _options(command: str) -> dict:
    import typer.main

    from tfsconvert.cli import app

    return {opt: param for param in typer.main.get_command(app).commands[command].params for opt in param.opts}


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_h_is_help(cli, command):
    short, long = cli(*command, "-h"), cli(*command, "--help")
    assert short.exit_code == long.exit_code == 0
    assert short.stdout == long.stdout and "Usage:" in short.stdout


def test_shell_completion_is_offered(cli):
    assert "--install-completion" in cli("--help").stdout
    script = cli("--show-completion", "bash")
    assert script.exit_code == 0 and "complete" in script.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_json_is_a_flag_and_quiet_is_q(command):
    options = _options(command)
    if command == "serve":  # a server in the foreground: no document to print
        assert "--json" not in options
        return
    assert options["--json"].is_flag
    if command != "inspect":  # inspect shows no progress
        assert options["-q"].is_flag and "--quiet" in options["-q"].opts
    assert ("--json-file" in options) == (command == "validate")


def test_every_json_document_carries_its_versions(cli, fixture_path, tmp_path):
    documents = [cli("inspect", fixture_path("frozen_mlp_pb"), "--json").json(),
                 cli("inspect", tmp_path / "nope", "--json").json(),  # an error object too
                 cli("validate", fixture_path("savedmodel_base"), "--static-only", "--json").json()]
    assert cli("validate", fixture_path("savedmodel_base"), "--static-only", "--json-file",
               tmp_path / "report.json").exit_code == 0
    documents.append(json.loads((tmp_path / "report.json").read_text()))
    for document in documents:
        assert list(document)[:2] == ["schema_version", "tfsconvert_version"]
        assert document["schema_version"] == 1 and document["tfsconvert_version"] == __version__
    assert documents[1]["error"]["code"] == "path-not-found"
    assert documents[2]["ok"] and documents[3]["versions"] == documents[2]["versions"]


def test_progress_lines_on_a_piped_stderr_and_none_with_quiet(cli, fixture_path, tmp_path):
    base = fixture_path("savedmodel_base")
    loud, quiet = cli("validate", base, "--static-only"), cli("validate", base, "--static-only", "-q")
    assert loud.exit_code == quiet.exit_code == 0 and loud.stdout == quiet.stdout.replace(
        quiet.stdout.rsplit(" in ", 1)[1], loud.stdout.rsplit(" in ", 1)[1])  # the same table, bar the time
    assert [line.split("] ", 1)[1] for line in loud.progress] == [f"validating {base}", "static checks", "done"]
    assert quiet.progress == [] and quiet.stderr == ""
    missing = tmp_path / "nope.pb"  # a conversion that fails at once: its first line, then the error
    converted = cli("saved-model", missing, "--base-path", tmp_path / "m")
    assert converted.exit_code == 2 and converted.progress[0].endswith(f"converting {missing} to savedmodel")
    assert "done" not in converted.progress[-1] and converted.stderr.startswith("error [path-not-found]")
    assert cli("saved-model", missing, "--base-path", tmp_path / "m", "--quiet").progress == []
    config = cli("serving-config", base, "--out", tmp_path / "serving")
    assert config.exit_code == 0 and config.progress[-1].endswith("] done")


def test_bench_progress_is_plain_lines_when_piped(capsys):
    from tfsconvert import output

    with output.progress_bar() as update:
        update("concurrency 1", 0, 100)
        update("concurrency 1", 50, 100)  # the same step within a few seconds: no new line
        update("concurrency 8", 0, 100)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["concurrency 1 0/100", "concurrency 8 0/100"]
    output.set_quiet(True)
    try:
        with output.progress_bar() as update:
            update("concurrency 1", 0, 100)
    finally:
        output.set_quiet(False)
    assert capsys.readouterr().err == ""
