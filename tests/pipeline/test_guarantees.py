"""The lifecycle's promises, each tested by breaking what it depends on for real.

A stale attempt (its lease taken over by a redelivery) cannot settle the job in any way; a dead letter is
stored before its message is dropped; heartbeats keep a long job; a cancel whose NATS notice is missed is
still seen; retry delays follow the policy and the provider's Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import grpc
import pymongo.errors
import pytest

from syllabus import lifecycle
from syllabus.config import RetryPolicy
from syllabus.deadletters import DeadLetters
from syllabus.jetstream import StreamLimits, ensure_topology
from syllabus.runtime import Runtime
from syllabus.store.base import JobChange, JobQuery, Updated
from syllabus.v1 import admin_service_pb2, job_pb2, job_service_pb2
from syllabus.worker import Defer, JobContext, PermanentError, RetryableError, WaitForChildren, Worker
from tests.pipeline import handlers
from tests.pipeline.conftest import WORKER_CONFIG, Pipeline, RunningWorker, StartWorker
from tests.pipeline.logwatch import LogWatch, watching_logs
from tests.pipeline.test_faults import ACK_WAIT as FAULT_ACK_WAIT
from tests.pipeline.test_faults import start_worker_process
from tests.pipeline.test_jobs import types
from tests.pipeline.test_parents import parent_handlers
from tests.storefaults import one_by_one

E = job_pb2
# Short enough that a redelivery comes quickly, long enough for a claim on a busy machine.
ACK_WAIT = 1.0
# No heartbeat: the worker holding the first attempt lets its lease lapse, as a stalled process does.
STALLED = dataclasses.replace(WORKER_CONFIG, concurrency=1, ack_wait=ACK_WAIT, heartbeat=3600.0, drain_grace=0.1)
# The history of a job whose second attempt, after a takeover, succeeded.
DECIDED = ("QUEUED", "STARTED", "STALLED", "STARTED", "SUCCEEDED")
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
    return await pipeline.messages(pipeline.topology.jobs_stream)


async def pending_once_stopped(pipeline: Pipeline, *workers: RunningWorker) -> int:
    """Pending messages once the workers have dealt with every message they took: a job's terminal event can be
    seen before the worker has sent its message's ack or term."""
    for worker in workers:
        await worker.stop()
    return await pending_messages(pipeline)


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
            # The newer attempt finishes however often it is told to stop (a cancel's notice, then the heartbeat
            # seeing its flag): its outcome is the one that counts.
            while not self.let_newer_go.is_set():
                with contextlib.suppress(asyncio.CancelledError):
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


async def stale_wait_for_children(ctx: JobContext) -> None:
    raise WaitForChildren("stale attempt waits for children")


STALE_OUTCOMES = {
    "succeed": stale_success,
    "retry": stale_retryable_failure,
    "fail": stale_permanent_failure,
    "requeue": stale_deferral,
    "progress": stale_progress,
    "wait for children": stale_wait_for_children,
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
    pipeline: Pipeline,
    job_id: str,
    history_types: tuple[str, ...] = DECIDED,
    *,
    after: int = 0,
    attempt: int = 2,
    result: str = "done by attempt 2",
) -> None:
    """The job succeeded with the newer attempt's result and nothing of the stale one; `history_types` are its
    events after sequence `after`."""
    history = await pipeline.events(job_id, after=after)
    stored = await pipeline.store.get_job(job_id)
    assert stored is not None
    assert (E.JobState.Name(stored.state), stored.attempt, stored.result.text) == (
        "JOB_STATE_SUCCEEDED",
        attempt,
        result,
    )
    assert list(stored.errors) == []
    assert stored.progress.message != "stale progress"
    assert types(history) == list(history_types)
    assert await DeadLetters(pipeline.nc, pipeline.topology).get(job_id) is None


