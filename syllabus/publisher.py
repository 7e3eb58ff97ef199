"""Pipelined JetStream publishing: many publishes in flight on one reply subscription, each acked or failed.

nats-py's own publish_async raises a stream's error (e.g. "maximum messages exceeded") inside its reply
callback instead of failing the caller's future, and a request per publish pays for a future, a timer and a
token each; here every ack comes on one wildcard subscription (syllabus.replies) to its future.
"""

from __future__ import annotations

import asyncio
import json
import re

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import APIError

from syllabus.errors import BrokerUnavailable
from syllabus.replies import ReplyRoutes

_SEQUENCE = re.compile(rb'"seq":(\d+)')


class NoStreamError(APIError):
    """No stream listens on the subject (the server answered 503 "no responders")."""


class AckedPublisher:
    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._acks: ReplyRoutes[asyncio.Future[int]] = ReplyRoutes(nc, _settle)

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> asyncio.Future[int]:
        """Send now; the returned future gives the stream sequence once stored, or the stream's error.

        Raises BrokerUnavailable at once while the connection is down: the ack could not come before it is back.
        """
        if not self._nc.is_connected:
            raise BrokerUnavailable("no connection to NATS (reconnecting)")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        reply = await self._acks.add(future)
        future.add_done_callback(lambda _: self._acks.remove(reply))
        await self._nc.publish(subject, payload, reply=reply, headers=headers)
        return future

    async def close(self) -> None:
        await self._acks.close()
        for future in self._acks.targets():
            future.cancel()


def _settle(future: asyncio.Future[int], msg: Msg) -> None:
    """The stream's answer to one publish: its sequence, or its error."""
    if future.done():
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
