"""`syllabus up`: the whole system on one machine, with the servers it needs, supervised until Ctrl-C.

Starts NATS and Valkey (unless URLs point elsewhere), declares the JetStream topology, runs every service
(and as many processes of each worker service as asked) as child processes, restarts any of them, the
servers included, with back-off when it dies, and stops everything in dependency order: the gateway first
(no new work), then the workers (they drain), the scheduler, Valkey, NATS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import fcntl
import functools
import logging
import os
import signal
import sys
import sysconfig
import textwrap
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from onemachine.cluster import DEFAULT_REPLICAS, cluster_members, until_jetstream_answers
from onemachine.health import wait_healthy
from onemachine.servers import ChildServer, NatsServer, ValkeyServer, free_port
from onemachine.supervisor import RestartPolicy, Supervised, SupervisedServer, SupervisedService
from syllabus import jetstream
from syllabus.config import CommonConfig, GatewayConfig, SupervisorConfig, WorkerConfig
from syllabus.logs import setup_logging
from syllabus.redaction import redact
from syllabus.tls import GatewayCredentials
from syllabus.topology import WORKER_SERVICES, Topology

log = logging.getLogger("syllabus.up")

# Stopped in this order, each group at once: nothing new comes in, then running work drains, then the rest.
STOP_ORDER: tuple[tuple[str, ...], ...] = (("gateway",), ("generator", "renderer"), ("scheduler",))
# How long to wait for the gateway's health check before saying so (waiting then goes on).
GATEWAY_HEALTH_TIMEOUT = 60.0
# The exit code of invalid input (cli/main.py).
USAGE_EXIT = 2
# Where the banner's notes wrap.
BANNER_WIDTH = 110
_EXAMPLE_TEXT = "NATS JetStream keeps messages until every consumer has acknowledged them."


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "up",
        help="run everything on this machine (NATS, Valkey and every service) until Ctrl-C",
        description="Start NATS and Valkey unless SYLLABUS_NATS_URL / SYLLABUS_REDIS_URL are set, create the "
        "JetStream topology, then run the services named in SYLLABUS_SERVICES. Any of them that dies, and any "
        "server started here, is restarted with back-off.",
    )
    parser.add_argument(
        "--workers",
        metavar="SERVICE=N,...",
        help="processes per worker service, e.g. generator=3,renderer=2 (instead of SYLLABUS_WORKERS; "
        "one each by default)",
    )
    parser.add_argument(
        "--cluster",
        metavar="N",
        help="start a NATS cluster of N members (3 to 5) on loopback instead of one nats-server, every stream and "
        "bucket in 3 replicas, and two processes of each worker service (instead of SYLLABUS_NATS_CLUSTER)",
    )
    parser.set_defaults(func=run_up)


def run_up(args: argparse.Namespace) -> int:
    common = CommonConfig.from_env()
    gateway = GatewayConfig.from_env()
    env: Mapping[str, str] = os.environ
    if args.workers is not None:
        # The flag replaces the variable, even one that would not parse.
        env = {key: value for key, value in os.environ.items() if key != "SYLLABUS_WORKERS"}
    supervisor = SupervisorConfig.from_env(env)
    if args.workers is not None:
        try:
            supervisor = dataclasses.replace(supervisor, workers=SupervisorConfig.parse_workers(args.workers))
        except ValueError as exc:
            print(f"syllabus: --workers {args.workers!r} is not valid: {exc}", file=sys.stderr)
            return USAGE_EXIT
    if args.cluster is not None:
        try:
            supervisor = dataclasses.replace(supervisor, nats_cluster=SupervisorConfig.parse_cluster(args.cluster))
        except ValueError:
            print(f"syllabus: --cluster {args.cluster!r} is not valid: expected 3 to 5 members", file=sys.stderr)
            return USAGE_EXIT
    if supervisor.nats_cluster:
        problem = _cluster_problem(common, supervisor.nats_cluster)
        if problem:
            print(f"syllabus: {problem}", file=sys.stderr)
            return USAGE_EXIT
        common, supervisor = _rehearsal(common, supervisor)
    elif common.stream_replicas > 1 and not common.nats_url:
        print(
            f"syllabus: SYLLABUS_STREAM_REPLICAS={common.stream_replicas} needs a NATS cluster: set SYLLABUS_NATS_URL "
            "to its servers, or run `syllabus up --cluster 3` (`up` alone starts a single nats-server)",
            file=sys.stderr,
        )
        return USAGE_EXIT
    source = "--workers" if args.workers is not None else "SYLLABUS_WORKERS"
    for service in supervisor.workers:
        if service not in supervisor.services:
            print(
                f"syllabus: {source} asks for {service} processes, but SYLLABUS_SERVICES does not run {service}",
                file=sys.stderr,
            )
            return USAGE_EXIT
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


def _cluster_problem(common: CommonConfig, members: int) -> str:
    if common.nats_url:
        return "--cluster starts NATS servers of its own: unset SYLLABUS_NATS_URL, or leave --cluster out to use it"
    if common.stream_replicas > members:
        return f"SYLLABUS_STREAM_REPLICAS={common.stream_replicas} is more than the cluster's {members} members"
    return ""


def _rehearsal(common: CommonConfig, supervisor: SupervisorConfig) -> tuple[CommonConfig, SupervisorConfig]:
    """A cluster rehearses a deployment across machines: every stream replicated (3 copies unless
    SYLLABUS_STREAM_REPLICAS asks for more), and two processes of each worker service unless told how many."""
    if common.stream_replicas == 1:
        common = dataclasses.replace(common, stream_replicas=DEFAULT_REPLICAS)
    if not supervisor.workers:
        workers = {service: 2 for service in WORKER_SERVICES if service in supervisor.services}
        supervisor = dataclasses.replace(supervisor, workers=workers)
    return common, supervisor


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


def embedded_nats(home: Path, supervisor: SupervisorConfig) -> NatsServer:
    """The nats-server `up` starts when SYLLABUS_NATS_URL is empty, its JetStream store under `home/nats`."""
    return NatsServer(home / "nats", sync=supervisor.nats_sync, stop_timeout=supervisor.stop_timeout)


def say(line: str) -> None:
    # The banner shows server URLs, which may carry a password or a token.
    print(redact(line), flush=True)


def process_names(service: str, count: int) -> list[str]:
    """`generator` for one process, `generator-1` ... `generator-N` for several."""
    return [service] if count == 1 else [f"{service}-{n}" for n in range(1, count + 1)]


class Stack:
    def __init__(self, common: CommonConfig, gateway: GatewayConfig, supervisor: SupervisorConfig) -> None:
        self.common = common
        self.gateway = gateway
        self.supervisor = supervisor
        self.policy = RestartPolicy(max_delay=supervisor.restart_backoff_max)
        # The nats-server `up` started, or the members of its cluster; none when SYLLABUS_NATS_URL is given.
        self.nats: list[SupervisedServer] = []
        self._members: list[NatsServer] = []
        self.valkey: SupervisedServer | None = None
        self.nats_url = common.nats_url
        self.redis_url = common.redis_url
        # Each service's processes, by service name.
        self.services: dict[str, list[Supervised]] = {}
        # Each process's Prometheus metrics page, by process name.
        self.metrics_urls: dict[str, str] = {}
        self._stop = asyncio.Event()
        # The service that could not run with its configuration, which ends `up` with a failure.
        self._gave_up = ""
        # Read now, before anything starts: a certificate the gateway cannot use is one line, not a failed start.
        serves = bool(gateway.tls) and "gateway" in supervisor.services
        self._gateway_tls = GatewayCredentials(gateway.tls) if serves else None

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
            say(f"stopping (each part gets up to {self.supervisor.stop_timeout:.0f}s)…")
            await self._shutdown()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        say("stopped")
        if self._gave_up:
            say(f"syllabus: {self._gave_up} could not start with this configuration (its message is above)")
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
        say(f"syllabus: state in {home}")
        if not self.nats_url and self.supervisor.nats_cluster:
            await self._start_cluster()
        elif not self.nats_url:
            say("starting NATS…")
            self.nats = [await self._start_server(embedded_nats(home, self.supervisor))]
            self.nats_url = self.nats[0].server.url
        if not self.redis_url:
            say("starting Valkey…")
            self.valkey = await self._start_server(
                ValkeyServer(home / "valkey", stop_timeout=self.supervisor.stop_timeout)
            )
            self.redis_url = self.valkey.server.url
        await self._ensure_topology()
        self._start_services()
        if "gateway" in self.services:
            await self._wait_for_gateway()
        self._print_banner()

    async def _start_cluster(self) -> None:
        members = cluster_members(
            self.common.home / "nats-cluster",
            self.supervisor.nats_cluster,
            sync=self.supervisor.nats_sync,
            stop_timeout=self.supervisor.stop_timeout,
        )
        say(f"starting a NATS cluster of {len(members)} ({', '.join(members)})…")
        self._members = list(members.values())
        for server in members.values():
            # One by one, each kept as it starts: if one cannot start, those before it are stopped with the rest.
            self.nats.append(await self._start_server(server))
        self.nats_url = ",".join(member.server.url for member in self.nats)
        say("waiting for the cluster to elect its JetStream leader…")
        await until_jetstream_answers(self.nats_url)

    async def _start_server(self, server: ChildServer) -> SupervisedServer:
        """The first start is awaited here, so a server that cannot run at all stops `up` with its reason."""
        await server.start()
        supervised = SupervisedServer(server, self.policy)
        supervised.start()
        return supervised

    async def _ensure_topology(self) -> None:
        topology = Topology(self.common.namespace, self.common.stream_replicas)
        nc = await jetstream.connect(self.nats_url, "syllabus-up", options=jetstream.nats_options(self.common))
        try:
            await jetstream.ensure_topology(nc, topology)
        finally:
            await nc.close()
        say(f"JetStream streams and artifacts bucket ready ({topology.jobs_stream}, {topology.events_stream}, ...)")

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            SYLLABUS_HOME=str(self.common.home),
            SYLLABUS_NATS_URL=self.nats_url,
            SYLLABUS_REDIS_URL=self.redis_url,
            SYLLABUS_STREAM_REPLICAS=str(self.common.stream_replicas),
        )
        return env

    def _start_services(self) -> None:
        env = self.child_env()
        # Started in reverse stop order, so the gateway takes work once the workers are on their way.
        ordered = [name for group in reversed(STOP_ORDER) for name in group if name in self.supervisor.services]
        names = {service: process_names(service, self.supervisor.workers.get(service, 1)) for service in ordered}
        say(f"starting {', '.join(name for service in ordered for name in names[service])}…")
        for service in ordered:
            for name in names[service]:
                child = SupervisedService(
                    name,
                    [sys.executable, "-m", "syllabus", service],
                    self._with_metrics_port(name, service, env),
                    self.policy,
                    self.supervisor.stop_timeout,
                    on_give_up=functools.partial(self._give_up, name),
                )
                self.services.setdefault(service, []).append(child)
                child.start()

    def _with_metrics_port(self, name: str, service: str, env: dict[str, str]) -> dict[str, str]:
        """A child's environment with a metrics port of its own, chosen once (a restarted child keeps it); the
        gateway's metrics are on its HTTP port, and it needs no status server of its own here."""
        if service == "gateway":
            scheme = "https" if self.gateway.tls else "http"
            self.metrics_urls[name] = f"{scheme}://{self.gateway.http_addr}/metrics"
            return {**env, "SYLLABUS_METRICS_ADDR": ""}
        addr = f"127.0.0.1:{free_port()}"
        self.metrics_urls[name] = f"http://{addr}/metrics"
        return {**env, "SYLLABUS_METRICS_ADDR": addr}

    async def _wait_for_gateway(self) -> None:
        addr = self.gateway.grpc_addr
        say(f"waiting for the gateway to answer on {addr}…")
        # A gateway with TLS is asked as it asks itself, with its own certificate (syllabus.tls).
        tls = self._gateway_tls.loopback() if self._gateway_tls is not None else None
        while True:
            try:
                await wait_healthy(addr, GATEWAY_HEALTH_TIMEOUT, tls=tls)
            except TimeoutError as exc:
                log.warning("%s; still waiting (see the gateway's log above)", exc)
            else:
                return

    def _print_banner(self) -> None:
        lines = ["", "Syllabus is up."]
        if "gateway" in self.services:
            addr = self.gateway.grpc_addr
            secure = bool(self.gateway.tls)
            scheme = "https" if secure else "http"
            lines += [
                f"  gRPC   {addr}  ({'TLS, ' if secure else ''}server reflection on)",
                f"  HTTP   {scheme}://{self.gateway.http_addr}  (the dashboard: open it in a browser)",
            ]
        running = [child.name for group in STOP_ORDER for name in group for child in self.services.get(name, [])]
        lines += [
            f"  NATS   {self.nats_url}",
            *self._cluster_lines(),
            f"  Redis  {self.redis_url}",
            f"  state  {self.common.home}",
            f"  running: {', '.join(running) or 'no services'}",
        ]
        if self.metrics_urls:
            lines.append(f"  metrics: {', '.join(f'{name} {self.metrics_urls[name]}' for name in running)}")
        if "gateway" in self.services and not self.gateway.tls:
            lines += [
                "",
                "Try:",
                f"  {buf_command()} curl --protocol grpc --http2-prior-knowledge "
                f"""-d '{{"spec": {{"summarize_text": {{"text": "{_EXAMPLE_TEXT}"}}}}}}' """
                f"http://{self.gateway.grpc_addr}/syllabus.v1.JobService/SubmitJob",
            ]
        lines += ["", *self.more_workers(), "", "Ctrl-C stops everything."]
        say("\n".join(lines))

    def _cluster_lines(self) -> list[str]:
        if not self._members:
            return []
        names = ", ".join(member.name for member in self._members)
        return [
            f"         a cluster ({names}), every stream and bucket in {self.common.stream_replicas} replicas",
            f"         monitoring {', '.join(member.monitor_url for member in self._members)}",
        ]

    def more_workers(self) -> list[str]:
        """How to add workers: here with --workers, or as `syllabus generator` started with these variables."""
        common = self.common
        variables = [
            f"SYLLABUS_NATS_URL={self.nats_url}",
            f"SYLLABUS_REDIS_URL={self.redis_url}",
        ]
        if common.mongo_url:
            variables.append(f"SYLLABUS_MONGO_URL={common.mongo_url}")
            if common.mongo_database != CommonConfig.mongo_database:
                variables.append(f"SYLLABUS_MONGO_DATABASE={common.mongo_database}")
        else:
            variables.append(f"SYLLABUS_HOME={common.home}")
        if common.namespace:
            variables.append(f"SYLLABUS_NAMESPACE={common.namespace}")
        if common.stream_replicas > 1:
            variables.append(f"SYLLABUS_STREAM_REPLICAS={common.stream_replicas}")
        lines = [
            "More workers: `syllabus up --workers generator=3,renderer=2`, or start `syllabus generator` (or",
            "renderer, with the same model settings; or `syllabus worker MODULE:APP` for your own tasks) with:",
            *(f"  {variable}" for variable in variables),
        ]
        local = [name for name, started in (("NATS", bool(self.nats)), ("Valkey", self.valkey is not None)) if started]
        reasons = []
        if local:
            verb = "listen" if len(local) > 1 else "listens"
            reasons.append(f"{' and '.join(local)} started by `up` {verb} on 127.0.0.1")
        if not common.mongo_url:
            reasons.append("the job store is a file in SYLLABUS_HOME")
        if reasons:
            needed = [
                *(["SYLLABUS_NATS_URL"] if self.nats else []),
                *(["SYLLABUS_REDIS_URL"] if self.valkey is not None else []),
                *(["SYLLABUS_MONGO_URL"] if not common.mongo_url else []),
            ]
            note = (
                f"These reach this machine only: {', and '.join(reasons)}. For workers on other machines, set "
                f"{_and(needed)} for `up` and the workers alike, to servers every machine reaches."
            )
            lines += textwrap.wrap(note, width=BANNER_WIDTH)
        return lines

    async def _shutdown(self) -> None:
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        for group in STOP_ORDER:
            members = [process for name in group for process in self.services.get(name, [])]
            if members:
                steps.append((", ".join(m.name for m in members), _stop_all(members)))
        if self.valkey is not None:
            steps.append(("Valkey", self.valkey.stop))
        if self.nats:
            steps.append(("NATS", _stop_all(self.nats)))
        for label, step in steps:
            log.info("stopping %s", label)
            try:
                await step()
            except Exception:
                # Keep going: whatever comes after must still be stopped.
                log.exception("stopping %s failed", label)


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _stop_all(members: Sequence[Supervised]) -> Callable[[], Awaitable[None]]:
    async def stop() -> None:
        await asyncio.gather(*(member.stop() for member in members))

    return stop


def buf_command() -> str:
    """buf as the user can run it: the one installed beside this Python (scripts/run installs it), else from PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "buf"
    if beside.is_file():
        return str(beside.relative_to(Path.cwd())) if beside.is_relative_to(Path.cwd()) else str(beside)
    return "buf"
