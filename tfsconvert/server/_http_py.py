"""The pure-Python twin of `_http.c` (the REST front end's HTTP/1.1 transport): the same `Server`
class, the same parsing, answers and limits, on a `selectors` loop (epoll,
kqueue or select), for machines where the C module is not built or `TFSCONVERT_PURE_PYTHON=1`
(tfsconvert/accel.py).

The loop accepts connections, reads and parses requests (request line, headers, Content-Length or
chunked bodies, Expect: 100-continue, keep-alive), hands each one to Python as
on_request(token, method, target, body, keep_alive, gzip) and writes what respond(token, data,
close) gives back. A connection has at most one request with Python at a time, so pipelined
requests are answered in order; a request that cannot be parsed (bare LF line ends included) is
answered `400 Bad Request` and its connection closed, one whose body would exceed max_body bytes
`413 Request Entity Too Large`. A connection with no request under way is closed after
idle_timeout_ms (also one whose client stops reading its answers); a request's head must arrive
within header_timeout_ms of its first byte and its body within body_timeout_ms of its head, else
`408 Request Timeout` and the connection is closed (0 disables a timeout).

Lanes: a POST to a target registered with add_lane(target, lane_id) whose body is the common dense
predict body (_dense_json_py) is handed over as on_lane(token, lane_id, rows, signature_name, alias,
values, shape, keep_alive); if on_lane returns False the request goes to on_request.

Threads: serve() runs the loop in the calling thread; respond() is for that thread (from
on_request, on_lane or on_wake); other threads call wake() (the loop then calls on_wake) and stop().
"""

from __future__ import annotations

import errno
import itertools
import selectors
import socket
import time
import traceback

from tfsconvert.server._dense_json_py import read_body
from tfsconvert.server._http_parse_py import BODY, BUSY, HEAD, IDLE, TOO_LARGE, WRITING, Conn, Request, parse

__all__ = ["Server"]

READ_SIZE = 64 * 1024
PAUSE_BYTES = 4 * 1024 * 1024  # a client pipelining this much waits for its answers
MAX_LANES = 64

BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
ENTITY_TOO_LARGE = b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_EVENTS = {0: 0, 1: selectors.EVENT_READ, 2: selectors.EVENT_WRITE, 3: selectors.EVENT_READ | selectors.EVENT_WRITE}


def _now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def _call(function, *args) -> tuple[bool, object]:
    """(True, function(*args)), or (False, None) with the exception printed (as C's unraisable errors)."""
    try:
        return True, function(*args)
    except Exception:  # noqa: BLE001 - the loop goes on, as _http.c's does
        traceback.print_exc()
        return False, None