async def assert_refused_then_the_newer_attempt_decided(
    pipeline: Pipeline, logs: LogWatch, takeover: Takeover, job_id: str, history_types: tuple[str, ...] = DECIDED
) -> None:
    """Attempt 1's outcome was refused without touching the message (the newer attempt's delivery still holds
    it); then attempt 2, let go, decides the job."""
    refusal = f"job {job_id}: attempt 1 lost its lease (now attempt 2, JOB_STATE_RUNNING); result discarded"
    await logs.wait_for(refusal)
    assert refusal in [record.getMessage() for record in logs.records]
    # The workers publish on this connection: once it is flushed, an ack, nak or term the refusal sent (and must
    # not have) has reached the server, and the count below sees it.
    await pipeline.nc.flush()
    try:
        assert await pending_messages(pipeline) == 1
    finally:
        # Let go whatever happened: the newer attempt ignores stops, so the worker could not drain otherwise.
        takeover.let_newer_go.set()
    await assert_the_newer_attempt_decided(pipeline, job_id, history_types)


@pytest.mark.parametrize("outcome", sorted(STALE_OUTCOMES))
async def test_a_stale_attempt_cannot_settle_a_job_a_newer_attempt_holds(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch, outcome: str
) -> None:
    takeover = Takeover(STALE_OUTCOMES[outcome])
    job, _ = await take_over(pipeline, start_worker, takeover)
    takeover.let_stale_go.set()
    await assert_refused_then_the_newer_attempt_decided(pipeline, logs, takeover, job.id)


async def running_on_a_draining_worker(pipeline: Pipeline, start_worker: StartWorker) -> tuple[job_pb2.Job, Any]:
    """A job that blocks, started on a worker whose drain hands it back at once."""
    draining = await start_worker(config=dataclasses.replace(WORKER_CONFIG, drain_grace=0.1))
    job = await pipeline.submit("block")
    await started(pipeline, job.id, 1)
    return job, draining


async def test_a_drained_worker_hands_its_running_job_back_uncounted(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch
) -> None:
    job, draining = await running_on_a_draining_worker(pipeline, start_worker)
    await draining.stop()
    assert "INFO syllabus.worker: handing 1 unfinished jobs back to the queue" in logs.at_least(logging.INFO)
    handed_back = await pipeline.store.get_job(job.id)
    assert handed_back is not None
    assert (handed_back.state, handed_back.attempt, handed_back.lease) == (E.JOB_STATE_QUEUED, 0, 1)
    handlers.release.set()
    worker = await start_worker()
    history = await pipeline.events(job.id)
    assert types(history) == ["QUEUED", "STARTED", "QUEUED", "STARTED", "SUCCEEDED"]
    stored = await pipeline.store.get_job(job.id)
    assert stored is not None and (stored.attempt, list(stored.errors)) == (1, [])
    assert await pending_once_stopped(pipeline, worker) == 0


async def test_a_drained_worker_drops_the_message_of_a_job_whose_record_is_gone(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch
) -> None:
    job, draining = await running_on_a_draining_worker(pipeline, start_worker)
    await pipeline.store.delete_jobs([job.id])
    await draining.stop()
    await pipeline.nc.flush()
    assert (
        f"WARNING syllabus.worker: job {job.id}: attempt 1 lost its lease (its record is gone); result discarded"
        in logs.at_least(logging.WARNING)
    )
    # Handed back, it would come back to a worker only to be dropped then.
    assert await pending_messages(pipeline) == 0
    assert logs.at_least(logging.ERROR) == []


async def test_a_stale_attempt_stopped_by_a_drain_does_not_hand_the_job_out_again(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch
) -> None:
    takeover = Takeover(stale_success)
    job, stalled = await take_over(pipeline, start_worker, takeover)
    await stalled.stop()
    # A nak of the stale delivery would have started a third attempt beside the second.
    await assert_refused_then_the_newer_attempt_decided(pipeline, logs, takeover, job.id)


async def test_a_stale_attempt_stopped_by_a_cancel_leaves_the_newer_attempt_its_message(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch
) -> None:
    takeover = Takeover(stale_success)
    job, _ = await take_over(pipeline, start_worker, takeover)
    await pipeline.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id=job.id), timeout=10)
    # Termed here, the job would have no message left should the newer attempt's worker die.
    await assert_refused_then_the_newer_attempt_decided(
        pipeline, logs, takeover, job.id, ("QUEUED", "STARTED", "STALLED", "STARTED", "CANCEL_REQUESTED", "SUCCEEDED")
    )


