"""Defer on real NATS: a job that cannot run yet waits without spending attempts, and says why; the circuit
breaker uses it so jobs wait out a failing provider instead of failing with it."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from generator.providers.breaker import RedisBreaker
from generator.providers.gemini import GeminiProvider
from generator.providers.registry import Registry
from syllabus.runtime import Runtime
from syllabus.v1 import job_pb2, job_service_pb2
from syllabus.worker import Defer, JobContext, Worker
from tests.course.conftest import WORKER_CONFIG, CourseStack
from tests.course.fake_http import FakeHTTP, gemini_error, gemini_json
from tests.course.test_course_flow import types

E = job_pb2


async def test_a_deferred_job_waits_without_spending_attempts(stack: CourseStack) -> None:
    deliveries: list[int] = []

    async def handler(ctx: JobContext) -> job_pb2.JobResult:
        deliveries.append(ctx.attempt)
        if len(deliveries) <= 2:
            raise Defer(0.05, "the printer is busy")
        return job_pb2.JobResult(text="printed")

    worker = Worker(
        service="generator",
        handlers={"summarize_text": handler},
        runtime=Runtime.build(stack.nc, stack.store, stack.topology),
        config=WORKER_CONFIG,
    )
    stack.workers.append((worker, asyncio.create_task(worker.run())))
    spec = E.JobSpec(summarize_text=E.SummarizeText(text="print me"))
    options = E.JobOptions(max_attempts=1)
    job = (await stack.jobs.SubmitJob(job_service_pb2.SubmitJobRequest(spec=spec, options=options), timeout=10)).job
    events = await stack.events(job.id)
    assert types(events) == ["QUEUED", "STARTED", "QUEUED", "STARTED", "QUEUED", "STARTED", "SUCCEEDED"]
    deferred = [event for event in events if event.error.type == "Deferred"]
    assert len(deferred) == 2
    assert all(e.error.message == "the printer is busy" and e.retry_delay.nanos == 50_000_000 for e in deferred)
    # One attempt allowed, and it was enough: the deferrals did not count.
    assert deliveries == [1, 1, 1]
    done = await stack.store.get_job(job.id)
    assert done is not None and done.attempt == 1 and done.state == E.JOB_STATE_SUCCEEDED and not done.errors


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_an_open_breaker_makes_jobs_wait_for_the_provider(
    stack: CourseStack, fake_api: FakeHTTP, redis: Redis
) -> None:
    clock = Clock()
    breaker = RedisBreaker(
        redis, prefix=f"test:{uuid.uuid4().hex}:", threshold=2, cooldown=0.2, probe_timeout=5.0, clock=clock
    )
    registry = Registry(
        "gemini",
        {"gemini": lambda model: GeminiProvider(api_key="k", model="gemini-2.5-flash", base_url=fake_api.url)},
    )
    await stack.start_workers(stack.models(registry, breaker=breaker))
    fake_api.then(gemini_error(500, "down"), gemini_error(503, "still down"))
    spec = E.JobSpec(summarize_text=E.SummarizeText(text="Gemini is down for a while. Then it is back."))
    options = E.JobOptions(max_attempts=3)
    job = (await stack.jobs.SubmitJob(job_service_pb2.SubmitJobRequest(spec=spec, options=options), timeout=10)).job
    seen: list[job_pb2.JobEvent] = []
    call = stack.jobs.WatchJob(job_service_pb2.WatchJobRequest(job_id=job.id), timeout=30)
    async for response in call:
        event = response.event
        seen.append(event)
        if event.error.type == "Deferred" and len([e for e in seen if e.error.type == "Deferred"]) == 1:
            # Two failures opened the breaker; the third attempt waits instead of calling. The provider
            # recovers and the cool-down passes: the next delivery is the probe.
            assert len(fake_api.requests) == 2
            assert "circuit breaker is open" in event.error.message
            fake_api.default = lambda request: gemini_json({"summary": "Gemini came back."})
            clock.now += 10
    await registry.aclose()
    assert types(seen)[-1] == "SUCCEEDED" and seen[-1].result.text == "Gemini came back."
    assert [e.error.type for e in seen if e.type == E.JOB_EVENT_TYPE_RETRYING] == [
        "ProviderUnavailable",
        "ProviderUnavailable",
    ]
    done = await stack.store.get_job(job.id)
    # Attempt 3 of 3 succeeded: waiting for the breaker spent no attempt.
    assert done is not None and done.attempt == 3 and done.state == E.JOB_STATE_SUCCEEDED
    assert len(fake_api.requests) == 3
    assert await breaker.wait_time("gemini") == 0
