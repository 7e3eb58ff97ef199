"""A NATS cluster for tests: three nats-servers on loopback, routed to each other, JetStream on each with its own
store, syncing before every acknowledgement (the servers `syllabus up` starts, see onemachine.servers)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import nats
from nats.aio.client import Client

from onemachine.cluster import cluster_members, until_jetstream_answers
from onemachine.servers import NATS_SYNC_ALWAYS
from tests.ports import HOST, unassigned_port

# Generous: a slow machine never fails a test on it; a healthy cluster elects its leader in a few seconds.
ELECTION_DEADLINE = 60.0


class NatsCluster:
    """Servers named n1, n2, ...; each keeps its client and route ports across a kill and a restart."""

    def __init__(self, base: Path, size: int = 3, name: str = "syllabus-test") -> None:
        self.servers = cluster_members(
            base, size, sync=NATS_SYNC_ALWAYS, stop_timeout=20, name=name, host=HOST, port=unassigned_port
        )

    @property
    def urls(self) -> str:
        """Every member's client URL, comma-separated, as SYLLABUS_NATS_URL takes them."""
        return ",".join(server.url for server in self.servers.values())

    async def start(self) -> None:
        """Every member started, and JetStream answering (its cluster has elected a meta leader)."""
        await asyncio.gather(*(server.start() for server in self.servers.values()))
        await until_jetstream_answers(self.urls, ELECTION_DEADLINE)

    async def stop(self) -> None:
        await asyncio.gather(*(server.stop() for server in self.servers.values()))

    async def kill(self, name: str) -> None:
        """SIGKILL: no goodbye to its routes or clients, nothing flushed."""
        server = self.servers[name]
        process = server.process
        assert process is not None and process.returncode is None, f"{name} is not running"
        process.kill()
        await server.stop()

    async def restart(self, name: str) -> None:
        """Started again on its ports and store; returns once it accepts clients (it catches up on its own)."""
        await self.servers[name].restart()

    async def connect(self, name: str = "pytest-cluster") -> Client:
        return await nats.connect(
            servers=[server.url for server in self.servers.values() if server.running],
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            # Members die on purpose here: a connection lost to one is expected, not an error to log.
            error_cb=_expected,
        )

    async def stream_leader(self, nc: Client, stream: str) -> str:
        """The name of the member leading `stream`'s replicas ("" while it has none)."""
        info = await nc.jetstream().stream_info(stream)
        return info.cluster.leader or "" if info.cluster is not None else ""


async def _expected(exc: Exception) -> None:
    pass


@contextlib.asynccontextmanager
async def running_cluster(base: Path, size: int = 3) -> AsyncIterator[NatsCluster]:
    cluster = NatsCluster(base, size)
    try:
        await cluster.start()
        yield cluster
    finally:
        await cluster.stop()
