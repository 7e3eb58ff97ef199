"""Fixtures every layer of the suite shares: one real NATS and one real Valkey per session, and per test
its own JetStream namespace, a NATS connection and a Redis client.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.js.errors import NotFoundError
from redis.asyncio import Redis

from onemachine.servers import NATS_SYNC_DEFAULT, NatsServer, ValkeyServer
from syllabus.topology import Topology
from tests.ports import HOST, held_port


@pytest_asyncio.fixture(scope="session")
async def nats_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NatsServer]:
    # JetStream's own sync interval rather than `up`'s sync before every acknowledgement: no test here cuts the
    # power, and an fsync per stored message would only slow the suite (tests/test_durability.py checks `up`'s).
    server = NatsServer(tmp_path_factory.mktemp("nats"), sync=NATS_SYNC_DEFAULT)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(scope="session")
async def redis_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ValkeyServer]:
    server = ValkeyServer(tmp_path_factory.mktemp("valkey"))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture(scope="session")
def redis_url(redis_server: ValkeyServer) -> str:
    return redis_server.url


@pytest.fixture
def closed_addr() -> Iterator[str]:
    """A "host:port" that refuses connections: nothing listens there, and for the test's duration nothing can."""
    with held_port() as port:
        yield f"{HOST}:{port}"


@pytest_asyncio.fixture
async def topology(nats_url: str) -> AsyncIterator[Topology]:
    """A namespace of its own, so tests never see each other's streams; deleted again afterwards."""
    namespace = "t" + uuid.uuid4().hex[:10]
    topology = Topology(namespace=namespace)
    yield topology
    nc = await nats.connect(nats_url, name="pytest-cleanup")
    try:
        js = nc.jetstream()
        streams = (topology.jobs_stream, topology.events_stream, topology.dlq_stream, topology.scheduled_stream)
        for stream in (*streams, topology.advisories_stream):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(stream)
        with contextlib.suppress(NotFoundError):
            await js.delete_object_store(topology.artifacts_bucket)
        for bucket in (topology.tasks_bucket, topology.workers_bucket, topology.paused_bucket):
            with contextlib.suppress(NotFoundError):
                await js.delete_key_value(bucket)
    finally:
        await nc.close()


@pytest_asyncio.fixture
async def nc(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_url, name="pytest")
    try:
        yield client
    finally:
        await client.close()


@pytest_asyncio.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()
