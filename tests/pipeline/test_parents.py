"""Parent jobs that fan out children: waiting, failing with a child, resuming when the child is retried."""

from __future__ import annotations

import grpc
import pytest

from syllabus import lifecycle
from syllabus.events import EventPublisher
from syllabus.jetstream import StreamLimits, ensure_topology
from syllabus.parents import Parents
from syllabus.runtime import Runtime
from syllabus.store.base import JobQuery
from syllabus.submit import build_job
from syllabus.v1 import admin_service_pb2, job_pb2
from syllabus.worker import Handler, JobContext, WaitForChildren
from tests.parent_ends import Ended, record_parent_ends
from tests.pipeline.conftest import Pipeline, StartWorker
from tests.pipeline.test_jobs import types

E = job_pb2


@pytest.fixture
def children_at_parent_end(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[Ended]:
    return record_parent_ends(pipeline.store, monkeypatch)


def parent_handlers(pipeline: Pipeline) -> dict[str, Handler]:
    submitter = Runtime.build(pipeline.nc, pipeline.store, pipeline.topology).submitter

    async def handle(ctx: JobContext) -> job_pb2.JobResult:
        command, _, arg = ctx.job.spec.summarize_text.text.partition(":")
        if command == "fan-out":
            child = build_job(
                E.JobSpec(summarize_text=E.SummarizeText(text=arg)),
                E.JobOptions(max_attempts=1),
                tenant=ctx.job.tenant,
                default_max_attempts=1,
                parent_id=ctx.job.id,
            )
            await submitter.submit([child])
            raise WaitForChildren("waiting for 1 child")
        if command.startswith("finish-parent"):
            ctx.finish_parent(E.JobResult(text=f"finished by {ctx.job.id}"))
        if command.endswith("fail"):
            raise RuntimeError("child broke")
        return E.JobResult(text="child done")

    return {"summarize_text": handle}


async def test_parent_waits_for_its_child_and_the_child_finishes_it(
    pipeline: Pipeline, start_worker: StartWorker, children_at_parent_end: list[Ended]
) -> None:
    await start_worker(handler_map=parent_handlers(pipeline))
    parent = await pipeline.submit("fan-out:finish-parent")
    events = await pipeline.events(parent.id)
    # WAITING shows only when the parent recorded it before its child ended; the end is the same either way.
    assert [t for t in types(events) if t != "WAITING"] == ["QUEUED", "STARTED", "SUCCEEDED"]
    # The child's success was stored before the parent's, so nobody can see the parent done and the child not.
    assert children_at_parent_end == [(parent.id, E.JOB_STATE_SUCCEEDED, [E.JOB_STATE_SUCCEEDED])]
    children = (await pipeline.store.list_jobs(JobQuery(tenant="default", parent_id=parent.id))).jobs
    assert len(children) == 1 and children[0].state == E.JOB_STATE_SUCCEEDED
    assert events[-1].result.text == f"finished by {children[0].id}"


async def test_a_child_that_fails_after_asking_to_finish_its_parent_fails_it_instead(
    pipeline: Pipeline, start_worker: StartWorker, children_at_parent_end: list[Ended]
) -> None:
    await start_worker(handler_map=parent_handlers(pipeline))
    parent = await pipeline.submit("fan-out:finish-parent-then-fail")
    events = await pipeline.events(parent.id)
    assert [t for t in types(events) if t != "WAITING"] == ["QUEUED", "STARTED", "FAILED"]
    assert events[-1].error.type == "ChildFailed" and "RuntimeError: child broke" in events[-1].error.message
    assert children_at_parent_end == [(parent.id, E.JOB_STATE_FAILED, [E.JOB_STATE_FAILED])]


async def test_failed_child_fails_the_parent_and_its_retry_resumes_it(
    pipeline: Pipeline, start_worker: StartWorker, children_at_parent_end: list[Ended]
) -> None:
    await start_worker(handler_map=parent_handlers(pipeline))
    parent = await pipeline.submit("fan-out:fail")
    first = await pipeline.events(parent.id)
    assert [t for t in types(first) if t != "WAITING"] == ["QUEUED", "STARTED", "FAILED"]
    failure = first[-1].error
    assert failure.type == "ChildFailed" and "RuntimeError: child broke" in failure.message
    # No attempt of the parent failed, and it is not for good: retrying the child resumes it.
    assert (failure.attempt, failure.permanent) == (0, False)
    letters = (await pipeline.admin.ListDeadLetters(admin_service_pb2.ListDeadLettersRequest())).dead_letters
    [child] = [d.job for d in letters]
    assert child.parent_id == parent.id and child.id in failure.message
    fixed = E.JobSpec(summarize_text=E.SummarizeText(text="finish-parent"))
    await pipeline.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=child.id, spec=fixed))
    resumed = await pipeline.events(parent.id, after=first[-1].sequence)
    assert types(resumed) == ["RESUMED", "SUCCEEDED"]
    done = await pipeline.store.get_job(parent.id)
    assert done is not None and done.state == E.JOB_STATE_SUCCEEDED
    assert children_at_parent_end == [
        (parent.id, E.JOB_STATE_FAILED, [E.JOB_STATE_FAILED]),
        (parent.id, E.JOB_STATE_SUCCEEDED, [E.JOB_STATE_SUCCEEDED]),
    ]