class Server:
    """Server(listen_fd, on_request, on_wake, on_lane, max_body=no limit, header_timeout_ms=0,
    body_timeout_ms=0, idle_timeout_ms=0): HTTP/1.1 on a listening socket (0: no timeout)."""

    def __init__(self, listen_fd: int, on_request, on_wake, on_lane, max_body: int = 2 ** 63,
                 header_timeout_ms: int = 0, body_timeout_ms: int = 0, idle_timeout_ms: int = 0) -> None:
        self._listener = socket.socket(fileno=listen_fd)  # detached, not closed, when the loop ends
        self._listener.setblocking(False)
        self._on_request, self._on_wake, self._on_lane = on_request, on_wake, on_lane
        self._max_body = max_body
        self._timeouts = {IDLE: idle_timeout_ms, HEAD: header_timeout_ms, BODY: body_timeout_ms, BUSY: 0,
                          WRITING: idle_timeout_ms}
        shortest = min((ms for ms in self._timeouts.values() if ms), default=0)
        self._tick = min(max(shortest // 4, 10), 1000) if shortest else 0  # a quarter, within [10 ms, 1 s]
        self._next_sweep = 0
        self._lanes: dict[bytes, int] = {}
        self._conns: dict[int, Conn] = {}  # by token
        self._tokens = itertools.count(1)
        self._ready: list[int] = []  # tokens of connections answered since they were last written
        self._wake_in, self._wake_out = socket.socketpair()
        for end in (self._wake_in, self._wake_out):
            end.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_in, selectors.EVENT_READ, 0)
        self._accept_paused = False
        self._stopping = False

    # ---- the interface of _http.c

    def serve(self) -> None:
        """Run the loop in this thread until stop()."""
        try:
            while not self._stopping:
                for key, mask in self._selector.select(self._tick / 1000 if self._tick else None):
                    if self._stopping:
                        break
                    self._event(key.data, mask)
                    self._answer_ready()
                if self._tick:
                    self._sweep()
        finally:
            for conn in list(self._conns.values()):
                self._close(conn)
            self._selector.close()
            self._listener.detach()
            self._wake_in.close()
            self._wake_out.close()

    def respond(self, token: int, data, close: bool) -> None:
        """Queue a request's whole answer (the loop's thread only)."""
        conn = self._conns.get(token)
        if conn is not None and conn.busy:  # else the client went away: the answer is dropped
            conn.busy = False
            conn.closing |= bool(close)
            conn.out += data
            self._ready.append(token)

    def add_lane(self, target: bytes, lane_id: int) -> None:
        """Read dense predict bodies POSTed to `target` here (at most 64 lanes)."""
        if len(self._lanes) < MAX_LANES:
            self._lanes[bytes(target)] = lane_id

    def wake(self) -> None:
        """Make the loop call on_wake (any thread)."""
        try:
            self._wake_out.send(b"\0")
        except (BlockingIOError, OSError):  # already woken (the pipe is full), or stopped
            pass

    def stop(self) -> None:
        """End serve() and close every connection (any thread)."""
        self._stopping = True
        self.wake()

    # ---- the loop

    def _event(self, token, mask: int) -> None:
        if token is None:
            self._accept_all()
        elif token == 0:
            try:
                while self._wake_in.recv(4096):
                    pass
            except BlockingIOError:
                pass
            _call(self._on_wake)
        else:
            conn = self._conns.get(token)
            if conn is not None and mask & selectors.EVENT_WRITE and self._flush(conn):
                self._advance(conn)
            conn = self._conns.get(token)  # unless that closed it
            if conn is not None and mask & selectors.EVENT_READ:
                self._receive(conn)

    def _accept_all(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as error:  # out of file descriptors: accept again once a connection closes
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._selector.unregister(self._listener)
                    self._accept_paused = True
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK wait when pipelining
            token = next(self._tokens)
            deadline = _now_ms() + self._timeouts[IDLE] if self._timeouts[IDLE] else 0
            self._conns[token] = Conn(sock, token, deadline)
            self._selector.register(sock, selectors.EVENT_READ, token)

    def _close(self, conn: Conn) -> None:
        if self._accept_paused:
            self._selector.register(self._listener, selectors.EVENT_READ, None)
            self._accept_paused = False
        del self._conns[conn.token]
        if conn.events:
            self._selector.unregister(conn.sock)
        conn.sock.close()

    def _receive(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset: nobody is left to answer
            self._close(conn)
            return
        if not data:
            conn.eof = True
        conn.inbox += data
        self._advance(conn)

    def _flush(self, conn: Conn) -> bool:
        """Write what is queued; True while the connection is open, False once it is closed."""
        while conn.sent < len(conn.out):
            try:
                sent = conn.sock.send(memoryview(conn.out)[conn.sent:])
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                self._close(conn)
                return False
            conn.sent += sent
            if conn.phase == WRITING and self._timeouts[WRITING]:
                conn.deadline = _now_ms() + self._timeouts[WRITING]
        conn.out = bytearray()
        conn.sent = 0
        if conn.closing:
            self._close(conn)
            return False
        return True

    def _set_events(self, conn: Conn) -> None:
        reading = not conn.eof and not conn.closing and not (conn.busy and len(conn.inbox) >= PAUSE_BYTES)
        events = _EVENTS[reading + 2 * (conn.sent < len(conn.out))]
        if events != conn.events:
            if not conn.events:
                self._selector.register(conn.sock, events, conn.token)
            elif not events:
                self._selector.unregister(conn.sock)
            else:
                self._selector.modify(conn.sock, events, conn.token)
            conn.events = events

    def _arm(self, conn: Conn, head_done: bool) -> None:
        """Start timing the connection's phase if it changed."""
        phase = (BUSY if conn.busy else WRITING if conn.sent < len(conn.out) else BODY if head_done
                 else HEAD if conn.inbox else IDLE)
        if phase != conn.phase:
            conn.phase = phase
            conn.deadline = _now_ms() + self._timeouts[phase] if self._timeouts[phase] else 0

    def _advance(self, conn: Conn) -> None:
        """Hand the connection's next whole request to Python, unless one is already there."""
        head_done = False
        while not conn.busy and not conn.closing:
            blank = 0  # empty lines before a request are allowed
            while conn.inbox.startswith(b"\r\n", blank):
                blank += 2
            if blank:
                del conn.inbox[:blank]
            r = Request()
            whole = parse(conn, r, self._max_body)
            head_done = r.head_done and whole == 0
            if whole < 0:
                self._refuse(conn, ENTITY_TOO_LARGE if whole == TOO_LARGE else BAD_REQUEST)
            elif whole == 0:
                if r.head_done and r.expect_continue and not conn.continued:
                    conn.out += CONTINUE
                    conn.continued = True
                if conn.eof:
                    if conn.inbox:
                        self._refuse(conn, BAD_REQUEST)  # cut short
                    else:
                        conn.closing = True
                break
            else:
                conn.continued = False
                conn.chunk_raw = 0
                conn.chunk_body = bytearray()
                del conn.inbox[:r.size]
                if not self._dispatch(conn, r):
                    self._close(conn)
                    return
        if self._flush(conn):
            self._arm(conn, head_done)
            self._set_events(conn)

    @staticmethod
    def _refuse(conn: Conn, answer: bytes) -> None:
        conn.out += answer
        conn.closing = True

    def _dispatch(self, conn: Conn, r: Request) -> bool:
        """The request to on_lane or on_request; False if on_request raised (the connection is closed)."""
        conn.busy = True
        lane = self._lanes.get(r.target) if not r.gzip and r.method == b"POST" and self._lanes else None
        if lane is not None:
            body = read_body(r.body)
            if body is not None:
                called, taken = _call(self._on_lane, conn.token, lane, *body, r.keep_alive)
                if called and taken:
                    return True
        return _call(self._on_request, conn.token, r.method.decode("latin-1"), r.target.decode("latin-1"), r.body,
                     r.keep_alive, r.gzip)[0]

    def _answer_ready(self) -> None:
        """Write the answers Python gave since the last call, and move each connection on."""
        i = 0
        while i < len(self._ready):  # _advance may add more
            conn = self._conns.get(self._ready[i])
            if conn is not None:
                self._advance(conn)
            i += 1
        self._ready.clear()

    def _sweep(self) -> None:
        """Close the connections whose phase timed out: 408 to a client in the middle of a request."""
        now = _now_ms()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._tick
        for conn in [conn for conn in self._conns.values() if conn.deadline and now >= conn.deadline]:
            if conn.phase not in (HEAD, BODY):
                self._close(conn)
                continue
            self._refuse(conn, REQUEST_TIMEOUT)
            if self._flush(conn):
                self._close(conn)  # a client that does not take the 408 is closed all the same
