"""AdminService's live streams: WatchWorkers and WatchQueueStats.

Each follows what its answer depends on (the workers' presence bucket, the paused-queues bucket, the tenant's job
events: watches, not polling), works its answer out again when any of it moves, and sends it only when it differs
from the last one sent, at most once per pace (a burst of changes is one message). A stream holds its own bucket
watches for as long as it lasts: dashboards are few, and its view then never lags behind its own wake-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

from nats.aio.client import Client

from gateway.queues import Queues, window_message, worker_message
from gateway.watch import EventStreams
from syllabus.bucketwatch import BucketWatch
from syllabus.presence import PRESENCE_TTL, LiveWorkers
from syllabus.queuecontrol import paused_bucket
from syllabus.topology import Topology
from syllabus.v1 import admin_service_pb2 as pb

M = TypeVar("M")
# Seconds between two messages of a stream, at least.
WORKERS_PACE = 0.25
QUEUE_STATS_PACE = 1.0


async def paced(
    changed: asyncio.Event,
    pace: float,
    compute: Callable[[], Awaitable[M]],
    key: Callable[[M], object],
    expiry: Callable[[], float | None] = lambda: None,
) -> AsyncGenerator[M, None]:
    """`compute`'s answer at once, then each time `changed` is set (or the monotonic time `expiry` gives passes)
    and the answer's `key` differs from the last one yielded; at most one answer per `pace` seconds."""
    last: object = None
    while True:
        changed.clear()
        computed_at = time.monotonic()
        answer = await compute()
        current = key(answer)
        if last is None or current != last:
            last = current
            yield answer
        await _changed_or_expired(changed, expiry())
        await asyncio.sleep(max(0.0, computed_at + pace - time.monotonic()))


async def _changed_or_expired(changed: asyncio.Event, at: float | None) -> None:
    timeout = None if at is None else max(0.0, at - time.monotonic())
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await changed.wait()


def _without_heartbeat(worker: pb.Worker) -> pb.Worker:
    # A heartbeat that changes nothing else is no change to show.
    copy = pb.Worker()
    copy.CopyFrom(worker)
    copy.ClearField("heartbeat_time")
    return copy


async def watch_workers(nc: Client, topology: Topology, queue: str) -> AsyncIterator[list[pb.Worker]]:
    changed = asyncio.Event()
    live = LiveWorkers(nc, topology, on_change=lambda key, value: changed.set())
    await live.start()
    try:

        async def current() -> list[pb.Worker]:
            return [worker_message(entry) for entry in await live.workers(queue)]

        # A worker killed outright leaves no trace in the bucket: it is gone when its entry's time is up.
        async for workers in paced(
            changed, WORKERS_PACE, current, lambda ws: [_without_heartbeat(w) for w in ws], live.expiry
        ):
            yield workers
    finally:
        await live.stop()


def _stats_key(response: pb.WatchQueueStatsResponse) -> bytes:
    # The oldest waiting job's age grows by itself; whether one waits, and every count, is what changes.
    copy = pb.WatchQueueStatsResponse()
    copy.CopyFrom(response)
    for queue in copy.queues:
        if queue.HasField("oldest_waiting_age"):
            queue.oldest_waiting_age.Clear()
    return copy.SerializeToString(deterministic=True)


async def watch_queue_stats(
    queues: Queues,
    streams: EventStreams,
    nc: Client,
    topology: Topology,
    tenant: str,
    queue: str,
    window: float,
) -> AsyncIterator[pb.WatchQueueStatsResponse]:
    """Raises InvalidRequest, before anything is sent, for a queue that does not exist."""
    changed = asyncio.Event()
    # Key -> when last seen written: a worker joining (or back after it counted as gone) or leaving moves a count;
    # its heartbeats do not.
    alive: dict[str, float] = {}

    def worker_moved(key: str, value: bytes | None) -> None:
        now = time.monotonic()
        before = alive.pop(key, None)
        if value is not None:
            alive[key] = now
        if value is None or before is None or before <= now - PRESENCE_TTL:
            changed.set()

    live = LiveWorkers(nc, topology, on_change=worker_moved)
    pauses = BucketWatch(lambda key, value: changed.set(), lambda key: changed.set())

    # The first answer waits for the events' subscription, so that a client that has it misses no change after.
    subscribed = asyncio.Event()

    async def on_subscribed() -> None:
        subscribed.set()

    async def follow_events() -> None:
        async for _ in streams.tenant_events(tenant, "", on_subscribed):
            changed.set()

    await live.start()
    following: asyncio.Task[None] | None = None
    try:
        await pauses.start(await paused_bucket(nc, topology))
        following = asyncio.create_task(follow_events())
        # Its failure (NATS gone, the watch fallen behind) ends the stream at the next wake-up.
        following.add_done_callback(lambda _: changed.set())
        following.add_done_callback(lambda _: subscribed.set())
        await subscribed.wait()

        async def current() -> pb.WatchQueueStatsResponse:
            if following is not None and following.done():
                following.result()
            found = await queues.stats(queue, window, workers=live)
            return pb.WatchQueueStatsResponse(queues=found, window=window_message(window))

        async for response in paced(changed, QUEUE_STATS_PACE, current, _stats_key, live.expiry):
            yield response
    finally:
        if following is not None:
            following.cancel()
            await asyncio.wait({following})
        await pauses.stop()
        await live.stop()
