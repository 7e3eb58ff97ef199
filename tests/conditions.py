"""Waiting for a condition that no event announces (a presence entry aging out, a pull request expiring, a lease
moving to another process): it is looked at again and again, up to a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0, every: float = 0.2) -> None:
    """Until `check` holds, looked at every `every` seconds; TimeoutError if it never does within `timeout`."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110  a condition re-checked, not a fixed wait
            await asyncio.sleep(every)
