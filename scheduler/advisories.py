"""Max-deliveries advisories become dead letters.

A job message delivered WorkerConfig.retry.max_deliveries times without an outcome is given up by JetStream,
which says so in an advisory naming the message's stream sequence; the message itself stays in JOBS. The
advisories are kept in a stream of their own (syllabus.jetstream), so none is lost while no scheduler runs, and
read here through a work-queue consumer: any number of schedulers may take them, each advisory once. The job
of one whose record has not ended is failed and dead-lettered like any failure; the message is then removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from syllabus import lifecycle, outages
from syllabus.events import event_for, event_msg_id
from syllabus.runtime import Runtime
from syllabus.v1 import job_pb2

log = logging.getLogger(__name__)
CONSUMER = "scheduler-advisories"
# Seconds before an advisory whose handling met an outage is offered again.
RETRY = 5.0
FETCH_PAUSE = 0.5
E = job_pb2


class MaxDeliveries:
    def __init__(self, runtime: Runtime) -> None:
        self._nc = runtime.nc
        self._js = runtime.nc.jetstream()
        self._store = runtime.store
        self._topology = runtime.topology
        self._events = runtime.events
        self._dead_letters = runtime.dead_letters
        self._parents = runtime.parents
        self._outages = outages.OutageLog(log, announced_elsewhere={outages.NATS})

    async def run(self, stop: asyncio.Event) -> None:
        try:
            sub = await outages.until_reachable(self._subscribe, self._outages, "advisories wait for it", stop)
        except outages.GaveUp:
            return
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(16, timeout=1.0)
                except (TimeoutError, NatsTimeout):
                    continue
                except Exception as exc:
                    dependency = outages.unreachable(exc)
                    if dependency is None:
                        log.warning("fetching advisories failed: %s", outages.describe(exc))
                    else:
                        self._outages.down(dependency, exc, "advisories wait for it")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), FETCH_PAUSE)
                    continue
                for msg in msgs:
                    await self._handle(msg)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        return await self._js.pull_subscribe(
            self._topology.max_deliveries_subjects,
            durable=CONSUMER,
            stream=self._topology.advisories_stream,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=30, max_deliver=-1),
        )

    async def _handle(self, msg: Msg) -> None:
        try:
            advisory = json.loads(msg.data)
            seq, deliveries = int(advisory["stream_seq"]), int(advisory["deliveries"])
        except (ValueError, KeyError, TypeError):
            log.error("dropping an unreadable advisory on %s", msg.subject)
            with contextlib.suppress(Exception):
                await msg.term()
            return
        try:
            await self.dead_letter(seq, deliveries)
        except Exception as exc:
            dependency = outages.unreachable(exc)
            if dependency is None:
                log.exception("advisory of JOBS message %d: handling it failed; it is offered again", seq)
            else:
                self._outages.down(dependency, exc, "advisories wait for it")
            with contextlib.suppress(Exception):
                await msg.nak(delay=RETRY)
            return
        self._outages.all_up()
        await msg.ack_sync()

    async def dead_letter(self, seq: int, deliveries: int) -> job_pb2.Job | None:
        """Fail and dead-letter the job of JOBS message `seq`, unless its record has ended; remove the message.
        Returns the failed job, if this call failed it."""
        try:
            raw = await self._js.get_msg(self._topology.jobs_stream, seq=seq)
        except NotFoundError:
            return None  # settled (acked or termed) since, or removed by an earlier try
        payload = job_pb2.Job.FromString(raw.data or b"")
        current = await self._store.get_job(payload.id)
        failed = None
        if current is not None and not lifecycle.is_terminal(current.state):
            reason = f"delivered {deliveries} times without an outcome"
            error = E.JobError(attempt=current.attempt, type="MaxDeliveries", message=reason, permanent=True)
            error.time.CopyFrom(lifecycle.now())
            change = lifecycle.fail(None, error)
            new = change(current)
            if new is not None:
                # The copy comes first, as a worker's dead-lettering does.
                await self._dead_letters.put(new, raw.subject or "", reason)
                updated = await self._store.update_job(payload.id, change)
                if updated.applied and updated.job is not None:
                    failed = updated.job
                    stored = failed.errors[-1]
                    for type_ in (E.JOB_EVENT_TYPE_DEAD_LETTERED, E.JOB_EVENT_TYPE_FAILED):
                        event = event_for(failed, type_, error=stored)
                        await self._events.publish(event, event_msg_id(event))
                    if failed.parent_id:
                        await self._parents.child_failed(failed, f"{reason} ({stored.type})")
                    log.warning("job %s dead-lettered: %s", failed.id, reason)
        with contextlib.suppress(NotFoundError):
            await self._js.delete_msg(self._topology.jobs_stream, seq)
        return failed
