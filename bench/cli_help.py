"""Benchmark: `tfsconvert --help` (the console script and `python -m tfsconvert`) wall time.

Each command runs as a fresh process, interleaved with `python -c pass` (bare interpreter start-up,
the floor of any Python CLI) so noise on a shared machine hits both alike. Prints the median and
the minimum of each, and the ratio of the medians to the floor's; also the median CPU time (user +
system, less sensitive to other load than wall time). Target: `tfsconvert --help` <= 0.3 s wall.

Usage: python bench/cli_help.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "tfsconvert"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `cmd`."""
    env = dict(os.environ, PYTHONPATH=str(REPO))  # this checkout's tfsconvert
    cpu, start = _cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=REPO)
    return time.perf_counter() - start, _cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "tfsconvert --help": [str(SCRIPT), "--help"],
                "python -m tfsconvert --help": [sys.executable, "-m", "tfsconvert", "--help"]}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for cmd in commands.values():
        timed(cmd)  # warm the page cache
    for _ in range(args.repeat):
        for name, cmd in commands.items():
            times[name].append(timed(cmd))
    floor = statistics.median(wall for wall, _ in times["python -c pass"])
    print(f"{'command':<30} {'median s':>9} {'min s':>7} {'x floor':>8} {'CPU s':>7}")
    for name, runs in times.items():
        walls = [wall for wall, _ in runs]
        median, cpu = statistics.median(walls), statistics.median(cpu for _, cpu in runs)
        print(f"{name:<30} {median:9.3f} {min(walls):7.3f} {median / floor:8.1f} {cpu:7.3f}")


if __name__ == "__main__":
    main()
