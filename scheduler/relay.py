"""The scheduler's relays: a work-queue consumer each, whose messages are handled one at a time and offered again
when handling one fails. Delayed jobs go into JOBS when their JetStream message schedule fires (here);
recurring schedules' firings become jobs (scheduler.recurring); max-deliveries advisories become dead letters
(scheduler.advisories).

Schedules live in the SCHEDULED stream (JOBS discards new messages when full, which schedules do not allow,
and a schedule can only target its own stream). Any number of schedulers may relay: the consumer is a work
queue and JOBS de-duplicates on the job id. Each ack is confirmed by the server before the next message is
taken (delayed jobs are few next to the queue's traffic): a relay that has stopped leaves no ack in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from syllabus import lifecycle, outages
from syllabus.errors import BrokerUnavailable, QueueFull
from syllabus.metrics import scheduler as metrics
from syllabus.runtime import Runtime
from syllabus.v1 import job_pb2

log = logging.getLogger(__name__)
CONSUMER = "scheduler-relay"
# Seconds before a relay that JetStream refused (queue full, broker away) is tried again.
RELAY_RETRY = 5.0
# Seconds between fetches that failed (NATS away or restarting): a pause, not a spin.
FETCH_PAUSE = 0.5


def _queued(job: job_pb2.Job) -> job_pb2.Job | None:
    if job.state != job_pb2.JOB_STATE_SCHEDULED:
        return None
    new = job_pb2.Job()
    new.CopyFrom(job)
    new.state = job_pb2.JOB_STATE_QUEUED
    new.update_time.CopyFrom(lifecycle.now())
    return new


class Relay(ABC):
    """Takes one kind of message from a stream (SCHEDULED unless `_stream` says otherwise) and hands each to
    `_relay`; a failure offers it again later."""

    consumer: str
    # What it relays ("delayed jobs"), and when ("when they fall due"), for its log.
    what: str
    when: str

    def __init__(self, runtime: Runtime, retry_delay: float = RELAY_RETRY) -> None:
        self._nc = runtime.nc
        self._retry_delay = retry_delay
        self._js = runtime.nc.jetstream()
        self._store = runtime.store
        self._topology = runtime.topology
        self._submitter = runtime.submitter
        # The NATS connection announces its own losses (syllabus.jetstream.connect).
        self._outages = outages.OutageLog(log, announced_elsewhere={outages.NATS})
        self._relayed = metrics.relayed(self.what)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set. NATS or the store going away pauses the relay; it never ends it."""
        try:
            sub = await outages.until_reachable(self._subscribe, self._outages, f"{self.what} wait for it", stop)
        except outages.GaveUp:
            return
        log.info("scheduler relaying %s from %s %s", self.what, self._stream(), self.when)
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(64, timeout=1.0)
                except (TimeoutError, NatsTimeout):
                    continue
                except Exception as exc:
                    self._fetch_failed(exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), FETCH_PAUSE)
                    continue
                if self._nc.is_connected:
                    self._outages.up(outages.NATS)
                for msg in msgs:
                    await self._relay_or_hand_back(msg)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        return await self._js.pull_subscribe(
            self._subjects(),
            durable=self.consumer,
            stream=self._stream(),
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=30, max_deliver=-1),
        )

    @abstractmethod
    def _subjects(self) -> str: ...

    def _stream(self) -> str:
        return self._topology.scheduled_stream

    def _fetch_failed(self, exc: Exception) -> None:
        dependency = outages.unreachable(exc)
        if dependency is None:
            log.warning("fetching %s failed: %s", self.what, outages.describe(exc))
        else:
            self._outages.down(dependency, exc, f"{self.what} wait for it")

    async def _relay_or_hand_back(self, msg: Msg) -> None:
        """Relay one message; while the store or NATS is away, or a bug stops it, it is offered again a little
        later, and the relay goes on with the others."""
        try:
            await self._relay(msg)
        except DecodeError:
            log.error("dropping undecodable message on %s", msg.subject)
            with contextlib.suppress(Exception):  # NATS away: the message comes back and is dropped then
                await msg.term()
            return
        except Exception as exc:
            dependency = outages.unreachable(exc)
            if dependency is None:
                log.exception("%s: relaying it failed; it is offered again", self._name(msg))
            else:
                self._outages.down(dependency, exc, f"{self.what} wait for it")
            # If NATS itself is away the nak is lost too, and the message comes back after its ack wait.
            with contextlib.suppress(Exception):
                await msg.nak(delay=self._retry_delay)
        else:
            self._relayed.inc()
            self._outages.all_up()

    @abstractmethod
    async def _relay(self, msg: Msg) -> None: ...

    @abstractmethod
    def _name(self, msg: Msg) -> str:
        """What the message stands for, for people: "delayed job <id>"."""


class DueRelay(Relay):
    consumer = CONSUMER
    what = "delayed jobs"
    when = "when they fall due"

    def _subjects(self) -> str:
        return self._topology.due_subjects

    def _name(self, msg: Msg) -> str:
        return f"delayed job {msg.subject.rsplit('.', 1)[-1]}"

    async def _relay(self, msg: Msg) -> None:
        job = job_pb2.Job.FromString(msg.data)
        current = await self._store.get_job(job.id)
        due = current is not None and (
            current.state == job_pb2.JOB_STATE_SCHEDULED
            # Queued by an earlier delivery of this message that died before publishing or acking it: no attempt
            # has claimed it since it was scheduled (one handed back since would show attempt 0 too).
            or (current.state == job_pb2.JOB_STATE_QUEUED and current.attempt == 0 and current.lease == job.lease)
        )
        if current is None or not due:
            # Canceled while it waited, or relayed already: the schedule has nothing left to do.
            await msg.ack_sync()
            return
        if current.state == job_pb2.JOB_STATE_SCHEDULED:
            updated = await self._store.update_job(job.id, _queued)
            if not updated.applied or updated.job is None:
                await msg.ack_sync()  # canceled (or started) meanwhile
                return
            current = updated.job
        try:
            # The id follows the record's last change: a dying relay's publish is dropped as a duplicate, while a
            # retried dead letter, scheduled again, gets a new one.
            await self._submitter.enqueue(current, f"{job.id}:{current.update_time.ToNanoseconds()}")
        except (QueueFull, BrokerUnavailable) as exc:
            log.warning("delayed job %s not relayed yet: %s", job.id, exc)
            await msg.nak(delay=self._retry_delay)
            return
        await msg.ack_sync()
