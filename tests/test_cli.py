"""The CLI's contracts: exit codes, one-line errors, JSON errors, --debug tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

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
    """The script is for the shell the command runs in (detected from the parent processes)."""
    assert "--install-completion" in cli("--help").stdout
    command = Path(sys.executable).with_name("tfsconvert")  # the console script pip or uv installed
    in_bash = subprocess.run(["bash", "-c", f"{command} --show-completion; true"],
                             capture_output=True, text=True, timeout=60)
    assert "complete -o default -F _tfsconvert_completion tfsconvert" in in_bash.stdout, in_bash.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_json_is_a_flag_and_quiet_is_q(command):
    options = _options(command)
    assert options["--json"].is_flag
    if command == "serve":  # a server in the foreground: no progress to quieten
        return
    if command != "inspect":  # inspect shows no progress
        assert options["-q"].is_flag and "--quiet" in options["-q"].opts
    assert ("--json-file" in options) == (command == "validate")


def test_every_json_document_carries_its_versions(cli, fixture_path, tmp_path):
    """One document per command with --json (results where they are quick to get, errors else; every
    `CliResult.json()` in the suite checks the same of the results of conversions and bench runs)."""
    missing = tmp_path / "nope"
    base = fixture_path("savedmodel_base")
    documents = {
        "inspect": cli("inspect", fixture_path("frozen_mlp_pb"), "--json"),
        "inspect error": cli("inspect", missing, "--json"),
        "validate": cli("validate", base, "--static-only", "--json"),
        "saved-model error": cli("saved-model", missing, "--base-path", tmp_path / "m", "--json"),
        "onnx error": cli("onnx", missing, "--base-path", tmp_path / "m", "--json"),
        "pmml error": cli("pmml", missing, "--base-path", tmp_path / "m", "--json"),
        "serving-config": cli("serving-config", base, "--out", tmp_path / "serving", "--json"),
        "bench error": cli("bench", "http://127.0.0.1:1", "--json"),
    }
    assert {name.split()[0] for name in documents} == set(COMMANDS) - {"serve"}  # serve's: test_serve_cli.py
    assert cli("validate", base, "--static-only", "--json-file", tmp_path / "report.json").exit_code == 0
    documents = {name: result.json() for name, result in documents.items()}
    documents["validate --json-file"] = json.loads((tmp_path / "report.json").read_text())
    for name, document in documents.items():
        assert list(document)[:2] == ["schema_version", "tfsconvert_version"], name
        assert document["schema_version"] == 1 and document["tfsconvert_version"] == __version__
        assert ("error" in document) == name.endswith(" error"), name
    assert documents["inspect error"]["error"]["code"] == "path-not-found"
    assert documents["saved-model error"]["error"]["code"] == "path-not-found"
    assert documents["validate"]["ok"] and documents["validate --json-file"] == {**documents["validate"], "seconds": documents[
        "validate --json-file"]["seconds"]}
    assert documents["serving-config"]["ok"]


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


@pytest.mark.parametrize(("module", "extra"), [("pandas", "sklearn"), ("onnxruntime.capi", "onnx"),
                                               ("tensorflow", "tensorflow"), ("jpype", "pmml")])
def test_a_missing_optional_package_exits_3_naming_its_extra(module, extra, capsys):
    """A code path that imports an optional package unchecked still ends in the extra's pip line."""
    import typer

    from tfsconvert.cli.app import run

    def needs():
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    with pytest.raises(typer.Exit) as exited:
        run(needs, as_json=True)
    assert exited.value.exit_code == 3
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "missing-dependency" and f"pip install 'tfsconvert[{extra}]'" in error["hint"]


def test_a_missing_module_of_our_own_is_still_a_bug(capsys):
    import typer

    from tfsconvert.cli.app import BUG_EXIT_CODE, run

    def broken():
        raise ModuleNotFoundError("No module named 'tfsconvert.nothing'", name="tfsconvert.nothing")

    with pytest.raises(typer.Exit) as exited:
        run(broken, as_json=True)
    assert exited.value.exit_code == BUG_EXIT_CODE
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "internal-error"
