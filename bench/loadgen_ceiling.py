"""Benchmark: what `tfsconvert bench`'s load generator can send, against a trivial endpoint.

Starts a stub HTTP/1.1 server in its own process (asyncio, answers every `:predict` with a fixed
small JSON body, no parsing beyond Content-Length) and runs the load generator against it with
the ctr_ranker-sized request (600 floats, as `bench` synthesizes them) at each concurrency.
The figure is a lower bound of the client's capacity: the stub is itself single-threaded
Python, and both share this machine's cores.

Usage: python bench/loadgen_ceiling.py [--requests 20000] [--concurrency 1,32,64] [--processes 1,2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tfsconvert.model import TensorSpec  # noqa: E402
from tfsconvert.rest_codec import rest_request  # noqa: E402
from tfsconvert.samples import synthesize  # noqa: E402
from tfsconvert.server.sandbox import free_port  # noqa: E402
from tfsconvert.serving import loadgen  # noqa: E402

ANSWER = b'{"outputs": [[0.5]]}'
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(ANSWER)
            + ANSWER)


class _Stub(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport, self.buffer = transport, bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end]).lower()
            start = head.find(b"content-length:")
            length = int(head[start + 15:].split(b"\r\n")[0]) if start >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[:end + 4 + length]
            self.transport.write(RESPONSE)


async def _serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Stub, "127.0.0.1", port)
    print("ready", flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", default="1,32,64")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the stub's own process
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    port = free_port()
    stub = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE)
    try:
        stub.stdout.readline()
        spec = {"features": TensorSpec("DT_FLOAT", [-1, 600], "features:0")}
        body = json.dumps(rest_request(synthesize(spec, 1)[0], spec, "serving_default")).encode()
        request = loadgen.http_request("127.0.0.1", port, "/v1/models/m:predict", body)
        print(f"request body {len(body)} bytes; {args.requests} requests per run")
        print(f"{'processes':>9} {'concurrency':>11} {'QPS':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
        for processes in map(int, args.processes.split(",")):
            for concurrency in map(int, args.concurrency.split(",")):
                job = loadgen.Job("rest", "127.0.0.1", port, [request], concurrency, args.requests, None)
                measured = loadgen.run(job, processes)
                latencies = sorted(measured.latencies)
                p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
                print(f"{processes:>9} {concurrency:>11} {len(latencies) / measured.seconds:>8.0f} "
                      f"{p50 * 1e3:>7.2f} {p99 * 1e3:>7.2f} {measured.errors:>6}")
    finally:
        stub.kill()
        stub.wait()


if __name__ == "__main__":
    main()
