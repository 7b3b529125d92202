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
import re
import selectors
import socket
import time
import traceback

from tfsconvert.server._dense_json_py import read_body

__all__ = ["Server"]

MAX_HEAD = 64 * 1024  # request line and headers
READ_SIZE = 64 * 1024
PAUSE_BYTES = 4 * 1024 * 1024  # a client pipelining this much waits for its answers
MAX_LANES = 64
_TOO_LARGE = -2  # _parse: the body is over max_body

BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
ENTITY_TOO_LARGE = b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_REQUEST_LINE = re.compile(_TCHAR + rb"+ [\x21-\x7e\x80-\xff]+ HTTP/1\.[01]")
_HEADER = re.compile(rb"(" + _TCHAR + rb"+):([\t\x20-\x7e\x80-\xff]*)")
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]*")
_CHUNK_EXTENSION = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
IDLE, HEAD, BODY, BUSY, WRITING = range(5)  # what a connection waits for: _Conn.phase
_EVENTS = {0: 0, 1: selectors.EVENT_READ, 2: selectors.EVENT_WRITE, 3: selectors.EVENT_READ | selectors.EVENT_WRITE}


def _now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class _Conn:
    __slots__ = ("sock", "token", "events", "inbox", "out", "sent", "busy", "closing", "eof", "continued",
                 "chunk_raw", "chunk_body", "phase", "deadline")

    def __init__(self, sock: socket.socket, token: int, deadline: int) -> None:
        self.sock, self.token, self.events = sock, token, selectors.EVENT_READ
        self.inbox, self.out = bytearray(), bytearray()  # received and not parsed; to send
        self.sent = 0  # of out
        self.busy = self.closing = self.eof = self.continued = False
        self.chunk_raw = 0  # of a chunked body being received: bytes after the head parsed so far
        self.chunk_body = bytearray()  # and the body decoded from them
        self.phase, self.deadline = IDLE, deadline


class _Request:
    __slots__ = ("method", "target", "body", "size", "keep_alive", "gzip", "expect_continue", "head_done")

    def __init__(self) -> None:
        self.method = self.target = self.body = b""
        self.size = 0  # bytes of the buffer the request takes
        self.keep_alive = self.gzip = self.expect_continue = self.head_done = False


def _parse_chunked(data: bytearray, start: int, conn: _Conn, max_body: int) -> int | tuple[int]:
    """A chunked body from `start`: (raw bytes it takes,) when whole, 0 if more is to come, -1 if
    malformed, _TOO_LARGE past `max_body` bytes. Whole chunks are decoded into conn.chunk_body as
    they arrive; conn.chunk_raw says how far, so no chunk is parsed twice."""
    end = len(data)
    i = start + conn.chunk_raw
    while True:
        digits = _CHUNK_SIZE.match(data, i).end() - i
        if digits > 15:
            return -1
        if i + digits == end:
            return 0
        if not digits:
            return -1
        size = int(data[i:i + digits], 16)
        i += digits
        i = _CHUNK_EXTENSION.match(data, i).end()  # chunk extensions
        if i == end:
            return 0
        if data[i] != 13:  # '\r'
            return -1
        if i + 1 >= end:
            return 0
        if data[i + 1] != 10:
            return -1
        i += 2
        if size == 0:
            break
        if size > max_body - len(conn.chunk_body):
            return _TOO_LARGE
        if end - i < size + 2:
            return 0
        if data[i + size:i + size + 2] != b"\r\n":
            return -1
        conn.chunk_body += data[i:i + size]
        i += size + 2
        conn.chunk_raw = i - start
    while True:  # trailer fields, then an empty line
        line_end = data.find(b"\r\n", i)
        if line_end < 0:
            return 0
        if data.find(b"\n", i, line_end) >= 0:
            return -1  # a bare LF
        empty = line_end == i
        i = line_end + 2
        if empty:
            return (i - start,)


