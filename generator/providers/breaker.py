"""Circuit breakers: after `threshold` consecutive failed calls a provider is left alone for `cooldown` seconds.

While open, jobs that need the provider wait (syllabus.worker.Defer) instead of spending attempts on calls
that would fail. After the cool-down one call at a time is let through as a probe: success closes the breaker,
failure opens it again. RedisBreaker shares the state between every generator process; LocalBreaker keeps it
in this process (when there is no Redis).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from syllabus import outages

log = logging.getLogger(__name__)
Clock = Callable[[], float]


class Breaker(Protocol):
    async def wait_time(self, name: str) -> float:
        """0 when a call to `name` may go ahead now, else the seconds to wait first."""

    async def succeeded(self, name: str) -> None: ...

    async def failed(self, name: str) -> None: ...


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0
    probe_until: float = 0.0


class LocalBreaker:
    def __init__(self, threshold: int, cooldown: float, probe_timeout: float, clock: Clock = time.monotonic) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._probe_timeout = probe_timeout
        self._clock = clock
        self._states: dict[str, _State] = {}

    async def wait_time(self, name: str) -> float:
        state = self._states.get(name)
        if state is None or state.failures < self._threshold:
            return 0.0
        now = self._clock()
        if now < state.open_until:
            return state.open_until - now
        if now < state.probe_until:
            return min(state.probe_until - now, self._cooldown)
        state.probe_until = now + self._probe_timeout
        return 0.0

    async def succeeded(self, name: str) -> None:
        self._states.pop(name, None)

    async def failed(self, name: str) -> None:
        state = self._states.setdefault(name, _State())
        state.failures += 1
        if state.failures >= self._threshold:
            state.open_until = self._clock() + self._cooldown
            state.probe_until = 0.0


# Lua keeps each decision atomic across processes. Times travel as strings: Lua numbers come back as integers.
_WAIT = """
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if failures < tonumber(ARGV[2]) then return '0' end
local now = tonumber(ARGV[1])
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if now < open_until then return tostring(open_until - now) end
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if now < probe_until then return tostring(math.min(probe_until - now, tonumber(ARGV[4]))) end
redis.call('HSET', KEYS[1], 'probe_until', tostring(now + tonumber(ARGV[3])))
return '0'
"""
_FAIL = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'open_until', tostring(tonumber(ARGV[1]) + tonumber(ARGV[3])), 'probe_until', '0')
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return failures
"""


class RedisBreaker:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        threshold: int,
        cooldown: float,
        probe_timeout: float,
        clock: Clock = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._threshold = threshold
        self._cooldown = cooldown
        self._probe_timeout = probe_timeout
        self._clock = clock
        self._wait = redis.register_script(_WAIT)
        self._fail = redis.register_script(_FAIL)
        # A breaker nobody touched for a while is forgotten.
        self._ttl_ms = int((cooldown + probe_timeout) * 1000) + 3_600_000
        # One warning when Redis goes away and one line when it is back, not one per call.
        self._outages = outages.OutageLog(log)

    def _unavailable(self, exc: RedisError) -> None:
        if outages.unreachable(exc) is None:
            log.warning("circuit breaker state unavailable (%s)", exc)
        else:
            # Without the shared state, calling is better than stalling every job.
            self._outages.down(
                outages.REDIS, exc, "providers are called without their circuit breakers until it is back"
            )

    def _key(self, name: str) -> str:
        return f"{self._prefix}{name}"

    async def wait_time(self, name: str) -> float:
        try:
            raw = await self._wait(
                keys=[self._key(name)], args=[self._clock(), self._threshold, self._probe_timeout, self._cooldown]
            )
        except RedisError as exc:
            self._unavailable(exc)
            return 0.0
        self._outages.up(outages.REDIS)
        return max(0.0, float(raw))

    async def succeeded(self, name: str) -> None:
        try:
            await self._redis.delete(self._key(name))
        except RedisError as exc:
            self._unavailable(exc)

    async def failed(self, name: str) -> None:
        try:
            await self._fail(
                keys=[self._key(name)], args=[self._clock(), self._threshold, self._cooldown, self._ttl_ms]
            )
        except RedisError as exc:
            self._unavailable(exc)
