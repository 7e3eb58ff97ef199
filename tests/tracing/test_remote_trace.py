"""A remote task worker (WorkerService) is told its attempt's trace context: the gateway's span for the attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import pytest_asyncio

from gateway.services import server as gateway_server
from gateway.workers import add_worker_service
from syllabus.runtime import Runtime
from syllabus.taskregistry import TaskRegistry
from syllabus.tracing.hook import TracingHook
from syllabus.v1 import job_pb2, job_service_pb2, worker_service_pb2_grpc
from tests.conditions import eventually
from tests.pipeline.conftest import WORKER_CONFIG, Pipeline
from tests.pipeline.test_remote_workers import Gateway, connect
from tests.tracing.conftest import Spans

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest_asyncio.fixture
async def gateway(pipeline: Pipeline) -> AsyncIterator[Gateway]:
    server = gateway_server()
    service = add_worker_service(
        server,
        runtime=Runtime.build(pipeline.nc, pipeline.store, pipeline.topology),
        tasks=TaskRegistry(pipeline.nc, pipeline.topology),
        config=replace(WORKER_CONFIG, drain_grace=0.2),
        hooks=[TracingHook()],
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Gateway(worker_service_pb2_grpc.WorkerServiceStub(channel), service)
    finally:
        await service.close()
        await channel.close()
        await server.stop(grace=None)


async def test_a_remote_worker_is_given_its_attempts_traceparent(
    pipeline: Pipeline, gateway: Gateway, spans: Spans
) -> None:
    worker = await connect(gateway)
    spec = job_pb2.JobSpec(task=job_pb2.Task(name="text.upper"))
    spec.task.json.update({"text": "abc"})
    await pipeline.jobs.SubmitJob(
        job_service_pb2.SubmitJobRequest(spec=spec), timeout=10, metadata=(("traceparent", TRACEPARENT),)
    )
    given = await worker.assignment()
    await worker.succeed(given.attempt_id, {"text": "ABC"})
    _, trace_id, span_id, _ = given.traceparent.split("-")
    assert trace_id == TRACE_ID

    async def ended() -> bool:
        return bool(spans.named("task attempt"))

    await eventually(ended)
    (attempt,) = spans.named("task attempt")
    assert attempt.context is not None and span_id == f"{attempt.context.span_id:016x}"
    assert attempt.attributes is not None and attempt.attributes["syllabus.task"] == "text.upper"
