"""A token bucket per key in Redis, taken from in one atomic script, so every gateway shares a tenant's rate.

The script reads the clock of the Redis server (TIME), not the caller's, so gateways whose clocks differ agree.
A bucket holds at most `burst` tokens, refills at `rate` per second, and expires once it would be full again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

_TAKE = """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or burst
local at = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return wait
"""


class TokenBuckets:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._take = redis.register_script(_TAKE)

    async def take(self, key: str, rate: float, burst: int, cost: int = 1) -> float:
        """0 when `cost` tokens were taken from the bucket `key`; otherwise the seconds until they would be there
        (nothing is taken)."""
        wait_ms = await self._take(keys=[f"{self._prefix}{key}"], args=[rate, burst, cost])
        return int(wait_ms) / 1000
