"""REST front end without a model process: bodies that used to crash a handler (500) get 400, and
replies leave without Nagle's delay (defects found by bench/serve_load.py and bench/validate_speed.py)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfsconvert.server import http_server, rest, rest_json
from tfsconvert.server.status import ServingError

pytestmark = pytest.mark.usefixtures("pure")  # the C transport and its pure-Python twin


def test_bodies_nested_beyond_pythons_parser_are_read_as_rapidjson_reads_them():
    """rapidjson parses iteratively (no depth limit): so does the fallback past ~1000 levels."""
    document = rest_json.parse_body(b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    depth, value = 0, document["inputs"]
    while value:
        depth, value = depth + 1, value[0]
    assert depth == 100_000 - 1
    document = rest_json.parse_body(b'{"inputs": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}")
    depth, value = 0, document["inputs"]
    while isinstance(value, dict):
        depth, value = depth + 1, value["a"]
    assert (depth, value) == (5000, 1)


@pytest.mark.parametrize("body, message", [
    (b'{"inputs": ' + b"[" * 100_000 + b"1,]" + b"]" * 100_000 + b"}", "JSON Parse error: Invalid value. at offset: "
                                                                      "100013"),
    (b'{"inputs": [[' + b"1" * 5000 + b", 2]]}",
     "JSON Parse error: Number too big to be stored in double. at offset: 13"),
])
def test_bodies_beyond_pythons_parser_limits_are_400(body, message):
    with pytest.raises(ServingError) as raised:
        rest_json.parse_body(body)
    assert (raised.value.http_status, raised.value.message) == (400, message)


@pytest.mark.parametrize("value, message", [
    (json.loads("[" * 500 + "1" + "]" * 500),
     "JSON Value: lists nested 500 levels deep; a tensor has at most 254 dimensions"),
    (json.loads("[" * 100 + "1" + "]" * 100), "maximum supported dimension for an ndarray"),
    ([[int("1" * 400), 1.0]], "a value is out of range for DT_FLOAT"),
])
def test_tensors_numpy_cannot_hold_are_400(value, message):
    with pytest.raises(ServingError) as raised:
        rest_json.tensor(value, "DT_FLOAT")
    assert raised.value.http_status == 400 and message in raised.value.message


class _Api:
    def route(self, method, target, body):
        return 200, b'{"outputs": [[0.5]]}', rest.JSON_TYPE

    def predict_target(self, target):
        return None  # no lanes: every request comes to route()


def _accepted_sockets(port: int) -> list[socket.socket]:
    """This process's server-side sockets of connections to `port` (the C transport's, in-process)."""
    found = []
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:  # not a socket
            continue
        try:
            if (sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM
                    and sock.getsockname()[1] == port and sock.getpeername()):  # other tests leave Unix sockets
                found.append(sock)
                continue
        except OSError:  # a listening or unconnected socket has no peer
            pass
        sock.close()
    return found


def test_keep_alive_replies_are_sent_with_tcp_nodelay():
    """With Nagle on, a reply could wait ~40 ms for the client's delayed ACK."""
    server = http_server.start("127.0.0.1", 0, _Api(), workers=1)
    port = server.server_address[1]
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(3):
            connection.request("POST", "/v1/models/m:predict", body=b"{}")
            assert connection.getresponse().read() == b'{"outputs": [[0.5]]}'
        accepted = _accepted_sockets(port)
        nodelay = [sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for sock in accepted]
        for sock in accepted:
            sock.close()
        connection.close()
    finally:
        server.shutdown()
    assert nodelay == [1]  # one keep-alive connection, Nagle off


class _EchoApi(_Api):
    """Answers every request with its method, target and body (what the C transport handed over)."""

    def route(self, method, target, body):
        return 200, f"{method} {target} ".encode() + body, "text/plain"


@pytest.fixture()
def echo_port():
    server = http_server.start("127.0.0.1", 0, _EchoApi(), workers=1)
    yield server.server_address[1]
    server.shutdown()