@dataclasses.dataclass
class StaleAcrossRetry:
    """The job's only attempt stalls and is taken for lost: dead-lettered, then retried from the dead-letter queue.
    The retried job's attempt 1 is running when the stalled attempt 1 comes back and does `stale`."""

    stale: Callable[[JobContext], Any]
    runs: int = 0
    let_stale_go: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    let_retried_go: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def handler(self, ctx: JobContext) -> job_pb2.JobResult:
        self.runs += 1
        if self.runs == 1:
            await self.let_stale_go.wait()
            await self.stale(ctx)
        else:
            await self.let_retried_go.wait()
        return E.JobResult(text=f"done by run {self.runs}")


@pytest.mark.parametrize("outcome", sorted(STALE_OUTCOMES))
async def test_an_attempt_from_before_a_dead_letter_retry_cannot_settle_the_retried_job(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch, outcome: str
) -> None:
    """Both attempts are attempt 1: only the lease tells them apart."""
    stale = StaleAcrossRetry(STALE_OUTCOMES[outcome])
    stalled = await start_worker(config=STALLED, handler_map={"summarize_text": stale.handler})
    job = await pipeline.submit("stalls", max_attempts=1)
    await started(pipeline, job.id, 1)
    # The stalled worker has no free slot: this one gets the redelivery, finds no attempt left, dead-letters it.
    healthy = await start_worker(config=HEALTHY, handler_map={"summarize_text": stale.handler})
    first = await pipeline.events(job.id)
    assert types(first) == ["QUEUED", "STARTED", "STALLED", "DEAD_LETTERED", "FAILED"]
    await pipeline.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=job.id), timeout=10)
    await started(pipeline, job.id, 2)
    stale.let_stale_go.set()
    refusal = f"job {job.id}: attempt 1 lost its lease (now attempt 1, JOB_STATE_RUNNING); result discarded"
    await logs.wait_for(refusal)
    stale.let_retried_go.set()
    await assert_the_newer_attempt_decided(
        pipeline,
        job.id,
        ("QUEUED", "STARTED", "SUCCEEDED"),
        after=first[-1].sequence,
        attempt=1,
        result="done by run 2",
    )
    assert await pending_once_stopped(pipeline, stalled, healthy) == 0


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


