"""The REST shim in front of an in-process gateway: the pipeline fixture's services on a gRPC server of our own
(built, and with health and reflection, as gateway.main serves them), and the shim listening on a free port."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio

from gateway.rest.server import RestGateway, services_named
from gateway.services import SERVICE_NAMES
from tests.gateway import conftest as gateway_fixtures
from tests.pipeline import conftest as pipeline_fixtures
from tests.pipeline.conftest import Pipeline
from tests.pipeline.served import serve_gateway
from tests.rest.shelf import add_shelf, shelf_service

# The pipeline fixtures, and the log check, made available to the tests in this folder.
pipeline = pipeline_fixtures.pipeline
start_worker = pipeline_fixtures.start_worker
gateway_log = gateway_fixtures.gateway_log
LogProblems = gateway_fixtures.LogProblems

Metadata = tuple[tuple[str, str | bytes], ...]
ROOT = Path(__file__).resolve().parents[2]
NODE_CLIENT = ROOT / "clients" / "node"


class MetadataRecorder(grpc.aio.ServerInterceptor):
    """Keeps the metadata every call arrived with, so a test can see what the shim forwarded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Metadata]] = []

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any) -> Any:
        self.calls.append((handler_call_details.method, tuple(handler_call_details.invocation_metadata)))
        return await continuation(handler_call_details)

    def last(self, method: str) -> dict[str, str | bytes]:
        return dict(next(md for name, md in reversed(self.calls) if name.endswith("/" + method)))


@dataclasses.dataclass
class Rest:
    pipeline: Pipeline
    # http://127.0.0.1:<port> of the shim, and host:port of the gRPC server behind it.
    url: str
    grpc_target: str
    http: httpx.AsyncClient
    gateway: RestGateway
    metadata: MetadataRecorder


@pytest_asyncio.fixture
async def rest(pipeline: Pipeline) -> AsyncIterator[Rest]:
    recorder = MetadataRecorder()
    async with serve_gateway(pipeline, recorder) as target:
        # The production route table: every service gateway.main registers, whether this server serves it or not.
        gateway = RestGateway(services_named(SERVICE_NAMES), target)
        address = await gateway.start("127.0.0.1:0")
        url = f"http://{address}"
        client = httpx.AsyncClient(base_url=url, timeout=30)
        try:
            yield Rest(pipeline, url, target, client, gateway, recorder)
        finally:
            await client.aclose()
            await gateway.stop()


@dataclasses.dataclass
class ShelfRest:
    url: str
    http: httpx.AsyncClient
    gateway: RestGateway


@pytest_asyncio.fixture
async def shelf(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ShelfRest]:
    """The test-only Shelf service (tests/rest/protos/shelf.proto) behind a REST shim of its own."""
    service = shelf_service(str(tmp_path_factory.getbasetemp()))
    server = grpc.aio.server()
    add_shelf(server, service)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    gateway = RestGateway([service], f"127.0.0.1:{port}")
    url = "http://" + await gateway.start("127.0.0.1:0")
    client = httpx.AsyncClient(base_url=url, timeout=30)
    try:
        yield ShelfRest(url, client, gateway)
    finally:
        await client.aclose()
        await gateway.stop()
        await server.stop(grace=None)


@pytest_asyncio.fixture(scope="session")
async def node_client() -> Path:
    """clients/node with its dependencies installed by `npm ci` (once, and again only when the lock changes)."""
    for tool in ("node", "npm"):
        assert shutil.which(tool), f"{tool} is not on PATH: the Node.js client tests need Node.js 18+ and npm"
    modules = NODE_CLIENT / "node_modules"
    stamp = modules / ".syllabus-lock-sha256"
    want = hashlib.sha256((NODE_CLIENT / "package-lock.json").read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text() != want:
        process = await asyncio.create_subprocess_exec(
            "npm",
            "ci",
            "--no-audit",
            "--no-fund",
            cwd=NODE_CLIENT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, f"npm ci failed:\n{output.decode(errors='replace')}"
        stamp.write_text(want)
    return NODE_CLIENT


async def run_node(directory: Path, *argv: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        "node", *argv, cwd=directory, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
