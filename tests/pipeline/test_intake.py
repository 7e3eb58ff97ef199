"""Single submissions gathered while a batch is under way: each caller its own answer, on a real store and NATS."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pymongo.errors
import pytest

from syllabus.events import EventPublisher
from syllabus.intake import Intake
from syllabus.publisher import AckedPublisher
from syllabus.store.base import Inserted
from syllabus.submit import Submitter, build_job
from syllabus.v1 import job_pb2
from tests.pipeline.conftest import Pipeline

E = job_pb2


class CountingSubmitter(Submitter):
    """The real submitter, noting the size of each batch it is given."""

    batches: list[int]

    async def submit(self, jobs: Sequence[job_pb2.Job], timeout: float | None = None) -> list[Inserted]:
        self.batches.append(len(jobs))
        return await super().submit(jobs, timeout)


def counting(pipeline: Pipeline) -> CountingSubmitter:
    acked = AckedPublisher(pipeline.nc)
    events = EventPublisher(pipeline.nc, pipeline.topology, acked=acked)
    submitter = CountingSubmitter(pipeline.store, pipeline.topology, events, acked)
    submitter.batches = []
    return submitter


def job(key: str = "") -> job_pb2.Job:
    spec = E.JobSpec(summarize_text=E.SummarizeText(text="intake"))
    return build_job(spec, E.JobOptions(idempotency_key=key), tenant="default", default_max_attempts=3)


async def test_a_lone_call_goes_at_once_and_calls_meanwhile_go_together(pipeline: Pipeline) -> None:
    submitter = counting(pipeline)
    intake = Intake(submitter)
    first = asyncio.ensure_future(intake.submit(job(), 10))
    # Queued while the first is under way.
    rest = [job() for _ in range(5)]
    answers = await asyncio.gather(first, *(intake.submit(item, 10) for item in rest))

    assert submitter.batches == [1, 5]
    assert [answer.job.id for answer in answers[1:]] == [item.id for item in rest]
    assert all(answer.created for answer in answers)
    assert await pipeline.messages(pipeline.topology.jobs_stream) == 6


async def test_callers_with_one_idempotency_key_in_a_batch_get_the_same_job(pipeline: Pipeline) -> None:
    submitter = counting(pipeline)
    intake = Intake(submitter)
    under_way = asyncio.ensure_future(intake.submit(job(), 10))
    first, second = job("order-7"), job("order-7")
    answers = await asyncio.gather(under_way, intake.submit(first, 10), intake.submit(second, 10))

    assert submitter.batches == [1, 2]
    assert (answers[1].job.id, answers[1].created) == (first.id, True)
    assert (answers[2].job.id, answers[2].created) == (first.id, False)
    assert await pipeline.messages(pipeline.topology.jobs_stream) == 2


async def test_a_batch_that_fails_fails_each_of_its_callers_and_the_next_goes_on(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitter = counting(pipeline)
    intake = Intake(submitter)
    insert = pipeline.store.insert_jobs
    down = True

    async def away(jobs: Sequence[job_pb2.Job]) -> list[Inserted]:
        if down:
            raise pymongo.errors.AutoReconnect("connection refused (injected)")
        return await insert(jobs)

    monkeypatch.setattr(pipeline.store, "insert_jobs", away)
    results = await asyncio.gather(*(intake.submit(job(), 10) for _ in range(3)), return_exceptions=True)
    assert [type(result) for result in results] == [pymongo.errors.AutoReconnect] * 3
    down = False
    assert (await intake.submit(job(), 10)).created
