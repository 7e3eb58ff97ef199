"""The gateway's /metrics behind the REST shim (as gateway.main serves it) in front of the pipeline's services, and
an in-process worker with the metrics hook and a metrics server of its own."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest_asyncio

from gateway.auth.gate import Gate
from gateway.main import show_queue_gauges
from gateway.rest.metrics import MetricsPage
from gateway.rest.server import RestGateway, services_named
from gateway.services import SERVICE_NAMES
from syllabus.config import AuthConfig
from syllabus.presence import LiveWorkers
from syllabus.runtime import Runtime
from syllabus.status import Scrape
from syllabus.taskregistry import TaskRegistry
from tests.pipeline import conftest as pipeline_fixtures
from tests.pipeline.conftest import Pipeline
from tests.pipeline.served import serve_gateway

pipeline = pipeline_fixtures.pipeline
start_worker = pipeline_fixtures.start_worker
SECRET = "a-shared-secret-of-at-least-32-bytes-for-hs256"


@dataclasses.dataclass
class Gateway:
    pipeline: Pipeline
    http: httpx.AsyncClient
    metrics_url: str


async def rest_with_metrics(pipeline: Pipeline, gate: Gate | None = None) -> AsyncIterator[Gateway]:
    runtime = Runtime.build(pipeline.nc, pipeline.store, pipeline.topology)
    tasks, workers = TaskRegistry(pipeline.nc, pipeline.topology), LiveWorkers(pipeline.nc, pipeline.topology)
    scrape = Scrape()
    show_queue_gauges(scrape, runtime, tasks, workers)
    page = MetricsPage(gate or Gate(AuthConfig(mode="off"), "default"), scrape)
    async with serve_gateway(pipeline, gate=gate) as target:
        rest = RestGateway(services_named(SERVICE_NAMES), target, metrics=page)
        url = "http://" + await rest.start("127.0.0.1:0")
        http = httpx.AsyncClient(base_url=url, timeout=30)
        try:
            yield Gateway(pipeline, http, f"{url}/metrics")
        finally:
            await http.aclose()
            await rest.stop()


@pytest_asyncio.fixture
async def gateway(pipeline: Pipeline) -> AsyncIterator[Gateway]:
    async for served in rest_with_metrics(pipeline):
        yield served


@pytest_asyncio.fixture
async def secured_gateway(pipeline: Pipeline) -> AsyncIterator[Gateway]:
    """The same with authentication on: HS256 tokens signed with SECRET."""
    async for served in rest_with_metrics(pipeline, Gate(AuthConfig(jwt_secret=SECRET), "default")):
        yield served


def token(scopes: str, tenant: str = "acme") -> str:
    return jwt.encode({"tenant": tenant, "scope": scopes, "exp": time.time() + 600}, SECRET, algorithm="HS256")
