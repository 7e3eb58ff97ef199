"""At most N jobs of a tenant running at once, over every worker of a service: a worker hook holding one slot
per running job in a Redis sorted set per tenant (BullMQ Pro's group concurrency does the same in Redis).

A slot is taken just before the handler runs and given back when the attempt ends. Each slot expires at its
attempt's time limit, so a worker killed in the middle of a job frees it without anyone's help. A job that finds
every slot taken is handed back uncounted (Defer) and comes back after FULL_RETRY seconds.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from syllabus import outages
from syllabus.hooks import WorkerHook
from syllabus.v1 import job_pb2
from syllabus.worker import Defer, JobContext

log = logging.getLogger(__name__)
FULL_RETRY = 2.0
# Seconds a slot outlives its attempt's time limit: the worker's own stop takes a moment after it.
MARGIN = 30.0

_TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  return 1
end
return 0
"""


class RunningCap(WorkerHook):
    def __init__(
        self, redis: Redis, prefix: str, cap: int, default_timeout: float, fail_closed: bool, margin: float = MARGIN
    ) -> None:
        self._redis = redis
        self._margin = margin
        self._prefix = prefix
        self._cap = cap
        self._default_timeout = default_timeout
        self._fail_closed = fail_closed
        self._take = redis.register_script(_TAKE)
        self._outages = outages.OutageLog(log)

    def _key(self, job: job_pb2.Job) -> str:
        return f"{self._prefix}{job.tenant}"

    async def before_attempt(self, ctx: JobContext) -> None:
        job = ctx.job
        limit = job.options.timeout.ToNanoseconds() / 1e9 if job.options.HasField("timeout") else self._default_timeout
        try:
            taken = await self._take(
                keys=[self._key(job)], args=[job.id, self._cap, max(1, int((limit + self._margin) * 1000))]
            )
        except RedisError as exc:
            self._outages.down(
                outages.REDIS, exc, "the running cap is not applied" if not self._fail_closed else "jobs wait for it"
            )
            if self._fail_closed:
                raise Defer(FULL_RETRY, "the running cap cannot be checked (Redis is unreachable)") from None
            return
        self._outages.all_up()
        if not taken:
            raise Defer(FULL_RETRY, f"tenant {job.tenant} has {self._cap} jobs running, its cap")

    async def after_attempt(self, job: job_pb2.Job, outcome: str) -> None:
        await self._redis.zrem(self._key(job), job.id)
