"""`python -m tfsconvert.server.jail MEMORY_MB CPU_SECONDS OPEN_FILES [--expose PATH=PORT ...] -- PROGRAM ARGS...`

Applies the sandbox's resource limits to itself, asks the kernel to kill it when its parent dies,
then becomes PROGRAM (exec). Done in a fresh process rather than in a `preexec_fn`, which is not
safe in a parent that runs threads (a TensorFlow process always does).

With `--expose` (inside a network namespace) it forks instead: the child becomes PROGRAM, the
parent serves each loopback PORT at the Unix socket PATH (tfsconvert.server.relay) until the
child ends, then exits with the child's status (128 + N for signal N, as bwrap reports it).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import threading

from tfsconvert.server import relay

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # kept across exec
    if os.getppid() != parent:  # the parent died before prctl: do not start an orphan
        os._exit(1)


def _serve_until_exit(child: int, doors: list[tuple[str, int]]) -> int:
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # the group's stop signal is the child's
        signal.signal(signum, signal.SIG_IGN)
    ended = threading.Event()
    for path, port in doors:
        threading.Thread(target=relay.expose, args=(path, port, lambda: not ended.is_set()), daemon=True).start()
    _, status = os.waitpid(child, 0)
    ended.set()
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def main(argv: list[str]) -> None:
    memory_mb, cpu_seconds, open_files = (int(value) for value in argv[:3])
    split = argv.index("--")
    options, program = argv[3:split], argv[split + 1:]
    doors = [(spec.rpartition("=")[0], int(spec.rpartition("=")[2])) for spec in options[1::2]]
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))  # SIGXCPU, then SIGKILL
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _die_with_parent(os.getppid())
    if doors:
        parent = os.getpid()
        child = os.fork()
        if child:
            os._exit(_serve_until_exit(child, doors))
        _die_with_parent(parent)
    os.execv(program[0], program)


if __name__ == "__main__":
    main(sys.argv[1:])
