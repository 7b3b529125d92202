"""The CLI's contracts: exit codes, one-line errors, JSON errors, --debug tracebacks."""

import json


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
