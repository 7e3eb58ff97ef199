"""A tenant's estimated model spend per period (a UTC day or month), counted in Redis by the workers' hook and
read by the gateway before it starts a course."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from syllabus.hooks import WorkerHook
from syllabus.v1 import job_pb2

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
# Counters outlive their period by this much, for whoever looks back at it.
KEEP = timedelta(days=40)


def period_of(now: datetime, period: str) -> tuple[str, datetime]:
    """The period `now` falls in: its name (2026-12 or 2026-12-07) and when the next begins."""
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%d"), start + timedelta(days=1)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (
        start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    )
    return start.strftime("%Y-%m"), following


class Spend:
    def __init__(self, redis: Redis, prefix: str, period: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._period = period

    def _key(self, tenant: str, now: datetime) -> str:
        return f"{self._prefix}{tenant}:{period_of(now, self._period)[0]}"

    async def spent(self, tenant: str) -> tuple[float, datetime]:
        """What the tenant has spent this period, and when the period ends."""
        now = datetime.now(UTC)
        value = await self._redis.get(self._key(tenant, now))
        return float(value or 0), period_of(now, self._period)[1]

    async def add(self, tenant: str, usd: float) -> None:
        key = self._key(tenant, datetime.now(UTC))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrbyfloat(key, usd)
            pipe.expire(key, KEEP)
            await pipe.execute()


class SpendHook(WorkerHook):
    """Counts what each succeeded job's model calls cost against its tenant. Only jobs without a parent count: a
    parent's usage is its whole tree's (a course's job reports the course's total), so its children would count
    twice. A worker killed between storing the outcome and this hook leaves that job uncounted, as does a tree
    whose top job fails: the figure errs low, never twice."""

    def __init__(self, spend: Spend) -> None:
        self._spend = spend

    async def on_success(self, job: job_pb2.Job) -> None:
        if job.parent_id:
            return
        cost = job.result.usage.estimated_cost_usd
        if cost > 0:
            await self._spend.add(job.tenant, cost)
