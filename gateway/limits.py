"""What a tenant may use, as the gateway checks it: its request rate (every call, in the gate), its jobs waiting
(every submission) and its spend budget (every course, from an estimate, before it starts). The workers hold the
running cap (syllabus.runningcap) and count spend (syllabus.spend).

The waiting count is read from the store at most once a second per tenant and gateway, and what this gateway
accepts meanwhile is added to it: a cap is exact for one gateway, and several gateways may overshoot it by what
they accept within that second.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from syllabus import outages
from syllabus.config import GeneratorConfig, LimitsConfig
from syllabus.errors import LimitReached, LimitsUnavailable
from syllabus.lifecycle import now
from syllabus.store.base import Store
from syllabus.v1 import course_pb2, job_pb2

if TYPE_CHECKING:
    # Loaded only where a limit needs them: the Redis client alone costs a gateway 7 MB it would not use.
    from redis.asyncio import Redis

    from syllabus.ratelimit import TokenBuckets
    from syllabus.spend import Spend

log = logging.getLogger(__name__)
WAITING_STATES = frozenset({job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_SCHEDULED, job_pb2.JOB_STATE_RETRYING})
RECOUNT = 1.0
# How long a caller refused for its waiting jobs is told to wait: long enough for workers to take some.
WAITING_RETRY = 5.0
READ = "read"


class Limits:
    def __init__(
        self,
        config: LimitsConfig,
        *,
        redis: Redis | None,
        namespace: str,
        store: Store,
        generator: GeneratorConfig | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._generator = generator or GeneratorConfig()
        prefix = f"{namespace or 'syllabus'}:limits:"
        self._buckets: TokenBuckets | None = None
        self._spend: Spend | None = None
        # What a Redis that cannot answer raises; nothing without one.
        self._redis_errors: tuple[type[Exception], ...] = ()
        if redis is not None:
            from redis.exceptions import RedisError

            from syllabus.ratelimit import TokenBuckets
            from syllabus.spend import Spend

            self._redis_errors = (RedisError,)
            self._buckets = TokenBuckets(redis, prefix + "rate:") if config.rate > 0 else None
            self._spend = Spend(redis, prefix + "spend:", config.budget_period)
        # tenant -> (when counted, jobs waiting then plus those accepted here since)
        self._waiting: dict[str, tuple[float, int]] = {}
        self._outages = outages.OutageLog(log)

    async def admit(self, tenant: str, scope: str) -> None:
        """One call of the tenant's, against its rate."""
        if self._buckets is None:
            return
        config = self._config
        try:
            wait = await self._buckets.take(tenant, config.rate, config.burst_size)
        except self._redis_errors as exc:
            self._redis_down(exc, scope)
            return
        self._outages.all_up()
        if wait > 0:
            raise LimitReached(
                f"tenant {tenant} is over its rate of {config.rate:g} requests per second; retry in {wait:.3g}s",
                f"tenant:{tenant}:requests",
                wait,
            )

    def _redis_down(self, exc: Exception, scope: str) -> None:
        closed = self._config.redis_down == "closed"
        self._outages.down(outages.REDIS, exc, "limits refuse all but reads" if closed else "limits are not applied")
        if closed and scope != READ:
            raise LimitsUnavailable("the tenant's limits cannot be checked now (Redis is away); reads still work")

    async def take_waiting(self, tenant: str, adding: int) -> None:
        """`adding` more jobs of the tenant's about to wait: refused if that would pass its cap."""
        cap = self._config.max_waiting
        if cap <= 0:
            return
        counted_at, waiting = self._waiting.get(tenant, (-RECOUNT, 0))
        if time.monotonic() - counted_at >= RECOUNT:
            rows = await self._store.count_jobs(tenant, now().ToNanoseconds())
            waiting = sum(row.jobs for row in rows if row.state in WAITING_STATES)
            counted_at = time.monotonic()
        if waiting + adding > cap:
            self._waiting[tenant] = (counted_at, waiting)
            raise LimitReached(
                f"tenant {tenant} has {waiting} jobs waiting and may have {cap} at once; {adding} more would pass it",
                f"tenant:{tenant}:waiting",
                WAITING_RETRY,
            )
        self._waiting[tenant] = (counted_at, waiting + adding)

    async def estimate_course(
        self, tenant: str, course: job_pb2.GenerateCourse, *, enforce: bool
    ) -> course_pb2.CourseEstimate:
        """The course's estimate with the tenant's budget in it; with `enforce`, a course whose estimate is more than
        what is left of the budget is refused."""
        from generator.estimate import course_estimate

        return await self._budgeted(tenant, course_estimate(self._generator, course), "course", enforce=enforce)

    async def check_parts(self, tenant: str, course: course_pb2.Course, *, lessons: int, quizzes: int) -> None:
        """Refuses a change of a course that writes parts again (a regenerated part, an added module) when their
        estimate is more than what is left of the tenant's budget."""
        from generator.estimate import parts_estimate

        estimate = parts_estimate(self._generator, course, lessons=lessons, quizzes=quizzes)
        await self._budgeted(tenant, estimate, "change", enforce=True)

    async def _budgeted(
        self, tenant: str, estimate: course_pb2.CourseEstimate, what: str, *, enforce: bool
    ) -> course_pb2.CourseEstimate:
        budget = self._config.budget_usd
        if budget <= 0 or self._spend is None:
            return estimate
        try:
            spent, ends = await self._spend.spent(tenant)
        except self._redis_errors as exc:
            self._redis_down(exc, "write" if enforce else READ)
            return estimate
        left = max(0.0, budget - spent)
        estimate.budget_usd = budget
        estimate.spent_usd = spent
        estimate.budget_period_end.FromDatetime(ends)
        estimate.within_budget = spent < budget and estimate.estimated_cost_usd <= left
        if enforce and not estimate.within_budget:
            raise LimitReached(
                f"the {what} would cost about ${estimate.estimated_cost_usd:.4f}; ${left:.4f} of tenant {tenant}'s "
                f"${budget:g} budget is left until {ends:%Y-%m-%d %H:%M} UTC",
                f"tenant:{tenant}:spend",
            )
        return estimate
