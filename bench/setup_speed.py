"""Benchmark: how long `make setup` takes, from the lock file with uv, cold and warm.

Copies the project's tracked files into a scratch directory (so no existing .venv is touched) and
times, each as a fresh `make setup` there:
  - cold: an empty uv cache and no uv yet (uv installed with pip, every wheel downloaded, the C modules compiled);
  - warm: the cache and the uv of the cold run, a new .venv (what a fresh clone or `make clean` costs);
  - baseline (`--pip`): the former set-up, `pip install -e '.[all]'` into a new venv with pip's cache.
Also times `tfsconvert --help` in the new venv (median of 5 fresh processes).

Usage: python bench/setup_speed.py [--pip] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_project(dest: Path) -> None:
    """The tracked files (and uncommitted edits to them), as a fresh clone would have them."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, names):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def help_time(project: Path) -> float:
    tfsconvert = project / ".venv" / "bin" / "tfsconvert"
    runs = [timed([str(tfsconvert), "--help"], project, dict(os.environ)) for _ in range(5)]
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pip", action="store_true", help="also time the former pip set-up (the baseline)")
    parser.add_argument("--keep", type=Path, help="work in DIR and leave it (default: a temporary directory)")
    args = parser.parse_args()
    scratch = Path(args.keep or tempfile.mkdtemp(prefix="tfsconvert-setup-"))
    project = scratch / "project"
    project.mkdir(parents=True, exist_ok=True)
    copy_project(project)
    # A scratch uv cache and a scratch uv install (the Makefile's TOOLS), so the cold run is cold.
    env = dict(os.environ, UV_CACHE_DIR=str(scratch / "uv-cache"), TOOLS=str(scratch / "uv-tool"))
    try:
        cold = timed(["make", "setup"], project, env)
        shutil.rmtree(project / ".venv")
        warm = timed(["make", "setup"], project, env)
        print(f"make setup, cold uv cache: {cold:6.1f} s")
        print(f"make setup, warm uv cache: {warm:6.1f} s")
        print(f"tfsconvert --help:         {help_time(project):6.2f} s (median of 5)")
        if args.pip:
            venv = scratch / "pip-venv"
            pip = timed([sys.executable, "-m", "venv", str(venv)], project, env)
            pip += timed([str(venv / "bin" / "pip"), "install", "--quiet", "-e", ".[all]"], project, env)
            print(f"baseline pip install -e '.[all]', warm pip cache: {pip:6.1f} s "
                  f"(uv warm: {pip / warm:.1f}x faster)")
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
