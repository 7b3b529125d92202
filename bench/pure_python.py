"""Benchmark: the cost of the pure-Python path (TFSCONVERT_PURE_PYTHON=1) on a dense REST predict.

Serves the fixture ONNX model `onnx_model` (features float[-1,4] -> probabilities) from two server
processes on loopback at once, one with the C accelerators and one on the pure-Python path, and
drives both with `tfsconvert bench`'s load generator (closed loop, keep-alive) sending a dense
`{"instances": [[...]]}` body of ROWS rows. A third configuration measures the pure-Python load
generator against the C server. The configurations are interleaved (each round runs every one
once); medians of QPS and p50 latency, and ratios against the C/C baseline of the same round.

Usage: python bench/pure_python.py [--rounds 3] [--requests 2000] [--concurrency 8] [--rows 1,100]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import fixtures  # noqa: E402
from tfsconvert import accel  # noqa: E402
from tfsconvert.serving import loadgen  # noqa: E402

PREDICT = "/v1/models/m:predict"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server:
    def __init__(self, base: Path, pure: bool, log: Path) -> None:
        self.port = _free_port()
        env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
        env.pop(accel.ENV, None)
        if pure:
            env[accel.ENV] = "1"
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tfsconvert.server", "--model_name=m", f"--model_base_path={base}",
                 f"--port={_free_port()}", f"--rest_api_port={self.port}"], env=env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the server did not start:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            connection.request("GET", "/v1/models/m")
            return connection.getresponse().status == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def _measure(port: int, body: bytes, requests: int, concurrency: int, pure_client: bool) -> tuple[float, float]:
    """(QPS, p50 ms) of one closed-loop run."""
    if pure_client:
        os.environ[accel.ENV] = "1"  # the load generator's children inherit it
    try:
        job = loadgen.Job("rest", "127.0.0.1", port, [loadgen.http_request("127.0.0.1", port, PREDICT, body)],
                          concurrency, requests, None, timeout=30)
        measured = loadgen.run(job)
    finally:
        os.environ.pop(accel.ENV, None)
    if measured.errors:
        sys.exit(f"{measured.errors} failed requests: {measured.error_samples}")
    return len(measured.latencies) / measured.seconds, statistics.median(measured.latencies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rows", default="1,100")
    args = parser.parse_args()
    os.environ.pop(accel.ENV, None)
    scratch = Path(tempfile.mkdtemp(prefix="bench-pure-"))
    base = scratch / "m"
    (base / "1").mkdir(parents=True)
    shutil.copy(fixtures.get("onnx_model"), base / "1" / "model.onnx")
    servers = {"c": _Server(base, False, scratch / "c.log"), "pure": _Server(base, True, scratch / "pure.log")}
    configurations = {"C server, C client": ("c", False), "pure server, C client": ("pure", False),
                      "C server, pure client": ("c", True)}
    rng = random.Random(0)
    try:
        for rows in map(int, args.rows.split(",")):
            body = json.dumps({"instances": [[round(rng.uniform(-3, 3), 6) for _ in range(4)]
                                             for _ in range(rows)]}).encode()
            figures = {name: [] for name in configurations}
            for _ in range(args.rounds):
                for name, (server, pure_client) in configurations.items():
                    figures[name].append(_measure(servers[server].port, body, args.requests, args.concurrency,
                                                  pure_client))
            baseline = statistics.median(qps for qps, _ in figures["C server, C client"])
            print(f"\ndense predict, {rows} row(s) x 4 floats ({len(body)} bytes), concurrency {args.concurrency}, "
                  f"{args.requests} requests x {args.rounds} rounds, medians")
            print(f"{'configuration':<24}{'QPS':>8}{'p50 ms':>9}{'vs C/C':>9}")
            for name, runs in figures.items():
                qps, p50 = statistics.median(q for q, _ in runs), statistics.median(p for _, p in runs)
                print(f"{name:<24}{qps:>8.0f}{p50:>9.2f}{qps / baseline:>8.2f}x")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
