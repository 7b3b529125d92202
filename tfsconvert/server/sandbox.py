"""Serve model versions (one, or many through a model config file) in an isolated child process,
and always stop it.

The child gets a read-only staged copy of the version (regular files only), a scrubbed environment,
no stdin, resource limits (address space, CPU time, open files), and, where bubblewrap can create
them, its own namespaces (tfsconvert.server.isolation: no network, a read-only view, uid 65534),
reached through relays; docs/validate.md says exactly what that guarantees. It is started with
`--max_num_load_retries=0`, so a version TF Serving cannot load makes it exit at once with
`Failed to start server. Error: ...` on stdout (as TF Serving does at start-up) instead of retrying for 5 minutes.
The same flags run our embedded server or the real `tensorflow_model_server`. No import of
TensorFlow here.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tfsconvert.errors import InfrastructureError, InputError
from tfsconvert.server import isolation, model_list
from tfsconvert.server.model_list import Served
from tfsconvert.server.relay import Relay
from tfsconvert.server.staging import UnsafeFile, make_writable, stage

EMBEDDED = "embedded"
REAL = "tensorflow_model_server"
START_FAILED = "Failed to start server. Error: "
# Environment the server may see; everything else (tokens, proxies, cloud credentials) is dropped.
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "JAVA_HOME", "TF_CPP_MIN_LOG_LEVEL", "TFSCONVERT_DEBUG")
# The server's ports inside its own network namespace, each exposed as a Unix socket in the door dir.
_INNER_PORTS = {"grpc": 8500, "rest": 8501}
# What a process that ran out of its address space or CPU time leaves behind.
_LIMIT_SIGNS = ("OOM when allocating", "MemoryError", "std::bad_alloc", "Cannot allocate memory",
                "Could not reserve enough space", "OutOfMemoryError", "failed to map segment",
                "Resource temporarily unavailable")


@dataclass(frozen=True)
class Limits:
    """Resource limits of a sandboxed server; `start_timeout` is wall-clock seconds to come up."""

    memory_mb: int = 8192
    cpu_seconds: int = 600
    open_files: int = 1024
    start_timeout: float = 120.0


class ServerStartFailed(Exception):
    """The server did not come up. `kind`: load-failed | sandbox-limit | server-timeout | crashed."""

    def __init__(self, kind: str, message: str, log: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.log = log


def server_program(server: str, server_bin: Path | None = None) -> list[str]:
    """The command that starts a server: ours (this Python) or the real binary (PATH or --server-bin)."""
    if server == EMBEDDED:
        return [sys.executable, "-m", "tfsconvert.server"]
    if server != REAL:
        raise InputError("bad-option", f"--server {server}: expected {EMBEDDED} or {REAL}",
                         f"use --server {EMBEDDED} (ours) or --server {REAL}")
    found = str(server_bin) if server_bin else shutil.which(REAL)
    if not found or not os.access(found, os.X_OK):
        raise InputError("server-not-found",
                         f"--server {REAL}: no executable {server_bin or REAL} "
                         f"{'' if server_bin else 'on PATH'}".rstrip(),
                         f"install TensorFlow Serving, pass --server-bin /path/to/{REAL}, or use --server {EMBEDDED}")
    return [found]


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _environment(home: str, limits: Limits) -> dict[str, str]:
    env = {key: os.environ[key] for key in _KEEP_ENV if key in os.environ}
    env.update(HOME=home, TMPDIR=home, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=isolation.package_root(),
               # glibc reserves 64 MB of address space per malloc arena, up to 8 per core. Within
               # 1/16th of the cap, up to 8: with 2 or 4, the server's threads (HTTP, batch,
               # answers, TensorFlow) wait on each other's arena locks (-15% batched throughput).
               MALLOC_ARENA_MAX=str(min(8, max(2, limits.memory_mb // 1024))),
               # The JVM (PMML backend) reserves a quarter of the RAM for its heap unless told.
               JAVA_TOOL_OPTIONS=f"-Xmx{max(limits.memory_mb // 4, 64)}m -XX:ReservedCodeCacheSize=64m "
                                 "-XX:CompressedClassSpaceSize=64m -Xss1m")
    return env


class Sandbox:
    """A context manager: stage the version(s), start the server, wait until both ports answer.

    One version is served with `--model_name/--model_base_path`; several (`servables`) with a
    `--model_config_file` listing each model with a `specific` version policy naming its versions.
    Then `limits.start_timeout` applies to each load: the deadline moves on with every version loaded.

    With `isolate` (the default) the server runs in the namespaces of tfsconvert.server.isolation
    and its ports reach the host through relays; where they are unavailable it runs with resource
    limits only; `weakness` says what is missing, if anything. Attributes once entered: `rest_port`,
    `grpc_port` (host loopback), `load_seconds`, `model_name`, `version`, `weakness`.
    """

    def __init__(self, version_dir: Path | None = None, model_name: str | None = None, version: int | None = None,
                 *, servables: list[Served] | None = None, limits: Limits = Limits(),
                 program: list[str] | None = None, extra_flags: tuple[str, ...] = (), isolate: bool = True,
                 require_isolation: bool = False) -> None:
        self.servables = servables or [Served(model_name, version, Path(version_dir))]
        self.version_dir, self.model_name, self.version = (self.servables[0].path, self.servables[0].model,
                                                           self.servables[0].version)
        self.limits = limits
        self.program = program or server_program(EMBEDDED)
        self.extra_flags = extra_flags
        self.process: subprocess.Popen | None = None
        self.rest_port = self.grpc_port = 0
        self.load_seconds = 0.0
        plan = isolation.plan() if isolate else isolation.Plan(False, weakness="not asked for")
        self.isolated, self.weakness = plan.namespaces, plan.weakness
        if self.weakness and isolate and require_isolation:
            raise InfrastructureError("sandbox-weak", f"--require-isolation: {self.weakness}",
                                      "install bubblewrap and util-linux (apt-get install bubblewrap) and allow "
                                      "namespaces in the container (e.g. docker --security-opt seccomp=unconfined)")
        self._relays: dict[str, Relay] = {}
        self._root: Path | None = None

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def __enter__(self) -> "Sandbox":
        self.start()
        self.wait_ready()
        return self

    def start(self) -> None:
        """Launch the server without waiting for it (several can then load at once); stopped if this fails."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def wait_ready(self) -> None:
        """Until the server's ports are open; stopped, and ServerStartFailed raised, if it does not come up."""
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="tfsconvert-sandbox-"))
        work = self._root / "work"
        work.mkdir()
        try:
            base = self._stage(self._root / "models")
        except OSError as error:
            raise InfrastructureError("sandbox-failed", f"cannot stage {self.version_dir}: {error}",
                                      "check free space in the temp dir (TMPDIR)") from None
        command = self._isolated_command() if self.isolated else self._limited_command(base)
        self._out = open(self._root / "stdout.log", "wb")
        self._err = open(self._root / "stderr.log", "wb")
        self._started = time.monotonic()
        home = isolation.SCRATCH_DIR if self.isolated else str(work)
        try:
            self.process = subprocess.Popen(command, cwd=work, env=_environment(home, self.limits),
                                            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
                                            start_new_session=True)
        except OSError as error:
            raise InfrastructureError("sandbox-failed", f"cannot start {self.program[0]}: {error}",
                                      "check the server binary (--server-bin) and its permissions") from None

    def _stage(self, models: Path) -> Path:
        """Stage every version; the base path (one version), or the models dir with the config file in
        it (several). UnsafeFile names the problems of every version at once."""
        if len(self.servables) == 1:
            return stage(self.version_dir, self.model_name, self.version, models)
        names = model_list.model_names(self.servables)
        problems: list[tuple[Path, str]] = []
        for served in self.servables:
            try:
                stage(served.path, str(names.index(served.model)), served.version, models)
            except UnsafeFile as unsafe:
                problems += unsafe.problems
        if problems:
            raise UnsafeFile(problems)
        model_list.write_config(self.servables, models, isolation.MODELS_DIR if self.isolated else str(models))
        return models

    def _jail(self, doors: list[str] = ()) -> list[str]:
        return [sys.executable, "-m", "tfsconvert.server.jail", str(self.limits.memory_mb),
                str(self.limits.cpu_seconds), str(self.limits.open_files), *doors, "--"]

    def _server(self, grpc_port: int, rest_port: int, base: str) -> list[str]:
        """The server's flags; `base` is the base path (one version) or the models dir as the server sees it."""
        models = ([f"--model_name={self.model_name}", f"--model_base_path={base}"] if len(self.servables) == 1
                  else [f"--model_config_file={base}/{model_list.CONFIG_FILE}"])
        return [*self.program, f"--port={grpc_port}", f"--rest_api_port={rest_port}", *models,
                "--max_num_load_retries=0", "--enable_model_warmup=true", *self.extra_flags]

    def _limited_command(self, base: Path) -> list[str]:
        self.grpc_port, self.rest_port = free_port(), free_port()
        while self.rest_port == self.grpc_port:
            self.rest_port = free_port()
        return [*self._jail(), *self._server(self.grpc_port, self.rest_port, str(base))]

    def _isolated_command(self) -> list[str]:
        door = self._root / "door"
        door.mkdir(mode=0o700)
        if os.geteuid() == 0:
            os.chown(door, isolation.NOBODY, isolation.NOBODY)
        isolation.write_etc(self._root / "etc")
        doors = []
        for name, port in _INNER_PORTS.items():
            doors += ["--expose", f"{isolation.DOOR_DIR}/{name}.sock={port}"]
            self._relays[name] = Relay(str(door / f"{name}.sock"))
        self.grpc_port, self.rest_port = self._relays["grpc"].port, self._relays["rest"].port
        base = f"{isolation.MODELS_DIR}/{self.model_name}" if len(self.servables) == 1 else isolation.MODELS_DIR
        server = self._server(_INNER_PORTS["grpc"], _INNER_PORTS["rest"], base)
        return isolation.wrap([*self._jail(doors), *server], self._root / "models", door, self._root / "etc",
                              extra=[Path(self.program[0]).resolve().parent])

    def _ready(self) -> bool:
        if self.isolated:
            return all(os.path.exists(relay.unix_path) for relay in self._relays.values())
        return _port_open(self.grpc_port) and _port_open(self.rest_port)

    def _wait_ready(self) -> None:
        deadline = self._started + self.limits.start_timeout
        loaded = 0
        while True:
            code = self.process.poll()
            if code is not None:
                raise self._start_failure(code, "loading")
            if self._ready():
                self.load_seconds = time.monotonic() - self._started
                return
            if len(self.servables) > 1:  # each version loaded gives the next one --timeout again
                done = sum(step == "Successfully loaded" for step, _, _ in model_list.load_steps(self.log()))
                if done > loaded:
                    loaded, deadline = done, time.monotonic() + self.limits.start_timeout
            if time.monotonic() > deadline:
                raise ServerStartFailed("server-timeout", f"the server did not open its ports within "
                                        f"{self.limits.start_timeout:g} s", self.log())
            time.sleep(0.05)

    def _start_failure(self, code: int, phase: str) -> ServerStartFailed:
        stdout, log = self._read("stdout.log"), self.log()
        # bwrap reports a child killed by signal N as exit code 128 + N (the server itself exits 0, 1 or 255).
        killed = -code if code < 0 else code - 128 if self.isolated and 128 < code < 128 + 65 else None
        if killed is None and any(sign in stdout + log for sign in _LIMIT_SIGNS):
            return ServerStartFailed("sandbox-limit", f"the server ran out of memory under its "
                                     f"{self.limits.memory_mb} MB address-space limit while {phase}", log)
        for line in stdout.splitlines():
            if line.startswith(START_FAILED):
                return ServerStartFailed("load-failed", line[len(START_FAILED):], log)
        if killed == signal.SIGXCPU:
            return ServerStartFailed("sandbox-limit", f"the server used up its CPU-time limit "
                                     f"({self.limits.cpu_seconds} s) while {phase}", log)
        if killed == signal.SIGKILL:  # the CPU hard limit, or the kernel's OOM killer
            return ServerStartFailed("sandbox-limit", "the server was killed (SIGKILL: CPU-time hard limit or "
                                     f"out of memory) while {phase}", log)
        how = f"signal {signal.Signals(killed).name}" if killed else f"exit code {code}"
        return ServerStartFailed("crashed", f"the server exited with {how} before it was ready", log)

    def exit_problem(self) -> ServerStartFailed | None:
        """After a failed request: why the server is gone (limit or crash), or None if it still runs."""
        code = self.process.poll() if self.process else None
        if code is None:
            return None
        return self._start_failure(code, "serving")

    def _read(self, name: str) -> str:
        path = self._root / name if self._root else None
        if path is None or not path.exists():
            return ""
        return path.read_bytes().decode("utf-8", "replace")

    def log(self) -> str:
        """What the server wrote on stderr (its log)."""
        return self._read("stderr.log")

    def load_times(self) -> dict[tuple[str, int], float]:
        """Seconds each version took to load (with its warmup), from the server's log."""
        return model_list.load_times(self.log())

    def loading(self) -> tuple[str, int] | None:
        """The version whose load had started but not ended when the log stops, if any."""
        return model_list.loading(self.log())

    def stop(self) -> None:
        """Stop the server's whole process group (TERM, then KILL) and remove the staged copy."""
        if self.process is not None:
            _stop_group(self.process)
        for relay in self._relays.values():
            relay.close()
        for stream in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if stream is not None:
                stream.close()
        if self._root is not None and self._root.exists():
            make_writable(self._root)
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


def _stop_group(process: subprocess.Popen, grace: float = 3.0) -> None:
    """TERM the group, KILL what is left after `grace` s, and reap: no orphans in any outcome."""
    group = process.pid  # start_new_session: the group id is the leader's pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(group):
            break
    process.poll()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
