"""Staging a model version for a sandboxed server: a read-only copy of its regular files and
directories, refusing anything else (FIFOs, devices, sockets, symlinks leading out) before a byte
is read."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from tfsconvert.errors import special_kind


class UnsafeFile(Exception):
    """The version holds something staging refuses to copy; `problems` are (path, what) pairs."""

    def __init__(self, problems: list[tuple[Path, str]]) -> None:
        super().__init__("; ".join(f"{path}: {what}" for path, what in problems))
        self.problems = problems


def stage(version_dir: Path, model_name: str, version: int, root: Path) -> Path:
    """Copy the version to `root/<model>/<version>` read-only (readable by any uid); returns the
    staged base path. Only regular files and directories are copied, a symlink only when it stays
    inside the version dir; anything else (a FIFO, a device, a socket, a link out) raises UnsafeFile
    before a byte is read."""
    source = Path(version_dir).resolve()
    plan: list[tuple[Path, Path]] = []
    problems: list[tuple[Path, str]] = []
    _plan(source, source, Path(), plan, problems, {source})
    if problems:
        raise UnsafeFile(problems)
    base = root / model_name
    target = base / str(version)
    target.mkdir(parents=True)
    for real, relative in plan:
        destination = target / relative
        if real.is_dir():
            destination.mkdir(exist_ok=True)
        else:
            shutil.copyfile(real, destination, follow_symlinks=False)
            destination.chmod(0o444)
    for directory in sorted((p for p in target.rglob("*") if p.is_dir()), reverse=True):
        directory.chmod(0o555)
    target.chmod(0o555)
    return base


def _plan(top: Path, directory: Path, relative: Path, plan: list, problems: list, ancestors: set) -> None:
    """(real source, relative destination) of each file and dir under `directory`, links resolved."""
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        path, inside = Path(entry.path), relative / entry.name
        real = path.resolve() if entry.is_symlink() else path
        if entry.is_symlink() and not real.is_relative_to(top):
            problems.append((path, f"a symlink to {os.readlink(path)}, outside the version dir"))
            continue
        try:
            mode = real.lstat().st_mode
        except OSError as error:
            problems.append((path, f"cannot be read ({error.strerror})"))
            continue
        if stat.S_ISDIR(mode):
            if real in ancestors:
                problems.append((path, "a symlink loop"))
                continue
            plan.append((real, inside))
            _plan(top, real, inside, plan, problems, ancestors | {real})
        elif stat.S_ISREG(mode):
            plan.append((real, inside))
        else:
            problems.append((path, f"a {special_kind(mode)}, not a regular file"))


def make_writable(root: Path) -> None:
    """Undo staging's read-only modes under `root`, so that it can be deleted."""
    for path in [root, *root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o700)
