"""Keep native libraries' start-up chatter off the user's terminal."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

DEBUG_ENV = "TFSCONVERT_DEBUG"


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Silence file descriptor 2 while TensorFlow starts (unless --debug).

    TensorFlow's C++ lines ("oneDNN custom operations are on", "failed call to cuInit") are
    written before its logging is initialised, so TF_CPP_MIN_LOG_LEVEL cannot stop them.
    Python exceptions still propagate; only raw writes to fd 2 are dropped.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get(DEBUG_ENV):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
