"""The gateway's one shared event consumer, closed with the gateway, leaves no task behind.

nats-py does not stop a JetStream subscription's heartbeat task when the connection closes: left running, it
wakes up to two heartbeats later, fails to recreate the consumer on the closed connection and reports that
through the connection's error callback, into whatever the process (or the test suite) runs next.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.client import Client as NatsClient

from gateway.watch import EventStreams
from syllabus.jetstream import ensure_topology
from syllabus.topology import Topology


def heartbeat_tasks() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task.get_coro().__qualname__.endswith(".activity_check")}


async def test_closing_the_streams_ends_the_shared_consumers_heartbeat(nc: NatsClient, topology: Topology) -> None:
    await ensure_topology(nc, topology)
    before = heartbeat_tasks()
    streams = EventStreams(nc, topology)
    subscribed = asyncio.Event()

    async def on_subscribed() -> None:
        subscribed.set()

    watch = streams.tenant_events("acme", "", on_subscribed)
    first = asyncio.create_task(anext(watch))
    await subscribed.wait()
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    heartbeat = heartbeat_tasks() - before
    assert len(heartbeat) == 1  # the shared consumer's, lingering after its last watch for the next one
    await streams.close()
    # Bounded only so that a heartbeat left running fails the test instead of hanging it.
    _, pending = await asyncio.wait(heartbeat, timeout=10)
    assert not pending


async def test_closing_the_streams_twice_or_unused_is_harmless(nc: NatsClient, topology: Topology) -> None:
    streams = EventStreams(nc, topology)
    await streams.close()
    await streams.close()
