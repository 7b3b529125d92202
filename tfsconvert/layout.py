"""TF Serving version directories: which names count as versions (docs/tf-serving.md §1.3), the next free
version, and atomic publishing, the one path every converter writes through.

TF Serving polls the base path every second (docs/tf-serving.md §1.6) and never reloads a version it already
tried (docs/tf-serving.md §1.7), so a version must appear complete or not at all. It is built in a hidden
temp dir inside the base path (same filesystem; a non-numeric name TF Serving ignores) and
renamed into place. Without `--force` the rename itself refuses an existing version
(renameat2 RENAME_NOREPLACE on Linux; elsewhere rename(2), which never replaces a non-empty
directory), so of two concurrent publishers of one version exactly one succeeds; `--force` swaps
it with the old one atomically where Linux allows.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tfsconvert.errors import InputError

INT64_MAX = 2**63 - 1
_ASCII_SPACE = " \t\n\v\f\r"


def parse_version(name: str) -> int | None:
    """Parse a child name the way TF Serving does (`absl::SimpleAtoi` into int64), else None.

    Surrounding ASCII whitespace, one sign and leading zeros are accepted; anything else
    (`1.0`, `v1`, `0x10`, `1e3`) is not a version (docs/tf-serving.md §1.3).
    """
    text = name.strip(_ASCII_SPACE)
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    value = int(text)
    return value if -INT64_MAX - 1 <= value <= INT64_MAX else None


def is_canonical_version(name: str) -> bool:
    """A positive integer in plain decimal: the only form we ever write (docs/architecture.md "Versioned layout")."""
    value = parse_version(name)
    return value is not None and value > 0 and name == str(value)


@dataclass
class Child:
    """One entry of a base path, with the version TF Serving would read from its name."""

    name: str
    path: Path
    version: int | None


def scan_children(base: Path) -> list[Child]:
    """Children of a base path in TF Serving's order (byte-lexicographic), files included."""
    names = sorted((p.name for p in base.iterdir()), key=lambda n: n.encode())
    return [Child(n, base / n, parse_version(n)) for n in names]


def versions_by_number(children: list[Child]) -> dict[int, list[Child]]:
    """Group version children by number; the *last* of each group in sorted order is loaded."""
    grouped: dict[int, list[Child]] = {}
    for child in children:
        if child.version is not None:
            grouped.setdefault(child.version, []).append(child)
    return grouped


TEMP_PREFIX = ".tfsconvert-"
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2  # linux/fs.h


def next_version(base: Path) -> int:
    """One more than the highest version TF Serving would see under `base`, else 1."""
    if not base.is_dir():
        return 1
    numbers = [v for p in base.iterdir() if (v := parse_version(p.name)) is not None and v > 0]
    return max(numbers, default=0) + 1


def resolve_version(base: Path, requested: str | None) -> int:
    """The version to write: `--version` if it is a plain positive integer, else the next free one."""
    if requested is None:
        return next_version(base)
    if not is_canonical_version(requested.strip()):
        raise InputError(
            "bad-version",
            f"--version {requested!r} is not a version TF Serving can serve: it needs a positive integer "
            f"written in plain decimal (not 0, negative, 'v3' or '3.0')",
            f"use --version {next_version(base)} (the next free version under {base}), or leave it out")
    return int(requested)


def _live_pid(name: str) -> bool:
    """Whether the process that created temp dir `.tfsconvert-<version>-<pid>-...` still runs."""
    try:
        pid = int(name[len(TEMP_PREFIX):].split("-")[1])
        os.kill(pid, 0)
    except (IndexError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_dirs(base: Path) -> None:
    """Leftovers of killed runs: hidden, ignored by TF Serving, but they take disk space."""
    for path in base.glob(TEMP_PREFIX + "*"):
        if path.is_dir() and not _live_pid(path.name):
            shutil.rmtree(path, ignore_errors=True)


def _renameat2(a: Path, b: Path, flags: int) -> bool | None:
    """Linux renameat2(a, b, flags): True when done, False when `b` exists (EEXIST/ENOTEMPTY),
    None where the call is unsupported (no such libc function, kernel or filesystem)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EEXIST, errno.ENOTEMPTY):
        return False
    if code in (errno.ENOSYS, errno.EINVAL):
        return None
    raise OSError(code, os.strerror(code), str(b))


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        return bool(_renameat2(a, b, _RENAME_EXCHANGE))
    except OSError:
        return False


def _rename_new(tmp: Path, target: Path) -> bool:
    """Rename `tmp` to `target` unless `target` exists, as one step; False if it exists."""
    done = _renameat2(tmp, target, _RENAME_NOREPLACE)
    if done is not None:
        return done
    try:  # rename(2) replaces an empty directory at most, never a version with files in it
        os.rename(tmp, target)
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            return False
        raise
    return True


def _version_exists(base: Path, target: Path) -> InputError:
    return InputError(
        "version-exists", f"{target} already exists; versions are never overwritten",
        f"publish it as --version {next_version(base)}, or pass --force to replace it (TF Serving does "
        f"not reload a version it already serves: a new number is what makes it switch)")


def _check_writable(base: Path) -> None:
    """InputError `base-path-read-only` unless we can create entries in `base` (or where it will be made)."""
    existing = next(p for p in (base, *base.parents) if p.exists() or p == Path(p.anchor))
    if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        return
    what = "is not a directory" if not existing.is_dir() else "is read-only (no permission, or a read-only mount)"
    raise InputError("base-path-read-only", f"cannot publish under {base}: {existing} {what}",
                     "choose a writable --base-path, or fix the directory's permissions")


def ensure_free(base: Path, version: int, force: bool) -> Path:
    """`<base>/<version>`, unless it exists and `force` is false (InputError `version-exists`), or the
    base path cannot be written (InputError `base-path-read-only`): checked before any conversion work."""
    target = base / str(version)
    if os.path.lexists(target) and not force:
        raise _version_exists(base, target)
    _check_writable(base)
    return target


def publish(base: Path, version: int, build: Callable[[Path], None], *, force: bool = False) -> Path:
    """Run `build(tmp_dir)` and make its result `<base>/<version>/` in one rename.

    Raises InputError when the version exists and `force` is false. A failure or kill at any
    moment leaves either no new version directory or a complete one.
    """
    target = ensure_free(base, version, force)
    new_dirs = [p for p in (base, *base.parents) if not p.exists()]
    base.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(base)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{version}-{os.getpid()}-", dir=base))
    try:
        try:
            build(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            for path in new_dirs:  # a failed first build leaves no empty base path behind
                with contextlib.suppress(OSError):
                    path.rmdir()
            raise
        tmp.chmod(0o755)  # mkdtemp makes it private; the server may run as another user
        if not force:
            if not _rename_new(tmp, target):
                raise _version_exists(base, target)
        elif os.path.lexists(target):
            if not _exchange(tmp, target):
                old = tmp.with_name(tmp.name + "-old")
                os.rename(target, old)
                os.rename(tmp, target)
                tmp = old
        else:
            os.rename(tmp, target)
    finally:
        _remove(tmp)  # the unfinished build, or the replaced version
    return target


def _remove(path: Path) -> None:
    """Remove a temp entry: a replaced symlinked version is unlinked (never what it points to)."""
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)
