"""The gateway's gRPC server as gateway.main builds it (services, health, reflection) on the pipeline fixture's
NATS and store, and a channel to it."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
import pytest_asyncio

from gateway.services import add_health_and_reflection, add_services, serving
from gateway.services import server as gateway_server
from tests.pipeline import conftest as pipeline_fixtures
from tests.pipeline.conftest import Pipeline, wiring

pipeline = pipeline_fixtures.pipeline

LogProblems = Callable[[], list[str]]


@dataclasses.dataclass
class Gateway:
    pipeline: Pipeline
    target: str
    channel: grpc.aio.Channel


@pytest_asyncio.fixture
async def gateway(pipeline: Pipeline) -> AsyncIterator[Gateway]:
    server = gateway_server()
    add_services(server, wiring(pipeline.nc, pipeline.store, pipeline.topology))
    health_servicer = add_health_and_reflection(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await serving(health_servicer)
    target = f"127.0.0.1:{port}"
    channel = grpc.aio.insecure_channel(target)
    try:
        yield Gateway(pipeline, target, channel)
    finally:
        await channel.close()
        await server.stop(grace=None)


@pytest.fixture
def gateway_log(caplog: pytest.LogCaptureFixture) -> LogProblems:
    """ERROR records and tracebacks the test left in the log, at the gateway's default level."""
    caplog.set_level(logging.INFO)

    def problems() -> list[str]:
        return [
            f"{record.name} {record.levelname}: {record.getMessage()}"
            for record in caplog.records
            if record.levelno >= logging.ERROR or record.exc_info
        ]

    return problems
