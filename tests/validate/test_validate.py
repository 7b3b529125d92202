"""`tfsconvert validate` end to end: real artifacts, a real sandboxed server over loopback, real
REST and gRPC clients, JSON and JUnit reports read back, and no process left behind."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import converted, run_cli

pytestmark = pytest.mark.slow  # every test here starts TensorFlow (or the JVM) in a server process


def _processes_mentioning(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker` (a sandbox's staged model path does)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


@pytest.fixture(autouse=True)
def no_orphans(tmp_path_factory, monkeypatch):
    """Every outcome, pass or fail, leaves no sandboxed server running. The test's sandboxes are
    staged under a temp dir of its own, so servers of other processes on the machine don't count."""
    root = tmp_path_factory.mktemp("sandboxes")
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield
    deadline = time.monotonic() + 5  # bwrap dies with its parent: on a busy machine, a moment after it
    while (left := _processes_mentioning(f"{root}/tfsconvert-sandbox-")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []
    assert list(root.glob("tfsconvert-sandbox-*")) == []  # and the staged copies are gone


def validate(*args) -> tuple[int, dict]:
    """Run `tfsconvert validate ARGS --json`; (exit code, report)."""
    result = run_cli("validate", *args, "--json")
    assert result.stdout.strip(), result.stderr
    return result.exit_code, json.loads(result.stdout)


def codes(report: dict) -> list[str]:
    return sorted({f["code"] for f in report["findings"]} | {f["code"] for v in report["versions"]
                                                              for f in v["findings"]})


def findings(report: dict, code: str) -> list[dict]:
    every = report["findings"] + [f for v in report["versions"] for f in v["findings"]]
    return [f for f in every if f["code"] == code]


@pytest.fixture(scope="module")
def mlp(fixture_path, tmp_path_factory) -> Path:
    """The frozen MLP converted to base/1 with 8 golden requests."""
    return converted(fixture_path, tmp_path_factory, "saved-model", "frozen_mlp_pb", "--version", "1")[1]


def _golden(base: Path) -> list[dict]:
    return [json.loads(line) for line in (base / "1" / "assets.extra" / "golden.jsonl").read_text().splitlines()]


def _write_golden(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# ---------------------------------------------------------------------------------------------
# Models that serve


def test_savedmodel_passes_over_rest_and_grpc_with_junit(mlp, tmp_path):
    junit = tmp_path / "report.xml"
    code, report = validate(mlp, "--junit", junit)
    assert code == 0, report
    version = report["versions"][0]
    records = len(_golden(mlp))
    assert (version["model"], version["version"], version["format"], version["served"]) == (mlp.name, 1,
                                                                                           "savedmodel", True)
    assert version["load_seconds"] > 0 and version["golden_source"].endswith("golden.jsonl")
    assert version["golden_passed"] == 2 * records and version["golden_failed"] == 0
    assert sorted({r["protocol"] for r in version["golden"]}) == ["grpc", "rest"]
    probabilities = [o for r in version["golden"] for o in r["outputs"] if o["alias"] == "probabilities"]
    assert len(probabilities) == 2 * records and all(o["ok"] and o["max_abs"] <= 1e-6 for o in probabilities)
    suite = ET.parse(junit).getroot().find("testsuite")
    names = [case.get("name") for case in suite.iter("testcase")]
    assert suite.get("name") == f"{mlp.name}/1" and suite.get("failures") == "0"
    assert "load" in names and "static/not-a-savedmodel" in names
    assert f"golden/{_golden(mlp)[0]['id']}/grpc" in names and len(names) == len(set(names))


@pytest.mark.parametrize("command, fixture, flags", [
    ("onnx", "sklearn_pipeline", []),
    ("pmml", "sklearn_pipeline", ["--target-name", "species"]),
    ("onnx", "frozen_mlp_pb", []),
])
def test_onnx_and_pmml_artifacts_pass(fixture_path, tmp_path_factory, command, fixture, flags):
    _, base = converted(fixture_path, tmp_path_factory, command, fixture, "--version", "1", *flags)
    code, report = validate(base)
    assert code == 0, report
    version = report["versions"][0]
    assert version["format"] == command and version["served"]
    engines = 2 if command == "pmml" else 1  # a PMML version replays through JPMML-Evaluator and pypmml
    assert version["golden_failed"] == 0 and version["golden_passed"] == 2 * engines * len(_golden(base))
    assert {r["engine"] for r in version["golden"]} == ({"jpmml", "pypmml"} if command == "pmml" else {None})


def test_without_a_golden_file_a_synthesized_request_must_serve(fixture_path):
    code, report = validate(fixture_path("savedmodel_base"), "--protocol", "rest")
    assert code == 0, report
    version = report["versions"][0]
    assert version["version"] == 2  # latest only (docs/tf-serving.md §1.4)
    assert version["golden_source"] == "synthesized"
    assert [(r["protocol"], r["ok"], r["values_checked"]) for r in version["golden"]] == [("rest", True, False)]
    assert [o["alias"] for o in version["golden"][0]["outputs"]] == ["probabilities"]
    assert codes(report) == ["values-not-checked"]


def test_static_only_starts_no_server(mlp):
    code, report = validate(mlp, "--static-only")
    assert code == 0
    assert report["versions"][0]["served"] is False
    assert report["versions"][0]["not_served_because"] == "--static-only"
    assert report["versions"][0]["golden"] == []


# ---------------------------------------------------------------------------------------------
# The three classic deployment errors, end to end


def test_frozen_graph_given_as_path(fixture_path):
    code, report = validate(fixture_path("frozen_mlp_pb"))
    assert code == 1
    [found] = findings(report, "not-a-savedmodel")
    assert "tfsconvert saved-model" in found["hint"] and "--version 1" in found["hint"]
    assert report["versions"] == []


def test_savedmodel_without_version_directory(fixture_path):
    code, report = validate(fixture_path("broken_savedmodel_in_base"))
    assert code == 1
    [found] = findings(report, "no-version-directory")
    assert "No versions of servable" in found["tf_serving"]


def test_clients_using_other_aliases_get_did_you_mean(fixture_path, tmp_path_factory, tmp_path):
    """A Keras export converted without names serves `keras_tensor`; clients send `features`."""
    _, base = converted(fixture_path, tmp_path_factory, "saved-model", "keras_export_savedmodel", "--version", "1")
    records = _golden(base)
    for record in records:
        record["request"]["inputs"] = {"features": record["request"]["inputs"]["keras_tensor"]}
    code, report = validate(base, "--golden", _write_golden(tmp_path / "clients.jsonl", records))
    assert code == 1
    assert "unnamed-signature-io" in codes(report)
    wrong = findings(report, "input-alias-not-found")
    assert len(wrong) == 2 * len(records)  # every request, over both protocols
    assert "Did you mean 'keras_tensor' for 'features'?" in wrong[0]["message"]
    assert "--input features=keras_tensor" in wrong[0]["hint"]
    assert {r["protocol"] for r in report["versions"][0]["golden"] if not r["ok"]} == {"rest", "grpc"}


# ---------------------------------------------------------------------------------------------
# Golden replay failures


def test_golden_mismatch_reports_max_error_per_output(mlp, tmp_path):
    records = _golden(mlp)
    outputs = records[0]["response"]["outputs"]
    records[0]["response"]["outputs"] = [[value + 0.5 for value in row] for row in outputs]
    code, report = validate(mlp, "--golden", _write_golden(tmp_path / "g.jsonl", records), "--junit",
                            tmp_path / "r.xml")
    assert code == 1
    bad = findings(report, "golden-mismatch")
    assert len(bad) == 2 and all(records[0]["id"] in f["message"] for f in bad)
    assert "max abs 0.5" in bad[0]["message"]
    failures = [case for case in ET.parse(tmp_path / "r.xml").getroot().iter("testcase")
                if case.find("failure") is not None]
    assert sorted(case.get("name") for case in failures) == [f"golden/{records[0]['id']}/grpc",
                                                             f"golden/{records[0]['id']}/rest"]
    assert failures[0].find("failure").get("type") == "golden-mismatch"
    assert "fix: " in failures[0].find("failure").text


def test_tolerance_flags_override_the_golden_file(mlp, tmp_path):
    records = _golden(mlp)
    records[0]["response"]["outputs"] = [[value + 1e-3 for value in row] for row in records[0]["response"]["outputs"]]
    golden = _write_golden(tmp_path / "g.jsonl", records)
    assert validate(mlp, "--golden", golden, "--protocol", "rest")[0] == 1
    assert validate(mlp, "--golden", golden, "--protocol", "rest", "--atol", "0.01")[0] == 0


def test_unknown_signature(mlp, tmp_path):
    records = _golden(mlp)[:1]
    records[0]["model_spec"]["signature_name"] = records[0]["request"]["signature_name"] = "serving_defualt"
    code, report = validate(mlp, "--golden", _write_golden(tmp_path / "g.jsonl", records))
    assert code == 1
    found = findings(report, "signature-not-found")
    assert len(found) == 2
    assert "did you mean 'serving_default'" in found[0]["hint"]
    assert 'Serving signature name: "serving_defualt" not found in signature def' in found[0]["message"]


def test_wrong_dtype_and_shape(mlp, tmp_path):
    wrong_type = _golden(mlp)[0]
    wrong_type["id"] = "strings"
    wrong_type["request"]["inputs"] = {"features": [["a", "b", "c", "d"]]}
    wrong_shape = _golden(mlp)[1]
    wrong_shape["id"] = "five-columns"
    wrong_shape["request"]["inputs"] = {"features": [[1.0, 2.0, 3.0, 4.0, 5.0]]}
    code, report = validate(mlp, "--golden", _write_golden(tmp_path / "g.jsonl", [wrong_type, wrong_shape]))
    assert code == 1
    by_id = {(r["id"], r["protocol"]): r["finding"]["code"] for r in report["versions"][0]["golden"]}
    assert by_id == {("strings", "rest"): "dtype-mismatch", ("strings", "grpc"): "dtype-mismatch",
                     ("five-columns", "rest"): "shape-mismatch", ("five-columns", "grpc"): "shape-mismatch"}


# ---------------------------------------------------------------------------------------------
# Load failures, limits and timeouts: findings about the model, never a hang


def test_model_that_fails_to_load(fixture_path):
    code, report = validate(fixture_path("validate_unknown_op"))
    assert code == 1
    [found] = findings(report, "unknown-op")
    assert "Op type not registered 'TfsconvertNoSuchOp'" in found["message"]
    assert found["tf_serving"].startswith("Failed to start server. Error: UNKNOWN: 1 servable(s) did not become")
    assert report["versions"][0]["served"] is False


@pytest.mark.parametrize("flags, message", [
    (["--memory-mb", "400"], "ran out of memory under its 400 MB address-space limit"),
    (["--cpu-seconds", "1"], "used up its CPU-time limit (1 s)"),
])
def test_sandbox_limits(mlp, flags, message):
    code, report = validate(mlp, *flags)
    assert code == 1
    [found] = findings(report, "sandbox-limit")
    assert message in found["message"]


@pytest.mark.parametrize("memory_mb, arenas", [(8192, "8"), (4096, "4"), (400, "2")])
def test_sandbox_malloc_arenas_stay_within_a_sixteenth_of_the_cap(memory_mb, arenas, tmp_path):
    from tfsconvert.server.sandbox import Limits, _environment

    assert _environment(tmp_path, Limits(memory_mb=memory_mb))["MALLOC_ARENA_MAX"] == arenas


def test_start_up_timeout(mlp):
    code, report = validate(mlp, "--timeout", "0.5")
    assert code == 1
    [found] = findings(report, "server-timeout")
    assert "did not open its ports within 0.5 s" in found["message"]


def test_model_that_hangs_on_predict(fixture_path):
    code, report = validate(fixture_path("validate_hanging_model"), "--timeout", "30")  # TF loads in 10 s or more
    assert code == 1
    [found] = findings(report, "server-timeout")
    assert "no answer" in found["message"]
    assert len(report["versions"][0]["golden"]) == 1  # the replay stops at the first timeout


# ---------------------------------------------------------------------------------------------
# The options


def test_strict_makes_warnings_fail(fixture_path, tmp_path_factory):
    _, base = converted(fixture_path, tmp_path_factory, "saved-model", "frozen_generic_pb", "--version", "1")
    assert validate(base, "--static-only")[0] == 0
    code, report = validate(base, "--static-only", "--strict")
    assert code == 1 and report["strict"] and "unnamed-signature-io" in codes(report)


def test_json_report_to_a_file(mlp, tmp_path):
    out = tmp_path / "report.json"
    result = run_cli("validate", mlp, "--static-only", "--json-file", out)
    assert result.exit_code == 0
    assert "PASSED" in result.stdout
    report = json.loads(out.read_text())
    assert report["ok"] is True and report["summary"]["versions"] == 1


def test_real_server_missing_is_a_clear_error(mlp, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    result = run_cli("validate", mlp, "--server", "tensorflow_model_server")
    assert result.exit_code == 2
    assert "error [server-not-found]" in result.stderr and "--server-bin" in result.stderr


@pytest.mark.skipif(shutil.which("tensorflow_model_server") is None and not os.environ.get("TFSCONVERT_SERVER_BIN"),
                    reason="the real tensorflow_model_server binary is not installed here")
def test_real_tensorflow_model_server(mlp):
    binary = os.environ.get("TFSCONVERT_SERVER_BIN") or shutil.which("tensorflow_model_server")
    code, report = validate(mlp, "--server", "tensorflow_model_server", "--server-bin", binary)
    assert code == 0, report
    assert report["versions"][0]["golden_passed"] == 2 * len(_golden(mlp))
