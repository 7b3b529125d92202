"""Byte relays: the doors into a sandbox whose network namespace has only its own loopback.

Inside the namespace, `expose` waits until the server's TCP port accepts, then serves a Unix
socket in a directory shared with the host. Outside, `Relay` listens on a host loopback port and
forwards each connection to that Unix socket. Bytes pass unchanged, so clients speak real HTTP
and gRPC. Standard library only.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Callable

_CHUNK = 1 << 16


def _pump(source: socket.socket, target: socket.socket, done: Callable[[], None]) -> None:
    try:
        while data := source.recv(_CHUNK):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        done()


def splice(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways in two daemon threads; both sockets are closed when both ways end."""
    remaining = [2]
    lock = threading.Lock()

    def done() -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            client.close()
            upstream.close()

    for source, target in ((client, upstream), (upstream, client)):
        threading.Thread(target=_pump, args=(source, target, done), daemon=True).start()


def _accept_loop(listener: socket.socket, connect: Callable[[], socket.socket]) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:  # the listener was closed: stop
            return
        try:
            upstream = connect()
        except OSError:
            client.close()
            continue
        splice(client, upstream)


def expose(path: str, port: int, alive: Callable[[], bool]) -> None:
    """Inside the sandbox: once 127.0.0.1:`port` accepts, serve it at the Unix socket `path`
    (bound under a temporary name and renamed, so the path appears only when it answers)."""
    while alive():
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    else:
        return
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path + ".tmp")
    listener.listen(128)
    os.rename(path + ".tmp", path)
    _accept_loop(listener, lambda: socket.create_connection(("127.0.0.1", port)))


class Relay:
    """On the host: a loopback TCP port that forwards every connection to a Unix socket."""

    def __init__(self, unix_path: str) -> None:
        self.unix_path = unix_path
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=_accept_loop, args=(self._listener, self._connect), daemon=True).start()

    def _connect(self) -> socket.socket:
        upstream = socket.socket(socket.AF_UNIX)
        try:
            upstream.connect(self.unix_path)
        except OSError:
            upstream.close()
            raise
        return upstream

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
