"""A watch ends at the job's end even when a late event from before the end is stored after it.

Events in between (STARTED, PROGRESS) are published without waiting for the stream, so one a worker buffered
through a NATS outage reaches the stream when its connection is back, which can be after the end another
connection announced meanwhile (most likely a redelivery finding the job finished). Seen in `syllabus up` with NATS
SIGKILLed: the history read QUEUED, SUCCEEDED, STARTED, and the watch waited for a second end.
"""

from __future__ import annotations

import pytest

from gateway import watch
from syllabus.events import event_for
from syllabus.submit import build_job
from syllabus.v1 import admin_service_pb2, job_pb2
from tests.pipeline import handlers
from tests.pipeline.conftest import Pipeline, StartWorker

E = job_pb2


def types(events: list[job_pb2.JobEvent]) -> list[str]:
    return [E.JobEventType.Name(event.type).removeprefix("JOB_EVENT_TYPE_") for event in events]


async def publish_late(pipeline: Pipeline, job: job_pb2.Job, type_: job_pb2.JobEventType) -> None:
    """An event of `job` as it was before it ended, stored now, as a connection back from an outage stores it."""
    event = event_for(job, type_)
    await pipeline.nc.jetstream().publish(
        pipeline.topology.event_subject(job.tenant, job.id), event.SerializeToString()
    )


async def running_record(pipeline: Pipeline, job_id: str) -> job_pb2.Job:
    record = await pipeline.store.get_job(job_id)
    assert record is not None
    running = job_pb2.Job()
    running.CopyFrom(record)
    running.state = E.JOB_STATE_RUNNING
    return running


async def test_a_late_event_stored_after_the_end_is_left_out_and_the_watch_ends(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    await start_worker()
    job = await pipeline.submit("ok")
    assert types(await pipeline.events(job.id)) == ["QUEUED", "STARTED", "SUCCEEDED"]
    running = await running_record(pipeline, job.id)
    await publish_late(pipeline, running, E.JOB_EVENT_TYPE_STARTED)
    await publish_late(pipeline, running, E.JOB_EVENT_TYPE_PROGRESS)
    assert types(await pipeline.events(job.id)) == ["QUEUED", "STARTED", "SUCCEEDED"]


async def test_after_a_dead_letter_only_its_retry_reopens_the_watch(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    await start_worker()
    job = await pipeline.submit("fail-until-healed", max_attempts=1)
    assert types(await pipeline.events(job.id))[-2:] == ["DEAD_LETTERED", "FAILED"]
    await publish_late(pipeline, await running_record(pipeline, job.id), E.JOB_EVENT_TYPE_PROGRESS)
    # Before the retry, the watch ends at the failure: the late event does not hold it open.
    assert types(await pipeline.events(job.id))[-2:] == ["DEAD_LETTERED", "FAILED"]
    handlers.healed.add(job.id)
    await pipeline.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=job.id))
    whole = types(await pipeline.events(job.id))
    assert whole[whole.index("FAILED") :] == ["FAILED", "QUEUED", "STARTED", "SUCCEEDED"]


async def test_a_finished_job_whose_events_aged_out_is_watched_to_its_stored_end(pipeline: Pipeline) -> None:
    job = build_job(
        E.JobSpec(summarize_text=E.SummarizeText(text="long ago")),
        E.JobOptions(),
        tenant="default",
        default_max_attempts=3,
    )
    job.state = E.JOB_STATE_SUCCEEDED
    job.result.text = "done long ago"
    await pipeline.store.insert_jobs([job])
    # The stream holds none of its events (they aged out): the record says how it ended.
    [event] = await pipeline.events(job.id)
    assert (event.type, event.terminal, event.result.text) == (E.JOB_EVENT_TYPE_SUCCEEDED, True, "done long ago")


async def test_a_history_longer_than_a_read_is_replayed_whole_in_order(
    pipeline: Pipeline, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "HISTORY_BATCH", 3)
    await start_worker()
    job = await pipeline.submit("fail-retryable:3", max_attempts=5)
    await pipeline.events(job.id)
    subject = pipeline.topology.event_subject(job.tenant, job.id)
    info = await pipeline.nc.jetstream().stream_info(pipeline.topology.events_stream, subjects_filter=subject)
    assert info.state.subjects is not None
    stored = info.state.subjects[subject]
    assert stored >= 3 * 3  # three reads at least
    replayed = await pipeline.events(job.id)
    sequences = [event.sequence for event in replayed]
    assert sequences == sorted(set(sequences))
    assert len(replayed) == stored
    assert types(replayed)[-1] == "SUCCEEDED"
