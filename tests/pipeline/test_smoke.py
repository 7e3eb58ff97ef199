from __future__ import annotations

from syllabus.v1 import job_pb2
from tests.pipeline.conftest import Pipeline, StartWorker


async def test_submit_then_succeed(pipeline: Pipeline, start_worker: StartWorker) -> None:
    await start_worker()
    job = await pipeline.submit("ok")
    assert job.state == job_pb2.JOB_STATE_QUEUED
    events = await pipeline.events(job.id)
    assert [e.type for e in events] == [
        job_pb2.JOB_EVENT_TYPE_QUEUED,
        job_pb2.JOB_EVENT_TYPE_STARTED,
        job_pb2.JOB_EVENT_TYPE_SUCCEEDED,
    ]
    stored = await pipeline.store.get_job(job.id)
    assert stored is not None and stored.state == job_pb2.JOB_STATE_SUCCEEDED
    assert stored.result.text == "done by attempt 1: ok"
