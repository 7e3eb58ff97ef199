"""The scheduler's sweeps: orphaned jobs published, max-deliveries advisories dead-lettered, one leader at a time."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys

from redis.asyncio import Redis

from scheduler.advisories import MaxDeliveries
from scheduler.leadership import Leadership
from scheduler.sweeps import Sweeps
from syllabus.config import SchedulerConfig
from syllabus.runtime import Runtime
from syllabus.submit import build_job
from syllabus.v1 import admin_service_pb2, job_pb2
from tests.conditions import eventually
from tests.pipeline import handlers
from tests.pipeline.conftest import TENANT, WORKER_CONFIG, Pipeline, StartWorker
from tests.pipeline.test_faults import ACK_WAIT, ROOT, start_worker_process
from tests.pipeline.test_jobs import first_event, types, watch

E = job_pb2
# No grace: a job stored before a sweep is swept, however little before (a grace would make the counts depend
# on timing).
SWEEP = SchedulerConfig(sweep_interval=0.2, leader_lease=1.5, orphan_grace=0.0)


async def store_only(pipeline: Pipeline, text: str) -> job_pb2.Job:
    """A job as a gateway that died between the insert and the publish leaves it: stored, never published."""
    spec = E.JobSpec(summarize_text=E.SummarizeText(text=text))
    job = build_job(spec, E.JobOptions(), tenant=TENANT, default_max_attempts=3)
    [inserted] = await pipeline.store.insert_jobs([job])
    assert inserted.created
    return job


def sweeps(pipeline: Pipeline, leadership: Leadership | None = None) -> Sweeps:
    runtime = Runtime.build(pipeline.nc, pipeline.store, pipeline.topology)
    return Sweeps(runtime, SWEEP, leadership or Leadership(None, "test", SWEEP.leader_lease))


async def test_an_orphaned_job_is_published_by_the_sweep_and_runs_once(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    orphan = await store_only(pipeline, "ok")
    # Published normally: the sweep sees it too, and JetStream drops the second publish.
    published = await pipeline.submit("ok")
    sweep = sweeps(pipeline)
    assert await sweep.sweep_orphans(TENANT) == 2
    assert await pipeline.messages(pipeline.topology.jobs_stream) == 2
    # Looked at once: the cursor has moved past them.
    assert await sweep.sweep_orphans(TENANT) == 0
    await start_worker()
    for job in (orphan, published):
        done = await pipeline.wait_end(job.id)
        assert done.state == E.JOB_STATE_SUCCEEDED and len(done.attempts) == 1
    assert types(await pipeline.events(orphan.id)) == ["QUEUED", "STARTED", "SUCCEEDED"]


async def test_a_second_message_of_a_claimed_job_is_dropped(pipeline: Pipeline, start_worker: StartWorker) -> None:
    """As after a sweep that reached an orphan later than JetStream's duplicate window: two messages, one run."""
    job = await pipeline.submit("block")
    runtime = Runtime.build(pipeline.nc, pipeline.store, pipeline.topology)
    stream = watch(pipeline, job.id)
    await start_worker()
    await first_event(stream, E.JOB_EVENT_TYPE_STARTED)
    # A new message id: JetStream keeps this copy.
    await runtime.submitter.enqueue(job, f"{job.id}:again")

    async def copy_dropped() -> bool:
        return await pipeline.messages(pipeline.topology.jobs_stream) == 1

    await eventually(copy_dropped, timeout=20, every=0.05)
    handlers.release.set()
    done = await first_event(stream, E.JOB_EVENT_TYPE_SUCCEEDED)
    assert done.attempt == 1
    stored = await pipeline.store.get_job(job.id)
    assert stored is not None and len(stored.attempts) == 1 and stored.stall_count == 0


async def test_a_worker_killed_on_the_last_delivery_ends_in_a_dead_letter_through_the_advisory(
    pipeline: Pipeline, nats_url: str
) -> None:
    os.environ["SYLLABUS_MAX_DELIVERIES"] = "1"
    try:
        process = await start_worker_process(pipeline, nats_url)
    finally:
        del os.environ["SYLLABUS_MAX_DELIVERIES"]
    job = await pipeline.submit("block-in-subprocess")
    stream = watch(pipeline, job.id)
    await first_event(stream, E.JOB_EVENT_TYPE_STARTED)
    process.kill()
    await process.wait()
    stop = asyncio.Event()
    advisories = asyncio.create_task(
        MaxDeliveries(Runtime.build(pipeline.nc, pipeline.store, pipeline.topology)).run(stop)
    )
    try:
        failed = await first_event(stream, E.JOB_EVENT_TYPE_FAILED)
    finally:
        stop.set()
        await advisories
    assert failed.error.type == "MaxDeliveries"
    dead = await pipeline.admin.GetDeadLetter(admin_service_pb2.GetDeadLetterRequest(job_id=job.id))
    assert dead.dead_letter.reason == "delivered 1 times without an outcome"
    assert types(await pipeline.events(job.id)) == ["QUEUED", "STARTED", "DEAD_LETTERED", "FAILED"]
    # The message JetStream gave up on is gone from the queue.
    assert await pipeline.messages(pipeline.topology.jobs_stream) == 0


async def start_scheduler(pipeline: Pipeline, nats_url: str, redis_url: str) -> asyncio.subprocess.Process:
    env = os.environ | {
        "SYLLABUS_NATS_URL": nats_url,
        "SYLLABUS_REDIS_URL": redis_url,
        "SYLLABUS_NAMESPACE": pipeline.topology.namespace,
        "SYLLABUS_HOME": str(pipeline.home),
        "SYLLABUS_SCHEDULER_SWEEP_INTERVAL": "0.2",
        "SYLLABUS_SCHEDULER_LEADER_LEASE": "1.5",
        "SYLLABUS_SCHEDULER_ORPHAN_GRACE": "0.2",
    }
    code = "import sys; from scheduler.main import main; sys.exit(main())"
    return await asyncio.create_subprocess_exec(sys.executable, "-c", code, cwd=ROOT, env=env)


async def leader_pid(redis: Redis, pipeline: Pipeline) -> int | None:
    value = await redis.get(f"{pipeline.topology.namespace}:scheduler:leader")
    if not value:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    return int(text.rsplit("-", 1)[1])


async def test_a_killed_leader_is_replaced_and_the_other_scheduler_sweeps(
    pipeline: Pipeline, start_worker: StartWorker, nats_url: str, redis_url: str, redis: Redis
) -> None:
    schedulers = [await start_scheduler(pipeline, nats_url, redis_url) for _ in range(2)]
    try:
        pids = {process.pid: process for process in schedulers}

        async def led() -> bool:
            return await leader_pid(redis, pipeline) in pids

        await eventually(led, timeout=20, every=0.05)
        first = await leader_pid(redis, pipeline)
        assert first is not None
        pids[first].kill()
        await pids[first].wait()
        orphan = await store_only(pipeline, "ok")

        async def taken_over() -> bool:
            now = await leader_pid(redis, pipeline)
            return now is not None and now != first

        await eventually(taken_over, timeout=20, every=0.05)
        await start_worker(dataclasses.replace(WORKER_CONFIG, ack_wait=ACK_WAIT, heartbeat=0.5))
        done = await pipeline.wait_end(orphan.id)
        assert done.state == E.JOB_STATE_SUCCEEDED and len(done.attempts) == 1
    finally:
        for process in schedulers:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await process.wait()
    # The survivor stopped cleanly and gave the lease back.
    assert await leader_pid(redis, pipeline) is None
