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

from gateway import watch
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
            await anext(streams.job_events(job.id, found(job), 0))
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
            await anext(streams.job_events(job.id, found(job), 0))
    finally:
        await streams.close()
        await silent.unsubscribe()


async def found(job: job_pb2.Job) -> job_pb2.Job:
    """The watched job, as the gateway's lookup gives it."""
    return job


async def publish_event(nc: NatsClient, topology: Topology, job_id: str) -> None:
    event = job_pb2.JobEvent(job_id=job_id, tenant="acme", type=job_pb2.JOB_EVENT_TYPE_QUEUED)
    await nc.jetstream().publish(topology.event_subject("acme", job_id), event.SerializeToString())


async def test_a_tenant_watch_streams_only_what_comes_after_it_began(nc: NatsClient, topology: Topology) -> None:
    await ensure_topology(nc, topology)
    await publish_event(nc, topology, "before")
    streams = EventStreams(nc, topology)
    try:
        first = await watching(streams)
        await publish_event(nc, topology, "after")
        assert (await asyncio.wait_for(first, 10)).job_id == "after"
    finally:
        await streams.close()


def spy_on_stop(streams: EventStreams, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set when the shared consumer is stopped for want of watchers; the linger is made 0 s."""
    monkeypatch.setattr(watch, "IDLE_LINGER", 0.0)
    stopped = asyncio.Event()
    stop = streams._stop_following

    def stop_and_tell() -> None:
        stop()
        stopped.set()

    monkeypatch.setattr(streams, "_stop_following", stop_and_tell)
    return stopped


async def test_the_shared_consumer_stops_once_the_last_watch_has_gone(
    nc: NatsClient, topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ensure_topology(nc, topology)
    streams = EventStreams(nc, topology)
    stopped = spy_on_stop(streams, monkeypatch)
    try:
        first = await watching(streams)
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        await asyncio.wait_for(stopped.wait(), 10)
        # The next watch subscribes again, and is served.
        again = await watching(streams)
        await publish_event(nc, topology, "later")
        assert (await asyncio.wait_for(again, 10)).job_id == "later"
    finally:
        await streams.close()


async def test_the_shared_consumer_stays_while_any_watch_remains(
    nc: NatsClient, topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ensure_topology(nc, topology)
    streams = EventStreams(nc, topology)
    stopped = spy_on_stop(streams, monkeypatch)
    subscribed = asyncio.Event()

    async def on_subscribed() -> None:
        subscribed.set()

    tenant_watch = streams.tenant_events("acme", "", on_subscribed)
    try:
        tenant_first = asyncio.ensure_future(anext(tenant_watch))
        await asyncio.wait_for(subscribed.wait(), 10)
        short = job_pb2.Job(id="short", tenant="acme", state=job_pb2.JOB_STATE_QUEUED)
        job_watch = streams.job_events(short.id, found(short), 0)
        job_first = asyncio.ensure_future(anext(job_watch))
        await publish_event(nc, topology, "short")
        assert (await asyncio.wait_for(job_first, 10)).job_id == "short"
        await job_watch.aclose()
        # The job watch has ended; the tenant watch is left, and so is the consumer.
        assert (await asyncio.wait_for(tenant_first, 10)).job_id == "short"
        tenant_next = asyncio.ensure_future(anext(tenant_watch))
        await publish_event(nc, topology, "still-served")
        assert (await asyncio.wait_for(tenant_next, 10)).job_id == "still-served"
        assert not stopped.is_set()
    finally:
        await tenant_watch.aclose()
        await streams.close()


async def test_a_watch_goes_on_when_the_server_loses_the_shared_consumer(nc: NatsClient, topology: Topology) -> None:
    """As after a NATS restart that outlasted the ephemeral consumer: missed heartbeats make nats-py create it
    again, from the last event it delivered."""
    await ensure_topology(nc, topology)
    streams = EventStreams(nc, topology)
    try:
        first = await watching(streams)
        js = nc.jetstream()
        [consumer] = await js.consumers_info(topology.events_stream)
        await js.delete_consumer(topology.events_stream, consumer.name)
        await publish_event(nc, topology, "after-the-loss")
        # Under the test runner's limit, so that a watch that never recovers fails here.
        assert (await asyncio.wait_for(first, 20)).job_id == "after-the-loss"
    finally:
        await streams.close()
