"""The validator's sandbox against hostile models: each attack is contained and reported, fast.

The models (tests/validate/hostile_models.py) are real SavedModels; the server is ours in its
bubblewrap namespaces; the host file, the written path and the listener are the test's own. The
attacks that take the server down (memory, a spinning request) run twice (`layout`): the model alone
in its server, and in a repository beside a harmless model, the two loaded by one shared server
process first (as validate serves a repository), whose result must survive. Reading, writing and
connecting meet the same namespaces in both, so they run alone (the first test reads from a shared one).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hostile_models
from conftest import REPO, run_cli, write_warmup

pytestmark = pytest.mark.slow  # every test here starts TensorFlow in a sandboxed server
SECRET = b"tfsconvert-host-secret-5f1d"
# Seconds an attack may take to be contained: one server start alone, one start of two models shared.
QUICK = {"alone": 90, "shared": 150}  # on a busy 2-core machine; TF Serving's retries alone take 5 min


@pytest.fixture(params=["alone", "shared"])
def layout(request) -> str:
    return request.param


def _validate(base: Path, *flags, layout: str = "alone") -> tuple[int, dict, str]:
    """validate of `base`, or (shared) of a repository holding it and a harmless model: then the report
    keeps `base`'s versions only, once the harmless model is checked and the shared server seen starting."""
    if layout == "shared":
        repository = base.parent / f"{base.name}-repository"
        repository.mkdir()
        base = Path(shutil.move(base, repository / base.name))
        hostile_models.doubles(repository / "companion")
    result = run_cli("validate", base.parent if layout == "shared" else base, "--timeout", "120", *flags, "--json")
    assert result.stdout.strip(), result.stderr
    report = json.loads(result.stdout)
    if layout == "shared":
        assert any("] starting a sandboxed server for 2 versions" in line for line in result.progress), result.progress
        [companion] = [v for v in report["versions"] if v["model"] == "companion"]
        assert companion["served"] and companion["golden_failed"] == 0 and companion["golden_passed"] > 0
        report["versions"] = [v for v in report["versions"] if v["model"] == base.name]
    return result.exit_code, report, result.stdout + result.stderr


def _findings(report: dict, *, weak: bool = False) -> list[dict]:
    """The version findings, without the generic-name warning of these minimal models, and without
    `sandbox-weak` unless asked (a nested container may give the host's /proc: see docs/validate.md)."""
    skipped = {"unnamed-signature-io"} | (set() if weak else {"sandbox-weak"})
    return [f for v in report["versions"] for f in v["findings"] if f["code"] not in skipped]


