"""Operating the queues on the in-process pipeline: the workers alive and what they hold (worker processes killed
and stopped), each queue's counts as jobs run, pausing and resuming a queue, and ListJobs by end time."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from syllabus.v1 import admin_service_pb2 as pb
from syllabus.v1 import job_pb2, job_service_pb2
from tests.conditions import eventually
from tests.pipeline import handlers
from tests.pipeline.conftest import Pipeline, StartWorker
from tests.pipeline.test_jobs import first_event, watch

E = job_pb2


async def workers(pipeline: Pipeline, queue: str = "") -> list[pb.Worker]:
    response = await pipeline.admin.ListWorkers(pb.ListWorkersRequest(queue=queue), timeout=10)
    return list(response.workers)


async def stats(pipeline: Pipeline, queue: str = "generator", window: float | None = None) -> pb.QueueStats:
    request = pb.GetQueueStatsRequest(queue=queue)
    if window is not None:
        request.window.FromNanoseconds(int(window * 1e9))
    response = await pipeline.admin.GetQueueStats(request, timeout=10)
    found: pb.QueueStats = response.queues[0]
    assert len(response.queues) == 1
    return found


def counted(queue: pb.QueueStats, field: str) -> int:
    return sum(getattr(counts, field) for counts in queue.counts)


async def no_pull_request_waits(pipeline: Pipeline) -> bool:
    """The generator queue's consumers have no pull request out: whatever is published now stays in the stream."""
    js = pipeline.nc.jetstream()
    for priority in ("interactive", "batch"):
        info = await js.consumer_info(pipeline.topology.jobs_stream, f"generator-{priority}")
        if info.num_waiting:
            return False
    return True


