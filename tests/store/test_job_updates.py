"""The worker's batching of job updates: one store call per turn of the event loop, each caller its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import pytest_asyncio

from syllabus.jobupdates import JobUpdates
from syllabus.store.base import JobChange, Updated
from syllabus.store.embedded import EmbeddedStore
from tests.store.test_contract import appending_error, bump_attempt, make_job


class CountingStore(EmbeddedStore):
    """The embedded store, counting how its batches came (and failing one on request)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[int] = []
        self.fail_next: Exception | None = None

    async def update_jobs(self, changes: Sequence[tuple[str, JobChange]]) -> list[Updated]:
        self.batches.append(len(changes))
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure
        return await super().update_jobs(changes)


@pytest_asyncio.fixture
async def store(db_path: Path) -> AsyncIterator[CountingStore]:
    counting = CountingStore(db_path)
    await counting.open()
    try:
        yield counting
    finally:
        await counting.close()


async def test_updates_made_together_go_as_one_batch_and_each_gets_its_answer(store: CountingStore) -> None:
    jobs = [make_job() for _ in range(5)]
    await store.insert_jobs(jobs)
    updates = JobUpdates(store)

    results = await asyncio.gather(*(updates.update(job.id, appending_error(i)) for i, job in enumerate(jobs)))

    assert store.batches == [5]
    for i, (job, updated) in enumerate(zip(jobs, results, strict=True)):
        assert updated.applied and updated.job is not None
        assert (updated.job.id, [error.attempt for error in updated.job.errors]) == (job.id, [i])
    # One after another, each is a batch of its own.
    await updates.update(jobs[0].id, bump_attempt)
    await updates.update(jobs[1].id, bump_attempt)
    assert store.batches == [5, 1, 1]


async def test_a_failed_batch_fails_every_caller_in_it(store: CountingStore) -> None:
    jobs = [make_job() for _ in range(3)]
    await store.insert_jobs(jobs)
    updates = JobUpdates(store)
    store.fail_next = ConnectionError("the store is away")

    results = await asyncio.gather(*(updates.update(job.id, bump_attempt) for job in jobs), return_exceptions=True)

    assert [type(result) for result in results] == [ConnectionError] * 3
    assert [await store.get_job(job.id) for job in jobs] == jobs
    # The next batch goes through.
    assert (await updates.update(jobs[0].id, bump_attempt)).applied


async def test_a_cancelled_caller_leaves_the_rest_of_its_batch_alone(store: CountingStore) -> None:
    jobs = [make_job() for _ in range(3)]
    await store.insert_jobs(jobs)
    updates = JobUpdates(store)
    calls = [asyncio.create_task(updates.update(job.id, bump_attempt)) for job in jobs]
    # Runs once every call has queued its update, before the batch goes: the loop runs callbacks in order.
    asyncio.get_running_loop().call_soon(calls[1].cancel)

    results = await asyncio.gather(*calls, return_exceptions=True)

    assert isinstance(results[1], asyncio.CancelledError)
    for result in (results[0], results[2]):
        assert isinstance(result, Updated) and result.applied
    stored = await store.get_job(jobs[2].id)
    assert stored is not None and stored.attempt == jobs[2].attempt + 1


@pytest.mark.parametrize("count", [1, 200])
async def test_many_updates_of_one_job_in_a_batch_apply_in_order(store: CountingStore, count: int) -> None:
    job = make_job()
    await store.insert_jobs([job])
    updates = JobUpdates(store)

    await asyncio.gather(*(updates.update(job.id, appending_error(i)) for i in range(count)))

    stored = await store.get_job(job.id)
    assert stored is not None
    assert [error.attempt for error in stored.errors] == list(range(count))
