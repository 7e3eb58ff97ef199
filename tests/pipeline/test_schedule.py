"""Delayed jobs: their schedule fires at run_at to the fraction of a second, never before it."""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp

from syllabus.v1 import job_pb2
from tests.pipeline.conftest import Pipeline, StartWorker
from tests.pipeline.test_jobs import types

E = job_pb2


async def test_a_delayed_job_is_queued_no_earlier_than_its_run_at(
    pipeline: Pipeline, start_worker: StartWorker, relay: None
) -> None:
    await start_worker()
    # Just short of a whole second: a schedule that dropped the fraction would fire almost a second early.
    run_at = Timestamp(seconds=int(time.time()) + 2, nanos=999_000_000)
    job = await pipeline.submit("ok", run_at=run_at)
    assert job.state == E.JOB_STATE_SCHEDULED
    stored = await pipeline.nc.jetstream().get_last_msg(
        pipeline.topology.scheduled_stream, pipeline.topology.schedule_subject(job.id)
    )
    assert stored.headers is not None and stored.headers["Nats-Schedule"] == f"@at {run_at.ToJsonString()}"
    events = await pipeline.events(job.id)
    assert types(events) == ["SCHEDULED", "QUEUED", "STARTED", "SUCCEEDED"]
    assert events[1].time.ToNanoseconds() >= run_at.ToNanoseconds()