async def test_a_cancel_whose_nats_notice_is_missed_is_seen_through_the_store(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    stopped = asyncio.Event()

    async def until_stopped(ctx: JobContext) -> job_pb2.JobResult:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()
        raise AssertionError("unreachable")

    await start_worker(config=HEALTHY, handler_map={"summarize_text": until_stopped})
    job = await pipeline.submit("cancel me")
    await started(pipeline, job.id, 1)
    # The flag CancelJob sets, without the NATS notice it also sends: as if the worker had missed it.
    canceled = await pipeline.store.update_job(job.id, lifecycle.Cancel().change())
    assert canceled.applied
    history = await pipeline.events(job.id)
    assert stopped.is_set()
    assert types(history) == ["QUEUED", "STARTED", "CANCELED"]


def retrying_delays(history: list[job_pb2.JobEvent]) -> list[float]:
    return [e.retry_delay.ToNanoseconds() / 1e9 for e in history if e.type == E.JOB_EVENT_TYPE_RETRYING]


async def run_with_policy(
    pipeline: Pipeline, policy: RetryPolicy, handler: Callable[[JobContext], Any], rand: float
) -> list[job_pb2.JobEvent]:
    worker = Worker(
        service="generator",
        handlers={"summarize_text": handler},
        runtime=Runtime.build(pipeline.nc, pipeline.store, pipeline.topology),
        config=dataclasses.replace(WORKER_CONFIG, retry=policy),
        rand=lambda: rand,
    )
    running = asyncio.create_task(worker.run())
    try:
        job = await pipeline.submit("retried", max_attempts=policy.max_attempts)
        return await pipeline.events(job.id)
    finally:
        worker.stop()
        await running


async def fails_three_times(ctx: JobContext) -> job_pb2.JobResult:
    if ctx.attempt <= 3:
        raise RetryableError(f"attempt {ctx.attempt} failed")
    return E.JobResult(text="finally")


async def test_retry_delays_follow_the_policys_steps_and_jitter(pipeline: Pipeline) -> None:
    policy = RetryPolicy(max_attempts=4, backoff=(0.02, 0.04, 0.08), jitter=0.5)
    # rand 0.75 spreads each step by +jitter/2: 1.25 times the step.
    history = await run_with_policy(pipeline, policy, fails_three_times, rand=0.75)
    assert types(history)[-1] == "SUCCEEDED"
    assert retrying_delays(history) == pytest.approx([0.025, 0.05, 0.1])


async def test_a_providers_retry_after_sets_the_next_attempts_delay_when_longer(pipeline: Pipeline) -> None:
    async def rate_limited(ctx: JobContext) -> job_pb2.JobResult:
        # Longer than the policy's step the first time, shorter the second: the longer of the two wins.
        if ctx.attempt <= 2:
            raise RetryableError("rate limited", error_type="RateLimited", retry_after=(0.3, 0.001)[ctx.attempt - 1])
        return E.JobResult(text="through")

    policy = RetryPolicy(max_attempts=3, backoff=(0.02, 0.04), jitter=0.0)
    history = await run_with_policy(pipeline, policy, rate_limited, rand=0.5)
    assert types(history)[-1] == "SUCCEEDED"
    assert retrying_delays(history) == pytest.approx([0.3, 0.04])


async def test_a_dead_letter_whose_copy_fails_keeps_the_job_until_it_is_stored(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch
) -> None:
    js = pipeline.nc.jetstream()
    await js.delete_stream(pipeline.topology.dlq_stream)
    worker = await start_worker()
    job = await pipeline.submit("fail-permanent")
    await logs.wait_for("finished jobs keep their outcome until it answers")
    # Not failed, not dropped: the copy comes before both.
    stored = await pipeline.store.get_job(job.id)
    assert stored is not None and stored.state == E.JOB_STATE_RUNNING
    assert await pending_messages(pipeline) == 1
    await ensure_topology(pipeline.nc, pipeline.topology)
    history = await pipeline.events(job.id)
    assert types(history) == ["QUEUED", "STARTED", "DEAD_LETTERED", "FAILED"]
    letter = await DeadLetters(pipeline.nc, pipeline.topology).get(job.id)
    assert letter is not None and letter.reason == "permanent error"
    assert await pending_once_stopped(pipeline, worker) == 0


async def test_a_worker_killed_between_the_dead_letter_copy_and_term_loses_nothing(
    pipeline: Pipeline, start_worker: StartWorker, nats_url: str
) -> None:
    js = pipeline.nc.jetstream()
    job_id: list[str] = []
    letters = await js.subscribe(pipeline.topology.dead_letter_subjects, ordered_consumer=True)
    process = await start_worker_process(pipeline, nats_url, "tests.pipeline.stalling_worker")
    try:
        job = await pipeline.submit("fail-permanent", max_attempts=3)
        job_id.append(job.id)
        letter = await letters.next_msg(timeout=30)
        assert letter.subject == pipeline.topology.dead_letter_subject(job.id)
        # The process now hangs between the copy and term(): killed there, it leaves the message unsettled.
        process.kill()
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await letters.unsubscribe()
    assert await pending_messages(pipeline) == 1
    worker = await start_worker(dataclasses.replace(WORKER_CONFIG, ack_wait=FAULT_ACK_WAIT, heartbeat=0.5))
    history = await pipeline.events(job.id)
    assert types(history) == ["QUEUED", "STARTED", "STALLED", "STARTED", "DEAD_LETTERED", "FAILED"]
    stored = await pipeline.store.get_job(job.id)
    assert stored is not None and (stored.state, stored.attempt) == (E.JOB_STATE_FAILED, 2)
    assert [error.type for error in stored.errors] == ["BadInput"]
    assert await pending_once_stopped(pipeline, worker) == 0


async def test_a_worker_killed_in_a_jobs_last_attempt_dead_letters_it_with_that_reason(
    pipeline: Pipeline, start_worker: StartWorker, nats_url: str
) -> None:
    process = await start_worker_process(pipeline, nats_url)
    try:
        job = await pipeline.submit("block-in-subprocess", max_attempts=1)
        await started(pipeline, job.id, 1)
    finally:
        process.kill()
        await process.wait()
    # This worker would finish the job if it ran it: it must not, the one attempt was spent.
    await start_worker(dataclasses.replace(WORKER_CONFIG, ack_wait=FAULT_ACK_WAIT, heartbeat=0.5))
    history = await pipeline.events(job.id)
    assert types(history) == ["QUEUED", "STARTED", "STALLED", "DEAD_LETTERED", "FAILED"]
    assert history[-1].error.type == "AttemptsExhausted"
    letter = await DeadLetters(pipeline.nc, pipeline.topology).get(job.id)
    assert letter is not None and letter.reason == "max attempts exhausted (last attempt lost)"
    stored = await pipeline.store.get_job(job.id)
    assert stored is not None and (stored.state, stored.attempt) == (E.JOB_STATE_FAILED, 1)


async def test_an_outcome_whose_answer_a_bug_lost_is_redelivered_and_completed_once(
    pipeline: Pipeline, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch, logs: LogWatch
) -> None:
    runs: list[int] = []

    async def counted(ctx: JobContext) -> job_pb2.JobResult:
        runs.append(ctx.attempt)
        return E.JobResult(text=f"done by attempt {ctx.attempt}")

    write = pipeline.store.update_job
    lost = asyncio.Event()

    async def loses_the_answer(job_id: str, change: JobChange) -> Updated:
        updated = await write(job_id, change)
        if not lost.is_set() and updated.job is not None and updated.job.state == E.JOB_STATE_SUCCEEDED:
            lost.set()
            raise RuntimeError("the write landed; its answer did not (injected)")
        return updated

    monkeypatch.setattr(pipeline.store, "update_job", loses_the_answer)
    monkeypatch.setattr(pipeline.store, "update_jobs", one_by_one(pipeline.store))
    await start_worker(config=HEALTHY, handler_map={"summarize_text": counted})
    job = await pipeline.submit("once")
    history = await pipeline.events(job.id)
    assert lost.is_set()
    # The first try stopped before announcing the end: the redelivery found the job finished and announced it.
    assert types(history) == ["QUEUED", "STARTED", "SUCCEEDED"]
    assert runs == [1]
    await logs.wait_for(f"job {job.id}: bookkeeping failed; it will be redelivered")


async def test_an_outcome_held_through_an_outage_by_a_draining_worker_is_redelivered_and_completed_once(
    pipeline: Pipeline, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch, logs: LogWatch
) -> None:
    write = pipeline.store.update_job
    down = True

    async def away_for_successes(job_id: str, change: JobChange) -> Updated:
        current = await pipeline.store.get_job(job_id)
        after = change(current) if current is not None else None
        if down and after is not None and after.state == E.JOB_STATE_SUCCEEDED:
            raise pymongo.errors.AutoReconnect("connection refused (injected)")
        return await write(job_id, change)

    monkeypatch.setattr(pipeline.store, "update_job", away_for_successes)
    monkeypatch.setattr(pipeline.store, "update_jobs", one_by_one(pipeline.store))
    draining = await start_worker(config=STALLED)
    job = await pipeline.submit("ok")
    await logs.wait_for("finished jobs keep their outcome until it answers")
    await draining.stop()
    await logs.wait_for(f"job {job.id}: stopping with its outcome unrecorded; it will be redelivered")
    down = False
    await start_worker(config=HEALTHY)
    history = await pipeline.events(job.id)
    assert types(history) == ["QUEUED", "STARTED", "STALLED", "STARTED", "SUCCEEDED"]
    stored = await pipeline.store.get_job(job.id)
    assert stored is not None and (stored.state, stored.attempt) == (E.JOB_STATE_SUCCEEDED, 2)
    assert list(stored.errors) == []


async def test_a_dead_letter_retry_that_cannot_be_queued_leaves_the_job_failed_and_its_letter_in_place(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    await start_worker()
    job = await pipeline.submit("fail-permanent")
    await pipeline.events(job.id)
    failed = await pipeline.store.get_job(job.id)
    assert failed is not None and failed.state == E.JOB_STATE_FAILED
    # A queue that is full: no room for the retried job.
    blocker = await pipeline.submit("block")
    await ensure_topology(pipeline.nc, pipeline.topology, StreamLimits(max_jobs=1))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await pipeline.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=job.id), timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    restored = await pipeline.store.get_job(job.id)
    assert restored is not None
    assert (restored.state, restored.attempt, restored.spec) == (failed.state, failed.attempt, failed.spec)
    # The retry's lease stays: a lease number is never given out twice.
    assert restored.lease == failed.lease + 1
    assert [(e.type, e.message) for e in restored.errors] == [(e.type, e.message) for e in failed.errors]
    letter = await DeadLetters(pipeline.nc, pipeline.topology).get(job.id)
    assert letter is not None and letter.job.id == job.id
    # Room again: the same retry, asked again, goes through.
    await ensure_topology(pipeline.nc, pipeline.topology)
    handlers.release.set()
    await pipeline.events(blocker.id)
    edited = E.JobSpec(summarize_text=E.SummarizeText(text="ok"))
    await pipeline.admin.RetryDeadLetter(
        admin_service_pb2.RetryDeadLetterRequest(job_id=job.id, spec=edited), timeout=10
    )
    history = await pipeline.events(job.id)
    assert types(history)[-3:] == ["QUEUED", "STARTED", "SUCCEEDED"]
    assert await DeadLetters(pipeline.nc, pipeline.topology).get(job.id) is None


async def test_a_worker_dying_between_a_childs_success_and_its_parents_end_leaves_that_end_to_the_redelivery(
    pipeline: Pipeline, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch, logs: LogWatch
) -> None:
    write = pipeline.store.update_job
    broke: list[str] = []

    async def breaks_at_the_parents_end(job_id: str, change: JobChange) -> Updated:
        current = await pipeline.store.get_job(job_id)
        after = change(current) if current is not None else None
        ends_a_parent = (
            after is not None and after.state == E.JOB_STATE_SUCCEEDED and after.result.text.startswith("finished by")
        )
        if ends_a_parent and not broke:
            broke.append(job_id)
            # The child's success is stored; the worker dies (here: its bookkeeping breaks) before the parent's.
            raise RuntimeError("the worker died here (injected)")
        return await write(job_id, change)

    monkeypatch.setattr(pipeline.store, "update_job", breaks_at_the_parents_end)
    monkeypatch.setattr(pipeline.store, "update_jobs", one_by_one(pipeline.store))
    await start_worker(config=HEALTHY, handler_map=parent_handlers(pipeline))
    parent = await pipeline.submit("fan-out:finish-parent")
    history = await pipeline.events(parent.id)
    assert broke == [parent.id]
    assert types(history)[-1] == "SUCCEEDED"
    children = (await pipeline.store.list_jobs(JobQuery(tenant="default", parent_id=parent.id))).jobs
    assert len(children) == 1
    child = children[0]
    assert (child.state, child.attempt) == (E.JOB_STATE_SUCCEEDED, 1)
    assert history[-1].result.text == f"finished by {child.id}"
    await logs.wait_for(f"job {child.id}: bookkeeping failed; it will be redelivered")


@pytest.mark.parametrize("outcome", sorted(STALE_OUTCOMES))
async def test_a_job_whose_record_is_deleted_while_it_runs_has_its_outcome_discarded_and_its_message_dropped(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch, outcome: str
) -> None:
    go = asyncio.Event()

    async def handler(ctx: JobContext) -> job_pb2.JobResult:
        await go.wait()
        await STALE_OUTCOMES[outcome](ctx)
        return E.JobResult(text="done")

    worker = await start_worker(handler_map={"summarize_text": handler})
    job = await pipeline.submit("deleted under its attempt")
    await started(pipeline, job.id, 1)
    await pipeline.store.delete_jobs([job.id])
    go.set()
    await logs.wait_for(f"job {job.id}: attempt 1 lost its lease (its record is gone); result discarded")
    await worker.stop()
    await pipeline.nc.flush()
    assert await pipeline.store.get_job(job.id) is None
    events = await js_events(pipeline, job.id)
    assert types(events) == ["QUEUED", "STARTED"]
    # Nothing can own a job without a record: its message is dropped, not left to come back.
    assert await pending_messages(pipeline) == 0
    assert logs.at_least(logging.ERROR) == []


async def test_a_job_whose_record_is_deleted_while_its_cancel_is_under_way_has_its_message_dropped(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch
) -> None:
    go = asyncio.Event()

    async def handler(ctx: JobContext) -> job_pb2.JobResult:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await go.wait()  # stopped by the cancel; ends once the record is gone
            raise
        raise AssertionError("only a cancel ends this handler")

    worker = await start_worker(handler_map={"summarize_text": handler})
    job = await pipeline.submit("canceled, then deleted")
    await started(pipeline, job.id, 1)
    await pipeline.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id=job.id), timeout=10)
    await pipeline.store.delete_jobs([job.id])
    go.set()
    await logs.wait_for(f"job {job.id}: attempt 1 lost its lease (its record is gone); result discarded")
    await worker.stop()
    await pipeline.nc.flush()
    assert types(await js_events(pipeline, job.id)) == ["QUEUED", "STARTED", "CANCEL_REQUESTED"]
    assert await pending_messages(pipeline) == 0
    assert logs.at_least(logging.ERROR) == []


