"""Benchmark: `tfsconvert serve` under concurrent load, then under malformed request bodies.

Converts the fixture frozen graph (`tfsconvert saved-model frozen_mlp_pb`, features float[-1,4] ->
probabilities), starts `tfsconvert serve` on it on free loopback ports, and then:

1. load: 64 client threads, each with its own keep-alive connection (REST: http.client; gRPC: its
   own channel and the official `tensorflow_serving.apis` stub), share 10,000 predict requests
   (the model's golden requests in turn); every answer is checked against the golden response.
   Figures: errors, QPS, p50/p99 latency. Baselines measured in the same run, interleaved with
   the load runs (each round runs every one once): one REST client sending requests one by one,
   and the floor, a bare `python -c` that loads the SavedModel with the TF1 session loader and
   runs the same requests in-process (no server, no HTTP). This machine has 2 cores shared by
   the server, the clients and whoever else runs: read ratios, not absolute QPS.
2. malformed: 1,000 seeded fuzzed bodies (truncated JSON, syntax damage, wrong JSON types, wrong
   aliases and structure, ragged/wrong shapes, bad base64, huge arrays up to 10^6 elements, deep
   nesting, over-long numbers, garbage bytes, a gzip header on garbage) over 8 keep-alive
   connections. Every answer must be 4xx; a 5xx, a dropped connection or a timeout is a defect
   and is listed. Afterwards good requests must still succeed and the server must still run.

Usage: python bench/serve_load.py [--repeat 3] [--quick] [--requests 10000] [--clients 64]
                                  [--malformed 1000] [--no-grpc] [--enable-batching]
Exit status 1 if any load request failed, any malformed body got a non-4xx answer, or the
server died.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import http.client
import itertools
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import fixtures  # noqa: E402

MODEL = "mlp"
PREDICT = f"/v1/models/{MODEL}:predict"
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))

FLOOR = """
import json, sys, time
import numpy as np
import tensorflow as tf
directory, count = sys.argv[1], int(sys.argv[2])
records = [json.loads(line) for line in open(directory + "/assets.extra/golden.jsonl")]
feeds = [np.asarray(r["request"]["inputs"]["features"], np.float32) for r in records]
with tf.compat.v1.Session(graph=tf.Graph()) as session:
    meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], directory)
    signature = meta.signature_def["serving_default"]
    feed, fetch = signature.inputs["features"].name, signature.outputs["probabilities"].name
    latencies = []
    for i in range(count):
        start = time.perf_counter()
        session.run(fetch, {feed: feeds[i % len(feeds)]})
        latencies.append(time.perf_counter() - start)
print(json.dumps(latencies))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# The model and the server


def convert(scratch: Path) -> Path:
    base = scratch / MODEL
    cmd = [sys.executable, "-m", "tfsconvert", "saved-model", str(fixtures.get("frozen_mlp_pb")), "--base-path",
           str(base), "--version", "1", "--samples", "16", "--json"]
    subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return base


class Server:
    """`tfsconvert serve BASE --port P --rest-api-port R` in its own process group."""

    def __init__(self, base: Path, scratch: Path, batching: bool, name: str = MODEL) -> None:
        self.name = name
        self.grpc_port, self.rest_port = free_port(), free_port()
        while self.rest_port == self.grpc_port:
            self.rest_port = free_port()
        self.log = scratch / "server.log"
        cmd = [sys.executable, "-m", "tfsconvert", "serve", str(base), "--name", name, "--port",
               str(self.grpc_port), "--rest-api-port", str(self.rest_port)]
        if batching:
            cmd.append("--enable-batching")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(cmd, env=ENV, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 180
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"the server did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.rest_port, timeout=2)
            connection.request("GET", f"/v1/models/{self.name}")
            return connection.getresponse().status == 200
        except OSError:
            return False

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# ---------------------------------------------------------------------------------------------
# Load


@dataclass
class Run:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: list[str] = field(default_factory=list)

    @property
    def qps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def load_golden(base: Path) -> list[dict]:
    return [json.loads(line) for line in (base / "1" / "assets.extra" / "golden.jsonl").read_text().splitlines()]


def close_enough(actual, expected) -> bool:
    import numpy as np

    return np.allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64), rtol=1e-5, atol=1e-6)