def _parse(conn: _Conn, r: _Request, max_body: int) -> int:
    """The request at the start of conn.inbox: 1 if whole, 0 if more is to come, -1 if malformed,
    _TOO_LARGE if its body is over `max_body`."""
    data = conn.inbox
    searched = min(len(data), MAX_HEAD + 4)
    head_end = data.find(b"\r\n\r\n", 0, searched)
    head_bytes = head_end + 4 if head_end >= 0 else searched
    if data.count(b"\n", 0, head_bytes) != data.count(b"\r\n", 0, head_bytes):
        return -1  # a bare LF ends no line: refused at once
    if head_end < 0:
        return -1 if len(data) >= MAX_HEAD + 4 else 0
    lines = bytes(data[:head_end]).split(b"\r\n")
    if not _REQUEST_LINE.fullmatch(lines[0]):
        return -1
    r.method, r.target, version = lines[0].split(b" ")
    http11 = version.endswith(b"1")
    close = keep = chunked = False
    length = None
    for line in lines[1:]:
        match = _HEADER.fullmatch(line)
        if not match:
            return -1
        name, value = match.group(1).lower(), match.group(2).strip(b" \t").lower()
        if name == b"content-length":
            if not value or len(value) > 15 or not value.isdigit():
                return -1
            if length is not None and int(value) != length:
                return -1
            length = int(value)
        elif name == b"transfer-encoding":
            if value != b"chunked":
                return -1
            chunked = True
        elif name == b"connection":
            close |= b"close" in value
            keep |= b"keep-alive" in value
        elif name == b"expect":
            r.expect_continue = value == b"100-continue"
        elif name == b"content-encoding":
            r.gzip = b"gzip" in value
    if chunked and length is not None:
        return -1  # ambiguous framing (request smuggling)
    r.expect_continue &= http11  # HTTP/1.0 clients know no 100 Continue
    r.keep_alive = not close if http11 else keep and not close
    head = head_end + 4
    r.head_done = True
    if chunked:
        whole = _parse_chunked(data, head, conn, max_body)
        if not isinstance(whole, tuple):
            return whole
        r.body = bytes(conn.chunk_body)
        r.size = head + whole[0]
        return 1
    length = length or 0
    if length > max_body:
        return _TOO_LARGE
    if len(data) - head < length:
        return 0
    r.body = bytes(data[head:head + length])
    r.size = head + length
    return 1


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
        self._conns: dict[int, _Conn] = {}  # by token
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
            self._conns[token] = _Conn(sock, token, deadline)
            self._selector.register(sock, selectors.EVENT_READ, token)

    def _close(self, conn: _Conn) -> None:
        if self._accept_paused:
            self._selector.register(self._listener, selectors.EVENT_READ, None)
            self._accept_paused = False
        del self._conns[conn.token]
        if conn.events:
            self._selector.unregister(conn.sock)
        conn.sock.close()

    def _receive(self, conn: _Conn) -> None:
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

    def _flush(self, conn: _Conn) -> bool:
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

    def _set_events(self, conn: _Conn) -> None:
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

    def _arm(self, conn: _Conn, head_done: bool) -> None:
        """Start timing the connection's phase if it changed."""
        phase = (BUSY if conn.busy else WRITING if conn.sent < len(conn.out) else BODY if head_done
                 else HEAD if conn.inbox else IDLE)
        if phase != conn.phase:
            conn.phase = phase
            conn.deadline = _now_ms() + self._timeouts[phase] if self._timeouts[phase] else 0

    def _advance(self, conn: _Conn) -> None:
        """Hand the connection's next whole request to Python, unless one is already there."""
        head_done = False
        while not conn.busy and not conn.closing:
            blank = 0  # empty lines before a request are allowed
            while conn.inbox.startswith(b"\r\n", blank):
                blank += 2
            if blank:
                del conn.inbox[:blank]
            r = _Request()
            whole = _parse(conn, r, self._max_body)
            head_done = r.head_done and whole == 0
            if whole < 0:
                self._refuse(conn, ENTITY_TOO_LARGE if whole == _TOO_LARGE else BAD_REQUEST)
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
    def _refuse(conn: _Conn, answer: bytes) -> None:
        conn.out += answer
        conn.closing = True

    def _dispatch(self, conn: _Conn, r: _Request) -> bool:
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
