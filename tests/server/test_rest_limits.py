"""The REST transport's resource limits, on loopback against the in-process C transport: gzip bodies
inflated off the loop with a cap, chunked bodies decoded in linear time, a maximum body size (413),
header/body/idle timeouts (408 or close), `100 Continue` for HTTP/1.1 only, bare LF refused, and
buffers that shrink back after a large request."""

from __future__ import annotations

import os
import socket
import threading
import time
import tracemalloc
import zlib

import pytest

from tfsconvert import accel
from tfsconvert.server import http_server
from tfsconvert.server.flags import Limits, parse

pytestmark = pytest.mark.usefixtures("pure")  # the C transport and its pure-Python twin

OK_HEAD = b"HTTP/1.1 200 OK\r\n"
TOO_LARGE = b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_BODY = 8 * 2 ** 20


class _EchoApi:
    """Answers every request with its target and body length, or the body itself for /echo."""

    def route(self, method, target, body):
        if target == "/echo":
            return 200, body, "application/octet-stream"
        return 200, f"{method} {target} {len(body)}".encode(), "text/plain"

    def predict_target(self, target):
        return None


def _serve(**limits):
    defaults = {"max_body_bytes": MAX_BODY, "header_timeout_ms": 0, "body_timeout_ms": 0, "idle_timeout_ms": 0}
    return http_server.start("127.0.0.1", 0, _EchoApi(), workers=2, limits=Limits(**{**defaults, **limits}))


@pytest.fixture()
def server():
    started = _serve()
    yield started
    started.shutdown()


def _connect(server, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=timeout)


def _read_all(sock: socket.socket) -> bytes:
    return b"".join(iter(lambda: sock.recv(1 << 20), b""))


