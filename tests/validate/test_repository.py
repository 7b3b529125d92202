"""`tfsconvert validate` of a model repository or a model config file: the versions share server
processes, a model that fails to load is attributed to itself (served again alone) and does not hide
the others, and the report is the same whatever the number of processes."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import converted, run_cli
from test_validate import no_orphans  # noqa: F401 - every test here leaves no server behind

pytestmark = pytest.mark.slow  # every test here starts TensorFlow in server processes
STARTED = "] starting a sandboxed server for "  # not the "still starting ..." lines of a slow start


@pytest.fixture(scope="module")
def repository(fixture_path, tmp_path_factory) -> Path:
    """mlp (versions 1, 2), mlp_copy, broken (an op TensorFlow lacks) and iris_onnx."""
    _, mlp = converted(fixture_path, tmp_path_factory, "saved-model", "frozen_mlp_pb", "--version", "1")
    _, onnx = converted(fixture_path, tmp_path_factory, "onnx", "sklearn_pipeline", "--version", "1")
    root = tmp_path_factory.mktemp("repository") / "models"
    shutil.copytree(mlp, root / "mlp")
    shutil.copytree(mlp / "1", root / "mlp" / "2")
    shutil.copytree(mlp, root / "mlp_copy")
    shutil.copytree(fixture_path("validate_unknown_op"), root / "broken")
    shutil.copytree(onnx, root / "iris_onnx")
    return root


def validate(*args) -> tuple[int, dict, list[str]]:
    """(exit code, JSON report, the progress lines that started a server)."""
    result = run_cli("validate", *args, "--json")
    assert result.stdout.strip(), result.stderr
    return result.exit_code, json.loads(result.stdout), [line for line in result.progress if STARTED in line]


def by_name(report: dict) -> dict[str, dict]:
    return {f"{v['model']}/{v['version']}": v for v in report["versions"]}


def comparable(report: dict) -> dict:
    """The report without timings and process counts."""
    report = json.loads(json.dumps(report))
    for key in ("seconds", "servers", "jobs"):
        report.pop(key)
    for version in report["versions"]:
        version.pop("load_seconds")
        for result in version["golden"]:
            result.pop("seconds")
    return report


@pytest.fixture(scope="module")
def junit(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("junit") / "report.xml"


@pytest.fixture(scope="module")
def one_pass(repository, junit):
    return validate(repository, "--jobs", "1", "--junit", junit)


def test_a_broken_model_is_attributed_and_the_others_pass(one_pass):
    code, report, started = one_pass
    assert code == 1 and report["kind"] == "model-repository"
    versions = by_name(report)
    assert sorted(versions) == ["broken/1", "iris_onnx/1", "mlp/2", "mlp_copy/1"]  # latest version of each
    broken = versions.pop("broken/1")
    assert [f["code"] for f in broken["findings"]] == ["unknown-op"] and broken["served"] is False
    assert "Op type not registered 'TfsconvertNoSuchOp'" in broken["findings"][0]["message"]
    assert "{name: broken version: 1}" in broken["findings"][0]["tf_serving"]
    for name, version in versions.items():
        assert version["served"] and version["findings"] == [], name
        assert version["golden_failed"] == 0 and version["golden_passed"] > 0, name
    # One server for the four versions, which exits naming broken/1; broken/1 alone to confirm; the other
    # three together again.
    assert report["servers"] == 3 and report["jobs"] == 1
    assert len(started) == 3 and "broken/1 (savedmodel)" in started[1] and "3 versions" in started[2]


def test_the_junit_report_fails_only_the_broken_models_load(one_pass, junit):
    suites = {suite.get("name"): suite for suite in ET.parse(junit).getroot().iter("testsuite")}
    assert sorted(suites) == ["broken/1", "iris_onnx/1", "mlp/2", "mlp_copy/1"]
    failed = {name: [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
              for name, suite in suites.items()}
    assert failed == {"broken/1": ["load"], "iris_onnx/1": [], "mlp/2": [], "mlp_copy/1": []}
    [failure] = suites["broken/1"].iter("failure")
    assert failure.get("type") == "unknown-op" and "TfsconvertNoSuchOp" in failure.get("message")
    for name in ("iris_onnx/1", "mlp/2", "mlp_copy/1"):
        golden = [case for case in suites[name].iter("testcase") if case.get("name").startswith("golden/")]
        assert golden and suites[name].get("failures") == "0", name


def test_one_server_per_version_in_parallel_gives_the_same_report(repository, one_pass):
    code, report, started = validate(repository, "--server-per-version", "--jobs", "2")
    assert code == one_pass[0]
    assert comparable(report) == comparable(one_pass[1])
    assert report["servers"] == len(started) == 4 and report["jobs"] == 2


def test_a_model_config_file_serves_every_version_of_its_policy_in_one_server(repository, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{\n'
        f'  config {{ name: "mlp" base_path: "{repository / "mlp"}" model_platform: "tensorflow"\n'
        f'           model_version_policy {{ all {{}} }} }}\n'
        f'  config {{ name: "iris" base_path: "{repository / "iris_onnx"}" model_platform: "tensorflow" }}\n'
        f'}}\n')
    code, report, started = validate(config, "--protocol", "rest")
    assert code == 0, report
    assert report["kind"] == "model-config"
    versions = by_name(report)
    assert sorted(versions) == ["iris/1", "mlp/1", "mlp/2"]
    for name, version in versions.items():
        assert version["served"] and version["golden_failed"] == 0 and version["golden_passed"] > 0, name
        assert {r["protocol"] for r in version["golden"]} == {"rest"}
        assert version["load_seconds"] is not None and version["load_seconds"] > 0, name
    assert report["servers"] == len(started) == 1 and "3 versions" in started[0]

