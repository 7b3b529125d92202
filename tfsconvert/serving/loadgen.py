"""The load generator of `tfsconvert bench`: closed-loop clients on keep-alive connections, run in
child processes so the measuring process (progress bar, statistics) never shares their GIL.

A child (`python -m tfsconvert.serving.loadgen`) reads one JSON job on stdin, opens its
connections, sends one warm-up request on each, writes `ready`, and waits for `go` on stdin. Then
each connection sends the next pre-encoded request as soon as the previous answer is in, until
the child's share of the requests is claimed or the duration is over. It writes `p <done>` about
five times a second and finally `r <json>` with its latencies.

REST is raw HTTP/1.1 from C (`_loadgen.c`: one epoll loop; the whole request, headers included,
is encoded once; an answer is parsed only as far as status and Content-Length): the client runs
on the same cores as the server it measures, and asyncio clients cost ~50 us of CPU per request
there. gRPC uses grpc.aio with the PredictRequest serialized once and no (de)serializers, so
neither side of the client imports TensorFlow.
"""

from __future__ import annotations

import asyncio
import base64
import json
import selectors
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from typing import Callable

GRPC_PREDICT = "/tensorflow.serving.PredictionService/Predict"
_PROGRESS_EVERY = 0.2
_MAX_SAMPLES = 3  # distinct error messages kept per run


@dataclass
class Job:
    """What to send: `payloads` are whole HTTP requests (REST) or serialized PredictRequests (gRPC),
    used in turn. A run ends after `requests` answers or `duration` seconds, whichever comes first."""

    protocol: str
    host: str
    port: int
    payloads: list[bytes]
    connections: int
    requests: int | None
    duration: float | None
    timeout: float = 30.0

    def to_json(self) -> dict:
        return {"protocol": self.protocol, "host": self.host, "port": self.port, "connections": self.connections,
                "requests": self.requests, "duration": self.duration, "timeout": self.timeout,
                "payloads": [base64.b64encode(p).decode() for p in self.payloads]}


@dataclass
class Measurement:
    """A run's answers: latencies (s) of the successful ones, errors, and the run's wall-clock span."""

    latencies: array = field(default_factory=lambda: array("d"))
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    started: float = float("inf")
    ended: float = 0.0

    @property
    def seconds(self) -> float:
        return max(self.ended - self.started, 1e-9)

    def add(self, other: "Measurement") -> None:
        self.latencies.extend(other.latencies)
        self.errors += other.errors
        self.error_samples += [s for s in other.error_samples if s not in self.error_samples][:_MAX_SAMPLES]
        self.started, self.ended = min(self.started, other.started), max(self.ended, other.ended)


