"""Atomic publishing of version directories: version rules, no overwrite, --force, kills."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO
from tfsconvert.errors import InputError
from tfsconvert.inspect import inspect_path
from tfsconvert.layout import TEMP_PREFIX, next_version, publish, resolve_version


def write_files(n: int, delay: float = 0.0):
    def build(tmp):
        for i in range(n):
            (tmp / f"part{i}").write_text(str(i))
            time.sleep(delay)
    return build


def test_next_version_follows_tf_serving_names(tmp_path):
    assert next_version(tmp_path / "missing") == 1
    for name in ("1", "2", "007", "v9", "1.0", "-5"):
        (tmp_path / name).mkdir()
    assert next_version(tmp_path) == 8  # 007 is version 7 to TF Serving
    assert resolve_version(tmp_path, None) == 8
    assert resolve_version(tmp_path, "3") == 3


@pytest.mark.parametrize("bad", ["0", "-1", "v3", "3.0", "03", "+3", "", "1e3"])
def test_rejected_versions(tmp_path, bad):
    with pytest.raises(InputError) as caught:
        resolve_version(tmp_path, bad)
    assert caught.value.code == "bad-version" and repr(bad) in caught.value.message
    assert "--version 1" in caught.value.hint


def test_publish_creates_complete_version(tmp_path):
    target = publish(tmp_path / "base", 3, write_files(3))
    assert target == tmp_path / "base" / "3"
    assert sorted(p.name for p in target.iterdir()) == ["part0", "part1", "part2"]
    assert oct(target.stat().st_mode & 0o777) == "0o755"
    assert [p.name for p in (tmp_path / "base").iterdir()] == ["3"]


def test_existing_version_is_never_touched_without_force(tmp_path):
    publish(tmp_path, 1, write_files(1))
    with pytest.raises(InputError) as caught:
        publish(tmp_path, 1, write_files(2))
    assert caught.value.code == "version-exists"
    assert "--version 2" in caught.value.hint and "--force" in caught.value.hint
    assert sorted(p.name for p in (tmp_path / "1").iterdir()) == ["part0"]


def test_force_replaces_and_leaves_nothing_behind(tmp_path):
    publish(tmp_path, 1, write_files(1))
    publish(tmp_path, 1, write_files(2), force=True)
    assert sorted(p.name for p in (tmp_path / "1").iterdir()) == ["part0", "part1"]
    assert [p.name for p in tmp_path.iterdir()] == ["1"]


def test_failed_build_leaves_no_version_and_no_temp(tmp_path):
    def broken(tmp):
        (tmp / "half").write_text("x")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError):
        publish(tmp_path, 2, broken)
    assert list(tmp_path.iterdir()) == []


SLOW_PUBLISH = """
import sys, time
from pathlib import Path
from tfsconvert.layout import publish
def build(tmp):
    for i in range(20):
        (tmp / f"part{i}").write_text(str(i))
        time.sleep(0.02)
publish(Path(sys.argv[1]), 5, build)
print("done", flush=True)
"""


def _temp_dirs(base):
    return [p for p in base.iterdir() if p.name.startswith(TEMP_PREFIX)] if base.exists() else []


@pytest.mark.parametrize("files_before_kill", [1, 10, 19])
def test_kill_mid_build_leaves_no_partial_version(tmp_path, files_before_kill):
    base = tmp_path / "base"
    publish(base, 4, write_files(1))  # the version being served while 5 is published
    proc = subprocess.Popen([sys.executable, "-c", SLOW_PUBLISH, str(base)],
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    deadline = time.monotonic() + 30
    while not any(len(list(t.iterdir())) >= files_before_kill for t in _temp_dirs(base)):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert not (base / "5").exists()
    [leftover] = _temp_dirs(base)  # hidden: TF Serving and inspect ignore it
    desc = inspect_path(base)
    assert [v.version for v in desc.versions] == [4]
    [ignored] = desc.ignored
    assert ignored["name"] == leftover.name and "killed run" in ignored["reason"]
    assert all(d.code != "bad-version-name" for d in desc.diagnostics)
    publish(base, 6, write_files(1))  # the next publish cleans up after the killed one
    assert _temp_dirs(base) == [] and sorted(p.name for p in base.iterdir()) == ["4", "6"]


def test_unkilled_run_publishes_everything(tmp_path):
    base = tmp_path / "base"
    out = subprocess.run([sys.executable, "-c", SLOW_PUBLISH, str(base)], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert out.stdout.strip() == "done"
    assert len(list((base / "5").iterdir())) == 20 and _temp_dirs(base) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux-only")
def test_force_swaps_atomically_on_linux(tmp_path):
    # With RENAME_EXCHANGE the version dir never disappears, even for a moment, during --force.
    from tfsconvert.layout import _exchange

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "old").write_text("")
    assert _exchange(tmp_path / "a", tmp_path / "b")
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["old"] and not any((tmp_path / "a").iterdir())


_PUBLISHER = """
import sys, time
from pathlib import Path
from tfsconvert.errors import InputError
from tfsconvert.layout import publish
base, me, start = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
while not start.exists():
    time.sleep(0.001)
def build(tmp):
    (tmp / "owner").write_text(me)
    time.sleep(0.05)  # every publisher is past its own exists check before the first rename
try:
    publish(base, 1, build)
except InputError as error:
    print(error.code)
else:
    print("published")
"""


def test_concurrent_publishers_of_one_version_never_both_succeed(tmp_path):
    base, start = tmp_path / "base", tmp_path / "start"
    procs = [subprocess.Popen([sys.executable, "-c", _PUBLISHER, str(base), str(i), str(start)], cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE, text=True)
             for i in range(20)]
    time.sleep(1.0)  # all 20 are waiting at the start line
    start.touch()
    said = [proc.communicate(timeout=120)[0].strip() for proc in procs]
    assert sorted(said) == ["published"] + ["version-exists"] * 19, said
    assert [p.name for p in base.iterdir()] == ["1"]  # no .tfsconvert-* leftovers
    assert (base / "1" / "owner").read_text() == str(said.index("published"))


def test_force_over_a_symlinked_version_leaves_nothing_behind(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("not ours")
    base = tmp_path / "base"
    base.mkdir()
    (base / "1").symlink_to(elsewhere)
    publish(base, 1, write_files(1), force=True)
    assert [p.name for p in base.iterdir()] == ["1"] and not (base / "1").is_symlink()
    assert [p.name for p in (base / "1").iterdir()] == ["part0"]
    assert (elsewhere / "keep").read_text() == "not ours"  # what the link pointed to is never deleted


def test_a_dangling_symlink_is_an_existing_version(tmp_path):
    (tmp_path / "1").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError) as error:
        publish(tmp_path, 1, write_files(1))
    assert error.value.code == "version-exists"
