"""The gateway's gRPC server as gateway.main builds it (services, health, reflection) on the pipeline fixture's
NATS and store, and a channel to it."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
import pytest_asyncio

from tests.pipeline import conftest as pipeline_fixtures
from tests.pipeline.conftest import Pipeline
from tests.pipeline.served import serve_gateway

pipeline = pipeline_fixtures.pipeline

LogProblems = Callable[[], list[str]]


@dataclasses.dataclass
class Gateway:
    pipeline: Pipeline
    target: str
    channel: grpc.aio.Channel


@pytest_asyncio.fixture
async def gateway(pipeline: Pipeline) -> AsyncIterator[Gateway]:
    async with serve_gateway(pipeline) as target:
        channel = grpc.aio.insecure_channel(target)
        try:
            yield Gateway(pipeline, target, channel)
        finally:
            await channel.close()


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
