"""The REST front end: HTTP/1.1 with keep-alive and pipelining, served by the C transport in
`_http.c` (one epoll loop in its own thread), or its pure-Python twin `_http_py.py` where the C module
is not built or TFSCONVERT_PURE_PYTHON=1 (tfsconvert/accel.py), requests routed here in Python.

A request never waits in a thread of its own: the loop hands it over (`_request`), it is routed
(RestApi) and its model run started, and the loop serves other connections until the run's
outputs come back. Once a predict path has been asked for, it is a lane: the transport reads the
common body there (one dense tensor of numbers) itself, and `_lane` only starts its run, with no
JSON parsing or routing in Python; any other body still comes to `_request`. A run goes to the
batch scheduler (`submit`) when the version is batched, else to a pool of
`--rest_api_num_threads` workers (TF Serving's default: 4 x schedulable CPUs, docs/tf-serving.md §4.1), so
unbatched runs still overlap as they do in TF Serving.

Limits (`Limits`, from the `--rest_api_*` flags): a body over `max_body_bytes` is answered 413, in C
before it is read, or here once a gzip body inflates past it; gzip bodies are inflated on a
worker, never on the loop. The transport enforces the header, body and idle timeouts (_http.c).
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.parse
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.client import responses

from tfsconvert import accel
from tfsconvert.server.hardware import schedulable_cpus
from tfsconvert.server import core, logs, monitoring
from tfsconvert.server.flags import Limits
from tfsconvert.server.rest import JSON_TYPE, Reply, RestApi, model_and_api
from tfsconvert.server.status import HTTP_STATUS

_LISTEN_BACKLOG = 128  # clients that connect all at once must not be reset
_MAX_LANES = 64  # as _http.c keeps
# Reason phrases as TF Serving's HTTP server (libevent) and our C transport write them, on every
# Python: 3.13 renamed these four after RFC 9110 ("Content Too Large", ...).
_REASONS = {**responses, 413: "Request Entity Too Large", 414: "Request-URI Too Long",
            416: "Requested Range Not Satisfiable", 422: "Unprocessable Entity"}
_http = accel.load("tfsconvert.server", "_http")


def default_workers() -> int:
    return 4 * schedulable_cpus()


class _TooLarge(Exception):
    pass


def inflate(body: bytes, limit: int) -> bytes:
    """A gzip (or zlib) body inflated, at most `limit` bytes of it (_TooLarge past that); a body that
    does not inflate is returned as it is, for the JSON parser to report."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # either header
    try:
        data = inflater.decompress(body, limit + 1)  # zlib lets other threads run meanwhile
    except zlib.error:
        return body
    if len(data) > limit:
        raise _TooLarge
    return data


