"""The worker hooks that hold tenants to their limits (syllabus.runningcap) and count their spend
(syllabus.spend), built from LimitsConfig for every worker process; none when no limit needs them."""

from __future__ import annotations

from contextlib import AsyncExitStack

from syllabus.config import CommonConfig, ConfigError, LimitsConfig, WorkerConfig
from syllabus.hooks import WorkerHook
from syllabus.redisclient import redis_client
from syllabus.runningcap import RunningCap
from syllabus.spend import Spend, SpendHook

# Limits answer quickly or not at all: a Redis that hangs must not hold the jobs.
REDIS_TIMEOUT = 1.0


async def tenant_hooks(
    common: CommonConfig, worker: WorkerConfig, limits: LimitsConfig, closing: AsyncExitStack
) -> list[WorkerHook]:
    if limits.max_running <= 0 and limits.budget_usd <= 0:
        return []
    if not common.redis_url:
        raise ConfigError("SYLLABUS_MAX_RUNNING_JOBS and SYLLABUS_SPEND_BUDGET_USD need SYLLABUS_REDIS_URL")
    redis = redis_client(common, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
    closing.push_async_callback(redis.aclose)
    prefix = f"{common.namespace or 'syllabus'}:limits:"
    hooks: list[WorkerHook] = []
    if limits.max_running > 0:
        hooks.append(
            RunningCap(
                redis,
                prefix + "running:",
                limits.max_running,
                worker.default_timeout,
                fail_closed=limits.redis_down == "closed",
            )
        )
    if limits.budget_usd > 0:
        hooks.append(SpendHook(Spend(redis, prefix + "spend:", limits.budget_period)))
    return hooks
