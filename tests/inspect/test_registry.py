"""Every fixture through `tfsconvert inspect --json`: format, exit code and finding codes."""

import pytest

from fixtures import REGISTRY

EAGER = [f for f in REGISTRY.values() if not f.lazy]


@pytest.mark.parametrize("fx", EAGER, ids=[f.name for f in EAGER])
def test_inspect_fixture(cli, fixture_path, fx):
    path = fixture_path(fx.name)
    result = cli("inspect", path, "--json")
    if fx.bad_input:
        assert result.exit_code == 2, result.stdout
        error = result.json()["error"]
        assert error["message"] and error["hint"]
        assert path.name in error["message"] or str(path) in error["message"]
        return
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["format"] == fx.format
    assert set(data) >= {"path", "format", "versions", "diagnostics"}
    codes = {d["code"] for d in data["diagnostics"]}
    assert fx.expected_codes <= codes, data["diagnostics"]
    if not fx.expected_codes:
        assert [d for d in data["diagnostics"] if d["severity"] == "error"] == []
    for d in data["diagnostics"]:
        assert d["severity"] in ("error", "warning", "info") and d["message"] and d["hint"]


@pytest.mark.parametrize("fx", [f for f in EAGER if f.bad_input], ids=lambda f: f.name)
def test_bad_input_is_one_line_without_traceback(cli_subprocess, fixture_path, fx):
    result = cli_subprocess("inspect", fixture_path(fx.name))
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error [") and lines[1].strip().startswith("fix:")