class HttpServer:
    """Serves `api` on a bound socket from a daemon thread until `shutdown()`."""

    def __init__(self, sock: socket.socket, api: RestApi, workers: int, limits: Limits = Limits(),
                 metrics_path: str | None = None) -> None:
        self.sock, self.api, self.limits, self.metrics_path = sock, api, limits, metrics_path
        self._timed: dict[int, tuple] = {}  # token -> (model name, API, start) while the Prometheus page is on
        self.server_address = sock.getsockname()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="rest_worker")
        self._ended_runs: deque[tuple] = deque()  # (token, answer, close) made off the loop, for the loop
        self._woken = False
        self._lanes: dict[str, int] = {}  # target -> lane id, an index of _lane_keys
        self._lane_keys: list[tuple] = []  # (name, version, label)
        sock.listen(_LISTEN_BACKLOG)
        self._transport = _http.Server(sock.fileno(), self._request, self._answer_ended, self._lane,
                                       limits.max_body_bytes, limits.header_timeout_ms, limits.body_timeout_ms,
                                       limits.idle_timeout_ms)
        self._thread = threading.Thread(target=self._transport.serve, name="rest", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Close every connection and the listening socket; runs that end later are dropped."""
        self._transport.stop()
        self._thread.join(5)
        self.sock.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _request(self, token: int, method: str, target: str, body: bytes, keep_alive: bool, gzipped: bool) -> None:
        """On the loop: answer the request now, or once its model run ends. A gzip body goes to a
        worker, which inflates and routes it."""
        if monitoring.metrics is not None:
            if method == "GET" and urllib.parse.urlsplit(target).path == self.metrics_path:
                self._reply(token, (200, monitoring.metrics.page().encode(), "text/plain; version=0.0.4"), method,
                            keep_alive)
                return
            self._timed[token] = (*model_and_api(method, target), time.monotonic())
        if gzipped:
            self._pool.submit(self._inflated, token, method, target, body, keep_alive)
            return
        if method == "POST" and target not in self._lanes:
            self._open_lane(target)
        outcome = self.api.route(method, target, body)
        if isinstance(outcome, core.Run):
            self._start(token, outcome, method, keep_alive, self._reply)
        else:
            self._reply(token, outcome, method, keep_alive)

    def _inflated(self, token: int, method: str, target: str, body: bytes, keep_alive: bool) -> None:
        """On a worker: a gzip request, answered through the loop (as an ended run is)."""
        try:
            outcome = self.api.route(method, target, inflate(body, self.limits.max_body_bytes))
        except _TooLarge:
            outcome = 413, (f'{{"error": "The request body inflates to more than {self.limits.max_body_bytes} '
                            'bytes (--rest_api_max_body_bytes)"}').encode(), JSON_TYPE
        if isinstance(outcome, core.Run):
            self._start(token, outcome, method, keep_alive, self._queue)
        else:
            self._queue(token, outcome, method, keep_alive)

    def _open_lane(self, target: str) -> None:
        key = self.api.predict_target(target)
        if key is not None and len(self._lane_keys) < _MAX_LANES:
            self._lanes[target] = len(self._lane_keys)
            self._lane_keys.append(key)
            self._transport.add_lane(target.encode("latin-1"), self._lanes[target])

    def _lane(self, token: int, lane: int, rows: bool, signature_name: str | None, alias: str | None,
              values: bytes, shape: tuple[int, ...], keep_alive: bool) -> bool:
        """On the loop: a lane's dense predict body, as _http.c read it. False leaves it to `_request`."""
        run = self.api.dense_predict(self._lane_keys[lane], rows, signature_name, alias, values, shape)
        if run is None:
            return False
        if monitoring.metrics is not None:
            self._timed[token] = (self._lane_keys[lane][0], "predict", time.monotonic())
        self._start(token, run, "POST", keep_alive, self._reply)
        return True

    def _start(self, token: int, run: core.Run, method: str, keep_alive: bool, reply) -> None:
        """Start `run` off the loop: in the batch scheduler (`submit`) or the worker pool. A run the
        batch queue refuses is answered at once, by `reply` (`_reply` on the loop, else `_queue`)."""
        done = partial(self._ended, token, run, method, keep_alive)
        submit = getattr(run.servable, "submit", None)
        try:
            if submit is not None:
                submit(run.signature_name, run.feeds, done)
            else:
                self._pool.submit(_run_now, run, done)
        except Exception as error:  # noqa: BLE001 - a ServingError of the batch queue
            reply(token, self.api.finish(run, None, error), method, keep_alive)

    def _reply(self, token: int, reply: Reply, method: str, keep_alive: bool) -> None:
        if self._timed:
            self._record(token, reply[0])
        self._transport.respond(token, _answer(reply, method, keep_alive), not keep_alive)

    def _record(self, token: int, http_status: int) -> None:
        """Count the request for the Prometheus page (its status code read back from the HTTP status)."""
        timed = self._timed.pop(token, None)
        if timed is not None and monitoring.metrics is not None:
            model_name, api, started = timed
            code = next((code for code, status in HTTP_STATUS.items() if status == http_status), "UNKNOWN")
            monitoring.metrics.record(model_name, api, "REST", code, (time.monotonic() - started) * 1e6)

    def _ended(self, token: int, run: core.Run, method: str, keep_alive: bool, outputs, error) -> None:
        """On the thread the run ended on: make its answer there (the loop only sends it)."""
        self._queue(token, self.api.finish(run, outputs, error), method, keep_alive)

    def _queue(self, token: int, reply: Reply, method: str, keep_alive: bool) -> None:
        """Off the loop: queue an answer for the loop to send. The loop is woken once for every
        answer queued before it gets to them (a whole batch, usually): each wake-up is a syscall."""
        if self._timed:
            self._record(token, reply[0])
        self._ended_runs.append((token, _answer(reply, method, keep_alive), not keep_alive))
        if not self._woken:
            self._woken = True
            self._transport.wake()

    def _answer_ended(self) -> None:
        self._woken = False  # before draining: a run that ends from here on wakes the loop again
        while self._ended_runs:
            self._transport.respond(*self._ended_runs.popleft())


def _answer(reply: Reply, method: str, keep_alive: bool) -> bytes:
    """The whole HTTP answer: head, and the body unless the request was HEAD."""
    status, payload, content_type = reply
    closing = "" if keep_alive else "Connection: close\r\n"
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\n{closing}\r\n")
    return head.encode("latin-1") + (b"" if method == "HEAD" else payload)


def _run_now(run: core.Run, back) -> None:
    try:
        outputs = run.servable.run(run.signature_name, run.feeds)
    except Exception as error:  # noqa: BLE001 - handed to the reply, whatever it is
        back(None, error)
    else:
        back(outputs, None)


def start(host: str, port: int, api: RestApi, workers: int, limits: Limits = Limits(),
          metrics_path: str | None = None) -> HttpServer | None:
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
    return HttpServer(sock, api, workers, limits, metrics_path)
