"""Faults injected into a store's writes reach every write of the runtime, whichever call made it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from syllabus.store.base import JobChange, Store, Updated

UpdateJobs = Callable[[Sequence[tuple[str, JobChange]]], Awaitable[list[Updated]]]


def one_by_one(store: Store) -> UpdateJobs:
    """update_jobs made of the store's own update_job, called for one change after another (looked up at each
    call, so a fault monkeypatched onto the instance's update_job applies). Like a real store cut off midway, the
    changes before a failing one stay applied."""

    async def update_jobs(changes: Sequence[tuple[str, JobChange]]) -> list[Updated]:
        return [await store.update_job(job_id, change) for job_id, change in changes]

    return update_jobs
