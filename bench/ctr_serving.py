"""Benchmark: a Wide&Deep ranker scoring candidates through `tfsconvert serve`, REST and gRPC, against
TensorFlow running the same batch in-process.

Serves the fixture `keras_wide_deep_candidates` (22 named inputs: c00..c19 int64[-1,1], dense
float32[-1,60], wide_ids int64[-1,80]; outputs ctr, logit float32[-1,1]) with `tfsconvert serve` on
free loopback ports. For each request size (candidates = rows per request) it sends the same seeded
batch as a REST columnar body (`inputs`), a REST row body (`instances`, one object per candidate)
and a gRPC PredictRequest (TF Serving's own messages), one client sending requests one by one and
then 8 clients at once, each on its own keep-alive connection / channel. Bodies are encoded before
the clock starts (the PredictRequest is serialized once and sent as bytes) and answers are read as
bytes; every answer's status is checked, and once per size and API its values against the floor's
outputs.

The floor, measured in the same run: a separate process loads the SavedModel with
tfsconvert.runtimes.tf.ServingSession (TF's session loader, as the server does) and runs the same
batch, one thread run after run, or 8 threads at once. Each round (--repeat) runs the floor and
then every API, so that neighbours in time are compared: "x floor" is the median over the rounds
of p50 / the round's floor p50 at the same concurrency; p50 is the median of the rounds' p50s, p99
that of all their requests. This machine has 2 cores shared by the server, the clients and
whoever else runs.

Usage: python bench/ctr_serving.py [--sizes 1,50,300,1000] [--requests 100] [--clients 8] [--repeat 3]
                                   [--no-row]
Exit status 1 if any request failed or an answer was wrong.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_load import ENV, Run, Server, drive  # noqa: E402

import fixtures  # noqa: E402  (serve_load put the repository on sys.path)
from fixtures.keras_field_models import (CANDIDATE_DENSE, CANDIDATE_FIELDS, CANDIDATE_VOCAB,  # noqa: E402
                                         CANDIDATE_WIDE, CANDIDATE_WIDE_BUCKETS)

FIXTURE = "keras_wide_deep_candidates"
MODEL = "ctr"
PREDICT = f"/v1/models/{MODEL}:predict"
TARGET_SIZE = 300

FLOOR = """
import json, sys, threading, time
import numpy as np
from pathlib import Path
from tfsconvert.runtimes.tf import ServingSession
arrays = np.load(sys.argv[2])
session = ServingSession(Path(sys.argv[1]))
feeds = {}
for key in arrays.files:
    size, alias = key.split(":")
    feeds.setdefault(int(size), {})[alias] = arrays[key]
for size, feed in feeds.items():
    outputs = session.run("serving_default", feed)
    np.save(sys.argv[2] + f".{size}.npy", np.concatenate([outputs["ctr"], outputs["logit"]], axis=1))
print("ready", flush=True)

def loop(feed, latencies, n):
    for _ in range(n):
        start = time.perf_counter()
        session.run("serving_default", feed)
        latencies.append(time.perf_counter() - start)

