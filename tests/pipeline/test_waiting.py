"""No silent waits: a queued job that no running worker could take says why when it is read."""

from __future__ import annotations

import asyncio
import dataclasses

from syllabus.presence import LiveWorkers, workers_bucket
from syllabus.taskregistry import TaskDeclaration, TaskRegistry
from syllabus.v1 import job_pb2, job_service_pb2
from tests.pipeline.conftest import WORKER_CONFIG, Pipeline, StartWorker
from tests.pipeline.test_jobs import first_event, watch

E = job_pb2


async def read(pipeline: Pipeline, job_id: str) -> job_pb2.Job:
    response: job_service_pb2.GetJobResponse = await pipeline.jobs.GetJob(
        job_service_pb2.GetJobRequest(job_id=job_id), timeout=10
    )
    return response.job


async def present(pipeline: Pipeline, queue: str) -> None:
    """Once a worker of `queue` has written its presence: a watch of the bucket, no polling."""
    kv = await pipeline.nc.jetstream().key_value(pipeline.topology.workers_bucket)
    watcher = await kv.watch(f"{queue}.>")
    try:
        async with asyncio.timeout(20):
            async for entry in watcher:
                if entry is not None and entry.value:
                    return
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py leaves it unannotated


async def test_a_queued_job_without_a_running_worker_says_so_until_one_runs(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    blocking = await pipeline.submit("block")
    waiting = await pipeline.submit("ok:second")
    expected = "waiting for a worker: no process of the generator service is running"
    assert (await read(pipeline, waiting.id)).status_message == expected
    listed = await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest(), timeout=10)
    assert {job.id: job.status_message for job in listed.jobs} == {blocking.id: expected, waiting.id: expected}

    # One worker, busy with the first job: the second is queued behind it, and a worker is there.
    worker = await start_worker(dataclasses.replace(WORKER_CONFIG, concurrency=1))
    await first_event(watch(pipeline, blocking.id), E.JOB_EVENT_TYPE_STARTED)
    await present(pipeline, "generator")
    second = await read(pipeline, waiting.id)
    assert (second.state, second.status_message) == (E.JOB_STATE_QUEUED, "")

    # A worker that stops takes its entry with it.
    await worker.stop()
    assert (await read(pipeline, waiting.id)).status_message == expected


async def test_a_queued_task_names_its_pool_or_that_no_pool_serves_it_any_more(pipeline: Pipeline) -> None:
    registry = TaskRegistry(pipeline.nc, pipeline.topology)
    await registry.declare("acme", [TaskDeclaration(name="wait.here", pool="acme", max_attempts=1, timeout=1.0)])
    spec = job_pb2.JobSpec(task=job_pb2.Task(name="wait.here"))
    submitted = await pipeline.jobs.SubmitJob(job_service_pb2.SubmitJobRequest(spec=spec), timeout=10)
    job_id = submitted.job.id
    assert (await read(pipeline, job_id)).status_message == (
        "waiting for a worker: no process of the worker pool 'acme' (task 'wait.here') is running"
    )
    await registry.declare("acme", [])
    assert (await read(pipeline, job_id)).status_message == (
        "waiting for a worker: no worker pool serves task 'wait.here' any more"
    )


async def test_a_watching_reader_knows_the_workers_and_tasks_present_when_it_starts(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    await start_worker()
    await present(pipeline, "generator")
    declaration = TaskDeclaration(name="known.one", pool="acme", max_attempts=2, timeout=1.0)
    await TaskRegistry(pipeline.nc, pipeline.topology).declare("acme", [declaration])
    live, tasks = LiveWorkers(pipeline.nc, pipeline.topology), TaskRegistry(pipeline.nc, pipeline.topology)
    await live.start()
    await tasks.start()
    try:
        assert (await live.any_alive("generator"), await live.any_alive("pool-acme")) == (True, False)
        assert await tasks.lookup("known.one") == declaration
    finally:
        await live.stop()
        await tasks.stop()


async def test_the_workers_bucket_is_made_again_when_jetstream_lost_it(pipeline: Pipeline) -> None:
    await pipeline.nc.jetstream().delete_key_value(pipeline.topology.workers_bucket)
    kv = await workers_bucket(pipeline.nc, pipeline.topology)
    await kv.put("generator.somewhere", b"{}")
    assert await LiveWorkers(pipeline.nc, pipeline.topology).any_alive("generator")
