"""Retention: ended jobs older than the age go with their events, old dead letters go, and nothing else does."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from nats.js.errors import NotFoundError

from scheduler.retention import Retention
from syllabus.artifacts import job_object_name
from syllabus.runtime import Runtime
from syllabus.store.base import JobChange
from syllabus.v1 import admin_service_pb2, job_pb2
from tests.pipeline.conftest import Pipeline, StartWorker
from tests.pipeline.test_cli import Syllabus, addr, job_requests, syllabus  # noqa: F401 (fixtures)
from tests.pipeline.test_faults import in_seconds

E = job_pb2
DAY = 24 * 3600
WEEK = Duration(seconds=7 * DAY)


def aged(days: int) -> JobChange:
    """Moves a job's end (and dead letter) `days` back, as if it had ended then."""

    def change(job: job_pb2.Job) -> job_pb2.Job:
        new = job_pb2.Job()
        new.CopyFrom(job)
        new.end_time.FromNanoseconds(job.end_time.ToNanoseconds() - days * DAY * 10**9)
        return new

    return change


async def event_count(pipeline: Pipeline, job: job_pb2.Job) -> int:
    subject = pipeline.topology.event_subject(job.tenant, job.id)
    info = await pipeline.nc.jetstream().stream_info(pipeline.topology.events_stream, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


async def test_purge_removes_only_old_ended_jobs_with_their_events(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    await start_worker()
    old_done, old_failed, young = [await pipeline.submit(text) for text in ("ok", "fail-permanent", "ok")]
    for job in (old_done, old_failed, young):
        await pipeline.wait_end(job.id)
    for job in (old_done, old_failed):
        await pipeline.store.update_job(job.id, aged(8))
    # Waiting for a week and never ended: retention must never take it.
    waiting = await pipeline.submit("ok", run_at=in_seconds(30 * DAY))
    assert await event_count(pipeline, old_done) > 0

    response = await pipeline.admin.PurgeJobs(admin_service_pb2.PurgeJobsRequest(older_than=WEEK))
    assert response.jobs == 2

    for job in (old_done, old_failed):
        assert await pipeline.store.get_job(job.id) is None
        assert await event_count(pipeline, job) == 0
    for job in (young, waiting):
        assert await pipeline.store.get_job(job.id) is not None
    assert await event_count(pipeline, young) > 0
    # The dead letter is younger than its (aged) job record: kept, since only its own age counts.
    dead = await pipeline.admin.GetDeadLetter(admin_service_pb2.GetDeadLetterRequest(job_id=old_failed.id))
    assert dead.dead_letter.job_id == old_failed.id
    again = await pipeline.admin.PurgeJobs(admin_service_pb2.PurgeJobsRequest(older_than=WEEK))
    assert again.jobs == 0


async def test_old_dead_letters_go_in_batches(pipeline: Pipeline, start_worker: StartWorker) -> None:
    await start_worker()
    failed = [await pipeline.submit("fail-permanent") for _ in range(3)]
    for job in failed:
        await pipeline.wait_end(job.id)
    runtime = Runtime.build(pipeline.nc, pipeline.store, pipeline.topology)
    # Dead letters older than 0 seconds: all three, two at a time.
    purged = await Retention(runtime, batch=2).purge("default", 7 * DAY, 0.0)
    assert (purged.dead_letters, purged.jobs) == (3, 0)
    listed = await pipeline.admin.ListDeadLetters(admin_service_pb2.ListDeadLettersRequest())
    assert not listed.dead_letters
    for job in failed:
        stored = await pipeline.store.get_job(job.id)
        assert stored is not None and stored.state == E.JOB_STATE_FAILED


async def test_purge_refuses_a_negative_age(pipeline: Pipeline) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pipeline.admin.PurgeJobs(admin_service_pb2.PurgeJobsRequest(older_than=Duration(seconds=-1)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "older_than" in (err.value.details() or "")


async def stored_job_with_artifact(pipeline: Pipeline, name: str, days_ago: int) -> job_pb2.Job:
    """An ended job whose result names an artifact in the object store, as a render job leaves it."""
    job = await pipeline.submit(f"keeps {name}")
    bucket = await pipeline.nc.jetstream().object_store(pipeline.topology.artifacts_bucket)
    await bucket.put(job_object_name(job.id, name), b"%PDF-1.7 ...")

    def ended(current: job_pb2.Job) -> job_pb2.Job:
        new = job_pb2.Job()
        new.CopyFrom(current)
        new.state = E.JOB_STATE_SUCCEEDED
        new.result.artifacts.add(name=name, content_type="application/pdf")
        new.end_time.FromNanoseconds(current.update_time.ToNanoseconds() - days_ago * DAY * 10**9)
        return new

    await pipeline.store.update_job(job.id, ended)
    return job


async def object_names(pipeline: Pipeline) -> set[str]:
    bucket = await pipeline.nc.jetstream().object_store(pipeline.topology.artifacts_bucket)
    try:
        return {info.name for info in await bucket.list(ignore_deletes=True)}
    except NotFoundError:
        return set()


async def test_purge_removes_the_artifacts_of_the_jobs_it_removes_and_only_theirs(pipeline: Pipeline) -> None:
    old = await stored_job_with_artifact(pipeline, "old.pdf", days_ago=8)
    young = await stored_job_with_artifact(pipeline, "young.pdf", days_ago=1)
    assert {job_object_name(old.id, "old.pdf"), job_object_name(young.id, "young.pdf")} <= await object_names(pipeline)

    response = await pipeline.admin.PurgeJobs(admin_service_pb2.PurgeJobsRequest(older_than=WEEK))

    assert (response.jobs, response.artifacts) == (1, 1)
    names = await object_names(pipeline)
    assert job_object_name(old.id, "old.pdf") not in names
    assert job_object_name(young.id, "young.pdf") in names
    assert await pipeline.store.get_job(old.id) is None and await pipeline.store.get_job(young.id) is not None


async def test_jobs_purge_from_the_command_line(
    pipeline: Pipeline,
    syllabus: Syllabus,  # noqa: F811
) -> None:
    old = await stored_job_with_artifact(pipeline, "report.pdf", days_ago=8)
    bad = await syllabus("jobs", "purge", "--older-than", "a while")
    assert (bad.code, bad.err.strip()) == (
        2,
        "syllabus: --older-than 'a while' is not an age such as 30m, 12h, 7d or 2w",
    )
    done = await syllabus("jobs", "purge", "--older-than", "7d", "--dead-letters-older-than", "30d")
    assert done.code == 0, done.err
    assert done.out.strip() == "removed 1 ended job(s), 1 artifact(s) and 0 dead letter(s)"
    assert await pipeline.store.get_job(old.id) is None
    again = await syllabus("jobs", "purge", "--older-than", "1w")
    assert again.out.strip() == "removed 0 ended job(s), 0 artifact(s) and 0 dead letter(s)"