async def test_a_childs_retry_that_cannot_be_queued_fails_its_resumed_parent_again_saying_so(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    worker = await start_worker(handler_map=parent_handlers(pipeline))
    parent = await pipeline.submit("fan-out:fail")
    first = await pipeline.events(parent.id)
    letters = (await pipeline.admin.ListDeadLetters(admin_service_pb2.ListDeadLettersRequest())).dead_letters
    [child] = [d.job for d in letters]
    # A queue that is full: one job waits, no worker takes it, and there is no room for the retried child.
    await worker.stop()
    await pipeline.submit("waits")
    await ensure_topology(pipeline.nc, pipeline.topology, StreamLimits(max_jobs=1))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await pipeline.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=child.id), timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    again = await pipeline.events(parent.id, after=first[-1].sequence)
    assert types(again) == ["RESUMED", "FAILED"]
    assert again[-1].error.type == "ChildFailed"
    assert f"child job {child.id} (summarize_text) failed: its retry could not be queued;" in again[-1].error.message
    stored = await pipeline.store.get_job(parent.id)
    assert stored is not None and stored.state == E.JOB_STATE_FAILED


async def stored_parent(pipeline: Pipeline, state: job_pb2.JobState) -> tuple[job_pb2.Job, job_pb2.Job]:
    """A parent record in `state` and its child's, stored as they are, with no worker involved."""
    parent = build_job(
        E.JobSpec(summarize_text=E.SummarizeText(text="parent")), E.JobOptions(), tenant="t", default_max_attempts=1
    )
    parent.state = state
    child = build_job(
        E.JobSpec(summarize_text=E.SummarizeText(text="child")),
        E.JobOptions(),
        tenant="t",
        default_max_attempts=1,
        parent_id=parent.id,
    )
    await pipeline.store.insert_jobs([parent, child])
    return parent, child


@pytest.mark.parametrize("state", [E.JOB_STATE_CANCELED, E.JOB_STATE_SUCCEEDED, E.JOB_STATE_FAILED])
async def test_a_parent_no_longer_waiting_is_left_alone_by_its_child(
    pipeline: Pipeline, state: job_pb2.JobState
) -> None:
    # E.g. a parent canceled while its child ran: the child's failure, its retry or its progress change nothing,
    # and announce nothing (no FAILED after a CANCELED).
    parents = Parents(pipeline.store, EventPublisher(pipeline.nc, pipeline.topology))
    parent, child = await stored_parent(pipeline, state)
    await parents.child_failed(child, "RuntimeError: child broke")
    await parents.child_retried(child)
    assert not await parents.progress(parent.id, 50, "halfway")
    if state != E.JOB_STATE_SUCCEEDED:
        # A result like the one it holds (none) does not pass it for finished.
        assert not await parents.finish(parent.id, E.JobResult())
    assert await pipeline.store.get_job(parent.id) == parent
    assert await pipeline.messages(pipeline.topology.events_stream) == 0


async def test_a_parent_finished_by_a_try_whose_answer_was_lost_is_announced(pipeline: Pipeline) -> None:
    parents = Parents(pipeline.store, EventPublisher(pipeline.nc, pipeline.topology))
    parent, _ = await stored_parent(pipeline, E.JOB_STATE_WAITING)
    result = E.JobResult(text="finished by the child")
    assert await parents.finish(parent.id, result)
    # The child's redelivery finishes it again: the same result counts as done, and is announced again (the
    # first announcement may be what was lost; the stream keeps one of the two).
    assert await parents.finish(parent.id, result)
    assert await pipeline.messages(pipeline.topology.events_stream) == 1
    # Another result is not this child's finish: refused, and nothing announced.
    assert not await parents.finish(parent.id, E.JobResult(text="another"))
    assert await pipeline.messages(pipeline.topology.events_stream) == 1


async def test_a_parent_found_finished_but_never_announced_is_announced(pipeline: Pipeline) -> None:
    # The try that finished it died before its announcement was stored.
    parents = Parents(pipeline.store, EventPublisher(pipeline.nc, pipeline.topology))
    parent, _ = await stored_parent(pipeline, E.JOB_STATE_WAITING)
    result = E.JobResult(text="finished by the child")
    await pipeline.store.update_job(parent.id, lifecycle.finish_waiting(result))
    assert await parents.finish(parent.id, result)
    assert await pipeline.messages(pipeline.topology.events_stream) == 1


async def test_a_waiting_parents_progress_only_grows(pipeline: Pipeline) -> None:
    parents = Parents(pipeline.store, EventPublisher(pipeline.nc, pipeline.topology))
    parent, _ = await stored_parent(pipeline, E.JOB_STATE_WAITING)
    assert await parents.progress(parent.id, 50, "lesson 3 of 6 written")
    # Reports of children finishing out of order: one that would move the bar back is refused, unannounced.
    assert not await parents.progress(parent.id, 40, "lesson 2 of 6 written")
    assert await pipeline.messages(pipeline.topology.events_stream) == 1
    last = await pipeline.nc.jetstream().get_last_msg(
        pipeline.topology.events_stream, pipeline.topology.event_subject(parent.tenant, parent.id)
    )
    reported = E.JobEvent.FromString(last.data or b"")
    assert reported.type == E.JOB_EVENT_TYPE_PROGRESS
    assert (reported.progress.percent, reported.progress.message) == (50, "lesson 3 of 6 written")
    stored = await pipeline.store.get_job(parent.id)
    assert stored is not None and stored.progress == reported.progress