def drive(name: str, total: int, clients: int, make_client, send) -> Run:
    """`clients` threads share `total` requests; `send(client, i)` returns an error text or None."""
    counter = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def worker(slot: int) -> None:
        client = make_client()
        barrier.wait()
        while (i := next(counter)) < total:
            start = time.perf_counter()
            try:
                error = send(client, i)
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the run
                error = f"{type(exc).__name__}: {exc}"
                client = make_client()
            latencies[slot].append(time.perf_counter() - start)
            if error:
                errors.append(error)

    threads = [threading.Thread(target=worker, args=(slot,), daemon=True) for slot in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return Run(name, total, time.perf_counter() - started, [x for per in latencies for x in per], errors)


def rest_run(server: Server, golden: list[dict], total: int, clients: int) -> Run:
    bodies = [json.dumps(record["request"]).encode() for record in golden]

    def make_client():
        connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
        connection.connect()  # before the clock starts
        return connection

    def send(connection, i: int):
        record = golden[i % len(golden)]
        connection.request("POST", PREDICT, body=bodies[i % len(bodies)],
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        text = response.read()
        if response.status != 200:
            return f"HTTP {response.status}: {text[:200]!r}"
        if not close_enough(json.loads(text)["outputs"], record["response"]["outputs"]):
            return f"wrong answer to {record['id']}: {text[:200]!r}"
        return None

    return drive(f"REST, {clients} client{'s' if clients > 1 else ''}", total, clients, make_client, send)


def grpc_run(server: Server, golden: list[dict], total: int, clients: int) -> Run:
    import grpc
    import numpy as np

    from tfsconvert.quiet import native_stderr_silenced

    with native_stderr_silenced():
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    requests = []
    for record in golden:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.model_spec.signature_name = "serving_default"
        request.inputs["features"].CopyFrom(tf.make_tensor_proto(
            np.asarray(record["request"]["inputs"]["features"], np.float32)))
        requests.append(request)

    def make_client():
        # A local subchannel pool: each client has its own TCP connection, as separate clients would.
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}",
                                        options=[("grpc.use_local_subchannel_pool", 1)])
        grpc.channel_ready_future(channel).result(timeout=60)  # connected before the clock starts
        return prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def send(stub, i: int):
        record = golden[i % len(golden)]
        try:
            response = stub.Predict(requests[i % len(requests)], timeout=60)
        except grpc.RpcError as error:
            return f"gRPC {error.code().name}: {error.details()}"
        if not close_enough(tf.make_ndarray(response.outputs["probabilities"]), record["response"]["outputs"]):
            return f"wrong answer to {record['id']}"
        return None

    return drive(f"gRPC, {clients} clients", total, clients, make_client, send)


