"""Which versions share a server process in `validate`, and how many processes run at once.

A version needs the server flags of its runtime: SavedModel, ONNX and PMML with the first
`--pmml-evaluator` engine share one process (our server runs all three, and every process imports
TensorFlow anyway: TF Serving's gRPC API protos do); PMML with the second engine needs another
process (the engine is a process-wide flag). A group is cut into parts so that each part's
estimated address space stays within `--memory-mb`, and, when several processes may run at once,
into up to `jobs` parts of at least `MIN_VERSIONS` versions each. How many run at once: `--jobs`,
lowered until the estimated resident memory of the largest parts fits in the memory available.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

# Measured on our server serving one small model: resident memory and peak address space (MB).
SERVER_RSS_MB, SERVER_ADDRESS_MB = 750, 2800
JVM_RSS_MB = 250  # the PMML engines' JVM (JPMML-Evaluator's gateway, or pypmml's)
MODEL_FACTOR = 3  # a model's memory once loaded, in multiples of its size on disk
MIN_VERSIONS = 8  # fewer versions than this per process: a second TensorFlow import costs more than it saves


@dataclass
class Item:
    """One version served with one PMML engine (None: not PMML, or the real server)."""

    model: str
    version: int
    path: str
    format: str
    engine: str | None = None

    @property
    def mb(self) -> float:
        return MODEL_FACTOR * _size(Path(self.path)) / 2 ** 20


@dataclass
class Group:
    """Items that one server process serves, and the engine flag it is started with."""

    engine: str | None
    items: list[int] = field(default_factory=list)  # indexes into the plan's item list
    mb: float = 0.0  # the models' estimated memory
    pmml: bool = False

    def rss_mb(self) -> float:
        return SERVER_RSS_MB + (JVM_RSS_MB if self.pmml else 0) + self.mb


def groups(items: list[Item], jobs: int, memory_mb: int, per_version: bool = False) -> list[Group]:
    """The server processes to start, in order; one per item with `per_version`."""
    if per_version:
        return [Group(item.engine, [index], item.mb, item.format == "pmml") for index, item in enumerate(items)]
    by_engine: dict[str | None, list[int]] = {}
    for index, item in enumerate(items):
        by_engine.setdefault(_flag_engine(item, items), []).append(index)
    planned = []
    for engine, indexes in by_engine.items():
        parts = max(1, min(jobs, len(indexes) // MIN_VERSIONS))
        planned += _cut(items, engine, indexes, parts, memory_mb - SERVER_ADDRESS_MB)
    return planned


def _flag_engine(item: Item, items: list[Item]) -> str | None:
    """The engine flag a process needs for this item: non-PMML items go with the first engine's process."""
    if item.engine is not None:
        return item.engine
    return next((other.engine for other in items if other.engine is not None), None)


def _cut(items: list[Item], engine: str | None, indexes: list[int], parts: int, room_mb: float) -> list[Group]:
    """`indexes` in order, cut into about `parts` groups, each within `room_mb` of model memory."""
    target = math.ceil(len(indexes) / parts)
    cut, current = [], Group(engine)
    for index in indexes:
        item = items[index]
        if current.items and (len(current.items) >= target or current.mb + item.mb > room_mb):
            cut.append(current)
            current = Group(engine)
        current.items.append(index)
        current.mb += item.mb
        current.pmml |= item.format == "pmml"
    return cut + [current]


def parallel(planned: list[Group], jobs: int, available_mb: float | None = None) -> tuple[int, str | None]:
    """How many processes run at once, and why fewer than `jobs` (None if not fewer)."""
    wanted = max(1, min(jobs, len(planned)))
    available = _available_mb() if available_mb is None else available_mb
    if available is None:
        return wanted, None
    largest = sorted((group.rss_mb() for group in planned), reverse=True)
    fits = wanted
    while fits > 1 and sum(largest[:fits]) > 0.8 * available:
        fits -= 1
    if fits == wanted:
        return wanted, None
    return fits, (f"--jobs {jobs}: {fits} server(s) at a time, as {wanted} would need about "
                  f"{sum(largest[:wanted]) / 1024:.1f} GB and {available / 1024:.1f} GB is available")


def _available_mb() -> float | None:
    """MemAvailable from /proc/meminfo (None where there is none)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _size(path: Path) -> int:
    """Bytes of the regular files under a version dir."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def default_jobs() -> int:
    """--jobs default: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
