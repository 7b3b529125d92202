"""SIGTERM and SIGHUP stop every command as SIGINT does, leaving nothing behind; bad base paths and
sources are refused before any work. Real subprocesses, real signals."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import PROGRESS_LINE, REPO, write_warmup
from tfsconvert.layout import TEMP_PREFIX

pytestmark = pytest.mark.slow  # TensorFlow start-ups in subprocesses
TIMEOUT = 120


def _start(*args, tmpdir: Path | None = None, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), **({"TMPDIR": str(tmpdir)} if tmpdir else {}))
    return subprocess.Popen([sys.executable, "-m", "tfsconvert", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _wait_for(seen, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not seen():
        assert proc.poll() is None, f"ended (exit {proc.returncode}) before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.005)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_conversion_stopped_by_a_signal_leaves_no_temp_dir(signum, fixture_path, tmp_path):
    base = tmp_path / "models" / "m"
    proc = _start("saved-model", fixture_path("frozen_mlp_pb"), "--base-path", base, "--version", "1")
    _wait_for(lambda: base.is_dir() and any(base.glob(TEMP_PREFIX + "*")), proc, "the temp dir")
    proc.send_signal(signum)
    proc.communicate(timeout=TIMEOUT)
    assert proc.returncode != 0 or (base / "1").is_dir()  # stopped, or it had just published
    leftovers = list(base.glob(TEMP_PREFIX + "*")) if base.exists() else []
    assert leftovers == []


def _hanging_with_warmup(fixture_path, tmp_path: Path) -> Path:
    """The hanging fixture plus a warmup record, so that loading itself hangs."""
    base = tmp_path / "hang"
    shutil.copytree(fixture_path("validate_hanging_model"), base)
    extra = base / "1" / "assets.extra"
    extra.mkdir(exist_ok=True)
    write_warmup(extra / "tf_serving_warmup_requests", [{"features": np.zeros((1, 4), np.float32)}], "hang",
                 "serving_default")
    return base


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])  # SIGHUP: SIGTERM's handler (above)
def test_validate_stopped_by_a_signal_leaves_no_staged_copy(signum, fixture_path, tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = _start("validate", fixture_path("validate_hanging_model"), tmpdir=tmpdir)
    _wait_for(lambda: any(tmpdir.glob("tfsconvert-sandbox-*/models")), proc, "the staged copy")
    time.sleep(1.0)  # the server is starting
    proc.send_signal(signum)
    proc.communicate(timeout=TIMEOUT)
    assert list(tmpdir.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_while_a_warmup_hangs(signum, fixture_path, tmp_path):
    from tfsconvert.server.sandbox import free_port

    base = _hanging_with_warmup(fixture_path, tmp_path)
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "tfsconvert", "serve", str(base), "--port", str(free_port()),
                                 "--rest-api-port", str(free_port())], cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=stderr, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        _wait_for(lambda: "Loading servable version" in log.read_text(), proc, "the load")
        time.sleep(3.0)  # TensorFlow is in the warmup request that never ends
        proc.send_signal(signum)
        stopped = time.monotonic()
        proc.wait(timeout=15)
        assert time.monotonic() - stopped < 10 and proc.returncode == 0
    finally:
        proc.kill()
        proc.wait()


def _one_line_error(result: subprocess.CompletedProcess, code: str) -> str:
    """The error after the progress lines (stderr is not a terminal here)."""
    assert result.returncode == 2, result.stderr
    error = PROGRESS_LINE.sub("", result.stderr)
    assert error.startswith(f"error [{code}]: ") and "Traceback" not in error, result.stderr
    return error


@pytest.mark.parametrize("make", [lambda p: os.mkfifo(p) or p, lambda p: Path("/dev/zero")],
                         ids=["fifo", "device"])
@pytest.mark.parametrize("command", ["saved-model", "inspect"])
def test_a_fifo_or_device_source_is_refused_unread(make, command, tmp_path):
    source = make(tmp_path / "model.pb")
    started = time.monotonic()
    proc = _start(command, source, *(["--base-path", tmp_path / "m"] if command != "inspect" else []))
    out, err = proc.communicate(timeout=60)
    text = _one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), "unsupported-format")
    assert "FIFO" in text if source.name == "model.pb" else "character device" in text
    assert time.monotonic() - started < 30 and not (tmp_path / "m").exists()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bwrap for a read-only mount as root")
def test_a_read_only_base_path_is_refused_before_converting(fixture_path, tmp_path):
    frozen = tmp_path / "readonly"
    frozen.mkdir()
    # A real read-only mount (as root a chmod would not stop the write), via bubblewrap.
    command = ["bwrap", "--bind", "/", "/", "--ro-bind", str(frozen), str(frozen), "--dev", "/dev", "--proc", "/proc",
               sys.executable, "-m", "tfsconvert", "saved-model", str(fixture_path("frozen_mlp_pb")),
               "--base-path", str(frozen / "models" / "m")]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    text = _one_line_error(result, "base-path-read-only")
    assert str(frozen) in text and "read-only" in text
    assert list(frozen.iterdir()) == []
    assert time.monotonic() - started < 60


