"""How a parent job's end is stored relative to its children's: seen from inside the store call that ends it."""

from __future__ import annotations

import pytest

from syllabus.store.base import JobChange, JobQuery, Store, Updated
from syllabus.v1 import job_pb2
from tests.storefaults import one_by_one

E = job_pb2
# A parent's id and the state it ended in, with the states its children had then.
Ended = tuple[str, int, list[int]]


def record_parent_ends(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[Ended]:
    """Every parent's end as `store` stores it, with its children's stored states at that moment (before anyone
    could see that end).

    Read inside the store call that ends the parent, so what it finds depends only on the order of the writes,
    not on how fast anyone reads afterwards.
    """
    seen: list[Ended] = []
    update_job = store.update_job

    async def observed(job_id: str, change: JobChange) -> Updated:
        updated = await update_job(job_id, change)
        job = updated.job
        if updated.applied and job is not None and job.state in (E.JOB_STATE_SUCCEEDED, E.JOB_STATE_FAILED):
            children = await store.list_jobs(JobQuery(tenant=job.tenant, parent_id=job_id, page_size=1000))
            if children.jobs:
                seen.append((job_id, job.state, [child.state for child in children.jobs]))
        return updated

    monkeypatch.setattr(store, "update_job", observed)
    monkeypatch.setattr(store, "update_jobs", one_by_one(store))
    return seen
