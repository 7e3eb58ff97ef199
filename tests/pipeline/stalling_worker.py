"""A generator worker process for crash tests: it hangs for good once it has stored a job's dead letter.

Its store never answers the write that fails a job, so the process stands still between the dead-letter copy
and the message's term(): the point a test then SIGKILLs it at. The test handlers run as in worker_proc.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from syllabus.config import CommonConfig, WorkerConfig
from syllabus.jetstream import connect, ensure_topology
from syllabus.process import require_nats, run_service
from syllabus.runtime import Runtime
from syllabus.store.base import JobChange, Updated
from syllabus.store.embedded import EmbeddedStore
from syllabus.topology import Topology
from syllabus.v1 import job_pb2
from syllabus.worker import Worker
from tests.pipeline import handlers
from tests.storefaults import one_by_one


class HangingOnFailure(EmbeddedStore):
    async def update_job(self, job_id: str, change: JobChange) -> Updated:
        current = await self.get_job(job_id)
        after = change(current) if current is not None else None
        if after is not None and after.state == job_pb2.JOB_STATE_FAILED:
            await asyncio.Event().wait()
        return await super().update_job(job_id, change)

    async def update_jobs(self, changes: Sequence[tuple[str, JobChange]]) -> list[Updated]:
        return await one_by_one(self)(changes)


async def serve(common: CommonConfig) -> None:
    nc = await connect(require_nats(common), "stalling-worker")
    topology = Topology(common.namespace)
    await ensure_topology(nc, topology)
    store = HangingOnFailure(common.home / "store.db")
    await store.open()
    worker = Worker(
        service="generator",
        handlers=handlers.HANDLERS,
        runtime=Runtime.build(nc, store, topology),
        config=WorkerConfig.from_env("generator"),
    )
    await worker.run()


if __name__ == "__main__":
    handlers.IN_SUBPROCESS = True
    sys.exit(run_service("generator", serve))
