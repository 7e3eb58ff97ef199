"""Pulling from a durable JetStream consumer without waiting on each batch: one inbox subscription receives the
messages and statuses of every pull request a worker has out, and the worker asks for more as its slots free up
(the way nats.go's Consume does, ADR-37: credits, expiring requests, idle heartbeats).

nats-py's fetch() waits for each batch in turn and spends a task, a timer and a uuid on every message it hands
over; under load a worker fetched about one job per call. Here a request covers as many free slots as there are,
and the messages are handed over as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = logging.getLogger(__name__)

# Statuses the server answers a pull request with (in the Status header of a message without payload).
_HEARTBEAT = "100"
# The request ended (expired, or refused) and gave back the messages it did not deliver.
_ENDED = frozenset({"404", "408", "409"})
_NO_RESPONDERS = "503"


class PullConsumer:
    """One durable pull consumer's messages, handed to `on_message` as they come.

    `outstanding` counts the messages asked for and neither received nor given back. The owner asks with
    `request(n)`; `on_credit` is called whenever messages it asked for will not come (a request expired, or the
    requests were presumed lost), so it can ask again.

    `pause()` stops the asking: requests are refused until `resume()`, and a message that a request sent before the
    pause still brings is handed back to the queue rather than to `on_message`.
    """

    def __init__(
        self,
        nc: Client,
        stream: str,
        durable: str,
        *,
        on_message: Callable[[Msg], None],
        on_credit: Callable[[], None],
        expires: float = 5.0,
        heartbeat: float = 1.0,
    ) -> None:
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.durable = durable
        self._inbox = nc.new_inbox()
        self._on_message = on_message
        # Where a message goes: on_message, or back to the queue while paused. Swapped, not tested per message.
        self._deliver = on_message
        self.paused = False
        self._handing_back: set[asyncio.Task[None]] = set()
        self._on_credit = on_credit
        self._expires = expires
        self._heartbeat = heartbeat
        self.outstanding = 0
        self._sub: Subscription | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._heard = 0.0

    async def start(self) -> None:
        self._heard = asyncio.get_running_loop().time()
        self._sub = await self._nc.subscribe(
            self._inbox, cb=self._on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        self._watchdog = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        """No more messages: the server skips the requests still out once nobody listens to their inbox."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self.outstanding = 0

    def request(self, count: int) -> asyncio.Task[None] | None:
        """Ask for up to `count` more messages. They count as outstanding at once, so that asking again before
        the request is sent does not ask twice; the task sending it fails if it cannot be sent."""
        if count <= 0 or self._sub is None or self.paused:
            return None
        self.outstanding += count
        return asyncio.create_task(self._send(count))

    def pause(self) -> None:
        self.paused = True
        self._deliver = self._hand_back

    def resume(self) -> None:
        """Ask again: `on_credit` is called for the owner to."""
        self.paused = False
        self._deliver = self._on_message
        self._on_credit()

    def _hand_back(self, msg: Msg) -> None:
        # Not before the requests out at the pause have expired, or they would be handed it again (and again).
        task = asyncio.create_task(msg.nak(delay=self._expires))
        self._handing_back.add(task)
        task.add_done_callback(self._handed_back)

    def _handed_back(self, task: asyncio.Task[None]) -> None:
        self._handing_back.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            # Not handed back (the connection is away): the message comes back after its AckWait instead.
            log.info("a message of %s delivered while paused was not handed back: %s", self.durable, exc)

    async def _send(self, count: int) -> None:
        body = {
            "batch": count,
            "expires": int(self._expires * 1e9),
            "idle_heartbeat": int(self._heartbeat * 1e9),
        }
        try:
            await self._nc.publish(self._subject, json.dumps(body).encode(), reply=self._inbox)
        except Exception:
            # Not sent (the connection is away): nothing will come for it; the watchdog asks again later.
            self.outstanding = max(0, self.outstanding - count)
            raise

    async def _on_msg(self, msg: Msg) -> None:
        self._heard = asyncio.get_running_loop().time()
        status = msg.headers.get("Status") if msg.headers and not msg.data else None
        if status is None:
            self.outstanding = max(0, self.outstanding - 1)
            self._deliver(msg)
            return
        if status == _HEARTBEAT:
            return
        if status in _ENDED:
            assert msg.headers is not None
            pending = msg.headers.get("Nats-Pending-Messages")
            if pending is not None:
                self.outstanding = max(0, self.outstanding - int(pending))
            else:
                # Refused without saying how many (e.g. too many requests waiting): start the count again.
                log.debug("pull request on %s ended: %s %s", self.durable, status, msg.headers.get("Description"))
                self.outstanding = 0
            self._on_credit()
            return
        if status == _NO_RESPONDERS:
            # The consumer is gone (NATS restarted without it, or not yet recreated): the watchdog asks again.
            self.outstanding = 0
            return
        log.warning("pull request on %s: unexpected status %s %s", self.durable, status, msg.headers)

    async def _watch(self) -> None:
        """Requests outstanding but nothing heard, not even a heartbeat, for a few heartbeats: they were lost
        (a reconnect, a restarted server), so their messages are asked for again."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._heartbeat)  # a periodic check, not synchronisation
            silent = loop.time() - self._heard
            if silent > 3 * self._heartbeat and (self.outstanding > 0 or silent > self._expires):
                self._heard = loop.time()
                self.outstanding = 0
                self._on_credit()
