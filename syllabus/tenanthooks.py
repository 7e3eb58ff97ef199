"""The worker hooks that hold tenants to their limits (syllabus.runningcap) and count their spend
(syllabus.spend), built from LimitsConfig for every worker process; none when no limit needs them."""

from __future__ import annotations

from contextlib import AsyncExitStack

from syllabus.config import CommonConfig, ConfigError, LimitsConfig, WorkerConfig
from syllabus.hooks import WorkerHook


async def tenant_hooks(
    common: CommonConfig, worker: WorkerConfig, limits: LimitsConfig, closing: AsyncExitStack
) -> list[WorkerHook]:
    if limits.max_running <= 0 and limits.budget_usd <= 0:
        return []
    if not common.redis_url:
        raise ConfigError("SYLLABUS_MAX_RUNNING_JOBS and SYLLABUS_SPEND_BUDGET_USD need SYLLABUS_REDIS_URL")
    # Here, not at the top: every process imports this module, and only those with limits need a Redis client.
    from syllabus.redisclient import redis_client
    from syllabus.runningcap import RunningCap
    from syllabus.spend import Spend, SpendHook

    redis = redis_client(common, socket_timeout=limits.redis_timeout, socket_connect_timeout=limits.redis_timeout)
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
