"""The scheduler relay, message by message: what it does with each due message, on the session's real NATS.

Due messages are published straight onto their due subject, as a schedule firing publishes them, so each test
decides what the relay meets. One relay handles its messages in order, so once a later job is QUEUED every
message before it has been dealt with; once the relay has stopped, its acks are confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from scheduler.relay import CONSUMER, DueRelay
from syllabus import lifecycle
from syllabus.errors import QueueFull
from syllabus.jetstream import StreamLimits, connect, ensure_topology
from syllabus.runtime import Runtime
from syllabus.store.base import Updated
from syllabus.store.embedded import EmbeddedStore
from syllabus.v1 import job_pb2, job_service_pb2
from tests.pipeline.conftest import Pipeline, StartWorker
from tests.pipeline.logwatch import LogWatch, watching_logs
from tests.pipeline.test_jobs import types
from tests.pipeline.test_outages import in_seconds

E = job_pb2
# Short enough that a handed-back message comes back within the test, long enough not to spin.
RETRY = 0.2


class TroubledStore(EmbeddedStore):
    """The real embedded store on the pipeline's file, with a fault injected for chosen jobs."""

    broken: set[str]
    canceled_under_the_relay: set[str]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.broken = set()
        self.canceled_under_the_relay = set()

    async def get_job(self, job_id: str) -> job_pb2.Job | None:
        if job_id in self.broken:
            self.broken.discard(job_id)
            raise RuntimeError("a bug in the store (injected)")
        job = await super().get_job(job_id)
        if job_id in self.canceled_under_the_relay:
            # Canceled between the relay's read and its write: what it read is out of date.
            await super().update_job(job_id, canceled)
        return job


def canceled(job: job_pb2.Job) -> job_pb2.Job:
    new = job_pb2.Job()
    new.CopyFrom(job)
    new.state = E.JOB_STATE_CANCELED
    return new


@dataclass
class Relay:
    pipeline: Pipeline
    store: TroubledStore
    logs: LogWatch

    async def delayed(self) -> job_pb2.Job:
        """A job due in an hour: its record waits, SCHEDULED, and its schedule does not fire during the test."""
        return await self.pipeline.submit("ok", run_at=in_seconds(3600))

    async def fire(self, job: job_pb2.Job, payload: bytes | None = None) -> None:
        """What the job's schedule publishes when it falls due."""
        subject = self.pipeline.topology.due_subject(job.id)
        await self.pipeline.nc.jetstream().publish(subject, job.SerializeToString() if payload is None else payload)

    async def queued(self, job_id: str) -> None:
        """Returns once the job has been QUEUED."""
        call = self.pipeline.jobs.WatchJob(job_service_pb2.WatchJobRequest(job_id=job_id), timeout=30)
        async for response in call:
            if response.event.type == E.JOB_EVENT_TYPE_QUEUED:
                call.cancel()
                return
        raise AssertionError(f"job {job_id} ended without being queued")

    async def last(self) -> job_pb2.Job:
        """Fires one more job and returns once it is queued: every message fired before it has been handled."""
        marker = await self.delayed()
        await self.fire(marker)
        await self.queued(marker.id)
        return marker

    async def queue_holds(self, job_id: str) -> int:
        """How many messages of the job the jobs stream holds."""
        js = self.pipeline.nc.jetstream()
        stream = self.pipeline.topology.jobs_stream
        info = await js.stream_info(stream)
        held = 0
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            with contextlib.suppress(NotFoundError):  # acked, or never stored under that number
                held += job_pb2.Job.FromString((await js.get_msg(stream, seq)).data or b"").id == job_id
        return held

    async def due_waiting(self) -> int:
        """Due messages in SCHEDULED not acked or termed yet (a work queue keeps only those)."""
        topology = self.pipeline.topology
        info = await self.pipeline.nc.jetstream().stream_info(
            topology.scheduled_stream, subjects_filter=topology.due_subjects
        )
        return sum((info.state.subjects or {}).values())


@pytest.fixture
def logs() -> Iterator[LogWatch]:
    with watching_logs() as watch:
        yield watch


