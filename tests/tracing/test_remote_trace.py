"""A remote task worker (WorkerService) is told its attempt's trace context: the gateway's span for the attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from syllabus.tracing.hook import TracingHook
from syllabus.v1 import job_pb2, job_service_pb2
from tests.conditions import eventually
from tests.pipeline.conftest import Pipeline
from tests.pipeline.test_remote_workers import Gateway, connect, worker_service
from tests.tracing.conftest import Spans

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest_asyncio.fixture
async def gateway(pipeline: Pipeline) -> AsyncIterator[Gateway]:
    async with worker_service(pipeline, hooks=[TracingHook()]) as served:
        yield served


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
