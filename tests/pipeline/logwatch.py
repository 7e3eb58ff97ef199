"""Waiting for a log line: how a test knows that a worker reached a step it only tells in its log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator


class LogWatch(logging.Handler):
    """Keeps every record; a test can wait for one that matches (logged on the test's own event loop)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._waiters: list[tuple[Callable[[logging.LogRecord], bool], asyncio.Future[None]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        for matches, future in self._waiters:
            if not future.done() and matches(record):
                future.set_result(None)

    async def wait_for(self, text: str) -> None:
        def matches(record: logging.LogRecord) -> bool:
            return text in record.getMessage()

        if any(matches(record) for record in self.records):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((matches, future))
        await future

    def at_least(self, level: int) -> list[str]:
        return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records if r.levelno >= level or r.exc_info]


@contextlib.contextmanager
def watching_logs(level: int = logging.INFO) -> Iterator[LogWatch]:
    """A LogWatch on the root logger for the block's duration."""
    watch = LogWatch()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(watch)
    root.setLevel(level)
    try:
        yield watch
    finally:
        root.removeHandler(watch)
        root.setLevel(previous)
