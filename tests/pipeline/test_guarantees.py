"""The lifecycle's promises, each tested by breaking what it depends on for real.

A stale attempt (its lease taken over by a redelivery) cannot settle the job in any way; a dead letter is
stored before its message is dropped; heartbeats keep a long job; a cancel whose NATS notice is missed is
still seen; retry delays follow the policy and the provider's Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from syllabus.deadletters import DeadLetters
from syllabus.v1 import job_pb2, job_service_pb2
from syllabus.worker import Defer, JobContext, PermanentError, RetryableError
from tests.pipeline.conftest import WORKER_CONFIG, Pipeline, StartWorker
from tests.pipeline.logwatch import LogWatch, watching_logs
from tests.pipeline.test_jobs import types

E = job_pb2
# Short enough that a redelivery comes quickly, long enough for a claim on a busy machine.
ACK_WAIT = 1.0
# No heartbeat: the worker holding the first attempt lets its lease lapse, as a stalled process does.
STALLED = dataclasses.replace(WORKER_CONFIG, concurrency=1, ack_wait=ACK_WAIT, heartbeat=3600.0, drain_grace=0.1)
# The worker that takes the job over keeps its own lease alive.
HEALTHY = dataclasses.replace(WORKER_CONFIG, ack_wait=ACK_WAIT, heartbeat=0.2)


@pytest.fixture
def logs() -> Any:
    with watching_logs() as watch:
        yield watch


async def started(pipeline: Pipeline, job_id: str, count: int) -> None:
    """Returns once the job has STARTED `count` times."""
    seen = 0
    call = pipeline.jobs.WatchJob(job_service_pb2.WatchJobRequest(job_id=job_id), timeout=30)
    async for response in call:
        seen += response.event.type == E.JOB_EVENT_TYPE_STARTED
        if seen == count:
            call.cancel()
            return
    raise AssertionError(f"job {job_id} ended after starting {seen} times")


async def pending_messages(pipeline: Pipeline) -> int:
    """Messages of the jobs stream not yet acked or termed (a work queue keeps only those)."""
    info = await pipeline.nc.jetstream().stream_info(pipeline.topology.jobs_stream)
    return info.state.messages


@dataclasses.dataclass
class Takeover:
    """Attempt 1 runs on a stalled worker and does `stale` when let go; attempt 2, on a healthy worker, succeeds."""

    stale: Callable[[JobContext], Any]
    let_stale_go: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    let_newer_go: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def handler(self, ctx: JobContext) -> job_pb2.JobResult:
        if ctx.attempt == 1:
            await self.let_stale_go.wait()
            await self.stale(ctx)
        else:
            with contextlib.suppress(asyncio.CancelledError):
                # The newer attempt finishes whatever it is told meanwhile: its outcome is the one that counts.
                await self.let_newer_go.wait()
            await self.let_newer_go.wait()
        return E.JobResult(text=f"done by attempt {ctx.attempt}")


async def stale_success(ctx: JobContext) -> None:
    return None


async def stale_retryable_failure(ctx: JobContext) -> None:
    raise RetryableError("stale attempt failed")


async def stale_permanent_failure(ctx: JobContext) -> None:
    raise PermanentError("stale attempt gave up")


async def stale_deferral(ctx: JobContext) -> None:
    raise Defer(0.05, "stale attempt hands the job back")


async def stale_progress(ctx: JobContext) -> None:
    await ctx.progress(99, "stale progress")


STALE_OUTCOMES = {
    "succeed": stale_success,
    "retry": stale_retryable_failure,
    "fail": stale_permanent_failure,
    "requeue": stale_deferral,
    "progress": stale_progress,
}


async def take_over(pipeline: Pipeline, start_worker: StartWorker, takeover: Takeover) -> tuple[job_pb2.Job, Any]:
    """A job whose first attempt, on a stalled worker, has been taken over by a second on a healthy one."""
    stalled = await start_worker(config=STALLED, handler_map={"summarize_text": takeover.handler})
    job = await pipeline.submit("takeover", max_attempts=3)
    await started(pipeline, job.id, 1)
    # The stalled worker has no free slot, so the redelivery after its lapsed lease goes to this one.
    await start_worker(config=HEALTHY, handler_map={"summarize_text": takeover.handler})
    await started(pipeline, job.id, 2)
    return job, stalled


async def assert_the_newer_attempt_decided(
    pipeline: Pipeline, job_id: str, history_types: tuple[str, ...] = ("QUEUED", "STARTED", "STARTED", "SUCCEEDED")
) -> None:
    history = await pipeline.events(job_id)
    stored = await pipeline.store.get_job(job_id)
    assert stored is not None
    assert (E.JobState.Name(stored.state), stored.attempt, stored.result.text) == (
        "JOB_STATE_SUCCEEDED",
        2,
        "done by attempt 2",
    )
    assert list(stored.errors) == []
    assert stored.progress.message != "stale progress"
    assert types(history) == list(history_types)
    assert await DeadLetters(pipeline.nc, pipeline.topology).get(job_id) is None


@pytest.mark.parametrize("outcome", sorted(STALE_OUTCOMES))
async def test_a_stale_attempt_cannot_settle_a_job_a_newer_attempt_holds(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch, outcome: str
) -> None:
    takeover = Takeover(STALE_OUTCOMES[outcome])
    job, _ = await take_over(pipeline, start_worker, takeover)
    takeover.let_stale_go.set()
    await logs.wait_for(f"job {job.id}: attempt 1 lost its lease (now attempt 2, JOB_STATE_RUNNING)")
    # Refused without touching the message: the newer attempt's delivery still holds it.
    assert await pending_messages(pipeline) == 1
    takeover.let_newer_go.set()
    await assert_the_newer_attempt_decided(pipeline, job.id)


async def test_a_stale_attempt_stopped_by_a_drain_does_not_hand_the_job_out_again(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch
) -> None:
    takeover = Takeover(stale_success)
    job, stalled = await take_over(pipeline, start_worker, takeover)
    await stalled.stop()
    await logs.wait_for(f"job {job.id}: attempt 1 lost its lease (now attempt 2, JOB_STATE_RUNNING)")
    assert await pending_messages(pipeline) == 1
    takeover.let_newer_go.set()
    # A nak of the stale delivery would have started a third attempt beside the second.
    await assert_the_newer_attempt_decided(pipeline, job.id)


async def test_a_stale_attempt_stopped_by_a_cancel_leaves_the_newer_attempt_its_message(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch
) -> None:
    takeover = Takeover(stale_success)
    job, _ = await take_over(pipeline, start_worker, takeover)
    await pipeline.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id=job.id), timeout=10)
    await logs.wait_for(f"job {job.id}: attempt 1 lost its lease (now attempt 2, JOB_STATE_RUNNING)")
    # Termed here, the job would have no message left should the newer attempt's worker die.
    assert await pending_messages(pipeline) == 1
    takeover.let_newer_go.set()
    await assert_the_newer_attempt_decided(
        pipeline, job.id, ("QUEUED", "STARTED", "STARTED", "CANCEL_REQUESTED", "SUCCEEDED")
    )


def count_reads(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, job_id: Callable[[], str], wanted: int
) -> asyncio.Event:
    """Set once the job has been read from the store `wanted` times (a worker's heartbeat reads the job it holds)."""
    reached = asyncio.Event()
    reads = 0
    read = pipeline.store.get_job

    async def counting(wanted_id: str) -> job_pb2.Job | None:
        nonlocal reads
        if wanted_id == job_id():
            reads += 1
            if reads >= wanted:
                reached.set()
        return await read(wanted_id)

    monkeypatch.setattr(pipeline.store, "get_job", counting)
    return reached


async def test_heartbeats_keep_a_job_running_well_past_its_ack_wait(
    pipeline: Pipeline, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = asyncio.Event()

    async def long_job(ctx: JobContext) -> job_pb2.JobResult:
        await release.wait()
        return E.JobResult(text=f"done by attempt {ctx.attempt}")

    submitted: list[str] = []
    # Fifteen heartbeats of 0.2 s (a few reads are the claim's and the watch's): three times the ack wait.
    heartbeats = count_reads(pipeline, monkeypatch, lambda: submitted[0] if submitted else "", wanted=15)
    await start_worker(config=HEALTHY, handler_map={"summarize_text": long_job})
    job = await pipeline.submit("long")
    submitted.append(job.id)
    await heartbeats.wait()
    release.set()
    history = await pipeline.events(job.id)
    assert types(history) == ["QUEUED", "STARTED", "SUCCEEDED"]
    consumer = await pipeline.nc.jetstream().consumer_info(
        pipeline.topology.jobs_stream, pipeline.topology.consumer("generator", "interactive")
    )
    assert consumer.num_redelivered == 0
