"""The dashboard's live and historical views over gRPC: WatchWorkers (workers starting, holding jobs, stopping,
and killed outright), WatchQueueStats (jobs moving, pauses, workers), GetActivity, and the pacing that sends
nothing when nothing changed."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import grpc
import pytest

from gateway.adminwatch import paced
from syllabus.presence import PRESENCE_TTL
from syllabus.v1 import admin_service_pb2 as pb
from syllabus.v1 import job_pb2
from tests.conditions import eventually
from tests.pipeline import handlers
from tests.pipeline.conftest import Pipeline, StartWorker
from tests.pipeline.test_faults import start_worker_process
from tests.pipeline.test_jobs import first_event, watch
from tests.pipeline.test_queues import counted, field_violation, workers

E = job_pb2
R = TypeVar("R")


async def until(stream: AsyncIterator[R], check: Callable[[R], bool], timeout: float = 30) -> R:
    """The first message of the stream that passes `check`."""
    async with asyncio.timeout(timeout):
        async for message in stream:
            if check(message):
                return message
    raise AssertionError("the stream ended")


def pids(response: pb.WatchWorkersResponse) -> set[int]:
    return {worker.pid for worker in response.workers}


@pytest.mark.e2e
async def test_worker_processes_are_listed_and_watched_with_what_they_hold_until_stopped_or_gone_after_the_ttl(
    pipeline: Pipeline, nats_url: str
) -> None:
    # ListWorkers and WatchWorkers side by side: both read the presence bucket, so one wait for the TTL serves both.
    stream = pipeline.admin.WatchWorkers(pb.WatchWorkersRequest(queue="generator"), timeout=PRESENCE_TTL * 3 + 60)
    assert pids(await until(stream, lambda _: True)) == set()
    first = await start_worker_process(pipeline, nats_url)
    await until(stream, lambda r: pids(r) == {first.pid})
    job = await pipeline.submit("block-in-subprocess")
    holding = await until(stream, lambda r: any(job.id in w.job_ids for w in r.workers))
    [worker] = holding.workers
    assert worker.queue == "generator" and worker.kinds == ["summarize_text"] and worker.heartbeat_time.seconds > 0
    [held] = await workers(pipeline, "generator")
    assert held.pid == first.pid and held.kinds == ["summarize_text"] and held.version and job.id in held.job_ids
    assert held.concurrency > 0 and held.start_time.seconds > 0 and held.heartbeat_time.seconds > 0

    second = await start_worker_process(pipeline, nats_url)
    await until(stream, lambda r: pids(r) == {first.pid, second.pid})
    assert {w.pid for w in await workers(pipeline)} == {first.pid, second.pid}
    assert await workers(pipeline, "pool-nobody") == []
    # SIGTERM: the worker drains (the job goes back) and deletes its entry before it exits.
    first.send_signal(signal.SIGTERM)
    assert await first.wait() == 0
    assert [w.pid for w in await workers(pipeline)] == [second.pid]
    await until(stream, lambda r: pids(r) == {second.pid})
    # SIGKILL: nothing is deleted, and the bucket's max age leaves no marker a watch would see: the stream
    # reports the worker gone once its entry's time is up, and the list no longer shows it.
    second.kill()
    await second.wait()
    await until(stream, lambda r: pids(r) == set(), timeout=PRESENCE_TTL * 2 + 10)
    stream.cancel()

    async def listed_none() -> bool:
        # Each reader ages an entry from when it saw it written: the list may lag the stream by a moment.
        return await workers(pipeline) == []

    await eventually(listed_none, timeout=PRESENCE_TTL + 10)


async def test_watch_queue_stats_follows_jobs_pauses_and_workers(pipeline: Pipeline, start_worker: StartWorker) -> None:
    request = pb.WatchQueueStatsRequest(queue="generator")
    request.window.FromSeconds(600)
    stream = pipeline.admin.WatchQueueStats(request, timeout=60)
    first = await until(stream, lambda _: True)
    [queue] = first.queues
    assert queue.queue == "generator" and counted(queue, "waiting") == 0 and first.window.seconds == 600

    job = await pipeline.submit("ok")
    await until(stream, lambda r: counted(r.queues[0], "waiting") == 1 and r.queues[0].HasField("oldest_waiting_age"))
    await pipeline.admin.PauseQueue(pb.PauseQueueRequest(queue="generator"), timeout=10)
    await until(stream, lambda r: r.queues[0].paused)
    await pipeline.admin.ResumeQueue(pb.ResumeQueueRequest(queue="generator"), timeout=10)
    await until(stream, lambda r: not r.queues[0].paused)

    worker = await start_worker()
    ran = await until(stream, lambda r: counted(r.queues[0], "succeeded") == 1 and r.queues[0].workers == 1)
    assert counted(ran.queues[0], "waiting") == 0 and (await pipeline.wait_end(job.id)).state == E.JOB_STATE_SUCCEEDED
    await worker.stop()
    await until(stream, lambda r: r.queues[0].workers == 0)
    stream.cancel()


async def test_watch_queue_stats_refuses_an_unknown_queue_naming_the_field(pipeline: Pipeline) -> None:
    stream = pipeline.admin.WatchQueueStats(pb.WatchQueueStatsRequest(queue="nope"), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await until(stream, lambda _: True)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violation(refused.value) == "queue"


async def test_paced_sends_only_answers_that_differ() -> None:
    changed = asyncio.Event()
    answers = iter(["a", "a", "a", "b"])
    computed: list[str] = []

    async def compute() -> str:
        computed.append(next(answers))
        return computed[-1]

    stream = paced(changed, 0.0, compute, lambda answer: answer)
    assert await anext(stream) == "a"
    # Two wake-ups that find the same answer send nothing; the third finds another.
    following = asyncio.ensure_future(anext(stream))
    while len(computed) < 4:
        changed.set()
        await asyncio.sleep(0)
    assert await following == "b" and computed == ["a", "a", "a", "b"]
    await stream.aclose()


async def test_activity_counts_the_jobs_that_ran_and_how_long_they_took(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    await start_worker()
    jobs = [await pipeline.submit(f"ok:{i}") for i in range(3)]
    failed = await pipeline.submit("fail-permanent")
    for job in [*jobs, failed]:
        await pipeline.wait_end(job.id)
    blocked = await pipeline.submit("block")
    await first_event(watch(pipeline, blocked.id), E.JOB_EVENT_TYPE_STARTED)

    got = await pipeline.admin.GetActivity(pb.GetActivityRequest(), timeout=10)
    assert got.bucket.seconds == 60 and len(got.buckets) == 60
    assert got.end_time.seconds - got.start_time.seconds == 3600
    assert sum(b.created for b in got.buckets) == 5 and sum(b.started for b in got.buckets) == 5
    assert (sum(b.succeeded for b in got.buckets), sum(b.failed for b in got.buckets)) == (3, 1)
    assert got.buckets[-1].waiting == 0
    assert sum(d.count for d in got.durations) == 4 and not got.durations[-1].HasField("le_seconds")
    assert got.HasField("p50") and got.p50.ToNanoseconds() <= got.p95.ToNanoseconds() <= got.p99.ToNanoseconds()

    other = await pipeline.admin.GetActivity(pb.GetActivityRequest(kind="render_document"), timeout=10)
    assert sum(b.created for b in other.buckets) == 0 and not other.HasField("p50")
    handlers.release.set()
    await pipeline.wait_end(blocked.id)


@pytest.mark.parametrize(
    ("window", "bucket", "field"), [(86400, 1, "bucket"), (86401, 60, "window"), (60, 0.5, "bucket")]
)
async def test_activity_refuses_a_window_too_long_or_too_finely_cut(
    pipeline: Pipeline, window: float, bucket: float, field: str
) -> None:
    request = pb.GetActivityRequest()
    request.window.FromNanoseconds(int(window * 1e9))
    request.bucket.FromNanoseconds(int(bucket * 1e9))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await pipeline.admin.GetActivity(request, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violation(refused.value) == field
