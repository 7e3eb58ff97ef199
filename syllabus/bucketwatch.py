"""A key-value bucket followed into memory: every entry present when the watch starts, then every change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from nats.js.kv import KeyValue


class BucketWatch:
    def __init__(self, on_put: Callable[[str, bytes], None], on_delete: Callable[[str], object]) -> None:
        self._on_put = on_put
        self._on_delete = on_delete
        self._task: asyncio.Task[None] | None = None

    @property
    def watching(self) -> bool:
        return self._task is not None

    async def start(self, kv: KeyValue) -> None:
        """Returns once the entries present at the start have been seen."""
        watcher = await kv.watchall()
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
        await initial.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
