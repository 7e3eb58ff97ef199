"""Pipelined JetStream publishing: many publishes in flight on one reply subscription, each acked or failed.

nats-py's own publish_async raises a stream's error (e.g. "maximum messages exceeded") inside its reply
callback instead of failing the caller's future, and a request per publish pays for a future, a timer and a
token each; this keeps one wildcard subscription and a dict of futures.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import APIError

from syllabus.errors import BrokerUnavailable

_SEQUENCE = re.compile(rb'"seq":(\d+)')


class NoStreamError(APIError):
    """No stream listens on the subject (the server answered 503 "no responders")."""


class AckedPublisher:
    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._inbox = nc.new_inbox()
        self._futures: dict[str, asyncio.Future[int]] = {}
        self._tokens = itertools.count()
        self._sub: Subscription | None = None
        self._starting: asyncio.Lock = asyncio.Lock()

    async def _ensure_started(self) -> None:
        if self._sub is None:
            async with self._starting:
                if self._sub is None:
                    self._sub = await self._nc.subscribe(
                        f"{self._inbox}.*", cb=self._on_reply, pending_msgs_limit=-1, pending_bytes_limit=-1
                    )

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> asyncio.Future[int]:
        """Send now; the returned future gives the stream sequence once stored, or the stream's error.

        Raises BrokerUnavailable at once while the connection is down: the ack could not come before it is back.
        """
        if not self._nc.is_connected:
            raise BrokerUnavailable("no connection to NATS (reconnecting)")
        await self._ensure_started()
        token = str(next(self._tokens))
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._futures[token] = future
        future.add_done_callback(lambda _: self._futures.pop(token, None))
        await self._nc.publish(subject, payload, reply=f"{self._inbox}.{token}", headers=headers)
        return future

    async def _on_reply(self, msg: Msg) -> None:
        future = self._futures.pop(msg.subject.rsplit(".", 1)[-1], None)
        if future is None or future.done():
            return
        if not msg.data:
            status = (msg.headers or {}).get("Status", "")
            future.set_exception(NoStreamError(code=int(status or 503), description="no stream for this subject"))
            return
        if b'"error"' not in msg.data and (stored := _SEQUENCE.search(msg.data)) is not None:
            # The usual answer ({"stream":…,"seq":…}), read without a JSON parser: one per publish.
            future.set_result(int(stored[1]))
            return
        reply = json.loads(msg.data)
        error = reply.get("error")
        if error is not None:
            future.set_exception(
                APIError(code=error.get("code"), err_code=error.get("err_code"), description=error.get("description"))
            )
        else:
            future.set_result(int(reply["seq"]))

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        for future in self._futures.values():
            future.cancel()