def field_violation(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    field: str = bad.field_violations[0].field
    return field


async def _pids(pipeline: Pipeline, pids: set[int | None]) -> bool:
    return {w.pid for w in await workers(pipeline)} == pids


async def test_counts_move_as_jobs_wait_run_and_end(pipeline: Pipeline, start_worker: StartWorker) -> None:
    waiting = [await pipeline.submit("ok"), await pipeline.submit("ok", priority=E.PRIORITY_BATCH)]
    before = await stats(pipeline)
    assert counted(before, "waiting") == 2 and counted(before, "succeeded") == 0
    assert {(c.kind, c.priority, c.waiting) for c in before.counts} == {
        ("summarize_text", E.PRIORITY_INTERACTIVE, 1),
        ("summarize_text", E.PRIORITY_BATCH, 1),
    }
    assert before.HasField("oldest_waiting_age") and not before.paused and before.workers == 0

    worker = await start_worker()
    blocked = await pipeline.submit("block")
    await first_event(watch(pipeline, blocked.id), E.JOB_EVENT_TYPE_STARTED)
    for job in waiting:
        await pipeline.wait_end(job.id)
    failed = await pipeline.submit("fail-permanent")
    await pipeline.wait_end(failed.id)
    during = await stats(pipeline)
    assert (counted(during, "running"), counted(during, "succeeded"), counted(during, "failed")) == (1, 2, 1)
    assert counted(during, "waiting") == 0 and not during.HasField("oldest_waiting_age")
    assert {c.name for c in during.consumers} == {"generator-interactive", "generator-batch"}
    assert sum(c.ack_pending for c in during.consumers) == 1

    handlers.release.set()
    await pipeline.wait_end(blocked.id)
    after = await stats(pipeline)
    assert (counted(after, "running"), counted(after, "succeeded")) == (0, 3)
    # Every queue is listed when none is named, each service's whether it has jobs or not.
    every = await pipeline.admin.GetQueueStats(pb.GetQueueStatsRequest(), timeout=10)
    assert {"generator", "renderer"} <= {queue.queue for queue in every.queues}
    assert every.window.seconds == 3600
    await worker.stop()


async def test_a_paused_queue_is_not_served_across_a_worker_restart_and_is_served_once_resumed(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    paused = await pipeline.admin.PauseQueue(pb.PauseQueueRequest(queue="generator"), timeout=10)
    assert paused.queue.queue == "generator" and paused.queue.paused
    worker = await start_worker()
    await eventually(lambda: _pids(pipeline, {_own_pid()}))
    assert worker.worker.paused
    jobs = [await pipeline.submit("ok") for _ in range(3)]
    # A worker that asked for nothing has no pull request out: the jobs stay in the stream, not taken.
    assert await no_pull_request_waits(pipeline)
    shown = await stats(pipeline)
    assert shown.paused and counted(shown, "waiting") == 3 and shown.workers == 1
    assert sum(c.pending for c in shown.consumers) == 3

    # A pause outlives the workers: a new one starts paused.
    await worker.stop()
    restarted = await start_worker()
    await eventually(lambda: _pids(pipeline, {_own_pid()}))
    assert restarted.worker.paused and await no_pull_request_waits(pipeline)

    resumed = await pipeline.admin.ResumeQueue(pb.ResumeQueueRequest(queue="generator"), timeout=10)
    assert not resumed.queue.paused
    for job in jobs:
        assert (await pipeline.wait_end(job.id)).state == E.JOB_STATE_SUCCEEDED


def _own_pid() -> int:
    return os.getpid()


async def test_pausing_a_served_queue_lets_the_running_job_finish_and_takes_no_more(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    worker = await start_worker()
    running = await pipeline.submit("block")
    stream = watch(pipeline, running.id)
    await first_event(stream, E.JOB_EVENT_TYPE_STARTED)
    await pipeline.admin.PauseQueue(pb.PauseQueueRequest(queue="generator"), timeout=10)
    await eventually(lambda: _true(worker.worker.paused))
    # The requests out at the pause expire unfilled; no new ones are sent.
    await eventually(lambda: no_pull_request_waits(pipeline))
    later = await pipeline.submit("ok")
    handlers.release.set()
    assert (await first_event(stream, E.JOB_EVENT_TYPE_SUCCEEDED)).attempt == 1
    assert await no_pull_request_waits(pipeline)
    stored = await pipeline.store.get_job(later.id)
    assert stored is not None and stored.state == E.JOB_STATE_QUEUED

    await pipeline.admin.ResumeQueue(pb.ResumeQueueRequest(queue="generator"), timeout=10)
    assert (await pipeline.wait_end(later.id)).state == E.JOB_STATE_SUCCEEDED


async def _true(value: bool) -> bool:
    return value


async def test_list_jobs_by_end_time_with_a_total_pages_through_the_ended_jobs(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    await start_worker()
    ended = []
    for i in range(5):
        job = await pipeline.submit(f"ok:{i}")
        ended.append((await pipeline.wait_end(job.id)).id)
    await pipeline.admin.PauseQueue(pb.PauseQueueRequest(queue="generator"), timeout=10)
    await eventually(lambda: no_pull_request_waits(pipeline))
    await pipeline.submit("ok:never ends")
    seen: list[str] = []
    token = ""
    while True:
        request = job_service_pb2.ListJobsRequest(
            order_by=job_service_pb2.JOB_ORDER_END_TIME_DESC, page_size=2, page_token=token
        )
        page = await pipeline.jobs.ListJobs(request, timeout=10)
        assert page.total_size == 5
        seen += [job.id for job in page.jobs]
        token = page.next_page_token
        if not token:
            break
    # Ended one after another: the most recently ended first.
    assert seen == ended[::-1]
    everything = await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest(page_size=1), timeout=10)
    assert everything.total_size == 6 and len(everything.jobs) == 1


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda admin: admin.PauseQueue(pb.PauseQueueRequest(queue="nope")), "queue"),
        (lambda admin: admin.ResumeQueue(pb.ResumeQueueRequest(queue="")), "queue"),
        (lambda admin: admin.GetQueueStats(pb.GetQueueStatsRequest(queue="pool-nope")), "queue"),
        (lambda admin: admin.GetQueueStats(pb.GetQueueStatsRequest(window=Duration(nanos=5))), "window"),
        (lambda admin: admin.ListWorkers(pb.ListWorkersRequest(queue="q" * 65)), "queue"),
    ],
)
async def test_bad_admin_input_is_invalid_argument_naming_the_field(
    pipeline: Pipeline, call: Callable[..., Awaitable[object]], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(pipeline.admin)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(refused.value) == field


async def test_a_page_token_of_the_other_order_is_invalid_argument(pipeline: Pipeline) -> None:
    for _ in range(2):
        await pipeline.submit("ok")
    page = await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest(page_size=1), timeout=10)
    request = job_service_pb2.ListJobsRequest(
        order_by=job_service_pb2.JOB_ORDER_END_TIME_DESC, page_token=page.next_page_token
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await pipeline.jobs.ListJobs(request, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest(order_by=7), timeout=10)  # type: ignore[arg-type]
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violation(unknown.value) == "order_by"