def _exchange(port: int, data: bytes) -> bytes:
    """Send `data`, stop sending, and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: sock.recv(65536), b""))


def test_chunked_bodies_are_decoded_with_extensions_and_trailers(echo_port):
    request = (b"POST /v1/models/m:predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;note=x\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    reply = _exchange(echo_port, request)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b"\r\n\r\nPOST /v1/models/m:predict hello world")


def test_http_1_0_closes_after_the_answer_unless_kept_alive(echo_port):
    with socket.create_connection(("127.0.0.1", echo_port), timeout=10) as sock:
        sock.sendall(b"GET /a HTTP/1.0\r\n\r\n")  # no EOF from us: the server closes
        reply = b"".join(iter(lambda: sock.recv(65536), b""))
    assert b"Connection: close\r\n" in reply and reply.endswith(b"GET /a ")
    kept = _exchange(echo_port, b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /c HTTP/1.0\r\n\r\n")
    assert kept.count(b"HTTP/1.1 200 OK") == 2 and kept.endswith(b"GET /c ")


@pytest.mark.parametrize("request_bytes", [
    b"POST /a HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",  # ambiguous framing
    b"POST /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /a HTTP/1.1\r\nX-Big: " + b"x" * 70_000 + b"\r\n\r\n",  # a head over 64 KiB
    b"GET /a HTTP/2.0\r\n\r\n",
    b"GET /a b HTTP/1.1\r\n\r\n",
    b"GET /a HTTP/1.1\r\nBad Header: 1\r\n\r\n",
    b"GET /a HTTP/1.1\r\nX: a\nb\r\n\r\n",
])
def test_unparsable_requests_get_400_and_close(echo_port, request_bytes):
    reply = _exchange(echo_port, request_bytes)
    assert reply == b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def test_answers_before_a_bad_request_are_kept_and_a_reset_client_harms_no_one(echo_port):
    reply = _exchange(echo_port, b"GET /first HTTP/1.1\r\n\r\n\r\nGET /a b\r\n\r\n")  # an empty line is allowed
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and b"GET /first " in reply
    assert reply.endswith(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    sock = socket.create_connection(("127.0.0.1", echo_port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # close = RST
    sock.sendall(b"POST /a HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    sock.close()
    assert _exchange(echo_port, b"GET /after HTTP/1.1\r\n\r\n").endswith(b"GET /after ")


_LIMITED_SERVER = """
import resource, sys
from tfsconvert.server import http_server

class Api:
    def route(self, method, target, body):
        return 200, b"ok", "text/plain"

resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
server = http_server.start("127.0.0.1", 0, Api(), workers=1)
print(server.server_address[1], flush=True)
sys.stdin.read()
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_file_descriptors_pauses_accepting_instead_of_spinning(tmp_path):
    """At the open-files limit accept() fails while clients still wait in the backlog: the loop
    must stop listening until a connection closes, not wake up for them again and again."""
    script = tmp_path / "serve.py"
    script.write_text(_LIMITED_SERVER)
    repo = Path(__file__).resolve().parents[2]  # the child imports this checkout's tfsconvert
    child = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=repo, env=dict(os.environ, PYTHONPATH=str(repo)))
    clients = []
    try:
        port = int(child.stdout.readline())
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(80)]
        time.sleep(0.5)
        before = _cpu_seconds(child.pid)
        time.sleep(1.0)
        assert _cpu_seconds(child.pid) - before < 0.5  # a spinning loop burns a whole core
        for client in clients[:40]:
            client.close()
        clients[-1].sendall(b"GET /v1/models/m HTTP/1.1\r\n\r\n")  # accepted once descriptors are free
        assert clients[-1].recv(4096).endswith(b"\r\n\r\nok")
    finally:
        for client in clients:
            client.close()
        child.kill()
        child.wait()