async def js_events(pipeline: Pipeline, job_id: str) -> list[job_pb2.JobEvent]:
    """The job's stored events, read from the stream (a job without a record cannot be watched)."""
    js = pipeline.nc.jetstream()
    subject = pipeline.topology.job_events_filter(job_id)
    sub = await js.subscribe(subject, ordered_consumer=True)
    try:
        pending = (await js.stream_info(pipeline.topology.events_stream, subjects_filter=subject)).state.subjects
        count = sum((pending or {}).values())
        return [job_pb2.JobEvent.FromString((await sub.next_msg(timeout=10)).data) for _ in range(count)]
    finally:
        await sub.unsubscribe()


async def test_a_failure_stored_by_a_worker_that_died_before_announcing_it_is_announced_with_its_error(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    """The dead worker claimed the job and stored its failure; its message is still on the queue."""
    job = await pipeline.submit("ok")
    claimed = await pipeline.store.update_job(job.id, lifecycle.Claim().change())
    assert claimed.applied
    error = E.JobError(attempt=1, type="BadInput", message="stored, never announced", permanent=True)
    assert claimed.job is not None
    failed = await pipeline.store.update_job(job.id, lifecycle.fail(lifecycle.Lease.of(claimed.job), error))
    assert failed.applied
    worker = await start_worker()
    history = await pipeline.events(job.id)
    assert types(history) == ["QUEUED", "FAILED"]
    assert (history[-1].error.type, history[-1].error.message) == ("BadInput", "stored, never announced")
    assert await pending_once_stopped(pipeline, worker) == 0


async def test_a_deferred_attempt_is_handed_back_uncounted_with_its_reason(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch
) -> None:
    deferred: set[str] = set()

    async def handler(ctx: JobContext) -> job_pb2.JobResult:
        if ctx.job.id not in deferred:
            deferred.add(ctx.job.id)
            raise Defer(0.05, "the provider's circuit is open")
        return E.JobResult(text=f"done by attempt {ctx.attempt}")

    await start_worker(handler_map={"summarize_text": handler})
    job = await pipeline.submit("ok", max_attempts=1)
    history = await pipeline.events(job.id)
    assert types(history) == ["QUEUED", "STARTED", "QUEUED", "STARTED", "SUCCEEDED"]
    error = history[2].error
    assert (error.type, error.message, error.attempt, error.permanent) == (
        "Deferred",
        "the provider's circuit is open",
        1,
        False,
    )
    assert history[2].retry_delay.ToNanoseconds() == 50_000_000
    stored = await pipeline.store.get_job(job.id)
    # One attempt allowed and one counted: the deferred one was given back.
    assert stored is not None and (stored.state, stored.attempt) == (E.JOB_STATE_SUCCEEDED, 1)
    said = [record.getMessage() for record in logs.records]
    assert f"job {job.id} deferred for {0.05:.1f}s: the provider's circuit is open" in said


async def test_a_failed_attempt_is_logged_with_its_error_and_the_delay_before_the_next(
    pipeline: Pipeline, start_worker: StartWorker, logs: LogWatch
) -> None:
    await start_worker()
    job = await pipeline.submit("fail-retryable:1")
    await pipeline.events(job.id)
    delay = WORKER_CONFIG.retry.backoff[0]
    said = [record.getMessage() for record in logs.records]
    assert f"job {job.id} attempt 1 failed (RetryableError); retrying in {delay:.1f}s" in said
