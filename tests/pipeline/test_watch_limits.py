"""A watch whose client falls too far behind is ended with a clear error, not buffered without bound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NatsClient

from gateway import watch
from gateway.watch import EventStreams
from syllabus.errors import WatchFellBehind
from syllabus.jetstream import ensure_topology
from syllabus.topology import Topology
from syllabus.v1 import job_pb2


async def publish_event(nc: NatsClient, topology: Topology, tenant: str, job_id: str) -> None:
    event = job_pb2.JobEvent(job_id=job_id, tenant=tenant, type=job_pb2.JOB_EVENT_TYPE_QUEUED)
    await nc.jetstream().publish(topology.event_subject(tenant, job_id), event.SerializeToString())


async def next_event(events: AsyncIterator[job_pb2.JobEvent]) -> job_pb2.JobEvent:
    return await anext(events)


async def test_a_watch_that_falls_behind_is_ended_after_what_it_was_sent(
    nc: NatsClient, topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "LISTENER_LIMIT", 3)
    await ensure_topology(nc, topology)
    streams = EventStreams(nc, topology)
    try:
        registered, proceed = asyncio.Event(), asyncio.Event()

        async def subscribed_then_stall() -> None:
            registered.set()
            await proceed.wait()  # the client reads nothing until told to

        slow = streams.tenant_events("acme", "", subscribed_then_stall)
        first = asyncio.create_task(next_event(slow))
        await registered.wait()
        marked = asyncio.Event()

        async def marker_subscribed() -> None:
            marked.set()

        marker = streams.tenant_events("marker", "", marker_subscribed)
        marker_event = asyncio.create_task(next_event(marker))
        await marked.wait()
        for i in range(10):
            await publish_event(nc, topology, "acme", f"job{i}")
        await publish_event(nc, topology, "marker", "m")
        # One consumer delivers in order: once the marker is here, every acme event reached the slow watch.
        assert (await marker_event).job_id == "m"
        proceed.set()
        received = [(await first).job_id]
        with pytest.raises(WatchFellBehind):
            while True:
                received.append((await anext(slow)).job_id)
        assert received == ["job0", "job1", "job2"]
    finally:
        await streams.close()