def http_request(host: str, port: int, path: str, body: bytes) -> bytes:
    """A whole keep-alive HTTP/1.1 POST, encoded once."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def run(job: Job, processes: int = 1, progress: Callable[[int], None] = lambda done: None) -> Measurement:
    """Run `job` split over `processes` children (connections and requests shared out evenly)."""
    shares = _split(job.connections, min(processes, job.connections))
    children = []
    try:
        for index, connections in enumerate(shares):
            requests = None if job.requests is None else _split(job.requests, len(shares))[index]
            share = Job(job.protocol, job.host, job.port, job.payloads, connections, requests, job.duration,
                        job.timeout)
            children.append(_Child(share))
        for child in children:
            child.wait_ready()
        for child in children:
            child.go()
        return _collect(children, progress)
    finally:
        for child in children:
            child.stop()


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class LoadError(Exception):
    """A load-generator child failed before measuring (e.g. no connection); the message says why."""


class _Child:
    def __init__(self, job: Job) -> None:
        self.log = tempfile.TemporaryFile()  # a pipe nobody reads could fill up and block the child
        self.process = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.log)
        self.process.stdin.write(json.dumps(job.to_json()).encode() + b"\n")
        self.process.stdin.flush()
        self.done = 0
        self.result: Measurement | None = None

    def wait_ready(self) -> None:
        if self.process.stdout.readline().strip() != b"ready":
            raise self.failure()

    def go(self) -> None:
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def read_line(self) -> None:
        line = self.process.stdout.readline()
        if line.startswith(b"p "):
            self.done = int(line[2:])
        elif line.startswith(b"r "):
            self.result = _measurement(json.loads(line[2:]))
            self.done = len(self.result.latencies) + self.result.errors
        elif not line:
            raise self.failure()

    def failure(self) -> LoadError:
        """The child ended early: the last line of its stderr says why."""
        self.process.wait(10)
        self.log.seek(0)
        lines = self.log.read().decode("utf-8", "replace").strip().splitlines()
        return LoadError(lines[-1] if lines else f"the load generator exited with code {self.process.returncode}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.log):
            stream.close()


def _collect(children: list[_Child], progress: Callable[[int], None]) -> Measurement:
    with selectors.DefaultSelector() as selector:
        for child in children:
            selector.register(child.process.stdout, selectors.EVENT_READ, child)
        while any(child.result is None for child in children):
            for key, _ in selector.select():
                key.data.read_line()
                if key.data.result is not None:
                    selector.unregister(key.fileobj)
            progress(sum(child.done for child in children))
    total = Measurement()
    for child in children:
        total.add(child.result)
    return total


def _measurement(data: dict) -> Measurement:
    latencies = array("d")
    latencies.frombytes(base64.b64decode(data["latencies"]))
    return Measurement(latencies, data["errors"], data["error_samples"], data["started"], data["ended"])


# ---------------------------------------------------------------------------------------------
# The child


def _rest(job: dict) -> None:
    """The child's REST clients (C, or their pure-Python twin): one warm-up request per connection,
    `ready`, then the run."""
    from tfsconvert import accel

    _loadgen = accel.load("tfsconvert.serving", "_loadgen")

    payloads = [base64.b64decode(p) for p in job["payloads"]]
    client = _loadgen.Client(job["host"], job["port"], job["connections"])
    client.run(payloads[:1], job["connections"], -1, job["timeout"], lambda done: None)
    _write("ready")
    sys.stdin.readline()
    latencies, errors, samples, started, ended = client.run(
        payloads, -1 if job["requests"] is None else job["requests"],
        -1 if job["duration"] is None else job["duration"], job["timeout"], lambda done: _write(f"p {done}"))
    _write("r " + json.dumps({"latencies": base64.b64encode(latencies).decode(), "errors": errors,
                              "error_samples": samples, "started": started, "ended": ended}))


class _Runner:
    """The child's gRPC clients: a shared request budget, latencies, errors, and progress lines."""

    def __init__(self, job: dict) -> None:
        self.job = job
        self.payloads = [base64.b64decode(p) for p in job["payloads"]]
        self.left = job["requests"] if job["requests"] is not None else float("inf")
        self.deadline = float("inf")
        self.result = Measurement()
        self.next_payload = 0

    def claim(self) -> bytes | None:
        if self.left <= 0 or time.monotonic() >= self.deadline:
            return None
        self.left -= 1
        self.next_payload = (self.next_payload + 1) % len(self.payloads)
        return self.payloads[self.next_payload]

    def error(self, message: str) -> None:
        self.result.errors += 1
        if message not in self.result.error_samples and len(self.result.error_samples) < _MAX_SAMPLES:
            self.result.error_samples.append(message)

    async def main(self) -> None:
        clients = await self._grpc_clients()
        for client in clients:  # warm-up: one request per connection, not counted
            await client(self.payloads[0])
        self.result = Measurement()
        _write("ready")
        sys.stdin.readline()  # blocking is fine: the connections are idle until `go`
        self.result.started = time.monotonic()
        if self.job["duration"] is not None:
            self.deadline = self.result.started + self.job["duration"]
        watcher = asyncio.ensure_future(self.watch())
        await asyncio.gather(*(self.loop(client) for client in clients))
        self.result.ended = time.monotonic()
        watcher.cancel()
        _write("r " + json.dumps({"latencies": base64.b64encode(self.result.latencies.tobytes()).decode(),
                                  "errors": self.result.errors, "error_samples": self.result.error_samples,
                                  "started": self.result.started, "ended": self.result.ended}))

    async def loop(self, client) -> None:
        while (payload := self.claim()) is not None:
            await client(payload)

    async def watch(self) -> None:
        """Progress lines (a call's timeout is grpc's)."""
        while True:
            await asyncio.sleep(_PROGRESS_EVERY)
            _write(f"p {len(self.result.latencies) + self.result.errors}")

    async def _grpc_clients(self) -> list:
        import grpc

        channel = grpc.aio.insecure_channel(f"{self.job['host']}:{self.job['port']}")
        await asyncio.wait_for(channel.channel_ready(), self.job["timeout"])
        predict = channel.unary_unary(GRPC_PREDICT)
        timeout = self.job["timeout"]

        async def send(payload: bytes) -> None:
            started = time.perf_counter()
            try:
                await predict(payload, timeout=timeout)
            except grpc.aio.AioRpcError as error:
                self.error(f"{error.code().name}: {error.details()}")
                return
            self.result.latencies.append(time.perf_counter() - started)

        return [send] * self.job["connections"]


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _child() -> None:
    job = json.loads(sys.stdin.readline())
    try:
        if job["protocol"] == "grpc":
            asyncio.run(_Runner(job).main())
        else:
            _rest(job)
    except (OSError, asyncio.TimeoutError) as error:
        sys.stderr.write(f"cannot reach {job['host']}:{job['port']} ({job['protocol']}): {error or 'timed out'}\n")
        sys.exit(1)


if __name__ == "__main__":
    _child()
