"""The pure-Python twin of `_loadgen.c` (the load generator's REST clients): the same `Client` class on a
`selectors` loop, for machines where the C module is not built or `TFSCONVERT_PURE_PYTHON=1`
(tfsconvert/accel.py). It costs more CPU per request than the C clients, on the cores the measured
server runs on: rates measured with it are lower bounds.

Client(host, port, connections) connects; run(payloads, requests, duration, timeout, progress)
sends, on each connection, the next payload (whole HTTP requests, used in turn) as soon as the
previous answer is in, until `requests` answers (or -1: no bound) or `duration` seconds (or -1) are
over; answers are read as far as the status and Content-Length. It returns (latencies: bytes of
doubles in seconds, of the 200 answers; errors; error samples; started; ended), times on
time.monotonic()'s clock, and calls progress(answers so far) every 0.2 s.
"""

from __future__ import annotations

import re
import selectors
import socket
import time
from array import array

MAX_SAMPLES = 3
PROGRESS_EVERY = 0.2
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]+)", re.I)
_CLOSE = re.compile(rb"\r\nconnection:[^\r]*close", re.I)


class _Conn:
    __slots__ = ("sock", "inbox", "out", "sent", "started")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.inbox = bytearray()  # answers read, not yet taken
        self.out, self.sent = b"", 0  # the request being sent
        self.started = 0.0  # of the request in flight, 0 if none


class _Run:
    def __init__(self, payloads: list[bytes], requests: int, duration: float, timeout: float) -> None:
        self.payloads, self.left, self.timeout = payloads, requests, timeout
        self.next_payload = 0
        self.started = time.monotonic()
        self.deadline = self.started + duration if duration >= 0 else 0.0
        self.latencies = array("d")
        self.errors = 0
        self.samples: list[str] = []

    def error(self, message: str) -> None:
        self.errors += 1
        if message not in self.samples and len(self.samples) < MAX_SAMPLES:
            self.samples.append(message)


class Client:
    """Client(host, port, connections): keep-alive HTTP/1.1 connections for closed-loop load."""

    def __init__(self, host: str, port: int, connections: int) -> None:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise OSError(f"cannot resolve {host}: {error.strerror}") from None
        self._family, _, _, _, self._address = found[0]
        self._selector = selectors.DefaultSelector()
        self._conns = [_Conn() for _ in range(connections)]
        for conn in self._conns:  # a server that is not there is an error here
            self._open(conn)

    def _open(self, conn: _Conn) -> None:
        """Connect (blocking: a loopback connect is immediate), then make the socket non-blocking."""
        conn.inbox, conn.out, conn.sent = bytearray(), b"", 0
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            sock.connect(self._address)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            sock.close()
            raise
        conn.sock = sock
        self._selector.register(sock, selectors.EVENT_READ, conn)

    def _close(self, conn: _Conn) -> None:
        if conn.sock is not None:
            self._selector.unregister(conn.sock)
            conn.sock.close()
            conn.sock = None

    def _write(self, conn: _Conn) -> bool:
        """Send as much of the request as the socket takes; wait for it to be writable for the rest."""
        waited = conn.sent > 0
        while conn.sent < len(conn.out):
            try:
                conn.sent += conn.sock.send(conn.out[conn.sent:])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return False
        waiting = conn.sent < len(conn.out)
        if waiting != waited:
            self._selector.modify(conn.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if waiting else 0), conn)
        return True

    def _next_request(self, run: _Run, conn: _Conn) -> bool:
        """The next request on `conn`, reconnecting if the server closed it; False if none is left."""
        while True:
            if run.left == 0 or (run.deadline and time.monotonic() >= run.deadline):
                return False
            if run.left > 0:
                run.left -= 1
            if conn.sock is None:
                try:
                    self._open(conn)
                except OSError:
                    run.error("ConnectionError: cannot reconnect to the server")
                    return False
            conn.out = run.payloads[run.next_payload % len(run.payloads)]
            run.next_payload += 1
            conn.sent = 0
            conn.started = time.monotonic()
            if self._write(conn):
                return True
            self._close(conn)
            conn.started = 0.0
            run.error("ConnectionError: connection closed by the server")

    def _readable(self, run: _Run, conn: _Conn) -> int:
        """Read what came; how many connections went idle for good (0 or 1)."""
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            if conn.started:
                conn.started = 0.0
                run.error("ConnectionError: connection closed by the server")
                return not self._next_request(run, conn)
            return 0
        conn.inbox += data
        while conn.started:
            head = conn.inbox.find(b"\r\n\r\n")
            if head < 0:
                return 0
            head_text = bytes(conn.inbox[:head + 2])
            length = _LENGTH.search(head_text)
            size = head + 4 + (int(length.group(1)) if length else 0)  # servers here always send a length
            if len(conn.inbox) < size:
                return 0
            status = int(conn.inbox[9:12]) if len(conn.inbox) > 12 and conn.inbox[9:12].isdigit() else 0
            if status == 200:
                run.latencies.append(time.monotonic() - conn.started)
            else:
                body = bytes(conn.inbox[head + 4:size][:300]).decode("utf-8", "replace")
                run.error(f"HTTP {status}: {body}")
            del conn.inbox[:size]
            conn.started = 0.0
            if _CLOSE.search(head_text):
                self._close(conn)
            if not self._next_request(run, conn):
                return 1
        return 0

    def _expire(self, run: _Run) -> int:
        now, idle = time.monotonic(), 0
        for conn in self._conns:
            if conn.started and now - conn.started > run.timeout:
                run.error(f"TimeoutError: no answer within {run.timeout:g} s")
                self._close(conn)
                conn.started = 0.0
                idle += not self._next_request(run, conn)
        return idle

    def run(self, payloads: list[bytes], requests: int, duration: float, timeout: float, progress):
        """-> (latencies, errors, samples, started, ended)"""
        if not payloads:
            raise ValueError("no payloads")
        run = _Run(list(payloads), requests, duration, timeout)
        next_progress = run.started + PROGRESS_EVERY
        active = sum(self._next_request(run, conn) for conn in self._conns)
        while active > 0:
            for key, mask in self._selector.select(0.05):
                conn = key.data
                if conn.sock is None:
                    continue
                if mask & selectors.EVENT_WRITE and conn.sent < len(conn.out) and not self._write(conn):
                    mask |= selectors.EVENT_READ  # an error: read it as the end of the connection
                if mask & selectors.EVENT_READ:
                    active -= self._readable(run, conn)
            if time.monotonic() >= next_progress:
                active -= self._expire(run)
                next_progress = time.monotonic() + PROGRESS_EVERY
                progress(len(run.latencies) + run.errors)
        return run.latencies.tobytes(), run.errors, run.samples, run.started, time.monotonic()
