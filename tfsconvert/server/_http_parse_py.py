"""HTTP/1.1 request parsing for the pure-Python transport (`_http_py.py`), as `_http.c` parses:
the request line, headers, a Content-Length or chunked body, Expect: 100-continue and keep-alive.
A connection's state (`Conn`) lives here too, since a chunked body is decoded as it arrives."""

from __future__ import annotations

import re
import selectors
import socket

MAX_HEAD = 64 * 1024  # request line and headers
TOO_LARGE = -2  # parse: the body is over max_body
IDLE, HEAD, BODY, BUSY, WRITING = range(5)  # what a connection waits for: Conn.phase

_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_REQUEST_LINE = re.compile(_TCHAR + rb"+ [\x21-\x7e\x80-\xff]+ HTTP/1\.[01]")
_HEADER = re.compile(rb"(" + _TCHAR + rb"+):([\t\x20-\x7e\x80-\xff]*)")
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]*")
_CHUNK_EXTENSION = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")


class Conn:
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


class Request:
    __slots__ = ("method", "target", "body", "size", "keep_alive", "gzip", "expect_continue", "head_done")

    def __init__(self) -> None:
        self.method = self.target = self.body = b""
        self.size = 0  # bytes of the buffer the request takes
        self.keep_alive = self.gzip = self.expect_continue = self.head_done = False


def _parse_chunked(data: bytearray, start: int, conn: Conn, max_body: int) -> int | tuple[int]:
    """A chunked body from `start`: (raw bytes it takes,) when whole, 0 if more is to come, -1 if
    malformed, TOO_LARGE past `max_body` bytes. Whole chunks are decoded into conn.chunk_body as
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
            return TOO_LARGE
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


def parse(conn: Conn, r: Request, max_body: int) -> int:
    """The request at the start of conn.inbox: 1 if whole, 0 if more is to come, -1 if malformed,
    TOO_LARGE if its body is over `max_body`."""
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
        return TOO_LARGE
    if len(data) - head < length:
        return 0
    r.body = bytes(data[head:head + length])
    r.size = head + length
    return 1
