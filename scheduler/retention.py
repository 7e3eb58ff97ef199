"""Retention: ended jobs older than an age go with their events and artifacts, and old dead letters go.

A batch at a time, yielding between batches, so a large backlog never holds the loop or the store for long. A
job's events and artifacts are removed before its record: a sweep cut short leaves the record, which the next
sweep finds again, and never events or artifacts that nothing points to. A job retried from the dead-letter queue
meanwhile is not ended any more, and its record stays (Store.delete_ended_jobs checks again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from nats.js.errors import NotFoundError
from nats.js.object_store import ObjectStore

from syllabus import lifecycle
from syllabus.artifacts import job_object_name
from syllabus.runtime import Runtime
from syllabus.v1 import job_pb2

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class Purged:
    jobs: int = 0
    dead_letters: int = 0
    artifacts: int = 0


class Retention:
    def __init__(self, runtime: Runtime, batch: int = BATCH) -> None:
        self._store = runtime.store
        self._topology = runtime.topology
        self._js = runtime.nc.jetstream()
        self._dead_letters = runtime.dead_letters
        self._batch = batch

    async def purge(
        self,
        tenant: str,
        jobs_older_than: float,
        dead_letters_older_than: float | None,
        go_on: Callable[[], bool] = lambda: True,
    ) -> Purged:
        """Remove the tenant's ended jobs older than `jobs_older_than` seconds and (unless None) its dead letters
        older than `dead_letters_older_than`. Between batches it stops once `go_on` says so."""
        now = lifecycle.now().ToNanoseconds()
        purged = Purged()
        jobs_before = now - int(jobs_older_than * 1e9)
        while go_on():
            jobs = await self._store.ended_jobs(tenant, jobs_before, self._batch)
            if not jobs:
                break
            purged.artifacts += sum(await asyncio.gather(*(self._remove_traces(job) for job in jobs)))
            deleted = await self._store.delete_ended_jobs([job.id for job in jobs], jobs_before)
            purged.jobs += len(deleted)
            if not deleted:
                break  # every one of them was retried meanwhile; the next sweep looks again
            await asyncio.sleep(0)
        if dead_letters_older_than is not None:
            letters_before = now - int(dead_letters_older_than * 1e9)
            while go_on():
                removed = await self._dead_letters.remove_older(tenant, letters_before, self._batch)
                purged.dead_letters += removed
                if removed < self._batch:
                    break
                await asyncio.sleep(0)
        if purged.jobs or purged.dead_letters:
            log.info(
                "retention removed %d ended jobs (%d artifacts) and %d dead letters",
                purged.jobs,
                purged.artifacts,
                purged.dead_letters,
            )
        return purged

    async def _remove_traces(self, job: job_pb2.Job) -> int:
        """The job's events and artifacts; returns how many artifacts were removed."""
        await self._js.purge_stream(
            self._topology.events_stream, subject=self._topology.event_subject(job.tenant, job.id)
        )
        if not job.result.artifacts:
            return 0
        bucket = await self._bucket()
        removed = 0
        for artifact in job.result.artifacts:
            try:
                await bucket.delete(job_object_name(job.id, artifact.name))
            except NotFoundError:
                continue  # removed by an earlier sweep cut short
            removed += 1
        return removed

    async def _bucket(self) -> ObjectStore:
        return await self._js.object_store(self._topology.artifacts_bucket)
