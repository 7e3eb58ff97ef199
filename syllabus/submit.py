"""Accepting jobs: build the record, store it (idempotency), then put it on JOBS (or its schedule).

Used by the gateway, by handlers that fan out child jobs, by dead-letter retries and by the scheduler relay.
The record is stored before the message is published, so a duplicate idempotency key never reaches a worker;
a publish that fails removes the records again and raises, so the caller may safely try again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError, NoStreamResponseError

from syllabus import lifecycle
from syllabus.errors import BrokerUnavailable, QueueFull
from syllabus.events import EventPublisher, event_for, event_msg_id
from syllabus.ids import new_id
from syllabus.jetstream import DUPLICATE_WINDOW
from syllabus.publisher import AckedPublisher, NoStreamError
from syllabus.store.base import Inserted, Store
from syllabus.topology import Topology
from syllabus.tracing import context as tracing
from syllabus.v1 import job_pb2

# JetStream error codes that mean "the stream is at its limits".
_STREAM_FULL_CODES = frozenset({10077, 10047, 10027, 10028})


def build_job(
    spec: job_pb2.JobSpec,
    options: job_pb2.JobOptions,
    *,
    tenant: str,
    default_max_attempts: int,
    parent_id: str = "",
) -> job_pb2.Job:
    created = lifecycle.now()
    delayed = options.HasField("run_at") and options.run_at.ToNanoseconds() > created.ToNanoseconds()
    job = job_pb2.Job(
        id=new_id(),
        spec=spec,
        options=options,
        state=job_pb2.JOB_STATE_SCHEDULED if delayed else job_pb2.JOB_STATE_QUEUED,
        kind=spec.WhichOneof("kind") or "",
        max_attempts=options.max_attempts or default_max_attempts,
        tenant=tenant,
        parent_id=parent_id,
    )
    job.create_time.CopyFrom(created)
    job.update_time.CopyFrom(created)
    tracing.stamp(job)
    return job


class Submitter:
    def __init__(
        self, store: Store, topology: Topology, events: EventPublisher, jobs: AckedPublisher, timeout: float = 5.0
    ) -> None:
        self._jobs = jobs
        self._store = store
        self._topology = topology
        self._events = events
        self._timeout = timeout

    async def submit(self, jobs: Sequence[job_pb2.Job], timeout: float | None = None) -> list[Inserted]:
        """Store and enqueue; returns once JetStream acknowledged every new job. Existing keys come back as is."""
        # One deadline for every publish of the call, however many rounds it takes.
        limit = asyncio.get_running_loop().time() + (timeout or self._timeout)
        if any(job.options.idempotency_key for job in jobs):
            # A key may name an earlier job: only what the store took is announced.
            inserted = await self._store.insert_jobs(jobs)
            announced = None
        else:
            # Without keys every job is new (fresh ids), so their arrival is announced while they are stored: one
            # round trip less before the caller has its answer. Should storing fail, the announcements stay in the
            # history of jobs that do not exist, as when a publish fails after them.
            announced = asyncio.ensure_future(self._announce(jobs, limit))
            try:
                inserted = await self._store.insert_jobs(jobs)
            except BaseException:
                announced.cancel()
                raise
        new = [item.job for item in inserted if item.created]
        if new:
            try:
                await (announced if announced is not None else self._announce(new, limit))
                await self._enqueue([(job, job.id) for job in new], limit)
            except BaseException:
                await self._store.delete_jobs([job.id for job in new])
                raise
        # A caller retrying after a gateway died between storing and publishing gets its job back: publish it
        # again under the same message ids, which JetStream drops if the first publish did land.
        unsure = [item.job for item in inserted if not item.created and _maybe_unpublished(item.job)]
        if unsure:
            await self._publish([(job, job.id) for job in unsure], limit)
        return inserted

    async def enqueue(self, job: job_pb2.Job, msg_id: str) -> None:
        """Put an already stored job on its queue again (dead-letter retry, scheduler relay)."""
        await self._publish([(job, msg_id)], asyncio.get_running_loop().time() + self._timeout)

    async def _publish(self, jobs: Sequence[tuple[job_pb2.Job, str]], deadline: float) -> None:
        # The arrival events are stored first, so no worker's STARTED can come before a job's QUEUED.
        await self._announce([job for job, _ in jobs], deadline)
        await self._enqueue(jobs, deadline)

    async def _announce(self, jobs: Sequence[job_pb2.Job], deadline: float) -> None:
        """Each job's arrival event (QUEUED, or SCHEDULED), stored by `deadline` (the loop's clock)."""
        try:
            async with asyncio.timeout_at(deadline):
                events = [event_for(job, _arrival_event(job)) for job in jobs]
                stored = [await self._events.publish_async(event, event_msg_id(event)) for event in events]
                await asyncio.gather(*stored)
        except BaseException as exc:
            raise _translate(exc) from exc

    async def _enqueue(self, jobs: Sequence[tuple[job_pb2.Job, str]], deadline: float) -> None:
        """Each job on its queue (or its schedule), stored by `deadline` (the loop's clock)."""
        try:
            async with asyncio.timeout_at(deadline):
                acks = [await self._publish_job(job, msg_id) for job, msg_id in jobs]
                await asyncio.gather(*acks)
        except BaseException as exc:
            raise _translate(exc) from exc

    async def _publish_job(self, job: job_pb2.Job, msg_id: str) -> asyncio.Future[int]:
        subject = self._topology.job_subject(job)
        payload = job.SerializeToString()
        headers = {"Nats-Msg-Id": msg_id}
        if job.trace_parent:
            headers[tracing.TRACEPARENT] = job.trace_parent
        if job.state == job_pb2.JOB_STATE_SCHEDULED:
            # RFC 3339 with the fraction kept (the server fires to the nanosecond): truncated to whole seconds,
            # a job would run up to a second before its run_at.
            run_at = job.options.run_at.ToJsonString()
            headers |= {
                "Nats-Schedule": f"@at {run_at}",
                "Nats-Schedule-Target": self._topology.due_subject(job.id),
            }
            subject = self._topology.schedule_subject(job.id)
        return await self._jobs.publish(subject, payload, headers)


def _maybe_unpublished(job: job_pb2.Job) -> bool:
    """Not started yet and young enough that JetStream's duplicate window still covers its first publish."""
    waiting = job.state in (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_SCHEDULED) and job.attempt == 0
    age = lifecycle.now().ToNanoseconds() - job.create_time.ToNanoseconds()
    return waiting and age < DUPLICATE_WINDOW * 1e9 * 0.9


def _arrival_event(job: job_pb2.Job) -> job_pb2.JobEventType:
    if job.state == job_pb2.JOB_STATE_SCHEDULED:
        return job_pb2.JOB_EVENT_TYPE_SCHEDULED
    return job_pb2.JOB_EVENT_TYPE_QUEUED


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, APIError) and exc.err_code in _STREAM_FULL_CODES:
        return QueueFull()
    if isinstance(exc, TimeoutError | NatsTimeout | NoRespondersError | NoStreamResponseError | NoStreamError):
        return BrokerUnavailable("the message broker did not acknowledge the job in time")
    if isinstance(exc, APIError):
        return BrokerUnavailable(f"the message broker refused the job: {exc.description}")
    return exc
