"""A key-value bucket followed into memory: every entry present when the watch starts, then every change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from nats.errors import TimeoutError as NatsTimeout
from nats.js.kv import KeyValue

# Seconds the entries present at the start may take to arrive before the start counts as NATS not answering.
START_TIMEOUT = 5.0


class BucketWatch:
    def __init__(self, on_put: Callable[[str, bytes], None], on_delete: Callable[[str], object]) -> None:
        self._on_put = on_put
        self._on_delete = on_delete
        self._task: asyncio.Task[None] | None = None
        self._watcher: KeyValue.KeyWatcher | None = None

    @property
    def watching(self) -> bool:
        return self._task is not None

    async def start(self, kv: KeyValue, timeout: float = START_TIMEOUT) -> None:
        """Returns once the entries present at the start have been seen; raises nats' TimeoutError (an outage, to
        its caller) when they do not come within `timeout`, rather than keep a stopping process waiting."""
        watcher = self._watcher = await kv.watchall()
        initial = asyncio.Event()

        async def follow() -> None:
            async for entry in watcher:
                if entry is None:
                    initial.set()  # the end of the entries present when the watch began
                elif entry.value and entry.operation is None:
                    self._on_put(entry.key, entry.value)
                else:
                    self._on_delete(entry.key)

        self._task = asyncio.create_task(follow())
        try:
            async with asyncio.timeout(timeout):
                await initial.wait()
        except TimeoutError:
            await self.stop()
            raise NatsTimeout from None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._watcher is not None:
            # Its subscription goes too (NATS away: it went with the connection).
            with contextlib.suppress(Exception):
                await self._watcher.stop()  # type: ignore[no-untyped-call]
            self._watcher = None
