"""Log lines on stderr in TensorFlow's format, so tools that grep TF Serving's logs work on ours."""

from __future__ import annotations

import datetime
import sys
import threading

_lock = threading.Lock()


def log(level: str, where: str, message: str) -> None:
    """`2024-05-01 12:00:00.123456: I tensorflow_serving/<where>] message` (level I, W or E)."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")
    with _lock:
        sys.stderr.write(f"{stamp}: {level} tensorflow_serving/{where}] {message}\n")
        sys.stderr.flush()


def info(where: str, message: str) -> None:
    log("I", where, message)


def warning(where: str, message: str) -> None:
    log("W", where, message)


def error(where: str, message: str) -> None:
    log("E", where, message)
