"""The leader's periodic sweeps: orphaned jobs are published, and retention removes what is old.

An orphan is a job stored but never published: its gateway died between the insert and the publish, and no
caller sent its idempotency key again. From the store alone it looks like any job waiting in the queue, so the
sweep publishes every job that waits unclaimed (lease 0) once it is older than the grace, under its own id as
Nats-Msg-Id, which JOBS (or SCHEDULED) drops as a duplicate while its first publish is within the duplicate
window. The sweep looks at each job once, in order of creation, from a cursor kept with the lease
(scheduler.leadership), soon after the grace and so well inside that window. Only a job the sweep reaches later
(no scheduler for longer than the window) may be published twice; the worker that receives the second message
finds the job claimed from the first and drops it (syllabus.lifecycle.Claim).
"""

from __future__ import annotations

import asyncio
import logging

from scheduler.leadership import Deposed, Leadership
from scheduler.retention import Retention
from syllabus import lifecycle, outages
from syllabus.config import CommonConfig, SchedulerConfig
from syllabus.jetstream import DUPLICATE_WINDOW
from syllabus.metrics import scheduler as metrics
from syllabus.redisclient import redis_client
from syllabus.runtime import Runtime
from syllabus.v1 import job_pb2

log = logging.getLogger(__name__)
# Where a new cursor starts: far enough back to cover every job whose first publish JetStream still remembers.
FIRST_LOOKBACK = DUPLICATE_WINDOW * 0.9


class Sweeps:
    def __init__(self, runtime: Runtime, config: SchedulerConfig, leadership: Leadership) -> None:
        self._runtime = runtime
        self._store = runtime.store
        self._submitter = runtime.submitter
        self._config = config
        self._leadership = leadership
        self._retention = Retention(runtime, config.retention_batch)
        self._cursor_prefix = f"{runtime.topology.namespace or 'syllabus'}:"
        self._outages = outages.OutageLog(log, announced_elsewhere={outages.NATS})

    async def run(self) -> None:
        """Sweep every interval, for as long as this scheduler leads (it is cancelled when it stops)."""
        while True:
            try:
                for tenant in await self._store.tenants():
                    await self.sweep_orphans(tenant)
                    await self._retention.purge(tenant, self._config.job_retention, self._config.dead_letter_retention)
            except Deposed:
                raise
            except Exception as exc:
                dependency = outages.unreachable(exc)
                if dependency is None:
                    log.exception("a sweep failed; it runs again at the next interval")
                else:
                    self._outages.down(dependency, exc, "the sweeps wait for it")
            else:
                metrics.SWEEPS.inc()
                self._outages.all_up()
            await asyncio.sleep(self._config.sweep_interval)

    async def sweep_orphans(self, tenant: str) -> int:
        """Publish the tenant's unclaimed jobs created since its cursor and before the grace; returns how many."""
        cursor_key = f"{self._cursor_prefix}{tenant}:orphan-cursor"
        now = lifecycle.now().ToNanoseconds()
        until = now - int(self._config.orphan_grace * 1e9)
        stored = await self._leadership.read(cursor_key)
        cursor = int(stored) if stored else now - int(FIRST_LOOKBACK * 1e9)
        published = 0
        while cursor < until:
            jobs = await self._store.waiting_jobs(tenant, cursor, until, self._config.retention_batch)
            for job in jobs:
                if _unclaimed(job):
                    await self._submitter.enqueue(job, job.id)
                    published += 1
            cursor = jobs[-1].create_time.ToNanoseconds() if len(jobs) == self._config.retention_batch else until
            if not await self._leadership.write_fenced(cursor_key, str(cursor)):
                raise Deposed("the lease moved on during the orphan sweep; the next leader goes on from the cursor")
            await asyncio.sleep(0)
        metrics.ORPHANS.inc(published)
        if published:
            log.warning("published %d stored jobs that never reached their queue", published)
        return published


def _unclaimed(job: job_pb2.Job) -> bool:
    # A claim raises the lease and nothing lowers it: lease 0 was never claimed, so may never have been published.
    return job.lease == 0 and job.attempt == 0


async def run_elected(runtime: Runtime, common: CommonConfig, stop: asyncio.Event) -> None:
    """The sweeps of this scheduler process, while it leads (until `stop`)."""
    config = SchedulerConfig.from_env()
    redis = redis_client(common) if common.redis_url else None
    leadership = Leadership(redis, f"{common.namespace or 'syllabus'}:scheduler", config.leader_lease)
    sweeps = Sweeps(runtime, config, leadership)
    try:
        await leadership.run(sweeps.run, stop)
    finally:
        if redis is not None:
            await redis.aclose()
