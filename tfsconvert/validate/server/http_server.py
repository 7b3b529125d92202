"""The REST front end's transport: HTTP/1.1 with keep-alive and pipelining on one asyncio event
loop in its own thread, requests parsed by httptools (llhttp).

A request never waits in a thread of its own: the loop parses it, routes it (RestApi) and starts
its model run, then serves other connections until the run's outputs come back. A run goes to the
batch scheduler (`submit`) when the version is batched, else to a pool of
`--rest_api_num_threads` workers (TF Serving's default: 4 x schedulable CPUs, spec §4.1), so
unbatched runs still overlap as they do in TF Serving.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.client import responses

import httptools

from tfsconvert.serving.hardware import schedulable_cpus
from tfsconvert.validate.server import core, logs
from tfsconvert.validate.server.rest import Reply, RestApi

_LISTEN_BACKLOG = 128  # clients that connect all at once must not be reset
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"  # curl waits for it before sending a body over 1 kB
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def default_workers() -> int:
    return 4 * schedulable_cpus()


class HttpServer:
    """Serves `api` on a bound socket from a daemon thread until `shutdown()`."""

    def __init__(self, sock: socket.socket, api: RestApi, workers: int) -> None:
        self.sock, self.api = sock, api
        self.server_address = sock.getsockname()
        self.loop = asyncio.new_event_loop()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="rest_worker")
        self._ended_runs: deque[tuple] = deque()  # (done, outputs, error) of runs, for the loop
        self.connections: set[_Connection] = set()  # open ones, closed at shutdown
        self._woken = False
        serving = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(serving,), name="rest", daemon=True)
        self._thread.start()
        serving.wait()

    def _serve(self, serving: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(self.loop.create_server(lambda: _Connection(self), sock=self.sock,
                                                                      backlog=_LISTEN_BACKLOG))
        serving.set()
        self.loop.run_forever()
        server.close()  # the listening socket, then every open connection
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    def shutdown(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def start_run(self, run: core.Run, done) -> None:
        """Start `run` off the loop; `done(outputs, error)` is called on the loop when it ends. A
        run the batch queue refuses raises its ServingError here."""
        back = partial(self._ended, done)
        submit = getattr(run.servable, "submit", None)
        if submit is not None:
            submit(run.signature_name, run.feeds, back)
        else:
            self._pool.submit(_run_now, run, back)

    def _ended(self, done, outputs, error) -> None:
        """From the thread a run ended on: queue its answer. The loop is woken once for every run
        that ends before it gets to them (a whole batch, usually): each wake-up is a syscall."""
        self._ended_runs.append((done, outputs, error))
        if not self._woken:
            self._woken = True
            try:
                self.loop.call_soon_threadsafe(self._answer_ended)
            except RuntimeError:  # the loop is closed (shut down): no connection is left to answer
                pass

    def _answer_ended(self) -> None:
        self._woken = False  # before draining: a run that ends from here on wakes the loop again
        while self._ended_runs:
            done, outputs, error = self._ended_runs.popleft()
            done(outputs, error)


def _run_now(run: core.Run, back) -> None:
    try:
        outputs = run.servable.run(run.signature_name, run.feeds)
    except Exception as error:  # noqa: BLE001 - handed to the reply, whatever it is
        back(None, error)
    else:
        back(outputs, None)


class _Connection(asyncio.Protocol):
    """One client connection: requests are answered in the order they arrived."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.waiting: deque[tuple] = deque()  # parsed requests not yet answered
        self.running = False  # a request's model run is out; later requests wait for its answer
        self._url, self._body, self._gzip, self._continue = bytearray(), [], False, False
        self._partial = False  # a request has begun and not ended
        self._ending = False  # the client has stopped sending: close once every answer is written

    def connection_made(self, transport: asyncio.Transport) -> None:
        # Head and body leave in one write, but a pipelined client's next request must not wait for
        # a delayed ACK either (asyncio sets this only on sockets made with proto=IPPROTO_TCP).
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:  # also an Upgrade: TF Serving speaks plain HTTP/1.1 only
            self._refuse()

    def eof_received(self) -> bool:
        """The client has stopped sending: a request cut short (a body under its Content-Length) is
        refused; otherwise the connection stays half-open until the answers owed are written."""
        if self._partial:
            self._refuse()
            return False
        self._ending = True
        return self.running

    def _refuse(self) -> None:
        if self.transport is not None:
            self.transport.write(_BAD_REQUEST)
            self.transport.close()
            self.transport = None

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url, self._body, self._gzip, self._continue = bytearray(), [], False, False
        self._partial = True

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-encoding":
            self._gzip = b"gzip" in value.lower()
        elif name == b"expect":
            self._continue = value.lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        if self._continue and self.transport is not None:
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._partial = False
        body = b"".join(self._body)
        if self._gzip:
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError):
                pass  # left as it is: the JSON parser reports it
        method = self.parser.get_method().decode("latin-1")
        self.waiting.append((method, self._url.decode("latin-1"), body, self.parser.should_keep_alive()))
        if not self.running:
            self._answer_waiting()

    # answers

    def _answer_waiting(self) -> None:
        while self.waiting and self.transport is not None:
            method, target, body, keep_alive = self.waiting.popleft()
            outcome = self.server.api.route(method, target, body)
            if isinstance(outcome, core.Run):
                try:
                    self.server.start_run(outcome, partial(self._ran, outcome, method, keep_alive))
                except Exception as error:  # noqa: BLE001 - refused by the batch queue: answered at once
                    outcome = self.server.api.finish(outcome, None, error)
                else:
                    self.running = True
                    return
            self._reply(outcome, method, keep_alive)
        if self._ending and self.transport is not None:
            self.transport.close()
            self.transport = None

    def _ran(self, run: core.Run, method: str, keep_alive: bool, outputs, error) -> None:
        self.running = False
        self._reply(self.server.api.finish(run, outputs, error), method, keep_alive)
        self._answer_waiting()

    def _reply(self, reply: Reply, method: str, keep_alive: bool) -> None:
        if self.transport is None:
            return
        status, payload, content_type = reply
        closing = "" if keep_alive else "Connection: close\r\n"
        head = (f"HTTP/1.1 {status} {responses.get(status, '')}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\n{closing}\r\n")
        self.transport.write(head.encode("latin-1") + (b"" if method == "HEAD" else payload))
        if not keep_alive:
            self.transport.close()
            self.transport = None


def start(host: str, port: int, api: RestApi, workers: int) -> HttpServer | None:
    """Bind and serve; None (after TF Serving's two log lines) if the port is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        logs.error("util/net_http/server/internal/evhttp_server.cc:245", f"Couldn't bind to port {port}")
        logs.error("model_servers/server.cc:460", f"Failed to start HTTP Server at localhost:{port}")
        return None
    return HttpServer(sock, api, workers)
