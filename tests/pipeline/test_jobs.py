"""The job pipeline end to end on real NATS: gateway services, worker runtime, embedded store."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator

import grpc
import pymongo.errors
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from syllabus.deadletters import DeadLetters
from syllabus.errors import QueueFull
from syllabus.jetstream import DUPLICATE_WINDOW, StreamLimits, ensure_topology
from syllabus.submit import build_job
from syllabus.v1 import admin_service_pb2, job_pb2, job_service_pb2
from syllabus.worker import JobContext
from tests.pipeline import handlers
from tests.pipeline.conftest import WORKER_CONFIG, Pipeline, StartWorker

E = job_pb2


def types(events: list[job_pb2.JobEvent]) -> list[str]:
    return [E.JobEventType.Name(e.type).removeprefix("JOB_EVENT_TYPE_") for e in events]


async def first_event(
    stream: AsyncIterator[job_service_pb2.WatchJobResponse], type_: job_pb2.JobEventType
) -> job_pb2.JobEvent:
    async for response in stream:
        if response.event.type == type_:
            return response.event
    raise AssertionError(f"stream ended before {E.JobEventType.Name(type_)}")


def watch(pipeline: Pipeline, job_id: str) -> AsyncIterator[job_service_pb2.WatchJobResponse]:
    call: AsyncIterator[job_service_pb2.WatchJobResponse] = pipeline.jobs.WatchJob(
        job_service_pb2.WatchJobRequest(job_id=job_id), timeout=30
    )
    return call


async def test_get_job_agrees_with_the_event_stream(pipeline: Pipeline, start_worker: StartWorker) -> None:
    await start_worker()
    job = await pipeline.submit("progress", labels={"team": "docs"})
    events = await pipeline.events(job.id)
    assert types(events) == ["QUEUED", "STARTED", "PROGRESS", "SUCCEEDED"]
    assert events[2].progress.percent == 50 and events[2].progress.message == "half way"
    assert [e.sequence for e in events] == sorted(e.sequence for e in events)
    got = (await pipeline.jobs.GetJob(job_service_pb2.GetJobRequest(job_id=job.id))).job
    assert got.state == events[-1].state == E.JOB_STATE_SUCCEEDED
    assert got.result == events[-1].result
    assert got.result.text == "done by attempt 1: progress"
    assert got.attempt == 1 and got.kind == "summarize_text" and got.options.labels["team"] == "docs"
    assert got.parent_id == "" and not any(e.parent_id for e in events)
    assert got.HasField("start_time") and got.HasField("end_time")


async def test_retryable_errors_are_retried_with_backoff_then_succeed(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    await start_worker()
    job = await pipeline.submit("fail-retryable:2")
    events = await pipeline.events(job.id)
    assert types(events) == ["QUEUED", "STARTED", "RETRYING", "STARTED", "RETRYING", "STARTED", "SUCCEEDED"]
    retrying = [e for e in events if e.type == E.JOB_EVENT_TYPE_RETRYING]
    assert [e.error.attempt for e in retrying] == [1, 2]
    # No jitter in the tests' policy: each delay is exactly the backoff for its attempt.
    policy = WORKER_CONFIG.retry
    assert [e.retry_delay.ToNanoseconds() for e in retrying] == [round(policy.delay(n, 0.5) * 1e9) for n in (1, 2)]
    done = await pipeline.store.get_job(job.id)
    assert done is not None and done.attempt == 3
    assert [(err.attempt, err.type) for err in done.errors] == [(1, "RetryableError"), (2, "RetryableError")]


async def test_permanent_error_goes_to_the_dead_letter_queue_with_its_history(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    await start_worker()
    job = await pipeline.submit("fail-permanent", max_attempts=5)
    events = await pipeline.events(job.id)
    assert types(events) == ["QUEUED", "STARTED", "DEAD_LETTERED", "FAILED"]
    dead = (await pipeline.admin.GetDeadLetter(admin_service_pb2.GetDeadLetterRequest(job_id=job.id))).dead_letter
    assert dead.reason == "permanent error"
    # The subject the job's message came on: where it was queued, for the operator.
    assert dead.subject == pipeline.topology.job_subject(job)
    assert dead.job.spec.summarize_text.text == "fail-permanent"
    assert [(e.attempt, e.type, e.permanent) for e in dead.job.errors] == [(1, "BadInput", True)]
    assert dead.job.errors[0].HasField("time")
    listed = await pipeline.admin.ListDeadLetters(admin_service_pb2.ListDeadLettersRequest())
    assert [d.job_id for d in listed.dead_letters] == [job.id]


async def test_exhausted_attempts_dead_letter_the_job(pipeline: Pipeline, start_worker: StartWorker) -> None:
    await start_worker()
    job = await pipeline.submit("always-fail", max_attempts=2)
    events = await pipeline.events(job.id)
    assert types(events) == ["QUEUED", "STARTED", "RETRYING", "STARTED", "DEAD_LETTERED", "FAILED"]
    dead = (await pipeline.admin.GetDeadLetter(admin_service_pb2.GetDeadLetterRequest(job_id=job.id))).dead_letter
    assert dead.reason == "max attempts (2) exhausted"
    assert [e.attempt for e in dead.job.errors] == [1, 2]
    failed = (await pipeline.jobs.GetJob(job_service_pb2.GetJobRequest(job_id=job.id))).job
    assert failed.state == E.JOB_STATE_FAILED


async def test_dead_letter_retried_as_is_succeeds_with_a_fresh_history(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    await start_worker()
    job = await pipeline.submit("fail-until-healed", max_attempts=1)
    first = await pipeline.events(job.id)
    assert types(first)[-1] == "FAILED"
    handlers.healed.add(job.id)
    retried = await pipeline.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=job.id))
    assert retried.job.state == E.JOB_STATE_QUEUED and not retried.job.errors
    events = await pipeline.events(job.id, after=first[-1].sequence)
    assert types(events) == ["QUEUED", "STARTED", "SUCCEEDED"]
    done = await pipeline.store.get_job(job.id)
    assert done is not None and done.attempt == 1 and not done.errors
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await pipeline.admin.GetDeadLetter(admin_service_pb2.GetDeadLetterRequest(job_id=job.id))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_dead_letter_retried_with_an_edited_payload(pipeline: Pipeline, start_worker: StartWorker) -> None:
    await start_worker()
    job = await pipeline.submit("fail-permanent")
    assert types(await pipeline.events(job.id))[-1] == "FAILED"
    edited = E.JobSpec(summarize_text=E.SummarizeText(text="ok:edited"))
    await pipeline.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=job.id, spec=edited))
    done = await pipeline.wait_end(job.id)
    assert done.state == E.JOB_STATE_SUCCEEDED
    assert done.result.text == "done by attempt 1: edited"
    assert done.spec == edited


async def test_retrying_a_dead_letter_with_another_kind_is_invalid(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    await start_worker()
    job = await pipeline.submit("fail-permanent")
    await pipeline.events(job.id)
    other = E.JobSpec(render_document=E.RenderDocument(course_id="c1"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pipeline.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=job.id, spec=other))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["spec"]


async def test_retrying_a_dead_letter_whose_job_is_not_failed_names_its_state(pipeline: Pipeline) -> None:
    # A letter left behind by a retry whose answer was lost: its job already ran again and succeeded.
    job = build_job(
        E.JobSpec(summarize_text=E.SummarizeText(text="x")), E.JobOptions(), tenant="default", default_max_attempts=1
    )
    job.state = E.JOB_STATE_SUCCEEDED
    await pipeline.store.insert_jobs([job])
    await DeadLetters(pipeline.nc, pipeline.topology).put(job, "subject", "permanent error")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pipeline.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=job.id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == f"job {job.id} is JOB_STATE_SUCCEEDED, not FAILED: nothing to retry"


async def test_purge_dead_letters(pipeline: Pipeline, start_worker: StartWorker) -> None:
    await start_worker()
    jobs = [await pipeline.submit("fail-permanent") for _ in range(3)]
    for job in jobs:
        await pipeline.events(job.id)
    purged = await pipeline.admin.PurgeDeadLetters(admin_service_pb2.PurgeDeadLettersRequest())
    assert purged.purged == 3
    listed = await pipeline.admin.ListDeadLetters(admin_service_pb2.ListDeadLettersRequest())
    assert not listed.dead_letters


async def test_another_tenants_dead_letters_are_not_seen_retried_or_purged(pipeline: Pipeline) -> None:
    # Gateways of two tenants on one NATS share the dead-letter stream; each sees only its own letters.
    theirs = build_job(
        E.JobSpec(summarize_text=E.SummarizeText(text="x")), E.JobOptions(), tenant="other", default_max_attempts=1
    )
    await pipeline.store.insert_jobs([theirs])
    await DeadLetters(pipeline.nc, pipeline.topology).put(theirs, "subject", "permanent error")
    listed = await pipeline.admin.ListDeadLetters(admin_service_pb2.ListDeadLettersRequest())
    assert not listed.dead_letters
    for call in (
        pipeline.admin.GetDeadLetter(admin_service_pb2.GetDeadLetterRequest(job_id=theirs.id)),
        pipeline.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=theirs.id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    purged = await pipeline.admin.PurgeDeadLetters(admin_service_pb2.PurgeDeadLettersRequest())
    assert purged.purged == 0
    assert await DeadLetters(pipeline.nc, pipeline.topology).get(theirs.id) is not None


async def test_dead_letters_page_through_in_order(pipeline: Pipeline, start_worker: StartWorker) -> None:
    # One job at a time, so they are dead-lettered in the order they were submitted.
    await start_worker(dataclasses.replace(WORKER_CONFIG, concurrency=1))
    jobs = [await pipeline.submit("fail-permanent") for _ in range(5)]
    for job in jobs:
        await pipeline.events(job.id)
    seen: list[str] = []
    token = ""
    while True:
        page = await pipeline.admin.ListDeadLetters(
            admin_service_pb2.ListDeadLettersRequest(page_size=2, page_token=token)
        )
        seen += [d.job_id for d in page.dead_letters]
        token = page.next_page_token
        if not token:
            break
    assert seen == [job.id for job in jobs]
    # A page that takes the last letters exactly has no next page either.
    whole = await pipeline.admin.ListDeadLetters(admin_service_pb2.ListDeadLettersRequest(page_size=5))
    assert [d.job_id for d in whole.dead_letters] == seen and not whole.next_page_token


async def test_dead_letter_pages_hold_50_by_default_and_at_most_1000(pipeline: Pipeline) -> None:
    letters = DeadLetters(pipeline.nc, pipeline.topology)
    spec = E.JobSpec(summarize_text=E.SummarizeText(text="x"))
    for _ in range(1001):
        job = build_job(spec, E.JobOptions(), tenant="default", default_max_attempts=1)
        await letters.put(job, pipeline.topology.job_subject(job), "permanent error")
    default = await pipeline.admin.ListDeadLetters(admin_service_pb2.ListDeadLettersRequest())
    assert len(default.dead_letters) == 50 and default.next_page_token
    capped = await pipeline.admin.ListDeadLetters(admin_service_pb2.ListDeadLettersRequest(page_size=5000))
    assert len(capped.dead_letters) == 1000 and capped.next_page_token
    rest = await pipeline.admin.ListDeadLetters(
        admin_service_pb2.ListDeadLettersRequest(page_size=5000, page_token=capped.next_page_token)
    )
    assert len(rest.dead_letters) == 1 and not rest.next_page_token


async def test_a_dead_letter_stored_twice_is_kept_once(pipeline: Pipeline) -> None:
    # A worker whose first copy's ack was lost stores it again: the first letter stays, where it was in the
    # queue's order and with its time, and no second one is added.
    letters = DeadLetters(pipeline.nc, pipeline.topology)
    job = build_job(
        E.JobSpec(summarize_text=E.SummarizeText(text="x")), E.JobOptions(), tenant="t", default_max_attempts=1
    )
    subject = pipeline.topology.job_subject(job)
    await letters.put(job, subject, "permanent error")
    first = await letters.get(job.id)
    await letters.put(job, subject, "permanent error")
    assert await letters.get(job.id) == first
    assert await pipeline.messages(pipeline.topology.dlq_stream) == 1


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        base64.urlsafe_b64encode(b"jobs:3").decode(),
        base64.urlsafe_b64encode(b"dlq:three").decode(),
    ],
)
async def test_a_dead_letter_page_token_it_did_not_issue_is_refused(pipeline: Pipeline, token: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pipeline.admin.ListDeadLetters(admin_service_pb2.ListDeadLettersRequest(page_token=token))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(err.value) == ["page_token"]


async def test_same_idempotency_key_returns_the_same_job_and_runs_once(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    first = await pipeline.jobs.SubmitJob(submit_request("ok", idempotency_key="order-42"))
    again = await pipeline.jobs.SubmitJob(submit_request("ok", idempotency_key="order-42"))
    assert first.created and not again.created
    assert again.job.id == first.job.id
    batch = await pipeline.jobs.SubmitJobs(
        job_service_pb2.SubmitJobsRequest(
            requests=[submit_request("ok", idempotency_key="order-42"), submit_request("ok", idempotency_key="b-1")]
        )
    )
    assert [r.created for r in batch.results] == [False, True]
    assert batch.results[0].job.id == first.job.id
    await start_worker()
    events = await pipeline.events(first.job.id)
    assert types(events).count("STARTED") == 1
    listed = await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest())
    assert sorted(j.id for j in listed.jobs) == sorted([first.job.id, batch.results[1].job.id])


async def test_cancel_a_running_job_stops_its_handler(pipeline: Pipeline, start_worker: StartWorker) -> None:
    await start_worker()
    job = await pipeline.submit("block")
    stream = watch(pipeline, job.id)
    await first_event(stream, E.JOB_EVENT_TYPE_STARTED)
    canceled = await pipeline.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id=job.id))
    assert canceled.job.cancel_requested
    end = await first_event(stream, E.JOB_EVENT_TYPE_CANCELED)
    assert end.terminal and end.state == E.JOB_STATE_CANCELED
    assert job.id in handlers.cancelled
    stored = await pipeline.store.get_job(job.id)
    assert stored is not None and stored.state == E.JOB_STATE_CANCELED and not stored.errors


async def test_cancel_a_queued_job_skips_it_when_fetched(pipeline: Pipeline, start_worker: StartWorker) -> None:
    job = await pipeline.submit("ok")
    canceled = await pipeline.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id=job.id))
    assert canceled.job.state == E.JOB_STATE_CANCELED
    worker = await start_worker()
    later = await pipeline.submit("ok")
    await pipeline.events(later.id)
    await worker.stop()
    assert types(await pipeline.events(job.id)) == ["QUEUED", "CANCELED"]
    assert await pipeline.messages(pipeline.topology.jobs_stream) == 0


async def test_cancel_a_finished_job_changes_nothing(pipeline: Pipeline, start_worker: StartWorker) -> None:
    await start_worker()
    job = await pipeline.submit("ok")
    await pipeline.events(job.id)
    after = await pipeline.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id=job.id))
    assert after.job.state == E.JOB_STATE_SUCCEEDED


async def test_timeout_cancels_the_handler(pipeline: Pipeline, start_worker: StartWorker) -> None:
    await start_worker()
    job = await pipeline.submit("block", max_attempts=1, timeout=Duration(nanos=200_000_000))
    events = await pipeline.events(job.id)
    assert types(events) == ["QUEUED", "STARTED", "DEAD_LETTERED", "FAILED"]
    assert events[-1].error.type == "Timeout"
    assert job.id in handlers.cancelled


async def test_stale_attempt_completion_is_refused(pipeline: Pipeline, start_worker: StartWorker) -> None:
    # Worker A never heartbeats, so JetStream hands its job to worker B after AckWait: A has "stalled". With
    # one slot, taken by the stalled attempt, A cannot fetch the redelivery itself.
    stalled = dataclasses.replace(WORKER_CONFIG, ack_wait=1.0, heartbeat=3600.0)
    worker_a = await start_worker(dataclasses.replace(stalled, concurrency=1), {"summarize_text": handlers.scripted})
    job = await pipeline.submit("block-first")
    stream = watch(pipeline, job.id)
    await first_event(stream, E.JOB_EVENT_TYPE_STARTED)
    await start_worker(stalled, {"summarize_text": finish_second_attempt})
    succeeded = await first_event(stream, E.JOB_EVENT_TYPE_SUCCEEDED)
    assert succeeded.attempt == 2
    handlers.release.set()  # A wakes up and tries to complete attempt 1
    await worker_a.stop()
    done = await pipeline.store.get_job(job.id)
    assert done is not None and done.attempt == 2
    assert done.result.text == "other worker, attempt 2"
    assert types(await pipeline.events(job.id)).count("SUCCEEDED") == 1


async def finish_second_attempt(ctx: JobContext) -> job_pb2.JobResult:
    return job_pb2.JobResult(text=f"other worker, attempt {ctx.attempt}")


async def test_late_watcher_receives_the_full_history(pipeline: Pipeline, start_worker: StartWorker) -> None:
    await start_worker()
    job = await pipeline.submit("fail-retryable:1")
    live = await pipeline.events(job.id)
    late = await pipeline.events(job.id)
    assert late == live
    assert types(late) == ["QUEUED", "STARTED", "RETRYING", "STARTED", "SUCCEEDED"]


async def test_watch_resumes_after_a_sequence(pipeline: Pipeline, start_worker: StartWorker) -> None:
    await start_worker()
    job = await pipeline.submit("fail-retryable:1")
    events = await pipeline.events(job.id)
    resumed = await pipeline.events(job.id, after=events[1].sequence)
    assert resumed == events[2:]


async def test_watch_jobs_streams_live_events_of_all_jobs(pipeline: Pipeline, start_worker: StartWorker) -> None:
    await start_worker()
    call = pipeline.jobs.WatchJobs(job_service_pb2.WatchJobsRequest(kind="summarize_text"), timeout=30)
    await call.initial_metadata()  # the watch is subscribed from here on
    jobs = {(await pipeline.submit("ok")).id for _ in range(2)}
    finished: set[str] = set()
    async for response in call:
        if response.event.type == E.JOB_EVENT_TYPE_SUCCEEDED:
            finished.add(response.event.job_id)
        if finished == jobs:
            break
    call.cancel()
    assert finished == jobs


async def test_interactive_jobs_are_served_before_batch_jobs(pipeline: Pipeline, start_worker: StartWorker) -> None:
    batch = [await pipeline.submit("ok", priority=E.PRIORITY_BATCH) for _ in range(3)]
    urgent = await pipeline.submit("ok", priority=E.PRIORITY_INTERACTIVE)
    await start_worker(dataclasses.replace(WORKER_CONFIG, concurrency=1))
    started = []
    for job in [*batch, urgent]:
        [start] = [event for event in await pipeline.events(job.id) if event.type == E.JOB_EVENT_TYPE_STARTED]
        started.append(start)
    # One job at a time, so the order of their STARTED events in the stream is the order they were served in.
    served = [event.job_id for event in sorted(started, key=lambda event: event.sequence)]
    assert served == [urgent.id, *(job.id for job in batch)]


async def test_a_worker_that_started_while_interactive_jobs_waited_takes_batch_jobs_once_none_wait(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    """Both workers start while an interactive job waits, so both ask for interactive jobs only. One takes it (and
    is held by it); the other's request ends unfilled, which tells it no interactive job waits any more: it must
    then serve batch jobs, or they would wait for ever."""
    await pipeline.submit("block", priority=E.PRIORITY_INTERACTIVE)
    one_at_a_time = dataclasses.replace(WORKER_CONFIG, concurrency=1)
    await start_worker(one_at_a_time)
    await start_worker(one_at_a_time)
    batch = await pipeline.submit("ok", priority=E.PRIORITY_BATCH)
    history = await pipeline.events(batch.id)
    assert types(history) == ["QUEUED", "STARTED", "SUCCEEDED"]


async def test_invalid_input_is_invalid_argument_with_field_violations(pipeline: Pipeline) -> None:
    bad = job_service_pb2.SubmitJobRequest(
        spec=E.JobSpec(summarize_text=E.SummarizeText(text="")),
        options=E.JobOptions(max_attempts=1000, labels={"Bad Key": "x"}),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pipeline.jobs.SubmitJob(bad)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(field_violations(err.value)) == [
        'options.labels["Bad Key"]',
        "options.max_attempts",
        "spec.summarize_text.text",
    ]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pipeline.jobs.SubmitJob(job_service_pb2.SubmitJobRequest())
    assert field_violations(err.value) == ["spec"]
    listed = await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest())
    assert not listed.jobs


async def test_unknown_job_is_not_found(pipeline: Pipeline) -> None:
    for call in (
        pipeline.jobs.GetJob(job_service_pb2.GetJobRequest(job_id="nope")),
        pipeline.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id="nope")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pipeline.events("nope")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_full_queue_is_resource_exhausted_and_keeps_no_record(pipeline: Pipeline) -> None:
    await ensure_topology(pipeline.nc, pipeline.topology, StreamLimits(max_jobs=2))
    await pipeline.submit("ok")
    await pipeline.submit("ok")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pipeline.submit("ok", idempotency_key="third")
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(err.value)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry) and retry.retry_delay == Duration(seconds=int(QueueFull().retry_after))
    listed = await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest())
    assert len(listed.jobs) == 2
    assert await pipeline.store.get_job(err.value.details() or "") is None


async def test_list_jobs_filters_and_pages(pipeline: Pipeline, start_worker: StartWorker) -> None:
    ids = [(await pipeline.submit("ok", labels={"n": str(i % 2)})).id for i in range(5)]
    page = await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest(page_size=2))
    assert [j.id for j in page.jobs] == ids[::-1][:2]
    rest = await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest(page_size=10, page_token=page.next_page_token))
    assert [j.id for j in rest.jobs] == ids[::-1][2:] and not rest.next_page_token
    odd = await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest(labels=["n=1"]))
    assert [j.id for j in odd.jobs] == [ids[3], ids[1]]
    queued = await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest(states=[E.JOB_STATE_SUCCEEDED]))
    assert not queued.jobs
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest(page_token="garbage"))
    assert field_violations(err.value) == ["page_token"]


def submit_request(text: str, **options: object) -> job_service_pb2.SubmitJobRequest:
    return job_service_pb2.SubmitJobRequest(
        spec=E.JobSpec(summarize_text=E.SummarizeText(text=text)),
        options=E.JobOptions(**options),  # type: ignore[arg-type]
    )


def field_violations(err: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(err)
    assert status is not None
    request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(request)
    return [v.field for v in request.field_violations]


async def test_a_job_stored_but_never_published_runs_when_its_key_is_submitted_again(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    # As if the gateway died between storing the job and publishing it: the caller got no answer and retries.
    spec = E.JobSpec(summarize_text=E.SummarizeText(text="ok:after crash"))
    orphan = build_job(spec, E.JobOptions(idempotency_key="k-crash"), tenant="default", default_max_attempts=3)
    await pipeline.store.insert_jobs([orphan])
    await start_worker()
    again = await pipeline.jobs.SubmitJob(
        job_service_pb2.SubmitJobRequest(spec=spec, options=E.JobOptions(idempotency_key="k-crash"))
    )
    assert again.job.id == orphan.id and not again.created
    events = await pipeline.events(orphan.id)
    assert types(events) == ["QUEUED", "STARTED", "SUCCEEDED"]
    # Asked once more while it already ran: nothing is published again, it does not run twice.
    third = await pipeline.jobs.SubmitJob(
        job_service_pb2.SubmitJobRequest(spec=spec, options=E.JobOptions(idempotency_key="k-crash"))
    )
    assert third.job.state == E.JOB_STATE_SUCCEEDED
    assert types(await pipeline.events(orphan.id)) == ["QUEUED", "STARTED", "SUCCEEDED"]


async def test_a_job_canceled_before_it_ran_is_not_queued_again_by_its_key(pipeline: Pipeline) -> None:
    first = await pipeline.submit("ok", idempotency_key="k-canceled")
    await pipeline.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id=first.id))
    again = await pipeline.submit("ok", idempotency_key="k-canceled")
    assert again.id == first.id and again.state == E.JOB_STATE_CANCELED
    assert types(await pipeline.events(first.id)) == ["QUEUED", "CANCELED"]
    # Nothing announced after its end either (a watch stops at the end).
    assert await pipeline.messages(pipeline.topology.events_stream) == 2


async def test_a_job_stored_before_the_duplicate_window_is_not_published_again(pipeline: Pipeline) -> None:
    # Its first publish may have landed and run long enough ago that JetStream no longer knows its message id:
    # publishing it again could run it twice. The last tenth of the window counts as past it: clocks differ.
    spec = E.JobSpec(summarize_text=E.SummarizeText(text="ok:old"))
    orphan = build_job(spec, E.JobOptions(idempotency_key="k-old"), tenant="default", default_max_attempts=3)
    orphan.create_time.FromNanoseconds(orphan.create_time.ToNanoseconds() - int(0.95 * DUPLICATE_WINDOW * 1e9))
    await pipeline.store.insert_jobs([orphan])
    again = await pipeline.jobs.SubmitJob(
        job_service_pb2.SubmitJobRequest(spec=spec, options=E.JobOptions(idempotency_key="k-old"))
    )
    assert again.job.id == orphan.id and not again.created
    for stream in (pipeline.topology.jobs_stream, pipeline.topology.events_stream):
        assert await pipeline.messages(stream) == 0


async def test_a_job_whose_record_cannot_be_stored_is_refused_and_never_queued(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an idempotency key a job's arrival is announced while its record is stored: a store that fails
    then leaves nothing on the queue, and the caller is told to try again."""

    async def away(jobs: object) -> None:
        raise pymongo.errors.AutoReconnect("connection refused (injected)")

    monkeypatch.setattr(pipeline.store, "insert_jobs", away)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pipeline.submit("never stored")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await pipeline.messages(pipeline.topology.jobs_stream) == 0
    monkeypatch.undo()
    listed = await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest())
    assert list(listed.jobs) == []
