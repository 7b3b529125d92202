"""Shared test plumbing: fixture models from the session cache, and CLI runners."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fixtures
from tfsconvert.cli import app

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items):
    """Files with slow tests first (each file whole, in collection order otherwise): with the test workers of
    `make test` taking a file at a time, the longest files start early and the short ones fill the end,
    instead of one worker finishing a Spark file alone."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(scope="session")
def fixture_path():
    """`fixture_path(name)` -> Path of a built fixture (built once, cached across runs)."""
    return fixtures.get


@pytest.fixture(scope="session")
def spark():
    """The product's process-wide Spark session (tfsconvert.convert.spark_session): started on first use
    (about 20 s) and shared with every in-process `tfsconvert pmml/onnx` of a Spark source."""
    from tfsconvert.convert import spark_session

    spark_session.session()
    return _CurrentSpark()


class _CurrentSpark:
    """The session in use when a test calls it: `parity --spark-master` restarts the process's session."""

    def __getattr__(self, name: str):
        from tfsconvert.convert import spark_session

        return getattr(spark_session.session(), name)


@pytest.fixture(scope="module", params=[False, True], ids=["c", "pure"])
def pure(request):
    """The C accelerators (False) or their pure-Python twins (True), in this process (the REST
    transport and JSON helpers) and in the server and load generator child processes it starts
    (TFSCONVERT_PURE_PYTHON)."""
    from tfsconvert import accel
    from tfsconvert.server import http_server, rest_json, rest_json_fast, rest_outputs

    with pytest.MonkeyPatch.context() as patch:
        if request.param:
            patch.setenv(accel.ENV, "1")
        else:
            patch.delenv(accel.ENV, raising=False)
        patch.setattr(http_server, "_http", accel.load("tfsconvert.server", "_http"))
        for module in (rest_json, rest_json_fast, rest_outputs):
            patch.setattr(module, "_rest_json", accel.load("tfsconvert.server", "_rest_json"))
        assert accel.is_c(http_server._http) != request.param
        yield request.param


PROGRESS_LINE = re.compile(r"^tfsconvert \[ *[0-9]+\.[0-9] s\] .*\n?", re.M)


class CliResult:
    """`stderr` without the plain progress lines (stderr is not a terminal here), which are in `progress`."""

    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code, self.stdout = exit_code, stdout
        self.progress = [line.rstrip("\n") for line in PROGRESS_LINE.findall(stderr)]
        self.stderr = PROGRESS_LINE.sub("", stderr)

    def json(self) -> dict:
        """The JSON document on stdout; every one starts with schema_version and tfsconvert_version."""
        document = json.loads(self.stdout)
        assert list(document)[:2] == ["schema_version", "tfsconvert_version"], list(document)[:3]
        return document


def run_cli(*args) -> CliResult:
    """Run `tfsconvert ARGS...` in-process; exit code, stdout and stderr separately."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


def converted(fixture_path, tmp_path_factory, command: str, fixture: str, *flags) -> tuple[dict, Path]:
    """Convert a fixture into a fresh base path (for module-scoped fixtures); (JSON result, base)."""
    base = tmp_path_factory.mktemp(fixture) / "models" / fixture
    result = run_cli(command, fixture_path(fixture), "--base-path", base, *flags, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.json(), base


@pytest.fixture
def cli():
    """Run `tfsconvert ARGS...` in-process (see run_cli)."""
    return run_cli


@pytest.fixture(scope="session")
def cli_subprocess():
    """Run `python -m tfsconvert ARGS...` in a fresh process (for import and traceback checks)."""

    def invoke(*args: str, timeout: float = 120) -> CliResult:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.run([sys.executable, "-m", "tfsconvert", *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, env=env, cwd=REPO)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return invoke


def write_warmup(path: Path, samples: list[dict], model_name: str, signature_name: str) -> int:
    """A warmup file of one predict record per sample, as the converters write it; the record count."""
    from tfsconvert.warmup import warmup_records, write_logs

    return write_logs(path, warmup_records(samples, model_name, signature_name))


def read_warmup(path: Path) -> list:
    """The PredictionLog records of a warmup file, read by TensorFlow's own TFRecord reader."""
    from tfsconvert.runtimes.tf import import_tf

    tf = import_tf()
    from tensorflow_serving.apis import prediction_log_pb2

    return [prediction_log_pb2.PredictionLog.FromString(record)
            for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()]


def assert_one_line_error(result, path, code: str) -> None:
    """Exit 2, the path in a single `error [code]: ...` line, a fix line, no traceback."""
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"error [{code}]: ") and str(path) in lines[0], result.stderr
    assert lines[1].startswith("  fix: ") and len(lines) == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.fixture
def convert(cli, tmp_path, monkeypatch):
    """`convert("saved-model", SRC, *flags)` with --json, in a temp cwd (default base ./models/<name>)."""
    monkeypatch.chdir(tmp_path)

    def run(command: str, src, *flags) -> CliResult:
        return cli(command, src, *flags, "--json")

    return run


def tree_digest(path: Path) -> str:
    """A digest of every file name and byte under `path`, to prove a source was not modified."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def assert_serves(base: Path, records: int, *flags) -> dict:
    """`tfsconvert validate BASE` passes: every golden request answered right over REST and gRPC (a PMML
    version: by each PMML engine, both by default)."""
    result = run_cli("validate", base, "--json", *flags)
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report
    (version,) = report["versions"]
    engines = {r["engine"] for r in version["golden"]}
    assert engines == ({"jpmml", "pypmml"} if version["format"] == "pmml" and not flags else engines), engines
    assert version["served"] and version["golden_failed"] == 0, version
    assert version["golden_passed"] == 2 * records * len(engines), version
    assert sorted({r["protocol"] for r in version["golden"]}) == ["grpc", "rest"]
    return version