@pytest.fixture(scope="module")
def secret(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("host") / "secret.txt"
    path.write_bytes(SECRET)
    return path


def test_the_server_runs_as_nobody_without_network_or_host_files(tmp_path, secret, layout):
    """A model that reads any path it is given shows what the sandbox holds (shared: a config file
    serves it beside a harmless model, whose host path it cannot read either)."""
    from tfsconvert.validate.client import RestClient
    from tfsconvert.server.sandbox import Sandbox, Served

    base = hostile_models.reads_any(tmp_path / "m")
    servables = [Served("m", 1, base / "1")]
    if layout == "shared":
        servables.append(Served("companion", 1, hostile_models.doubles(tmp_path / "companion") / "1"))
    paths = ("/proc/self/status", "/etc/passwd", "/proc/net/dev", str(secret), "/etc/shadow",
             str(Path.home() / ".bashrc"), str(tmp_path / "companion" / "1" / "saved_model.pb"),
             "/models/models.config")
    with Sandbox(servables=servables) as box:
        assert box.isolated
        rest = RestClient(box.rest_port, 60)
        try:
            answers = {path: rest.predict("m", 1, {"instances": [path]}) for path in paths}
        finally:
            rest.close()
    assert answers["/proc/self/status"].ok, answers
    status = answers["/proc/self/status"].body["predictions"][0]
    assert "Uid:\t65534\t65534\t65534\t65534" in status and "CapEff:\t0000000000000000" in status
    assert answers["/etc/passwd"].body["predictions"] == ["nobody:x:65534:65534:nobody:/nonexistent:"
                                                          "/usr/sbin/nologin\n"]
    interfaces = [line.split(":")[0].strip() for line in answers["/proc/net/dev"].body["predictions"][0]
                  .splitlines()[2:]]
    assert interfaces == ["lo"]
    config = answers.pop("/models/models.config")
    if layout == "shared":  # the servables are named in the config file, with a specific version policy
        assert 'name: "m"' in config.body["predictions"][0] and 'name: "companion"' in config.body["predictions"][0]
    for path in paths[3:-1]:
        assert not answers[path].ok and "No such file or directory" in answers[path].error, answers[path]


def test_a_model_reading_a_host_file_gets_nothing(tmp_path, secret):
    started = time.monotonic()
    code, report, output = _validate(hostile_models.reads(tmp_path / "reads", secret))
    assert code == 1
    found = _findings(report)
    assert [f["code"] for f in found] == ["golden-mismatch", "golden-mismatch", "values-not-checked"]
    assert all("No such file or directory" in f["message"] for f in found[:2])
    assert SECRET.decode() not in output
    assert time.monotonic() - started < QUICK["alone"]


def test_a_model_writing_outside_its_dir_writes_nothing(tmp_path):
    target = tmp_path / "outside" / "written.txt"
    code, report, _ = _validate(hostile_models.writes(tmp_path / "writes", target))
    assert code == 1
    found = _findings(report)
    assert [f["code"] for f in found] == ["golden-mismatch", "golden-mismatch", "values-not-checked"]
    assert all("Read-only file system" in f["message"] for f in found[:2]), found
    assert not target.exists() and not target.parent.exists()


def test_a_model_connecting_to_a_host_listener_never_reaches_it(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        base = hostile_models.connects(tmp_path / "connects", listener.getsockname()[1])
        code, report, _ = _validate(base, "--request-timeout", "3")
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert code == 1
    found = _findings(report)
    assert [f["code"] for f in found] == ["server-timeout", "values-not-checked"]
    assert "no answer" in found[0]["message"]


def test_a_model_asking_for_50_gb_is_a_memory_limit(tmp_path, layout):
    started = time.monotonic()
    code, report, _ = _validate(hostile_models.allocates(tmp_path / "allocates"), "--request-timeout", "30",
                                layout=layout)
    assert code == 1
    found = _findings(report)
    assert [f["code"] for f in found] == ["sandbox-limit", "sandbox-limit", "values-not-checked"]
    assert "ran out of memory" in found[0]["message"] and "OOM when allocating" in found[0]["message"]
    assert time.monotonic() - started < QUICK[layout]


def test_a_model_asking_for_50_gb_in_its_warmup_is_a_memory_limit(tmp_path, layout):
    base = hostile_models.allocates(tmp_path / "allocates")
    (base / "1" / "assets.extra").mkdir()
    write_warmup(base / "1" / "assets.extra" / "tf_serving_warmup_requests", [{"x": np.ones(1, np.float32)}],
                 "allocates", "serving_default")
    started = time.monotonic()
    code, report, _ = _validate(base, layout=layout)
    assert code == 1
    assert [f["code"] for f in _findings(report)] == ["sandbox-limit"]
    assert "ran out of memory under its 8192 MB address-space limit while loading" in _findings(report)[0]["message"]
    assert time.monotonic() - started < {"alone": QUICK["alone"], "shared": 240}[layout]  # shared: 3 starts (together,
    # the model alone, the companion again)


def test_a_model_that_spins_is_a_timeout(tmp_path, layout):
    code, report, _ = _validate(hostile_models.spins(tmp_path / "spins"), "--request-timeout", "3", layout=layout)
    assert code == 1
    assert [f["code"] for f in _findings(report)] == ["server-timeout", "values-not-checked"]


@pytest.mark.parametrize("plant, what", [
    (lambda d, secret: (d / "assets" / "zero").symlink_to("/dev/zero"), "a symlink to /dev/zero, outside"),
    (lambda d, secret: (d / "assets" / "leak").symlink_to(secret), "outside the version dir"),
    (lambda d, secret: os.mkfifo(d / "assets" / "pipe"), "a FIFO, not a regular file"),
])
def test_staging_refuses_links_out_and_special_files(tmp_path, secret, plant, what):
    base = hostile_models.doubles(tmp_path / "m")
    (base / "1" / "assets").mkdir(exist_ok=True)
    plant(base / "1", secret)
    started = time.monotonic()
    code, report, _ = _validate(base)
    assert code == 1 and time.monotonic() - started < 10  # refused before any server starts
    [found] = _findings(report)
    assert found["code"] == "unsafe-file" and what in found["message"], found
    assert report["versions"][0]["served"] is False


def test_staging_copies_links_that_stay_inside(tmp_path):
    base = hostile_models.doubles(tmp_path / "m")
    (base / "1" / "assets").mkdir(exist_ok=True)
    (base / "1" / "assets" / "vocab.txt").write_text("a\n")
    (base / "1" / "assets" / "alias.txt").symlink_to("vocab.txt")
    code, report, _ = _validate(base)
    assert code == 0, report


def _cli(*args, path: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), PATH=path)
    return subprocess.run([sys.executable, "-m", "tfsconvert", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=REPO)


def test_without_bwrap_it_runs_weak_or_refuses(tmp_path):
    base = hostile_models.doubles(tmp_path / "m")
    weak = _cli("validate", base, "--json", path=str(tmp_path))  # no bwrap on this PATH
    report = json.loads(weak.stdout)
    assert weak.returncode == 0, weak.stderr
    [found] = [f for f in _findings(report, weak=True) if f["code"] != "values-not-checked"]
    assert found["code"] == "sandbox-weak" and found["severity"] == "warning"
    assert "bubblewrap (bwrap) is not installed" in found["message"]
    refused = _cli("validate", base, "--require-isolation", path=str(tmp_path))
    assert refused.returncode == 4
    assert "error [sandbox-weak]: --require-isolation: bubblewrap (bwrap) is not installed" in refused.stderr


def test_model_names_with_spaces_and_non_ascii(tmp_path):
    base = hostile_models.doubles(tmp_path / "mödel naïve 模型")
    code, report, _ = _validate(base)
    assert code == 0, report
    assert report["versions"][0]["model"] == "mödel naïve 模型"
