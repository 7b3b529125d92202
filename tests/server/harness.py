"""A `python -m tfsconvert.server` child process on free loopback ports, with clients."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
READY = "Exporting HTTP/REST API at:localhost:"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """The server with TF Serving flags; stderr is collected line by line while it runs."""

    def __init__(self, *flags: str, cli: bool = False) -> None:
        self.port, self.rest_port = free_port(), free_port()
        env = dict(os.environ, PYTHONPATH=str(REPO))
        command = (["tfsconvert", "serve", "--port", str(self.port), "--rest-api-port", str(self.rest_port)] if cli
                   else ["tfsconvert.server", f"--port={self.port}", f"--rest_api_port={self.rest_port}"])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *command, *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        self.stderr_lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def wait_for(self, text: str, timeout: float = 120) -> bool:
        """True once `text` is in stderr; False if the process exits or time runs out first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stderr:
                return True
            if self.proc.poll() is not None:
                self._reader.join(5)
                return text in self.stderr
            time.sleep(0.05)
        return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.rest_port}{path}"

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """(exit code, stdout) of a process that exits by itself."""
        self.proc.wait(timeout)  # stdout is small: the pipe buffer holds it until then
        self._reader.join(5)
        stdout = self.proc.stdout.read()
        self.proc.stdout.close()
        return self.proc.returncode, stdout

    def children(self) -> list[int]:
        return [int(pid) for task in Path(f"/proc/{self.proc.pid}/task").glob("*/children")
                for pid in task.read_text().split()]

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code (killed after `timeout`, which fails the caller's assertion)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        return self.proc.returncode


def started(*flags: str, cli: bool = False) -> ServerProcess:
    """A server that reached REST export; its stderr is in the assertion message otherwise."""
    server = ServerProcess(*flags, cli=cli)
    if not server.wait_for(READY):
        server.terminate()
        raise AssertionError(f"server did not start:\n{server.stderr[-3000:]}")
    return server


def config_file(path: Path, models: dict[str, Path], extra: str = "") -> Path:
    """A model_config_list with one `tensorflow` entry per model name -> base path."""
    entries = "".join(f'  config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" {extra}}}\n'
                      for name, base in models.items())
    path.write_text(f"model_config_list {{\n{entries}}}\n")
    return path


def grpc_stubs(server: ServerProcess):
    """(PredictionServiceStub, ModelServiceStub) on the server's gRPC port."""
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    return (prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel))


class LaneReader:
    """How the transport's lanes read a predict body (_http.c, _dense_json.c, or their pure-Python
    twins: the transport http_server uses), through its own interface: an `_http.Server` on loopback
    with one lane. `read(body)` is the (rows, signature_name, alias, values, shape) the lane hands
    over, or None for a body it leaves to the general path."""

    TARGET = "/v1/models/m:predict"
    _ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    def __init__(self) -> None:
        from tfsconvert.server.http_server import _http

        self._sock = socket.create_server(("127.0.0.1", 0))
        self._read: tuple | None = None
        self._server = _http.Server(self._sock.fileno(), self._general, lambda: None, self._lane)
        self._server.add_lane(self.TARGET.encode(), 0)
        self._thread = threading.Thread(target=self._server.serve, daemon=True)
        self._thread.start()
        self._client = socket.create_connection(self._sock.getsockname(), timeout=10)

    def _lane(self, token: int, lane: int, *read_and_keep_alive) -> bool:
        self._read = read_and_keep_alive[:-1]
        self._server.respond(token, self._ANSWER, False)
        return True

    def _general(self, token: int, *request) -> None:
        self._read = None
        self._server.respond(token, self._ANSWER, False)

    def read(self, body: bytes) -> tuple | None:
        head = f"POST {self.TARGET} HTTP/1.1\r\nHost: lane\r\nContent-Length: {len(body)}\r\n\r\n"
        self._client.sendall(head.encode() + body)
        answer = b""
        while len(answer) < len(self._ANSWER):
            answer += self._client.recv(len(self._ANSWER) - len(answer))
        return self._read

    def close(self) -> None:
        self._client.close()
        self._server.stop()
        self._thread.join(5)
        self._sock.close()
