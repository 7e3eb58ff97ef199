"""Event streams for WatchJob and WatchJobs, read from the EVENTS stream with ordered consumers.

A watch replays the job's stored events and then follows live ones through the same consumer, so nothing is
lost between "read the history" and "subscribe".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy

from syllabus import lifecycle
from syllabus.events import decode_event, event_for
from syllabus.topology import Topology
from syllabus.v1 import job_pb2

_END_EVENT = {
    job_pb2.JOB_STATE_SUCCEEDED: job_pb2.JOB_EVENT_TYPE_SUCCEEDED,
    job_pb2.JOB_STATE_FAILED: job_pb2.JOB_EVENT_TYPE_FAILED,
    job_pb2.JOB_STATE_CANCELED: job_pb2.JOB_EVENT_TYPE_CANCELED,
}


class EventStreams:
    def __init__(self, nc: Client, topology: Topology) -> None:
        self._js = nc.jetstream()
        self._topology = topology

    async def job_events(self, job: job_pb2.Job, after_sequence: int) -> AsyncIterator[job_pb2.JobEvent]:
        """The job's events after `after_sequence`, ending with the terminal event that nothing follows."""
        subject = self._topology.job_events_filter(job.id)
        if lifecycle.is_terminal(job.state) and not await self._has_events(subject):
            # The events aged out of the stream; the record still says how it ended.
            yield event_for(job, _END_EVENT[job.state])
            return
        if after_sequence:
            policy, config = DeliverPolicy.BY_START_SEQUENCE, ConsumerConfig(opt_start_seq=after_sequence + 1)
        else:
            policy, config = DeliverPolicy.ALL, None
        sub = await self._js.subscribe(
            subject,
            stream=self._topology.events_stream,
            ordered_consumer=True,
            deliver_policy=policy,
            config=config,
        )
        try:
            while True:
                msg = await sub.next_msg(timeout=None)
                event = decode_event(msg)
                yield event
                # A terminal event ends the watch unless later events follow (a retried dead letter).
                if event.terminal and msg.metadata.num_pending == 0:
                    return
        finally:
            await sub.unsubscribe()

    async def _has_events(self, subject: str) -> bool:
        info = await self._js.stream_info(self._topology.events_stream, subjects_filter=subject)
        return bool(info.state.subjects)

    async def tenant_events(
        self, tenant: str, kind: str, subscribed: Callable[[], Awaitable[None]]
    ) -> AsyncIterator[job_pb2.JobEvent]:
        """Live events of every job of the tenant, from the moment `subscribed` is called on."""
        sub = await self._js.subscribe(
            self._topology.tenant_events_filter(tenant),
            stream=self._topology.events_stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )
        try:
            await subscribed()
            while True:
                event = decode_event(await sub.next_msg(timeout=None))
                if not kind or event.kind == kind:
                    yield event
        finally:
            await sub.unsubscribe()
