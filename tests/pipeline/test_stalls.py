"""Stalled jobs: a worker SIGKILLed mid-job leaves an attempt that never ended; the next claim records the stall,
and past the stall limit the job fails and is dead-lettered."""

from __future__ import annotations

import dataclasses

from syllabus.v1 import admin_service_pb2, job_pb2, job_service_pb2
from tests.pipeline.conftest import WORKER_CONFIG, Pipeline, StartWorker
from tests.pipeline.test_faults import ACK_WAIT, start_worker_process
from tests.pipeline.test_jobs import first_event, types, watch

E = job_pb2


async def test_a_job_stalled_past_the_limit_is_dead_lettered_with_each_attempts_worker(
    pipeline: Pipeline, start_worker: StartWorker, nats_url: str
) -> None:
    job = await pipeline.submit("block-in-subprocess")
    stream = watch(pipeline, job.id)
    for attempt in (1, 2):
        process = await start_worker_process(pipeline, nats_url)
        assert (await first_event(stream, E.JOB_EVENT_TYPE_STARTED)).attempt == attempt
        process.kill()
        await process.wait()
    # Default stall limit 1: the second stall fails the job at the next claim.
    worker = await start_worker(dataclasses.replace(WORKER_CONFIG, ack_wait=ACK_WAIT, heartbeat=0.5))
    failed = await first_event(stream, E.JOB_EVENT_TYPE_FAILED)
    assert failed.error.type == "Stalled"
    history = types(await pipeline.events(job.id))
    assert history == ["QUEUED", "STARTED", "STALLED", "STARTED", "STALLED", "DEAD_LETTERED", "FAILED"]

    got = (await pipeline.jobs.GetJob(job_service_pb2.GetJobRequest(job_id=job.id))).job
    assert got.state == E.JOB_STATE_FAILED and got.stall_count == 2
    assert [a.attempt for a in got.attempts] == [1, 2]
    assert all(a.outcome == E.JOB_STATE_QUEUED and a.HasField("end_time") for a in got.attempts)
    # Two different worker processes, neither the one that failed the job.
    workers = {a.worker_id for a in got.attempts}
    assert len(workers) == 2 and worker.worker.worker_id not in workers and all(a.host for a in got.attempts)

    dead = await pipeline.admin.GetDeadLetter(admin_service_pb2.GetDeadLetterRequest(job_id=job.id))
    assert dead.dead_letter.reason == "stalled more than 1 times"


async def test_a_job_stalled_once_runs_again_and_shows_both_attempts(
    pipeline: Pipeline, start_worker: StartWorker, nats_url: str
) -> None:
    process = await start_worker_process(pipeline, nats_url)
    job = await pipeline.submit("block-in-subprocess")
    stream = watch(pipeline, job.id)
    await first_event(stream, E.JOB_EVENT_TYPE_STARTED)
    process.kill()
    await process.wait()
    worker = await start_worker(dataclasses.replace(WORKER_CONFIG, ack_wait=ACK_WAIT, heartbeat=0.5))
    stalled = await first_event(stream, E.JOB_EVENT_TYPE_STALLED)
    assert stalled.attempt == 1 and stalled.error.type == "Stalled"
    await first_event(stream, E.JOB_EVENT_TYPE_SUCCEEDED)
    got = (await pipeline.jobs.GetJob(job_service_pb2.GetJobRequest(job_id=job.id))).job
    assert got.stall_count == 1
    first, second = got.attempts
    assert first.outcome == E.JOB_STATE_QUEUED and first.worker_id != worker.worker.worker_id
    assert (second.attempt, second.worker_id, second.outcome) == (2, worker.worker.worker_id, E.JOB_STATE_SUCCEEDED)
    assert second.end_time == got.end_time
