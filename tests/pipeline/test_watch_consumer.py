"""The gateway's one shared event consumer: a failed subscription is tried again by the next watch, and
closing it with the gateway leaves no task behind.

nats-py does not stop a JetStream subscription's heartbeat task when the connection closes: left running, it
wakes up to two heartbeats later, fails to recreate the consumer on the closed connection and reports that
through the connection's error callback, into whatever the process (or the test suite) runs next.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from nats.aio.client import Client as NatsClient
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from gateway.watch import EventStreams
from syllabus.jetstream import ensure_topology
from syllabus.topology import Topology
from syllabus.v1 import job_pb2


def heartbeat_tasks() -> set[asyncio.Task[object]]:
    return {
        task for task in asyncio.all_tasks() if getattr(task.get_coro(), "__qualname__", "").endswith(".activity_check")
    }


async def watching(streams: EventStreams) -> asyncio.Task[job_pb2.JobEvent]:
    """A tenant watch, registered (its shared consumer subscribed) by the time this returns."""
    subscribed = asyncio.Event()

    async def on_subscribed() -> None:
        subscribed.set()

    watch = streams.tenant_events("acme", "", on_subscribed)

    async def first() -> job_pb2.JobEvent:
        return await anext(watch)

    task = asyncio.create_task(first())
    waiting = asyncio.create_task(subscribed.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    return task


async def test_closing_the_streams_ends_the_shared_consumers_heartbeat(nc: NatsClient, topology: Topology) -> None:
    await ensure_topology(nc, topology)
    before = heartbeat_tasks()
    streams = EventStreams(nc, topology)
    first = await watching(streams)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    heartbeat = heartbeat_tasks() - before
    assert len(heartbeat) == 1  # the shared consumer's, lingering after its last watch for the next one
    await streams.close()
    await streams.close()  # a second close finds nothing left to end
    # Bounded only so that a heartbeat left running fails the test instead of hanging it.
    _, pending = await asyncio.wait(heartbeat, timeout=10)
    assert not pending


async def test_a_failed_subscription_is_not_kept_and_the_next_watch_subscribes_again(
    nc: NatsClient, topology: Topology
) -> None:
    streams = EventStreams(nc, topology)
    try:
        # No EVENTS stream yet: the shared consumer cannot subscribe, and this watch fails with it.
        failed = await watching(streams)
        with pytest.raises(NotFoundError):
            await failed
        await ensure_topology(nc, topology)
        second = await watching(streams)
        assert not second.done()  # subscribed and waiting for an event
        second.cancel()
    finally:
        await streams.close()


async def test_a_history_read_the_server_refuses_fails_naming_the_job_and_the_status(
    nc: NatsClient, topology: Topology
) -> None:
    # An events stream that does not answer direct gets: the server answers the read with a status.
    events = StreamConfig(name=topology.events_stream, subjects=[topology.events_subjects], allow_direct=False)
    await nc.jetstream().add_stream(events)
    streams = EventStreams(nc, topology)
    job = job_pb2.Job(id="j1", tenant="acme", state=job_pb2.JOB_STATE_QUEUED)
    try:
        with pytest.raises(RuntimeError, match=r"^reading the events of job j1 failed: 503 "):
            await anext(streams.job_events(job, 0))
    finally:
        await streams.close()


async def test_a_history_read_nobody_answers_fails_at_the_timeout(nc: NatsClient, topology: Topology) -> None:
    events = StreamConfig(name=topology.events_stream, subjects=[topology.events_subjects], allow_direct=False)
    await nc.jetstream().add_stream(events)
    # Something takes the direct gets and never answers (a server too busy to).
    silent = await nc.subscribe(f"$JS.API.DIRECT.GET.{topology.events_stream}")
    streams = EventStreams(nc, topology, timeout=0.2)
    job = job_pb2.Job(id="j1", tenant="acme", state=job_pb2.JOB_STATE_QUEUED)
    try:
        with pytest.raises(NatsTimeoutError):
            await anext(streams.job_events(job, 0))
    finally:
        await streams.close()
        await silent.unsubscribe()
