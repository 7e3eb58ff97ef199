"""Worker hooks (syllabus.hooks): what they see of each attempt, in order, and that they cannot break a job."""

from __future__ import annotations

import asyncio

from syllabus.hooks import WorkerHook
from syllabus.v1 import job_pb2
from syllabus.worker import Defer, JobContext, PermanentError
from tests.pipeline.conftest import Pipeline, StartWorker
from tests.pipeline.test_jobs import types

E = job_pb2
Seen = tuple[str, ...]


class Recorder(WorkerHook):
    """Everything it is told, as (what, job text, detail) in a queue the test reads in order."""

    def __init__(self) -> None:
        self.seen: asyncio.Queue[Seen] = asyncio.Queue()

    def _put(self, *seen: str) -> None:
        self.seen.put_nowait(seen)

    async def before_attempt(self, ctx: JobContext) -> None:
        self._put("before", ctx.job.spec.summarize_text.text, str(ctx.attempt))

    async def after_attempt(self, job: job_pb2.Job, outcome: str) -> None:
        self._put("after", job.spec.summarize_text.text, outcome)

    async def on_success(self, job: job_pb2.Job) -> None:
        self._put("success", job.spec.summarize_text.text, job.result.text)

    async def on_retry(self, job: job_pb2.Job, error: job_pb2.JobError, delay: float) -> None:
        self._put("retry", job.spec.summarize_text.text, f"{error.type} attempt {error.attempt}, delay {delay > 0}")

    async def on_dead_letter(self, job: job_pb2.Job, error: job_pb2.JobError, reason: str) -> None:
        self._put("dead letter", job.spec.summarize_text.text, f"{error.type}: {reason}")

    async def next(self, count: int) -> list[Seen]:
        return [await self.seen.get() for _ in range(count)]


async def test_hooks_see_each_attempt_and_its_stored_end_in_order(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    recorder = Recorder()
    await start_worker(hooks=[recorder])
    await pipeline.submit("fail-retryable:1")
    assert await recorder.next(6) == [
        ("before", "fail-retryable:1", "1"),
        ("retry", "fail-retryable:1", "RetryableError attempt 1, delay True"),
        ("after", "fail-retryable:1", "retrying"),
        ("before", "fail-retryable:1", "2"),
        ("success", "fail-retryable:1", "done by attempt 2: 1"),
        ("after", "fail-retryable:1", "succeeded"),
    ]
    await pipeline.submit("fail-permanent")
    assert await recorder.next(3) == [
        ("before", "fail-permanent", "1"),
        ("dead letter", "fail-permanent", "BadInput: permanent error"),
        ("after", "fail-permanent", "dead_lettered"),
    ]


class Refuser(WorkerHook):
    """Refuses a job before its handler runs: "refuse" for good, "later" once, handed back uncounted."""

    def __init__(self) -> None:
        self.deferred: set[str] = set()

    async def before_attempt(self, ctx: JobContext) -> None:
        text = ctx.job.spec.summarize_text.text
        if text == "refuse":
            raise PermanentError("over its budget", error_type="BudgetExceeded")
        if text == "later" and ctx.job.id not in self.deferred:
            self.deferred.add(ctx.job.id)
            raise Defer(0.0, "not now")


async def test_what_before_attempt_raises_is_the_attempts_outcome(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    await start_worker(hooks=[Refuser()])
    refused = await pipeline.wait_end((await pipeline.submit("refuse")).id)
    assert refused.state == E.JOB_STATE_FAILED
    assert [(e.type, e.message) for e in refused.errors] == [("BudgetExceeded", "over its budget")]
    later = await pipeline.submit("later")
    events = await pipeline.events(later.id)
    assert types(events) == ["QUEUED", "STARTED", "QUEUED", "STARTED", "SUCCEEDED"]
    assert events[2].error.type == "Deferred"
    done = await pipeline.store.get_job(later.id)
    assert done is not None and done.attempt == 1 and not done.errors


class Broken(WorkerHook):
    async def on_success(self, job: job_pb2.Job) -> None:
        raise RuntimeError("a metrics backend is down")


async def test_a_hook_that_fails_changes_nothing_and_the_next_hook_still_runs(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    recorder = Recorder()
    await start_worker(hooks=[Broken(), recorder])
    job = await pipeline.submit("ok")
    assert await recorder.next(3) == [
        ("before", "ok", "1"),
        ("success", "ok", "done by attempt 1: ok"),
        ("after", "ok", "succeeded"),
    ]
    stored = await pipeline.store.get_job(job.id)
    assert stored is not None and stored.state == E.JOB_STATE_SUCCEEDED
