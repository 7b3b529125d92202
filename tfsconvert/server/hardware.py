"""How many CPUs this process may use: what TF Serving's threads would see, and what a container quota allows."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Hardware:
    """The machine a serving config is tuned for; `cpus_source` says where `cpus` came from."""

    cpus: int
    gpus: int
    cpus_source: str

    def to_json(self) -> dict:
        return {"cpus": self.cpus, "cpus_source": self.cpus_source, "gpus": self.gpus}


def schedulable_cpus() -> int:
    """CPUs in this process's affinity mask (TensorFlow's `port::MaxParallelism()` on Linux)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def detect(cpus: int | None = None, gpus: int = 0, cgroup: Path = CGROUP) -> Hardware:
    """`cpus` if given, else the affinity mask capped by a cgroup CPU quota. GPUs are never guessed."""
    if cpus is not None:
        return Hardware(cpus, gpus, "--cpus")
    affinity, quota = schedulable_cpus(), cgroup_quota(cgroup)
    if quota is not None and quota < affinity:
        return Hardware(quota, gpus, "cgroup CPU quota")
    return Hardware(affinity, gpus, "CPU affinity")


def cgroup_quota(root: Path = CGROUP) -> int | None:
    """The container's CPU limit rounded up (cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us`), None if unlimited."""
    try:
        if (root / "cpu.max").is_file():
            quota, period = (root / "cpu.max").read_text().split()[:2]
        else:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
    except (OSError, ValueError):
        return None
    if quota in ("max", "-1"):
        return None
    return max(1, math.ceil(int(quota) / int(period)))
