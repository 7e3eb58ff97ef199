"""`syllabus up` exporting to an OTLP/HTTP receiver the test runs: a course made over REST with a traceparent is one
trace across the gateway, generator and renderer processes."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tests.conditions import eventually
from tests.e2e.conftest import running_stack
from tests.ports import HOST

pytestmark = pytest.mark.e2e

TRACE_ID = "5b8efff798038103d269b633813fc60c"
TRACEPARENT = f"00-{TRACE_ID}-eee19b7ec3c1b174-01"


@dataclass
class Receiver:
    url: str
    # (service.name, span name, trace id hex) of every span received.
    spans: list[tuple[str, str, str]] = field(default_factory=list)

    def services_of(self, trace_id: str) -> set[str]:
        return {service for service, _, trace in self.spans if trace == trace_id}

    def names_of(self, trace_id: str) -> set[str]:
        return {name for _, name, trace in self.spans if trace == trace_id}


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    received = Receiver("")

    async def export(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        exported = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for resource_spans in exported.resource_spans:
            names = [a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"]
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.spans.append((names[0] if names else "", span.name, span.trace_id.hex()))
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", export)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    received.url = f"http://{HOST}:{port}"
    try:
        yield received
    finally:
        await runner.cleanup()


async def test_a_course_is_one_trace_across_the_processes(receiver: Receiver, tmp_path: Path) -> None:
    extra = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    async with running_stack(tmp_path, extra) as stack, httpx.AsyncClient(timeout=30) as http:
        created = await http.post(
            f"http://{stack.env['SYLLABUS_HTTP_ADDR']}/v1/courses",
            json={"course": {"prompt": "Rust ownership", "modules": 1}},
            headers={"traceparent": TRACEPARENT},
        )
        assert created.status_code == 200, created.text
        assert created.json()["job"]["traceId"] == TRACE_ID

        async def rendered() -> bool:
            return "render_document attempt" in receiver.names_of(TRACE_ID)

        await eventually(rendered, timeout=120)
    assert {"syllabus-gateway", "syllabus-generator", "syllabus-renderer"} <= receiver.services_of(TRACE_ID)
    assert {
        "syllabus.v1.CourseService/CreateCourse",
        "generate_course attempt",
        "generate_lesson attempt",
        "generate_quiz attempt",
        "render_document attempt",
    } <= receiver.names_of(TRACE_ID)
