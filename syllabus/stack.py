"""`syllabus up`: the whole system on one machine, with the servers it needs, supervised until Ctrl-C.

Starts NATS and Valkey (unless URLs point elsewhere), declares the JetStream topology, runs every service
as a child process restarted with back-off when it dies, and stops everything in dependency order:
the gateway first (no new work), then the workers (they drain), the scheduler, Valkey, NATS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syllabus import jetstream
from syllabus.config import CommonConfig, GatewayConfig, SupervisorConfig, WorkerConfig
from syllabus.health import wait_healthy
from syllabus.logs import setup_logging
from syllabus.servers import NatsServer, ValkeyServer, die_with_parent
from syllabus.topology import WORKER_SERVICES, Topology

log = logging.getLogger("syllabus.up")

# Stopped in this order, each group at once: nothing new comes in, then running work drains, then the rest.
STOP_ORDER: tuple[tuple[str, ...], ...] = (("gateway",), ("generator", "renderer"), ("scheduler",))
# The exit code of a command stopped by a configuration error (syllabus/cli.py).
CONFIG_ERROR_EXIT = 2
# First restart delay; it doubles with each crash in a row, up to SupervisorConfig.restart_backoff_max.
FIRST_RESTART_DELAY = 0.5
# A child that ran at least this long before dying is treated as having recovered: its back-off starts over.
STABLE_AFTER = 30.0
# How long to wait for the gateway's health check before saying so (waiting then goes on).
GATEWAY_HEALTH_TIMEOUT = 60.0
_EXAMPLE_TEXT = "NATS JetStream keeps messages until every consumer has acknowledged them."


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "up",
        help="run everything on this machine (NATS, Valkey and every service) until Ctrl-C",
        description="Start NATS and Valkey unless SYLLABUS_NATS_URL / SYLLABUS_REDIS_URL are set, create the "
        "JetStream topology, then run and supervise the services named in SYLLABUS_SERVICES.",
    )
    parser.set_defaults(func=run_up)


def run_up(args: argparse.Namespace) -> int:
    common = CommonConfig.from_env()
    gateway = GatewayConfig.from_env()
    supervisor = SupervisorConfig.from_env()
    # The workers read these themselves, but a mistake found here is one line, not a crash-looping child.
    for service in WORKER_SERVICES:
        if service in supervisor.services:
            WorkerConfig.from_env(service)
    setup_logging(common, "up")
    common.home.mkdir(parents=True, exist_ok=True)
    with home_lock(common.home) as holder:
        if holder is not None:
            print(
                f"syllabus: already running in {common.home} (pid {holder}); stop it with Ctrl-C or kill {holder}",
                file=sys.stderr,
            )
            return 1
        return asyncio.run(Stack(common, gateway, supervisor).run())


@contextlib.contextmanager
def home_lock(home: Path) -> Iterator[str | None]:
    """Hold `home/up.lock` for the block (yields None), or yield the pid of whoever holds it.

    flock goes away with the process, so a crashed `up` never leaves a stale lock. The descriptor is not
    inherited by children (Python opens files close-on-exec), so only this process holds it.
    """
    path = home / "up.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            yield holder or "?"
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield None
    finally:
        os.close(fd)


def _say(line: str) -> None:
    print(line, flush=True)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


@dataclass
class RestartPolicy:
    first_delay: float = FIRST_RESTART_DELAY
    max_delay: float = 30.0
    stable_after: float = STABLE_AFTER

    def next_delay(self, previous: float, uptime: float) -> float:
        if uptime >= self.stable_after or previous <= 0:
            return min(self.first_delay, self.max_delay)
        return min(previous * 2, self.max_delay)


class Supervised:
    """One service as a child process, restarted with exponential back-off whenever it exits on its own."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        policy: RestartPolicy,
        stop_timeout: float,
        on_exit: Callable[[int | None], None] | None = None,
        on_give_up: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        # Told when the child exits with a configuration error, which restarting would only repeat.
        self.on_give_up = on_give_up
        # Told each unexpected exit (the code, None if the child could not even start), before the back-off.
        self.on_exit = on_exit
        self.argv = list(argv)
        self.env = dict(env)
        self.policy = policy
        self.stop_timeout = stop_timeout
        self.restarts = 0
        self.process: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"supervise-{self.name}")

    async def stop(self) -> None:
        """SIGTERM the child, SIGKILL it after stop_timeout, and stop restarting it."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.0
        while not self._stopping.is_set():
            started = loop.time()
            try:
                self.process = await asyncio.create_subprocess_exec(
                    *die_with_parent(self.argv),
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    # Own session: a terminal Ctrl-C reaches only `up`, which then stops children in order.
                    start_new_session=True,
                )
            except OSError as exc:
                spawn_error: OSError | None = exc
            else:
                spawn_error = None
            code: int | None = None
            if spawn_error is not None:
                # Not a traceback: the message (e.g. "No such file or directory") says it all.
                log.error("%s could not start: %s", self.name, spawn_error)
            else:
                assert self.process is not None
                log.info("%s started (pid %s)", self.name, self.process.pid)
                code = await self._wait_or_stop(self.process)
                if code is None:
                    return
                if code == CONFIG_ERROR_EXIT:
                    # Its configuration is wrong (it said why above): starting it again cannot help.
                    log.error("%s cannot run with this configuration; not restarting it", self.name)
                    if self.on_give_up is not None:
                        self.on_give_up()
                    return
            if self.on_exit is not None:
                self.on_exit(code)
            uptime = loop.time() - started
            delay = self.policy.next_delay(delay, uptime)
            self.restarts += 1
            log.warning(
                "%s exited with %s after %.1fs; restarting in %.1fs (restart %d)",
                self.name,
                "an error" if code is None else describe_exit(code),
                uptime,
                delay,
                self.restarts,
            )
            # The back-off itself, cut short by a stop request.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _wait_or_stop(self, process: asyncio.subprocess.Process) -> int | None:
        """The exit code if the child ended by itself, or None once a stop request has ended it."""
        exited = asyncio.create_task(process.wait())
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if exited.done() and not self._stopping.is_set():
            return exited.result()
        await terminate(process, self.name, self.stop_timeout)
        return None


async def terminate(process: asyncio.subprocess.Process, name: str, grace: float) -> None:
    """SIGTERM, then SIGKILL if it is still running after `grace` seconds."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            log.warning("%s (pid %s) still running %.0fs after SIGTERM; killing it", name, process.pid, grace)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    log.info("%s stopped (%s)", name, describe_exit(process.returncode or 0))


