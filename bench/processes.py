"""The system under test as real processes, and what each of them costs in CPU and memory (from /proc)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from onemachine.health import wait_healthy
from onemachine.servers import NATS_SYNC_DEFAULT, NatsServer, ValkeyServer, die_with_parent, free_port
from syllabus.jetstream import connect, ensure_topology
from syllabus.topology import Topology

ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.process.pid

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@dataclass
class Stack:
    home: Path
    namespace: str = "bench"
    env: dict[str, str] = field(default_factory=dict)
    nats: NatsServer | None = None
    valkey: ValkeyServer | None = None
    children: dict[str, Child] = field(default_factory=dict)
    grpc_addr: str = ""
    mongo_url: str = ""

    @property
    def topology(self) -> Topology:
        return Topology(self.namespace)

    async def start_servers(self) -> None:
        # JetStream's own sync interval and the store's NORMAL sync: what survives a crash of a process but not a
        # power cut, the promise of the bench's Valkey (appendfsync everysec) that BullMQ runs on. The sync scenarios
        # of bench.run measure `syllabus up`'s defaults (a sync before every acknowledgement) against these.
        self.nats = NatsServer(self.home / "nats", sync=NATS_SYNC_DEFAULT)
        self.valkey = ValkeyServer(self.home / "valkey")
        await self.nats.start()
        await self.valkey.start()
        self.grpc_addr = f"127.0.0.1:{free_port()}"
        # Every service starts on the embedded store; the MongoDB runs add the URL back (see Bench.scale_on_mongo).
        self.mongo_url = os.environ.get("SYLLABUS_MONGO_URL", "")
        self.env = {k: v for k, v in os.environ.items() if k != "SYLLABUS_MONGO_URL"} | {
            "SYLLABUS_HOME": str(self.home),
            "SYLLABUS_NATS_URL": self.nats.url,
            "SYLLABUS_REDIS_URL": self.valkey.url,
            "SYLLABUS_NAMESPACE": self.namespace,
            "SYLLABUS_GRPC_ADDR": self.grpc_addr,
            "SYLLABUS_HTTP_ADDR": f"127.0.0.1:{free_port()}",
            "SYLLABUS_LOG_LEVEL": "warning",
            "SYLLABUS_STORE_SYNC": "normal",
        }
        nc = await connect(self.nats.url, "bench-setup")
        await ensure_topology(nc, self.topology)
        await nc.close()

    async def start(self, name: str, service: str, extra_env: dict[str, str] | None = None) -> Child:
        """A Syllabus command (`syllabus <service>`, e.g. "worker bench.tasks:app"), or with service
        "raw-consumer" the raw nats-py worker."""
        assert self.nats is not None
        argv = (
            [sys.executable, "-m", "bench.raw", "consumer", self.nats.url]
            if service == "raw-consumer"
            else [sys.executable, "-m", "syllabus", *service.split()]
        )
        child = await self.start_argv(name, argv, extra_env)
        if service == "gateway":
            await wait_healthy(self.grpc_addr, 60)
        return child

    async def start_argv(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Child:
        """Any program as a measured child (the peer's worker)."""
        process = await asyncio.create_subprocess_exec(
            *die_with_parent(argv),
            cwd=ROOT,
            env=self.env | (extra_env or {}),
        )
        child = Child(name, process)
        self.children[name] = child
        return child

    async def stop(self, name: str) -> None:
        child = self.children.pop(name, None)
        if child is not None:
            await child.stop()

    def pids(self) -> dict[str, int]:
        found = {name: child.pid for name, child in self.children.items()}
        if self.nats is not None and self.nats.pid is not None:
            found["nats-server"] = self.nats.pid
        if self.valkey is not None and self.valkey.pid is not None:
            found["valkey"] = self.valkey.pid
        return found

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids().items()}

    async def close(self) -> None:
        for name in list(self.children):
            await self.stop(name)
        if self.valkey is not None:
            await self.valkey.stop()
        if self.nats is not None:
            await self.nats.stop()


@dataclass
class CpuMeter:
    """CPU seconds each process spent between start and stop; the bench's own process (the client that submits
    and counts completions, as BullMQ's producer does) apart, in `client`."""

    stack: Stack
    before: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)
    client: float = 0.0

    def __enter__(self) -> CpuMeter:
        self.before = self.stack.cpu()
        self.client = -time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        after = self.stack.cpu()
        self.client += time.process_time()
        self.spent = {name: after[name] - self.before.get(name, 0.0) for name in after}

    @property
    def total(self) -> float:
        return sum(self.spent.values())


def machine_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs so far: the share stolen by the hypervisor shows how noisy a run was."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice, already counted in user and nice]
    return fields[7] if len(fields) > 7 else 0, sum(fields[:8])
