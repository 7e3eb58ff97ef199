"""Many requests' replies on one wildcard subscription: each request gets a reply subject of its own under one
inbox, and each reply is handed, with what its request registered, to one `deliver` function.

A subscription per request would cost two more messages to the server (subscribe, then unsubscribe) and the wait
for them; nats-py's own requests pay a future, a timer and a token each. The acked publisher routes acks to their
futures this way, the gateway's watches the batches of a job's history to their readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Generic, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

T = TypeVar("T")


class ReplyRoutes(Generic[T]):
    def __init__(self, nc: Client, deliver: Callable[[T, Msg], None]) -> None:
        self._nc = nc
        self._deliver = deliver
        self._prefix = nc.new_inbox()
        self._tokens = itertools.count()
        self._routes: dict[str, T] = {}
        self._sub: Subscription | None = None
        self._subscribing = asyncio.Lock()

    async def add(self, target: T) -> str:
        """A reply subject of its own, whose replies go to `target` until it is removed."""
        if self._sub is None:
            async with self._subscribing:
                if self._sub is None:
                    self._sub = await self._nc.subscribe(
                        f"{self._prefix}.*", cb=self._on_reply, pending_msgs_limit=-1, pending_bytes_limit=-1
                    )
        subject = f"{self._prefix}.{next(self._tokens)}"
        self._routes[subject] = target
        return subject

    def remove(self, subject: str) -> None:
        self._routes.pop(subject, None)

    def targets(self) -> list[T]:
        return list(self._routes.values())

    async def _on_reply(self, msg: Msg) -> None:
        target = self._routes.get(msg.subject)
        if target is not None:  # a reply to a request that gave up already goes nowhere
            self._deliver(target, msg)

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