class Stack:
    def __init__(self, common: CommonConfig, gateway: GatewayConfig, supervisor: SupervisorConfig) -> None:
        self.common = common
        self.gateway = gateway
        self.supervisor = supervisor
        self.nats: NatsServer | None = None
        self.valkey: ValkeyServer | None = None
        self.nats_url = common.nats_url
        self.redis_url = common.redis_url
        self.services: dict[str, Supervised] = {}
        self._stop = asyncio.Event()
        # The service that could not run with its configuration, which ends `up` with a failure.
        self._gave_up = ""

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._request_stop, signum)
        failure: Exception | None = None
        try:
            startup = asyncio.create_task(self._start())
            stop = asyncio.create_task(self._stop.wait())
            await asyncio.wait({startup, stop}, return_when=asyncio.FIRST_COMPLETED)
            if startup.done():
                try:
                    # Raises what start-up raised, e.g. a server that would not come up.
                    startup.result()
                except BaseException:
                    stop.cancel()
                    raise
                await stop
            else:
                startup.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await startup
        except Exception as exc:
            failure = exc
        finally:
            if failure is not None:
                # The message carries the server's last log lines; a traceback would only bury them.
                log.error("start-up failed: %s", failure)
            _say(f"stopping (each part gets up to {self.supervisor.stop_timeout:.0f}s)…")
            await self._shutdown()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        _say("stopped")
        if self._gave_up:
            _say(f"syllabus: {self._gave_up} could not start with this configuration (its message is above)")
        return 0 if failure is None and not self._gave_up else 1

    def _give_up(self, name: str) -> None:
        self._gave_up = name
        self._stop.set()

    def _request_stop(self, signum: int) -> None:
        if not self._stop.is_set():
            log.info("%s received: stopping", signal.Signals(signum).name)
        self._stop.set()

    async def _start(self) -> None:
        home = self.common.home
        _say(f"syllabus: state in {home}")
        stop_timeout = self.supervisor.stop_timeout
        if not self.nats_url:
            _say("starting NATS…")
            self.nats = NatsServer(home / "nats", stop_timeout=stop_timeout)
            await self.nats.start()
            self.nats_url = self.nats.url
            _say(f"NATS ready at {self.nats_url} (data in {self.nats.data_dir})")
        if not self.redis_url:
            _say("starting Valkey…")
            self.valkey = ValkeyServer(home / "valkey", stop_timeout=stop_timeout)
            await self.valkey.start()
            self.redis_url = self.valkey.url
            _say(f"Valkey ready at {self.redis_url} (data in {self.valkey.data_dir})")
        await self._ensure_topology()
        self._start_services()
        if "gateway" in self.services:
            await self._wait_for_gateway()
        self._print_banner()

    async def _ensure_topology(self) -> None:
        topology = Topology(namespace=self.common.namespace)
        nc = await jetstream.connect(self.nats_url, "syllabus-up")
        try:
            await jetstream.ensure_topology(nc, topology)
        finally:
            await nc.close()
        _say(f"JetStream streams and artifacts bucket ready ({topology.jobs_stream}, {topology.events_stream}, ...)")

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            SYLLABUS_HOME=str(self.common.home),
            SYLLABUS_NATS_URL=self.nats_url,
            SYLLABUS_REDIS_URL=self.redis_url,
        )
        return env

    def _start_services(self) -> None:
        env = self.child_env()
        policy = RestartPolicy(max_delay=self.supervisor.restart_backoff_max)
        # Started in reverse stop order, so the gateway takes work once the workers are on their way.
        ordered = [name for group in reversed(STOP_ORDER) for name in group if name in self.supervisor.services]
        _say(f"starting {', '.join(ordered)}…")
        for name in ordered:
            service = Supervised(
                name,
                [sys.executable, "-m", "syllabus", name],
                env,
                policy,
                self.supervisor.stop_timeout,
                on_give_up=functools.partial(self._give_up, name),
            )
            self.services[name] = service
            service.start()

    async def _wait_for_gateway(self) -> None:
        addr = self.gateway.grpc_addr
        _say(f"waiting for the gateway to answer on {addr}…")
        while True:
            try:
                await wait_healthy(addr, GATEWAY_HEALTH_TIMEOUT)
            except TimeoutError as exc:
                log.warning("%s; still waiting (see the gateway's log above)", exc)
            else:
                return

    def _print_banner(self) -> None:
        lines = ["", "Syllabus is up."]
        if "gateway" in self.services:
            addr = self.gateway.grpc_addr
            lines += [
                f"  gRPC   {addr}  (server reflection on)",
                f"  HTTP   http://{self.gateway.http_addr}",
            ]
        lines += [
            f"  NATS   {self.nats_url}",
            f"  Redis  {self.redis_url}",
            f"  state  {self.common.home}",
            f"  running: {', '.join(self.services) or 'no services'}",
        ]
        if "gateway" in self.services:
            lines += [
                "",
                "Try:",
                "  buf curl --protocol grpc --http2-prior-knowledge "
                f"""-d '{{"spec": {{"summarize_text": {{"text": "{_EXAMPLE_TEXT}"}}}}}}' """
                f"http://{self.gateway.grpc_addr}/syllabus.v1.JobService/SubmitJob",
            ]
        lines += ["", "Ctrl-C stops everything."]
        _say("\n".join(lines))

    async def _shutdown(self) -> None:
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        for group in STOP_ORDER:
            members = [self.services[name] for name in group if name in self.services]
            if members:
                steps.append((", ".join(m.name for m in members), _stop_all(members)))
        if self.valkey is not None:
            steps.append(("Valkey", self.valkey.stop))
        if self.nats is not None:
            steps.append(("NATS", self.nats.stop))
        for label, step in steps:
            log.info("stopping %s", label)
            try:
                await step()
            except Exception:
                # Keep going: whatever comes after must still be stopped.
                log.exception("stopping %s failed", label)


def _stop_all(members: Sequence[Supervised]) -> Callable[[], Awaitable[None]]:
    async def stop() -> None:
        await asyncio.gather(*(member.stop() for member in members))

    return stop