for line in sys.stdin:  # "size count clients": that many runs of the batch, shared by that many threads
    size, count, clients = map(int, line.split())
    loop(feeds[size], [], 3)
    latencies = [[] for _ in range(clients)]
    threads = [threading.Thread(target=loop, args=(feeds[size], per, max(1, count // clients))) for per in latencies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps([x for per in latencies for x in per]), flush=True)
"""


class Floor:
    """TensorFlow running the batches in a process of its own, on demand (interleaved with the
    server's runs, so that both see the same load from whoever else shares the machine)."""

    def __init__(self, base: Path, npz: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", FLOOR, str(base / "1"), str(npz)], env=ENV,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            sys.exit("the floor process did not start")

    def run(self, size: int, count: int, clients: int) -> list[float]:
        self.process.stdin.write(f"{size} {count} {clients}\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


def batch(size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`size` candidates: ids drawn within the embeddings' ranges, dense values standard normal."""
    rng = np.random.default_rng(seed + size)
    arrays = {f"c{i:02d}": rng.integers(0, CANDIDATE_VOCAB, (size, 1), dtype=np.int64)
              for i in range(CANDIDATE_FIELDS)}
    arrays["dense"] = rng.standard_normal((size, CANDIDATE_DENSE)).astype(np.float32)
    arrays["wide_ids"] = rng.integers(0, CANDIDATE_WIDE_BUCKETS, (size, CANDIDATE_WIDE), dtype=np.int64)
    return arrays


def _json_values(array: np.ndarray) -> list:
    """Nested lists as a client holding float32 features writes them: each float the shortest text
    that reads back as the same float32 (`0.12573022`), as Go's or Java's encoders do."""
    if array.dtype != np.float32:
        return array.tolist()
    values = np.empty(array.size, dtype=object)
    values[:] = [float(str(value)) for value in array.ravel()]  # str of a numpy float32: its shortest text
    return values.reshape(array.shape).tolist()


def columnar_body(arrays: dict[str, np.ndarray]) -> bytes:
    return json.dumps({"inputs": {alias: _json_values(array) for alias, array in arrays.items()}}).encode()


def row_body(arrays: dict[str, np.ndarray]) -> bytes:
    columns = {alias: _json_values(array) for alias, array in arrays.items()}
    size = len(next(iter(columns.values())))
    return json.dumps({"instances": [{alias: column[i] for alias, column in columns.items()}
                                     for i in range(size)]}).encode()


def rest_values(text: bytes, rows: bool) -> np.ndarray:
    document = json.loads(text)
    if rows:
        return np.array([[p["ctr"][0], p["logit"][0]] for p in document["predictions"]])
    return np.concatenate([np.array(document["outputs"]["ctr"]), np.array(document["outputs"]["logit"])], axis=1)


def rest_run(server: Server, body: bytes, rows: bool, expected: np.ndarray, total: int, clients: int,
             name: str) -> Run:
    def make_client():
        connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=120)
        connection.connect()
        # As Go's and gRPC's clients do: http.client writes a large body apart from its head, and
        # with Nagle's algorithm the body's last segment would wait for the server's ACK.
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    first = make_client()
    first.request("POST", PREDICT, body=body, headers={"Content-Type": "application/json"})
    answer = first.getresponse().read()
    if not np.allclose(rest_values(answer, rows), expected, rtol=1e-5, atol=1e-6):
        return Run(name, 0, 1, [0.0], [f"wrong answer: {answer[:200]!r}"])

    def send(connection, _: int):
        connection.request("POST", PREDICT, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        text = response.read()
        return None if response.status == 200 else f"HTTP {response.status}: {text[:200]!r}"

    return drive(name, total, clients, make_client, send)


def grpc_run(server: Server, arrays: dict[str, np.ndarray], expected: np.ndarray, total: int, clients: int,
             name: str) -> Run:
    import grpc

    from tfsconvert.quiet import native_stderr_silenced

    with native_stderr_silenced():
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    for alias, array in arrays.items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(array))
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]

    def make_channel():
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}", options=options)
        grpc.channel_ready_future(channel).result(timeout=30)
        return channel

    response = prediction_service_pb2_grpc.PredictionServiceStub(make_channel()).Predict(request, timeout=120)
    got = np.concatenate([tf.make_ndarray(response.outputs["ctr"]), tf.make_ndarray(response.outputs["logit"])], 1)
    if not np.allclose(got, expected, rtol=1e-5, atol=1e-6):
        return Run(name, 0, 1, [0.0], ["wrong gRPC answer"])
    body = request.SerializeToString()  # encoded before the clock starts, as the REST bodies are

    def make_client():  # the stub's method path, sending and receiving the messages' bytes
        return make_channel().unary_unary("/tensorflow.serving.PredictionService/Predict")

    def send(predict, _: int):
        predict(body, timeout=120)
        return None

    return drive(name, total, clients, make_client, send)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,50,300,1000", help="candidates per request, comma-separated")
    parser.add_argument("--requests", type=int, default=100, help="requests per run (a quarter for 1000 rows)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each runs the floor, then every API")
    parser.add_argument("--no-row", action="store_true", help="skip the REST row (instances) bodies")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    base = fixtures.get(FIXTURE)
    batches = {size: batch(size) for size in sizes}
    failed = False
    with tempfile.TemporaryDirectory(prefix="ctr_serving_") as scratch:
        npz = Path(scratch) / "batches.npz"
        np.savez(npz, **{f"{size}:{alias}": array for size, arrays in batches.items()
                         for alias, array in arrays.items()})
        floor = Floor(base, npz)
        server = Server(base, Path(scratch), batching=False, name=MODEL)
        try:
            print(f"{'rows':>5} {'API':<14} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'floor p50':>9} "
                  f"{'floor p99':>9} {'x floor':>7}")
            for size in sizes:
                failed |= measure(server, floor, size, batches[size], np.load(f"{npz}.{size}.npy"), args)
        finally:
            server.stop()
            floor.stop()
    return 1 if failed else 0


def measure(server: Server, floor: Floor, size: int, arrays: dict, expected: np.ndarray, args) -> bool:
    """Print the figures of one request size; True if a request failed."""
    total = max(args.requests // (4 if size >= 1000 else 1), 20)
    columnar, rows = columnar_body(arrays), row_body(arrays)
    failed = False
    for clients in (1, args.clients):
        floors, runs = [], {}
        for _ in range(args.repeat):
            floors.append(floor.run(size, total, clients))
            rounds = [rest_run(server, columnar, False, expected, total, clients, "REST inputs")]
            if not args.no_row:
                rounds.append(rest_run(server, rows, True, expected, total, clients, "REST instances"))
            rounds.append(grpc_run(server, arrays, expected, total, clients, "gRPC"))
            for run in rounds:
                runs.setdefault(run.name, []).append(run)
        floor_p50s = [percentile(latencies, 50) for latencies in floors]
        floor_p99 = percentile([x for latencies in floors for x in latencies], 99)
        for name, rounds in runs.items():
            errors = [error for run in rounds for error in run.errors]
            failed |= bool(errors)
            p50 = float(np.median([run.percentile(50) for run in rounds]))
            p99 = percentile([x for run in rounds for x in run.latencies], 99)
            ratio = float(np.median([run.percentile(50) / f for run, f in zip(rounds, floor_p50s)]))
            print(f"{size:>5} {name:<14} {clients:>7} {p50 * 1e3:>8.2f} {p99 * 1e3:>8.2f} "
                  f"{np.median(floor_p50s) * 1e3:>9.2f} {floor_p99 * 1e3:>9.2f} {ratio:>7.2f}"
                  + (f"  ERRORS: {errors[:2]}" if errors else ""), flush=True)
    print(f"      (request bodies: inputs {len(columnar) / 1024:.0f} KiB, instances {len(rows) / 1024:.0f} KiB; "
          f"reading the inputs body in-process: {parse_costs(arrays, columnar)})", flush=True)
    return failed


def parse_costs(arrays: dict[str, np.ndarray], columnar: bytes) -> str:
    """In this process, the best of 5 reads of the columnar body into the signature's tensors: whole in
    C (_predict_json.c), parsed by orjson then converted in C, and the general Python path (what the
    pure-Python twin leaves to it), in ms."""
    from tfsconvert.server import _rest_json_py, rest, rest_json, rest_json_fast, rest_outputs

    inputs = {alias: "DT_FLOAT" if array.dtype.kind == "f" else "DT_INT64" for alias, array in arrays.items()}

    def best(read) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            read()
            times.append(time.perf_counter() - start)
        return min(times) * 1e3

    c_body = best(lambda: rest_json_fast.body_tensors(rest_json_fast.predict_body(columnar), inputs))
    parsed = best(lambda: rest.predict_tensors(rest_json.parse_body(columnar), inputs))
    saved = rest_json_fast._rest_json
    for module in (rest_json_fast, rest_outputs):
        module._rest_json = _rest_json_py
    try:
        general = best(lambda: rest.predict_tensors(rest_json.parse_body(columnar), inputs))
    finally:
        for module in (rest_json_fast, rest_outputs):
            module._rest_json = saved
    return f"whole body in C {c_body:.2f} ms, orjson + C {parsed:.2f} ms, general path {general:.1f} ms"


def percentile(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


if __name__ == "__main__":
    sys.exit(main())
