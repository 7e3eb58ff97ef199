"""Job events on the EVENTS stream: building them from a job record, publishing, reading them back."""

from __future__ import annotations

import asyncio

from google.protobuf.duration_pb2 import Duration
from nats.aio.client import Client
from nats.aio.msg import Msg

from syllabus import lifecycle
from syllabus.deliveries import stream_sequence
from syllabus.errors import BrokerUnavailable
from syllabus.publisher import AckedPublisher
from syllabus.topology import Topology
from syllabus.v1 import job_pb2

TERMINAL_EVENTS = frozenset(
    {job_pb2.JOB_EVENT_TYPE_SUCCEEDED, job_pb2.JOB_EVENT_TYPE_FAILED, job_pb2.JOB_EVENT_TYPE_CANCELED}
)


def event_for(
    job: job_pb2.Job,
    type_: job_pb2.JobEventType,
    *,
    error: job_pb2.JobError | None = None,
    retry_delay: float | None = None,
) -> job_pb2.JobEvent:
    """The event announcing `job`'s new state (the record as stored after the transition)."""
    event = job_pb2.JobEvent(
        job_id=job.id,
        type=type_,
        state=job.state,
        attempt=job.attempt,
        time=job.update_time if job.HasField("update_time") else lifecycle.now(),
        kind=job.kind,
        tenant=job.tenant,
        parent_id=job.parent_id,
        terminal=type_ in TERMINAL_EVENTS,
        labels=job.options.labels,
    )
    if type_ == job_pb2.JOB_EVENT_TYPE_PROGRESS:
        event.progress.CopyFrom(job.progress)
    if type_ == job_pb2.JOB_EVENT_TYPE_SUCCEEDED:
        event.result.CopyFrom(job.result)
    if error is not None:
        event.error.CopyFrom(error)
    if retry_delay is not None:
        event.retry_delay.CopyFrom(Duration(seconds=int(retry_delay), nanos=int((retry_delay % 1) * 1e9)))
    return event


class EventPublisher:
    """Publishes job events to the EVENTS stream.

    `publish` waits for the stream's ack and de-duplicates on a message id: for events that must be stored
    before the caller goes on (a terminal event before its job is acked). `send` does not wait: for the
    events in between (started, progress), where one lost with a broker outage costs a watcher a step of
    detail but never the end; it keeps its order with later events of the same connection and stream.
    """

    def __init__(
        self, nc: Client, topology: Topology, timeout: float = 5.0, *, acked: AckedPublisher | None = None
    ) -> None:
        self._nc = nc
        # The process's one (syllabus.runtime), or one of its own.
        self._acked = acked or AckedPublisher(nc)
        self._topology = topology
        self._timeout = timeout

    def _subject(self, event: job_pb2.JobEvent) -> str:
        return self._topology.event_subject(event.tenant, event.job_id)

    async def publish(self, event: job_pb2.JobEvent, msg_id: str) -> int:
        """Publish and wait for the stream's ack; returns the event's sequence.

        Raises BrokerUnavailable when the ack does not come within the timeout (NATS away or reconnecting).
        """
        try:
            async with asyncio.timeout(self._timeout):
                return await (await self.publish_async(event, msg_id))
        except TimeoutError:
            raise BrokerUnavailable(f"the message broker did not store the event within {self._timeout:g}s") from None

    async def publish_async(self, event: job_pb2.JobEvent, msg_id: str) -> asyncio.Future[int]:
        """Publish now; the future resolves with the sequence once stored (await many at once)."""
        return await self._acked.publish(self._subject(event), event.SerializeToString(), {"Nats-Msg-Id": msg_id})

    async def send(self, event: job_pb2.JobEvent) -> None:
        await self._nc.publish(self._subject(event), event.SerializeToString())


def event_msg_id(event: job_pb2.JobEvent) -> str:
    """Stable for one transition: its time is the record's update_time, which only that transition wrote.

    So a finished job re-announcing its end (after a lost ack) is stored once, while the same kind of event
    in a later run of the job (a retried dead letter, a requeue on shutdown) is a new message.
    """
    return f"{event.job_id}:{job_pb2.JobEventType.Name(event.type)}:{event.time.ToNanoseconds()}"


def decode_event(msg: Msg) -> job_pb2.JobEvent:
    """An event as read from the stream, with its stream sequence filled in."""
    event = job_pb2.JobEvent()
    event.ParseFromString(msg.data)
    event.sequence = stream_sequence(msg)
    return event