@pytest_asyncio.fixture
async def rig(pipeline: Pipeline, logs: LogWatch) -> AsyncIterator[Relay]:
    store = TroubledStore(pipeline.home / "store.db")
    await store.open()
    try:
        yield Relay(pipeline, store, logs)
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def relaying(rig: Relay) -> AsyncIterator[asyncio.Task[None]]:
    """The relay runs for the block; on leaving it, it has stopped and its acks are confirmed."""
    stop = asyncio.Event()
    relay = DueRelay(Runtime.build(rig.pipeline.nc, rig.store, rig.pipeline.topology), retry_delay=RETRY)
    task = asyncio.create_task(relay.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await task


def errors(logs: LogWatch) -> list[str]:
    return logs.at_least(logging.ERROR)


async def test_a_due_job_is_queued_once_and_its_message_acked(rig: Relay) -> None:
    job = await rig.delayed()
    async with relaying(rig):
        await rig.fire(job)
        await rig.queued(job.id)
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.state == E.JOB_STATE_QUEUED and stored.attempt == 0
    assert await rig.queue_holds(job.id) == 1
    assert await rig.due_waiting() == 0
    assert errors(rig.logs) == []


def running(job: job_pb2.Job) -> job_pb2.Job:
    new = job_pb2.Job()
    new.CopyFrom(job)
    new.state, new.attempt = E.JOB_STATE_RUNNING, 1
    return new


def requeued(job: job_pb2.Job) -> job_pb2.Job:
    """Queued again after a try of its own (a retry): its schedule is done with."""
    new = job_pb2.Job()
    new.CopyFrom(job)
    new.state, new.attempt = E.JOB_STATE_QUEUED, 1
    return new


def handed_back(job: job_pb2.Job) -> job_pb2.Job:
    """Claimed, then handed back by its attempt (a deferral): QUEUED with attempt 0 again, as a relay that died
    before acking leaves it, but its schedule is done with: only its lease tells."""
    claimed = lifecycle.Claim().change()(job)
    assert claimed is not None
    back = lifecycle.requeue(lifecycle.Lease.of(claimed))(claimed)
    assert back is not None and (back.state, back.attempt) == (E.JOB_STATE_QUEUED, 0)
    return back


@pytest.mark.parametrize("change", [canceled, running, requeued, handed_back], ids=lambda change: change.__name__)
async def test_a_due_message_of_a_job_past_its_schedule_is_acked_and_relays_nothing(rig: Relay, change: object) -> None:
    job = await rig.delayed()
    assert callable(change)
    updated: Updated = await rig.store.update_job(job.id, change)
    assert updated.applied and updated.job is not None
    async with relaying(rig):
        await rig.fire(job)
        await rig.last()
    assert await rig.store.get_job(job.id) == updated.job
    assert await rig.queue_holds(job.id) == 0
    assert await rig.due_waiting() == 0
    assert errors(rig.logs) == []


async def test_a_due_message_of_a_job_without_a_record_is_acked(rig: Relay) -> None:
    job = await rig.delayed()
    await rig.store.delete_jobs([job.id])
    async with relaying(rig):
        await rig.fire(job)
        await rig.last()
    assert await rig.queue_holds(job.id) == 0
    assert await rig.due_waiting() == 0


async def test_a_job_canceled_between_the_relays_read_and_write_is_not_queued(rig: Relay) -> None:
    job = await rig.delayed()
    rig.store.canceled_under_the_relay.add(job.id)
    async with relaying(rig):
        await rig.fire(job)
        await rig.last()
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.state == E.JOB_STATE_CANCELED
    assert await rig.queue_holds(job.id) == 0
    assert await rig.due_waiting() == 0


async def test_a_due_job_queued_by_a_relay_that_died_before_publishing_is_published_once(rig: Relay) -> None:
    """The record says QUEUED with no attempt yet: the message that queued it is delivered again (twice here)."""
    job = await rig.delayed()
    queued = await rig.store.update_job(job.id, _queued_record)
    assert queued.applied and queued.job is not None
    async with relaying(rig):
        await rig.fire(job)
        await rig.fire(job)
        await rig.last()
    assert await rig.store.get_job(job.id) == queued.job
    # Both deliveries publish under the same id (the record's last change), so JOBS keeps one.
    assert await rig.queue_holds(job.id) == 1
    assert await rig.due_waiting() == 0


def _queued_record(job: job_pb2.Job) -> job_pb2.Job:
    new = job_pb2.Job()
    new.CopyFrom(job)
    new.state = E.JOB_STATE_QUEUED
    return new


async def test_an_undecodable_due_message_is_dropped_and_the_relay_goes_on(rig: Relay) -> None:
    job = await rig.delayed()
    async with relaying(rig) as relay:
        await rig.fire(job, payload=b"\xff not a job")
        await rig.last()
        assert not relay.done()
    assert await rig.due_waiting() == 0
    assert errors(rig.logs) == [
        f"ERROR scheduler.relay: dropping undecodable message on {rig.pipeline.topology.due_subject(job.id)}"
    ]
    stored = await rig.store.get_job(job.id)
    assert stored is not None and stored.state == E.JOB_STATE_SCHEDULED


async def test_a_bug_met_relaying_a_job_is_logged_and_the_job_relayed_when_offered_again(rig: Relay) -> None:
    job = await rig.delayed()
    rig.store.broken.add(job.id)
    async with relaying(rig) as relay:
        await rig.fire(job)
        failure = f"delayed job {job.id}: relaying it failed; it is offered again"
        await rig.logs.wait_for(failure)
        await rig.queued(job.id)
        assert not relay.done()
    assert await rig.queue_holds(job.id) == 1
    assert await rig.due_waiting() == 0
    (logged,) = [record for record in rig.logs.records if record.levelno >= logging.ERROR]
    assert logged.getMessage() == failure
    assert logged.exc_info is not None and "a bug in the store (injected)" in str(logged.exc_info[1])


async def test_a_due_job_meeting_a_full_queue_waits_and_is_relayed_once_there_is_room(
    rig: Relay, start_worker: StartWorker
) -> None:
    await ensure_topology(rig.pipeline.nc, rig.pipeline.topology, StreamLimits(max_jobs=1))
    job = await rig.delayed()
    filler = await rig.pipeline.submit("ok")
    async with relaying(rig):
        await rig.fire(job)
        refusal = f"delayed job {job.id} not relayed yet: {QueueFull()}"
        await rig.logs.wait_for(refusal)
        assert refusal in [record.getMessage() for record in rig.logs.records]
        # Queued in its record, not yet on the queue: the next delivery publishes it.
        stored = await rig.store.get_job(job.id)
        assert stored is not None and stored.state == E.JOB_STATE_QUEUED and stored.attempt == 0
        await start_worker()
        assert types(await rig.pipeline.events(filler.id))[-1] == "SUCCEEDED"
        history = await rig.pipeline.events(job.id)
    assert types(history) == ["SCHEDULED", "QUEUED", "STARTED", "SUCCEEDED"]
    assert await rig.due_waiting() == 0
    assert errors(rig.logs) == []


async def test_the_relay_consumes_through_its_named_durable_consumer(rig: Relay) -> None:
    """Operators (and every scheduler sharing the work) find the consumer by this name."""
    async with relaying(rig):
        await rig.last()
        info = await rig.pipeline.nc.jetstream().consumer_info(rig.pipeline.topology.scheduled_stream, CONSUMER)
    assert CONSUMER == "scheduler-relay"
    assert info.config.durable_name == CONSUMER
    assert info.config.filter_subject == rig.pipeline.topology.due_subjects
    # A message handed back must come back however often: a due job is never given up.
    assert info.config.max_deliver == -1


async def test_a_relay_whose_connection_is_closed_waits_for_its_stop_without_failing(
    rig: Relay, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    nc = await connect(nats_url, "relay-under-test")
    # Counts the fetches that fail on the closed connection: the relay keeps trying them until its stop.
    failed_fetches = 0
    tried_again = asyncio.Event()
    fetch = JetStreamContext.PullSubscription.fetch

    async def counted_fetch(sub: JetStreamContext.PullSubscription, *args: Any, **kwargs: Any) -> list[Msg]:
        nonlocal failed_fetches
        try:
            return await fetch(sub, *args, **kwargs)
        except Exception:
            if nc.is_closed:
                failed_fetches += 1
                if failed_fetches == 2:
                    tried_again.set()
            raise

    monkeypatch.setattr(JetStreamContext.PullSubscription, "fetch", counted_fetch)
    stop = asyncio.Event()
    task = asyncio.create_task(DueRelay(Runtime.build(nc, rig.store, rig.pipeline.topology)).run(stop))
    await rig.logs.wait_for("scheduler relaying delayed jobs")
    await nc.close()
    await rig.logs.wait_for("NATS is unreachable")
    await asyncio.wait_for(tried_again.wait(), 30)
    assert not task.done()
    said = [(r.levelname, r.getMessage()) for r in rig.logs.records if r.name == "scheduler.relay"]
    topology = rig.pipeline.topology
    # The connection warns of its own loss: the relay's line is only information.
    assert said[:2] == [
        ("INFO", f"scheduler relaying delayed jobs from {topology.scheduled_stream} when they fall due"),
        ("INFO", "NATS is unreachable (nats: connection closed): delayed jobs wait for it"),
    ]
    stop.set()
    await task
    assert errors(rig.logs) == []


async def test_a_relay_that_cannot_subscribe_waits_for_nats_and_its_stop(rig: Relay, nats_url: str) -> None:
    nc = await connect(nats_url, "relay-under-test")
    await nc.close()
    stop = asyncio.Event()
    task = asyncio.create_task(DueRelay(Runtime.build(nc, rig.store, rig.pipeline.topology)).run(stop))
    await rig.logs.wait_for("NATS is unreachable")
    assert not task.done()
    stop.set()
    await task
    said = [(r.levelname, r.getMessage()) for r in rig.logs.records if r.name == "scheduler.relay"]
    assert said == [("INFO", "NATS is unreachable (nats: connection closed): delayed jobs wait for it")]
