"""One scheduler at a time runs the sweeps: the one holding a lease in Redis.

The lease is a key set with NX and a time to live, holding a fencing token from INCR: each new leader's token is
higher than every earlier one. The leader renews it well within its time to live by an atomic compare-and-extend
(a Lua script: only while the key still holds its own token), and deletes it the same way at a clean stop, so
another replica takes over at once. A leader killed outright is replaced once its lease runs out. Whatever the
sweeps must carry across a handover (the orphan sweep's cursor) is written only while the writer's token still
holds the lease, by another script, so a deposed leader that has not noticed yet cannot move it back.

Without Redis (SYLLABUS_REDIS_URL unset) the scheduler is alone by assumption and leads for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from syllabus import outages
from syllabus.metrics import scheduler as metrics

log = logging.getLogger(__name__)

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_FENCED_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


class Deposed(Exception):
    """The lease was lost (taken over, or not renewed in time): the duties stop."""


class Leadership:
    def __init__(self, redis: Redis | None, name: str, lease: float) -> None:
        self._redis = redis
        self._key = f"{name}:leader"
        self._tokens = f"{name}:leader:token"
        self._lease_ms = max(1, int(lease * 1000))
        self._holder = f"{socket.gethostname()}-{os.getpid()}"
        # "<token>:<holder>" while this process leads.
        self._value: str | None = None
        self._outages = outages.OutageLog(log)
        # Without Redis, what write_fenced keeps lives as long as this process.
        self._local: dict[str, str] = {}

    @property
    def token(self) -> int | None:
        return int(self._value.split(":", 1)[0]) if self._value is not None else None

    async def run(self, duties: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
        """Until `stop`: wait to lead, then run `duties` while leading (cancelled if the lease is lost)."""
        if self._redis is None:
            log.warning("SYLLABUS_REDIS_URL is not set: this scheduler sweeps alone, with no leader election")
            self._value = "0:alone"
            metrics.LEADER.set(1)
            try:
                await _until(duties(), stop)
            finally:
                metrics.LEADER.set(0)
            return
        while not stop.is_set():
            if not await self._acquire():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._lease_ms / 3000)
                continue
            log.info("leading the sweeps (token %s)", self.token)
            metrics.LEADER.set(1)
            try:
                await _until(duties(), stop, self._keep())
            except Deposed as exc:
                log.warning("no longer leading the sweeps: %s", exc)
            finally:
                metrics.LEADER.set(0)
                await self._release()

    async def write_fenced(self, key: str, value: str) -> bool:
        """Set `key` only while this process holds the lease; says whether it did."""
        if self._redis is None:
            self._local[key] = value
            return True
        if self._value is None:
            return False
        done = await self._redis.eval(_FENCED_SET, 2, self._key, key, self._value, value)
        return bool(done)

    async def read(self, key: str) -> str | None:
        if self._redis is None:
            return self._local.get(key)
        raw = await self._redis.get(key)
        return raw.decode() if isinstance(raw, bytes) else raw

    async def _acquire(self) -> bool:
        assert self._redis is not None
        try:
            token = await self._redis.incr(self._tokens)
            value = f"{token}:{self._holder}"
            taken = await self._redis.set(self._key, value, nx=True, px=self._lease_ms)
        except Exception as exc:
            if outages.unreachable(exc) is None:
                raise
            self._outages.down(outages.REDIS, exc, "no scheduler sweeps until it answers")
            return False
        self._outages.up(outages.REDIS)
        if taken:
            self._value = value
        return bool(taken)

    async def _keep(self) -> None:
        """Renew the lease a few times per its life; raises Deposed once it cannot be sure it still holds it."""
        assert self._redis is not None and self._value is not None
        loop = asyncio.get_running_loop()
        held_until = loop.time() + self._lease_ms / 1000
        while True:
            await asyncio.sleep(self._lease_ms / 3000)  # a periodic duty, not synchronisation
            try:
                renewed = await self._redis.eval(_EXTEND, 1, self._key, self._value, str(self._lease_ms))
            except Exception as exc:
                if outages.unreachable(exc) is None:
                    raise
                self._outages.down(outages.REDIS, exc, "the sweeps stop if the lease cannot be renewed in time")
                if loop.time() >= held_until:
                    raise Deposed("Redis did not answer before the lease ran out") from exc
                continue
            if not renewed:
                raise Deposed("another scheduler holds the lease")
            held_until = loop.time() + self._lease_ms / 1000

    async def _release(self) -> None:
        value, self._value = self._value, None
        if value is None or self._redis is None:
            return
        with contextlib.suppress(Exception):  # unreachable: the lease runs out on its own
            await self._redis.eval(_RELEASE, 1, self._key, value)


async def _until(duties: Awaitable[None], stop: asyncio.Event, keep: Awaitable[None] | None = None) -> None:
    """Run `duties` until they end or `stop` is set; `keep`, if given, ends them by raising."""
    tasks = {asyncio.ensure_future(duties), asyncio.ensure_future(stop.wait())}
    keeper = asyncio.ensure_future(keep) if keep is not None else None
    if keeper is not None:
        tasks.add(keeper)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            raise failure
