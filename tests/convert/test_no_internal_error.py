"""Every fixture but the tabular models (TF models, broken layouts, bad files) through every
TensorFlow command: each ends in success or a documented answer (exit 0, 1 or 2), never an internal error."""

from __future__ import annotations

import pytest

from fixtures import REGISTRY

_NOT_TF = {"onnx", "pmml", "sklearn", "spark-pipeline"}
FIXTURES = [f.name for f in REGISTRY.values() if not f.lazy and f.format not in _NOT_TF]


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("command", ["inspect", "saved-model", "onnx"])
def test_no_internal_error(cli, fixture_path, tmp_path, monkeypatch, command, name):
    monkeypatch.chdir(tmp_path)
    result = cli(command, fixture_path(name), "--json")
    assert result.exit_code in (0, 1, 2), result.stdout + result.stderr
    assert "internal error" not in result.stderr
    if result.exit_code == 2:
        error = result.json()["error"]
        assert error["message"] and error["hint"]
