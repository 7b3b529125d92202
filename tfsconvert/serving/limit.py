"""`limit_qps` of `tfsconvert bench`: the model's own batched throughput, in-process, no server.

The ceiling a server is measured against: the version is loaded with the embedded server's
backend (TensorFlow's TF1 session loader, ONNX Runtime, or pypmml) and one batch of requests is
run back to back in one thread: no HTTP, no JSON, no batch forming. The child runs under the
sandbox's resource limits and is the only process that imports the model's runtime. A model the
server does not batch (PMML) is run one request at a time.

Child: `python -m tfsconvert.serving.limit VERSION_DIR SIGNATURE FEEDS.npz ROWS_PER_REQUEST SECONDS`
prints `{"qps", "batch_requests", "runs", "seconds"}`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfsconvert.errors import InfrastructureError
from tfsconvert.naming import SERVE_TAGS
from tfsconvert.server.sandbox import Limits

WARMUP_RUNS, MIN_RUNS = 2, 5


@dataclass(frozen=True)
class Limit:
    """Requests per second of back-to-back batches of `batch_requests` requests."""

    qps: float
    batch_requests: int
    runs: int
    seconds: float

    def to_json(self) -> dict:
        return {"qps": round(self.qps, 1), "batch_requests": self.batch_requests, "runs": self.runs,
                "seconds": round(self.seconds, 3)}


def measure(version_dir: Path, signature_name: str, batch: dict[str, np.ndarray], rows_per_request: int,
            seconds: float, limits: Limits) -> Limit:
    """Time `batch` (a whole batch of requests' rows) on the version in a jailed child process."""
    with tempfile.TemporaryDirectory(prefix="tfsconvert-limit-") as work:
        feeds = Path(work, "feeds.npz")
        np.savez(feeds, **batch)
        jail = [sys.executable, "-m", "tfsconvert.server.jail", str(limits.memory_mb), str(limits.cpu_seconds),
                str(limits.open_files), "--"]
        command = [*jail, sys.executable, "-m", __name__, str(version_dir), signature_name, str(feeds),
                   str(rows_per_request), str(seconds)]
        env = {"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ}
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=work,
                              timeout=limits.start_timeout + seconds * 10)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise InfrastructureError("limit-failed", f"the in-process throughput run of {version_dir} failed: "
                                  f"{lines[-1] if lines else f'exit code {done.returncode}'}",
                                  "re-run with --debug, or check that `tfsconvert validate` passes for the model")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return Limit(data["qps"], data["batch_requests"], data["runs"], data["seconds"])


def _child(version_dir: str, signature_name: str, feeds_file: str, rows_per_request: str, seconds: str) -> None:
    from tfsconvert.server import backends

    servable = backends.load(Path(version_dir), SERVE_TAGS)
    with np.load(feeds_file, allow_pickle=True) as data:  # our own file: string tensors are object arrays
        batch = {alias: data[alias] for alias in data.files}
    if not servable.batchable:
        batch = {alias: array[:int(rows_per_request)] for alias, array in batch.items()}
    requests = len(next(iter(batch.values()))) // int(rows_per_request)
    for _ in range(WARMUP_RUNS):
        servable.run(signature_name, batch)
    runs, started = 0, time.perf_counter()
    while runs < MIN_RUNS or time.perf_counter() - started < float(seconds):
        servable.run(signature_name, batch)
        runs += 1
    elapsed = time.perf_counter() - started
    servable.close()
    print(json.dumps({"qps": runs * requests / elapsed, "batch_requests": requests, "runs": runs,
                      "seconds": elapsed}))


if __name__ == "__main__":
    _child(*sys.argv[1:])