def floor_run(base: Path, total: int) -> Run:
    proc = subprocess.run([sys.executable, "-c", FLOOR, str(base / "1"), str(total)], env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        sys.exit(f"the floor failed:\n{proc.stderr.decode(errors='replace')[-2000:]}")
    latencies = json.loads(proc.stdout)
    return Run("floor: in-process session.run", total, sum(latencies), latencies)


# ---------------------------------------------------------------------------------------------
# Malformed bodies


def _good(rng: random.Random) -> dict:
    rows = [[round(rng.uniform(-2, 2), 4) for _ in range(4)] for _ in range(rng.randint(1, 3))]
    return {"instances": rows} if rng.random() < 0.5 else {"inputs": {"features": rows}}


def _huge(rng: random.Random, size: int) -> dict:
    kind = rng.choice(["flat", "wide row", "ragged rows"])
    if kind == "flat":  # rank 1 where [-1, 4] is expected
        return {"inputs": {"features": [0.5] * size}}
    if kind == "wide row":
        return {"instances": [[0.25] * size]}
    rows = [[0.5, 0.5, 0.5, 0.5]] * (size // 4)
    return {"inputs": {"features": rows + [[0.5, 0.5, 0.5]]}}  # the last row is short


def _deep(rng: random.Random) -> bytes:
    depth = rng.choice([300, 600, 990, 2000, 50_000, 200_000])
    if rng.random() < 0.5:
        inner = b"[" * depth + b"1.0" + b"]" * depth
    else:
        inner = b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"inputs": {"features": ' + inner + b"}}"


def _wrong_type(rng: random.Random) -> dict:
    value = rng.choice(['"0.5"', "true", "null", '{"x": 1}', '"features"', "[]", '[["a","b","c","d"]]',
                        "[[true,false,true,false]]", "[[null,1,2,3]]", '[[{"b64":"AAAA"},1,2,3]]', "[[[1,2,3,4]]]"])
    return {"inputs": {"features": json.loads(value)}} if rng.random() < 0.5 else {"instances": [json.loads(value)]}


def _structure(rng: random.Random):
    rows = _good(rng).get("instances") or [[1.0, 2.0, 3.0, 4.0]]
    return rng.choice([
        {"instances": rows, "inputs": {"features": rows}},       # both
        {"signature": "serving_default", "features": rows},      # neither
        {"instances": {"features": rows}},                       # instances not a list
        {"instances": []},                                       # empty instances
        {"signature_name": rng.choice([5, None, ["x"], {"a": 1}]), "instances": rows},
        {"signature_name": rng.choice(["serving", "predict", "", "serving_default "]) or "x", "instances": rows},
        [rows], "features", 42, None, True,                      # not an object
        {"inputs": {}},                                          # no input named
        {"instances": [{"features": rows[0]}, rows[0]]},         # objects then a list
        {"instances": [rows[0], {"features": rows[0]}]},         # a list then an object
    ])


def _wrong_alias(rng: random.Random) -> dict:
    alias = rng.choice(["feature", "Features", "input_1", "x", "features:0", "keras_tensor", "args_0", ""])
    rows = [[1.0, 2.0, 3.0, 4.0]]
    if rng.random() < 0.5:
        return {"inputs": {alias: rows}}
    return {"instances": [{alias: rows[0]}] if rng.random() < 0.5 else [{"features": rows[0], alias: rows[0]}]}


def _shape(rng: random.Random) -> dict:
    bad = rng.choice([[[1, 2, 3, 4], [1, 2]], [[1, 2, 3]], [[1, 2, 3, 4, 5]], [[[1, 2, 3, 4]], [1, 2, 3, 4]],
                      [[]], [[], []], 1.5, [1, [2, 3]], [[1, 2, 3, [4]]]])
    return {"inputs": {"features": bad}} if rng.random() < 0.5 else {"instances": bad if isinstance(bad, list)
                                                                      else [bad]}


def _bad_b64(rng: random.Random) -> dict:
    value = rng.choice([{"b64": "!!!not base64!!!"}, {"b64": "AAA"}, {"b64": 5}, {"b64": None},
                        {"b64": base64.b64encode(os.urandom(16)).decode()}, {"b64": "AAAA", "extra": 1}])
    return {"inputs": {"features": value}} if rng.random() < 0.5 else {"instances": [value]}


def malformed_bodies(count: int, seed: int, huge_count: int, huge_size: int) -> list[tuple[str, bytes, dict]]:
    """(category, body, extra headers) for `count` bodies; `huge_count` of them hold ~`huge_size` elements."""
    rng = random.Random(seed)
    bodies: list[tuple[str, bytes, dict]] = []
    for index in range(count):
        if index < huge_count:
            bodies.append(("huge array", json.dumps(_huge(rng, huge_size)).encode(), {}))
            continue
        category = rng.choice(["truncated", "syntax", "wrong type", "structure", "wrong alias", "shape",
                               "bad b64", "large array", "deep nesting", "long number", "garbage bytes", "gzip"])
        good = json.dumps(_good(rng)).encode()
        headers: dict = {}
        if category == "truncated":
            body = good[:rng.randrange(len(good))]
        elif category == "syntax":
            at = rng.randrange(len(good))
            body = good[:at] + rng.choice([c for c in b'{}[],:"' if c != good[at]]).to_bytes(1, "big") + good[at + 1:]
        elif category == "wrong type":
            body = json.dumps(_wrong_type(rng)).encode()
        elif category == "structure":
            body = json.dumps(_structure(rng)).encode()
        elif category == "wrong alias":
            body = json.dumps(_wrong_alias(rng)).encode()
        elif category == "shape":
            body = json.dumps(_shape(rng)).encode()
        elif category == "bad b64":
            body = json.dumps(_bad_b64(rng)).encode()
        elif category == "large array":
            body = json.dumps(_huge(rng, rng.choice([1000, 10_000, 30_000]))).encode()
        elif category == "deep nesting":
            body = _deep(rng)
        elif category == "long number":
            digits = rng.choice([400, 5000, 100_000])
            body = b'{"inputs": {"features": [[' + b"9" * digits + b", 1, 2, 3]]}}"
        elif category == "garbage bytes":
            body = bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
        else:  # a gzip header that is not followed by gzip data, or gzip of a broken body
            headers = {"Content-Encoding": "gzip"}
            body = (b"\x1f\x8b" + good) if rng.random() < 0.5 else gzip.compress(good[: len(good) // 2])
        bodies.append((category, body, headers))
    return bodies


def malformed_run(server: Server, bodies: list[tuple[str, bytes, dict]], clients: int = 8) -> dict:
    statuses: dict[str, dict[str, int]] = {}
    defects: list[str] = []
    lock = threading.Lock()
    counter = itertools.count()

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=120)
        while (i := next(counter)) < len(bodies):
            category, body, headers = bodies[i]
            try:
                connection.request("POST", PREDICT, body=body, headers={"Content-Type": "application/json",
                                                                       **headers})
                response = connection.getresponse()
                text = response.read()
                outcome = str(response.status)
            except Exception as exc:  # noqa: BLE001
                outcome, text = type(exc).__name__, str(exc).encode()
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=120)
            with lock:
                statuses.setdefault(category, {}).setdefault(outcome, 0)
                statuses[category][outcome] += 1
                if not outcome.startswith("4"):
                    defects.append(f"#{i} {category}: {outcome} {text[:160]!r} for body {body[:100]!r}"
                                   f"{'...' if len(body) > 100 else ''} ({len(body)} bytes)")
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"statuses": statuses, "defects": defects, "seconds": time.perf_counter() - started}


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds of (floor, 1 client, REST, gRPC)")
    parser.add_argument("--quick", action="store_true", help="one round of 1,000 load requests, 200 malformed bodies")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--malformed", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--no-grpc", action="store_true")
    parser.add_argument("--enable-batching", action="store_true", help="serve with --enable-batching")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.requests, args.malformed = 1, 1000, 200
    huge = (1, 10 ** 6) if args.quick else (5, 10 ** 6)
    sequential = max(200, args.requests // 10)

    with tempfile.TemporaryDirectory(prefix="tfsconvert-bench-") as tmp:
        scratch = Path(tmp)
        base = convert(scratch)
        golden = load_golden(base)
        server = Server(base, scratch, args.enable_batching)
        try:
            runs: dict[str, list[Run]] = {}
            for _ in range(args.repeat):
                batch = [floor_run(base, sequential), rest_run(server, golden, sequential, 1),
                         rest_run(server, golden, args.requests, args.clients)]
                if not args.no_grpc:
                    batch.append(grpc_run(server, golden, args.requests, args.clients))
                for run in batch:
                    runs.setdefault(run.name, []).append(run)
            bodies = malformed_bodies(args.malformed, args.seed, *huge)
            fuzz = malformed_run(server, bodies)
            after = rest_run(server, golden, 100, 4)
            alive = server.alive()
        finally:
            server.stop()
        log = server.log.read_text(errors="replace")

    print(f"load: {args.requests} predict requests from {args.clients} clients (keep-alive), {sequential} from one "
          f"client, {args.repeat} round(s), medians")
    print(f"{'run':<32} {'requests':>8} {'errors':>6} {'QPS':>8} {'p50 ms':>8} {'p99 ms':>8} {'QPS vs 1 client':>16} "
          f"{'QPS vs floor':>13}")
    median = {name: {"qps": statistics.median(r.qps for r in rs),
                     "p50": statistics.median(r.percentile(50) for r in rs),
                     "p99": statistics.median(r.percentile(99) for r in rs),
                     "errors": sum(len(r.errors) for r in rs), "requests": sum(r.requests for r in rs)}
              for name, rs in runs.items()}
    one, floor = median["REST, 1 client"]["qps"], median["floor: in-process session.run"]["qps"]
    for name, m in median.items():
        print(f"{name:<32} {m['requests']:>8} {m['errors']:>6} {m['qps']:>8.0f} {m['p50'] * 1000:>8.2f} "
              f"{m['p99'] * 1000:>8.2f} {m['qps'] / one:>15.2f}x {m['qps'] / floor:>12.3f}x")
    load_errors = [e for rs in runs.values() for r in rs for e in r.errors]
    for error in load_errors[:10]:
        print(f"  load error: {error}")

    print(f"\nmalformed: {len(bodies)} bodies (seed {args.seed}; {huge[0]} of {huge[1]:,} elements) over 8 "
          f"connections in {fuzz['seconds']:.1f} s")
    for category in sorted(fuzz["statuses"]):
        counts = ", ".join(f"{status} x{n}" for status, n in sorted(fuzz["statuses"][category].items()))
        print(f"  {category:<14} {counts}")
    for defect in fuzz["defects"][:20]:
        print(f"  DEFECT {defect}")
    tracebacks = log.count("Traceback")
    print(f"after: {after.requests - len(after.errors)}/{after.requests} good requests answered correctly; "
          f"server {'still running' if alive else 'DIED'}; {tracebacks} traceback(s) in its log")

    ok = not load_errors and not fuzz["defects"] and not after.errors and alive
    total = sum(m["requests"] for name, m in median.items() if name.startswith(("REST", "gRPC")))
    print(f"\n{'PASS' if ok else 'FAIL'}: {total - len(load_errors)}/{total} load requests ok, "
          f"{len(bodies) - len(fuzz['defects'])}/{len(bodies)} malformed bodies answered 4xx")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