def _answer(sock: socket.socket) -> bytes:
    """One whole answer (Content-Length framed) from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(1 << 20)
    return head + b"\r\n\r\n" + body


def _gzip_of_zeros(size: int) -> bytes:
    """A gzip stream of `size` zero bytes made from one compressed 16 MiB segment repeated (a full flush
    makes the segments alike); its trailer is wrong, which nothing that stops early ever reads."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    head = packer.compress(b"")
    segment = packer.compress(bytes(2 ** 24)) + packer.flush(zlib.Z_FULL_FLUSH)
    return head + segment * (size // 2 ** 24) + packer.flush()


def test_the_flags_default_to_the_documented_limits():
    assert parse([]).limits == Limits(64 * 2 ** 20, 30_000, 60_000, 120_000)
    assert parse(["--rest_api_max_body_bytes=10", "--rest_api_idle_timeout_in_ms=0"]).limits == Limits(
        10, 30_000, 60_000, 0)


def test_a_gzip_bomb_gets_413_without_stalling_other_clients(server):
    bomb = _gzip_of_zeros(2 ** 30)  # ~1 MB inflating to 1 GiB
    assert len(bomb) < 2 ** 21
    answers, delays = [], []

    def send_bomb():
        with _connect(server, timeout=30) as sock:
            sock.sendall(b"POST /v1/models/m:predict HTTP/1.1\r\nContent-Encoding: gzip\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(bomb) + bomb)
            answers.append(_answer(sock))

    bomber = threading.Thread(target=send_bomb)
    started = time.monotonic()
    bomber.start()
    with _connect(server) as sock:
        while bomber.is_alive() and len(delays) < 200:  # requests on another connection meanwhile
            sent = time.monotonic()
            sock.sendall(b"GET /v1/models/m HTTP/1.1\r\n\r\n")
            assert _answer(sock).endswith(b"GET /v1/models/m 0")
            delays.append(time.monotonic() - sent)
    bomber.join(30)
    assert time.monotonic() - started < 10  # inflating all of it took 21 s
    assert answers[0].startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")
    assert b"inflates to more than 8388608 bytes (--rest_api_max_body_bytes)" in answers[0]
    assert max(delays) < 1.0


def test_a_gzip_body_within_the_limit_is_inflated(server):
    body = b'{"instances": [1.0]}' * 1000
    with _connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
                     % len(zlib.compress(body, wbits=31)) + zlib.compress(body, wbits=31))
        assert _answer(sock).endswith(b"\r\n\r\n" + body)


def test_a_body_over_the_limit_gets_413_before_it_is_sent(server):
    with _connect(server) as sock:
        sock.sendall(b"POST /a HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1))
        assert _read_all(sock) == TOO_LARGE
    with _connect(server) as sock:  # the limit itself is allowed
        sock.sendall(b"POST /a HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % MAX_BODY + bytes(MAX_BODY))
        assert _answer(sock).endswith(b"POST /a %d" % MAX_BODY)


def test_a_chunked_body_over_the_limit_gets_413(server):
    chunk = b"%x\r\n" % 2 ** 20 + bytes(2 ** 20) + b"\r\n"
    with _connect(server) as sock:
        sock.sendall(b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 8)
        sock.sendall(b"1\r\nx\r\n0\r\n\r\n")
        assert _read_all(sock) == TOO_LARGE


def test_many_small_chunks_are_decoded_in_linear_time(server):
    """8 MB in 100,000 chunks, sent 4 KB at a time: decoding from the start on every read took minutes."""
    payload = os.urandom(MAX_BODY // 2)
    pieces = [payload[i:i + 80] for i in range(0, len(payload), 80)]
    raw = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
    started = time.monotonic()
    with _connect(server, timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(raw), 4096):
            sock.sendall(raw[i:i + 4096])
        answer = _answer(sock)
    assert answer.startswith(OK_HEAD) and answer.endswith(b"\r\n\r\n" + payload)
    assert time.monotonic() - started < 10


def test_100_continue_is_sent_to_http_1_1_clients_only(server):
    for version, expected in ((b"1.1", b"HTTP/1.1 100 Continue\r\n\r\n"), (b"1.0", b"")):
        with _connect(server) as sock:
            sock.sendall(b"POST /a HTTP/" + version + b"\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
            sock.settimeout(0.5)
            try:
                interim = sock.recv(65536)
            except TimeoutError:
                interim = b""
            assert interim == expected
            sock.settimeout(10)
            sock.sendall(b"{}")
            assert _read_all(sock).endswith(b"POST /a 2") if version == b"1.0" else _answer(sock).endswith(
                b"POST /a 2")


@pytest.mark.parametrize("request_bytes", [
    b"GET /a HTTP/1.1\nHost: x\n\n",
    b"GET /a HTTP/1.1\r\nHost: x\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\n\n",
    b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-T: 1\n\r\n\r\n",
])
def test_a_bare_lf_gets_400_at_once(server, request_bytes):
    with _connect(server, timeout=2) as sock:  # no EOF from the client: the server must not wait for more
        sock.sendall(request_bytes)
        assert _read_all(sock) == b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sends before closing; fails if it has not closed within `seconds`."""
    sock.settimeout(seconds)
    return _read_all(sock)


def test_idle_connections_are_closed_so_they_cannot_hold_every_descriptor():
    server = _serve(idle_timeout_ms=300)
    try:
        idle = [_connect(server) for _ in range(100)]
        kept = _connect(server)
        kept.sendall(b"GET /a HTTP/1.1\r\n\r\n")
        assert _answer(kept).endswith(b"GET /a 0")
        started = time.monotonic()
        assert [_closed_within(sock, 3) for sock in [*idle, kept]] == [b""] * 101
        assert time.monotonic() - started < 3
        with _connect(server) as sock:
            sock.sendall(b"GET /b HTTP/1.1\r\n\r\n")
            assert _answer(sock).endswith(b"GET /b 0")
        for sock in [*idle, kept]:
            sock.close()
    finally:
        server.shutdown()


def test_a_client_that_does_not_read_its_answers_is_closed():
    size = 32 * 2 ** 20  # more than the socket buffers between the two hold
    server = _serve(idle_timeout_ms=300, max_body_bytes=size)
    try:
        with _connect(server) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % size + bytes(size))
            time.sleep(1.5)  # not reading: the answer stops moving, and the server gives up on it
            started = time.monotonic()
            try:
                received = len(_read_all(sock))
            except ConnectionResetError:
                received = 0
            assert received < size and time.monotonic() - started < 5
    finally:
        server.shutdown()


@pytest.mark.parametrize("sent", [
    b"GET /a HTTP/1.1\r\n",  # a head that stops
    b"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n{",  # a body that stops
    b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
])
def test_a_request_that_stops_arriving_gets_408(sent):
    server = _serve(header_timeout_ms=300, body_timeout_ms=300)
    try:
        with _connect(server) as sock:
            sock.sendall(sent)
            started = time.monotonic()
            assert _closed_within(sock, 3) == TIMEOUT
            assert 0.25 < time.monotonic() - started < 2
    finally:
        server.shutdown()


def test_a_slowly_trickled_head_times_out_though_bytes_keep_coming():
    server = _serve(header_timeout_ms=500, idle_timeout_ms=500)
    try:
        with _connect(server) as sock:
            started = time.monotonic()
            with pytest.raises((BrokenPipeError, ConnectionResetError)):
                for _ in range(40):  # one byte every 100 ms: 4 s if nothing stops it
                    sock.sendall(b"X")
                    time.sleep(0.1)
            assert time.monotonic() - started < 2
    finally:
        server.shutdown()


def _rss() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _traced() -> int:
    return tracemalloc.get_traced_memory()[0]


def test_buffers_shrink_back_after_a_large_request(server):
    """A 48 MB body echoed back on a connection that stays open, with the next request already
    half sent (so the input buffer is never empty): its memory is given back all the same. The C
    transport's buffers are counted in the resident size; the pure-Python twin's are Python objects,
    counted by tracemalloc (the resident size would also count what glibc keeps of freed memory)."""
    size, limit = 48 * 2 ** 20, 16 * 2 ** 20
    held = _rss if accel.is_c(http_server._http) else _traced
    big = _serve(max_body_bytes=2 * size)
    if held is _traced:
        tracemalloc.start()
    try:
        with _connect(big, timeout=30) as sock:
            sock.sendall(b"GET /a HTTP/1.1\r\n\r\n")
            _answer(sock)
            before = held()
            sock.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % size + bytes(size) + b"GET /b HT")
            assert len(_answer(sock)) > size
            deadline = time.monotonic() + 10  # the loop frees its buffers after the answer is out; on a busy
            while (grown := held() - before) >= limit and time.monotonic() < deadline:  # machine that can lag
                time.sleep(0.1)
            sock.sendall(b"TP/1.1\r\n\r\n")
            assert _answer(sock).endswith(b"GET /b 0")
    finally:
        tracemalloc.stop()
        big.shutdown()
    assert grown < limit  # the input and output buffers each held 48 MB
