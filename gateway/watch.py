"""Event streams for WatchJob and WatchJobs.

One ordered consumer per gateway follows every new event of the namespace and hands each to the watches
that want it, so a thousand watchers cost the server one consumer, not a thousand. A watch first registers
for live events, then reads the job's stored history (direct gets), then continues with the live ones it has
not already sent: an event is either in the history read or arrives live after registering, so nothing falls
between "read the history" and "follow".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import DeliverPolicy
from nats.js.client import JetStreamContext

from syllabus import lifecycle
from syllabus.errors import WatchFellBehind
from syllabus.events import decode_event, event_for
from syllabus.replies import ReplyRoutes
from syllabus.topology import Topology
from syllabus.v1 import job_pb2

A = TypeVar("A")
B = TypeVar("B")

_END_EVENT = {
    job_pb2.JOB_STATE_SUCCEEDED: job_pb2.JOB_EVENT_TYPE_SUCCEEDED,
    job_pb2.JOB_STATE_FAILED: job_pb2.JOB_EVENT_TYPE_FAILED,
    job_pb2.JOB_STATE_CANCELED: job_pb2.JOB_EVENT_TYPE_CANCELED,
}
# What alone may follow a job's end: its retry arriving. Any other event stored after the end is a late one
# from before it: an in-between event published without waiting (a STARTED buffered through a NATS outage) can
# be stored after the end that another connection announced, and must not hold the watch open.
_ARRIVAL_EVENTS = frozenset({job_pb2.JOB_EVENT_TYPE_QUEUED, job_pb2.JOB_EVENT_TYPE_SCHEDULED})
# Events a watch may fall behind by before it is cut off (its client reads slower than the jobs move).
LISTENER_LIMIT = 10_000


class Listener:
    """One watch's queue of live events. One that overflows is cut off rather than grow without bound, as NATS
    does with slow consumers; its client resumes after the last sequence it got.

    A deque and a future, made when first needed, rather than an asyncio.Queue (four deques and an Event): a
    gateway holds one per watch, and ten thousand watches mostly wait."""

    __slots__ = ("_events", "_waiter", "overflowed")

    def __init__(self) -> None:
        self._events: deque[job_pb2.JobEvent] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False

    def put(self, event: job_pb2.JobEvent) -> None:
        if self.overflowed:
            return
        if self._events is None:
            self._events = deque()
        if len(self._events) >= LISTENER_LIMIT:
            self.overflowed = True
            return
        self._events.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self, after: int = 0) -> job_pb2.JobEvent:
        """The next event with a sequence greater than `after`: one sent already (read from the history, or
        delivered again by a consumer that was recreated) is skipped."""
        while True:
            while not self._events:
                if self.overflowed:
                    raise WatchFellBehind(LISTENER_LIMIT)
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
            event = self._events.popleft()
            if event.sequence > after:
                return event


# How long the shared consumer outlives its last watcher: watches often come one after another, but while it
# lives the gateway receives every event of the namespace.
IDLE_LINGER = 5.0
# Seconds between the server's heartbeats on the shared consumer while no event flows.
HEARTBEAT = 1.0
# Stored events read per round trip when a watch replays a job's history.
HISTORY_BATCH = 256


class EventStreams:
    def __init__(self, nc: Client, topology: Topology, timeout: float = 5.0) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._timeout = timeout
        self._direct_get = f"$JS.API.DIRECT.GET.{topology.events_stream}"
        self._topology = topology
        # Lists, not sets: nearly every job has one watch, and a gateway may hold ten thousand.
        self._by_job: dict[str, list[Listener]] = {}
        self._by_tenant: dict[str, list[Listener]] = {}
        self._following: asyncio.Task[None] | None = None
        self._subscription: JetStreamContext.PushSubscription | None = None
        self._idle: asyncio.TimerHandle | None = None
        # Every history read's replies, each on its own reply subject to its own queue.
        self._replies: ReplyRoutes[asyncio.Queue[Msg]] = ReplyRoutes(nc, _enqueue)

    async def _ensure_following(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._following is None:
            self._following = asyncio.create_task(self._follow())
        following = self._following
        try:
            await asyncio.shield(following)
        except Exception:
            # Not kept: the next watch subscribes again (NATS may have been away for this one).
            if self._following is following:
                self._following = None
            raise

    def _maybe_idle(self) -> None:
        if not self._by_job and not self._by_tenant and self._idle is None:
            self._idle = asyncio.get_running_loop().call_later(IDLE_LINGER, self._stop_following)

    def _stop_following(self) -> None:
        self._idle = None
        self._following = None
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            asyncio.create_task(_quietly_unsubscribe(subscription))  # noqa: RUF006 - nothing waits on it

    async def close(self) -> None:
        """End the shared consumer, before its connection closes: nats-py leaves a JetStream subscription's
        heartbeat task running when the connection closes, and up to two heartbeats later that task fails to
        recreate the consumer and reports it through the connection's error callback."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        following, self._following = self._following, None
        if following is not None:
            following.cancel()  # a subscription under way; nothing once it is done
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await _quietly_unsubscribe(subscription)
        await self._replies.close()

    async def _follow(self) -> None:
        self._subscription = await self._js.subscribe(
            self._topology.events_subjects,
            stream=self._topology.events_stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
            # nats-py recreates an ordered consumer after two silent heartbeat intervals; a short interval
            # brings the watches back within seconds of a NATS restart (the ephemeral consumer died with it).
            idle_heartbeat=HEARTBEAT,
            cb=self._on_event,
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )

    async def _on_event(self, msg: Msg) -> None:
        # The subject (…events.<tenant>.<job_id>) says who wants it before anything is decoded.
        *_, tenant, job_id = msg.subject.rsplit(".", 2)
        listeners = [*self._by_job.get(job_id, ()), *self._by_tenant.get(tenant, ())]
        if listeners:
            event = decode_event(msg)
            for listener in listeners:
                listener.put(event)

    @staticmethod
    def _listen(registry: dict[str, list[Listener]], key: str) -> Listener:
        listener = Listener()
        registry.setdefault(key, []).append(listener)
        return listener

    def _unlisten(self, registry: dict[str, list[Listener]], key: str, listener: Listener) -> None:
        listeners = registry[key]
        listeners.remove(listener)
        if not listeners:
            del registry[key]
        self._maybe_idle()

    async def job_events(
        self, job_id: str, job: Awaitable[job_pb2.Job], after_sequence: int
    ) -> AsyncGenerator[job_pb2.JobEvent, None]:
        """The events after `after_sequence` of the job `job` gives (the caller's lookup, which raises for a job
        the caller may not see), ending with the terminal event that nothing follows. The lookup and the
        history read go together; nothing is yielded before the lookup answered."""
        lookup = asyncio.ensure_future(job)
        try:
            await self._ensure_following()
        except BaseException:
            lookup.cancel()
            raise
        live = self._listen(self._by_job, job_id)
        try:
            found, history = await _both(lookup, self._history(job_id, after_sequence))
            del lookup, job  # a watch may last hours: it keeps no more than it needs
            if not history and lifecycle.is_terminal(found.state) and after_sequence == 0:
                # The events aged out of the stream; the record still says how it ended.
                yield event_for(found, _END_EVENT[found.state])
                return
            last = after_sequence
            ended = False
            for event in history:
                if ended and event.type not in _ARRIVAL_EVENTS:
                    continue
                yield event
                last = event.sequence
                ended = event.terminal
            # A terminal event ends the watch unless a retry of the job (a dead letter's) followed it.
            if ended:
                return
            del found, history
            while True:
                event = await live.get(after=last)
                yield event
                last = event.sequence
                if event.terminal:
                    return
        finally:
            self._unlisten(self._by_job, job_id, live)

    @contextlib.asynccontextmanager
    async def listening(self, job_id: str) -> AsyncIterator[Listener]:
        """A listener for a job that is not published yet: the shared consumer follows and the listener is
        registered before the caller publishes the job, so every event of the job arrives on it and none has to
        be read back from the stream's history."""
        await self._ensure_following()
        live = self._listen(self._by_job, job_id)
        try:
            yield live
        finally:
            self._unlisten(self._by_job, job_id, live)

    async def _history(self, job_id: str, after_sequence: int) -> list[job_pb2.JobEvent]:
        """The job's stored events after `after_sequence`, read in one round trip per HISTORY_BATCH events
        (a batched direct get: the messages, then an end-of-batch status)."""
        events: list[job_pb2.JobEvent] = []
        replies: asyncio.Queue[Msg] = asyncio.Queue()
        inbox = await self._replies.add(replies)
        try:
            while True:
                request = {
                    "seq": (events[-1].sequence if events else after_sequence) + 1,
                    "next_by_subj": self._topology.job_events_filter(job_id),
                    "batch": HISTORY_BATCH,
                }
                await self._nc.publish(self._direct_get, json.dumps(request).encode(), reply=inbox)
                while True:
                    try:
                        msg = await asyncio.wait_for(replies.get(), self._timeout)
                    except TimeoutError:
                        raise NatsTimeoutError from None
                    headers = msg.headers or {}
                    status = headers.get("Status")
                    if status is None:
                        event = job_pb2.JobEvent()
                        event.ParseFromString(msg.data)
                        event.sequence = int(headers["Nats-Sequence"])
                        events.append(event)
                        continue
                    if status == "404":  # nothing (more) stored for the job
                        return events
                    if status != "204":
                        raise RuntimeError(f"reading the events of job {job_id} failed: {status} {msg.data!r}")
                    # End of batch: another round only if the server says more are pending.
                    if headers.get("Nats-Num-Pending", "0") == "0":
                        return events
                    break
        finally:
            self._replies.remove(inbox)

    async def tenant_events(
        self, tenant: str, kind: str, subscribed: Callable[[], Awaitable[None]]
    ) -> AsyncGenerator[job_pb2.JobEvent, None]:
        """Live events of every job of the tenant, from the moment `subscribed` is called on."""
        await self._ensure_following()
        live = self._listen(self._by_tenant, tenant)
        try:
            await subscribed()
            while True:
                event = await live.get()
                if not kind or event.kind == kind:
                    yield event
        finally:
            self._unlisten(self._by_tenant, tenant, live)


def _enqueue(replies: asyncio.Queue[Msg], msg: Msg) -> None:
    replies.put_nowait(msg)


async def _both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both results; if either fails, the other is cancelled and the failure raised."""
    one, two = asyncio.ensure_future(first), asyncio.ensure_future(second)
    try:
        return await one, await two
    finally:
        one.cancel()
        two.cancel()


async def _quietly_unsubscribe(sub: JetStreamContext.PushSubscription) -> None:
    # The connection may be closing (the gateway stopping): then the consumer goes with it anyway.
    with contextlib.suppress(Exception):
        await sub.unsubscribe()
