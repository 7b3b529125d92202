"""Namespaces for the sandboxed server, built with bubblewrap (`bwrap`, the sandbox Flatpak uses).

The server gets its own network namespace (only its own loopback: no route out, not even to the
host's loopback), its own mount namespace holding read-only binds of the system (/usr), the Python
installation, its packages, tfsconvert's own package dir and the staged model, plus a private
writable tmpfs scratch dir and a writable door dir shared with the host (Unix sockets only). Its
own PID, IPC and UTS namespaces; no host /etc beyond what the dynamic loader and the JVM read, a
made-up /etc/passwd, no $HOME. It never runs as root: started by root, it drops to uid/gid 65534
with setpriv (no capabilities, no supplementary groups); otherwise a user namespace maps it to 65534.
`plan()` says what the kernel or the machine forbids; the sandbox then runs without it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import tfsconvert

NOBODY = 65534
DOOR_DIR = "/run/tfsconvert"
MODELS_DIR = "/models"
SCRATCH_DIR = "/scratch"  # no /tmp: a write to /tmp/... fails instead of vanishing silently
SCRATCH_BYTES = 512 * 1024 * 1024
# What the dynamic loader, Python and the JVM read from /etc; nothing else of the host's /etc is visible.
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "java-17-openjdk",
        "java-21-openjdk")
_PASSWD = f"nobody:x:{NOBODY}:{NOBODY}:nobody:/nonexistent:/usr/sbin/nologin\n"
_GROUP = f"nogroup:x:{NOBODY}:\n"


def _namespaces(as_root: bool) -> list[str]:
    flags = ["--die-with-parent", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
             "--unshare-cgroup-try", "--hostname", "sandbox"]
    if not as_root:
        flags += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), "--disable-userns"]
    return flags


def _setpriv() -> list[str]:
    return [shutil.which("setpriv") or "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all"]


_OWN_PROC = ["--proc", "/proc"]
_HOST_PROC = ["--ro-bind", "/proc", "/proc"]


@dataclass(frozen=True)
class Plan:
    """What this machine allows: the namespaces (or none), the /proc they get, and what is missing."""

    namespaces: bool
    proc: tuple[str, ...] = ()
    weakness: str | None = None


def _probe(bwrap: str, as_root: bool, proc: list[str]) -> str | None:
    """None if bwrap runs `true` with these namespaces, else its last error line."""
    command = [bwrap, *_namespaces(as_root), "--ro-bind", "/", "/", *proc, "--dev", "/dev",
               *(_setpriv() if as_root else []), "true"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap cannot run: {error}"
    if done.returncode == 0:
        return None
    return (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]


@functools.cache
def plan() -> Plan:
    """The strongest isolation that works here (probed once per process)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Plan(False, weakness="bubblewrap (bwrap) is not installed: no network, mount, PID or user namespace")
    as_root = os.geteuid() == 0
    if as_root and shutil.which("setpriv") is None:
        return Plan(False, weakness="setpriv (util-linux) is not installed: the server would keep root")
    error = _probe(bwrap, as_root, _OWN_PROC)
    if error is None:
        return Plan(True, tuple(_OWN_PROC))
    # Nested containers often refuse a fresh /proc (the outer one masks parts of it); TensorFlow
    # cannot run without one, so the host's is shown read-only: its processes become visible.
    if _probe(bwrap, as_root, _HOST_PROC) is None:
        return Plan(True, tuple(_HOST_PROC), f"no private /proc ({error}): the host's /proc is visible read-only")
    return Plan(False, weakness=f"the kernel or container forbids namespaces ({error})")


def _read_only_roots(extra: list[Path]) -> list[Path]:
    """The Python installation, the venv and its packages, tfsconvert's package dir, and `extra`."""
    roots = {*extra, Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).resolve().parent.parent,
             Path(tfsconvert.__file__).resolve().parent}
    roots |= {Path(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    kept = sorted({root.resolve() for root in roots if root.resolve().exists() and root.resolve() != Path("/")})
    kept = [root for index, root in enumerate(kept) if not any(root.is_relative_to(k) for k in kept[:index])]
    return [root for root in kept if not root.is_relative_to("/usr")]


def _dirs(path: Path, made: set[Path]) -> list[str]:
    """`--dir` for each missing ancestor, world-traversable (bwrap makes them 0700 otherwise)."""
    args = []
    for parent in reversed(path.parents):
        if parent != Path("/") and parent not in made:
            made.add(parent)
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def package_root() -> str:
    """The directory to put on PYTHONPATH so that the sandbox imports this very tfsconvert."""
    return str(Path(tfsconvert.__file__).resolve().parent.parent)


def wrap(command: list[str], models: Path, door: Path, etc: Path, extra: list[Path] = ()) -> list[str]:
    """`command` run inside the namespaces: `models` read-only at MODELS_DIR, `door` writable at
    DOOR_DIR, `etc` (a host dir written by `write_etc`) as /etc's user database, `extra` read-only."""
    as_root = os.geteuid() == 0
    made: set[Path] = {Path("/etc"), Path("/run")}
    args = [shutil.which("bwrap"), *_namespaces(as_root),
            "--ro-bind", "/usr", "/usr", "--perms", "0755", "--dir", "/etc", "--perms", "0755", "--dir", "/run"]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = os.readlink(f"/{link}") if os.path.islink(f"/{link}") else None
        if target is not None:
            args += ["--symlink", target, f"/{link}"]
        elif os.path.isdir(f"/{link}"):
            args += ["--ro-bind", f"/{link}", f"/{link}"]
    for name in _ETC:
        if os.path.exists(f"/etc/{name}"):
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    args += ["--ro-bind", str(etc / "passwd"), "/etc/passwd", "--ro-bind", str(etc / "group"), "/etc/group",
             "--ro-bind", str(etc / "hosts"), "/etc/hosts"]
    for root in _read_only_roots(list(extra)):
        args += _dirs(root, made) + ["--ro-bind", str(root), str(root)]
    args += ["--ro-bind", str(models), MODELS_DIR]
    args += [*plan().proc, "--dev", "/dev", "--perms", "1777", "--size", str(SCRATCH_BYTES),
             "--tmpfs", SCRATCH_DIR, "--bind", str(door), DOOR_DIR, "--chdir", SCRATCH_DIR,
             "--remount-ro", "/"]  # bwrap's own root tmpfs too: only the scratch and door dirs are writable
    return args + (_setpriv() if as_root else []) + command


def write_etc(directory: Path) -> None:
    """The sandbox's /etc/passwd, /etc/group and /etc/hosts: only nobody, only localhost."""
    directory.mkdir()
    (directory / "passwd").write_text(_PASSWD)
    (directory / "group").write_text(_GROUP)
    (directory / "hosts").write_text("127.0.0.1 localhost\n")
    for path in (directory, *directory.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o444)
