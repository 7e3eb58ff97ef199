"""Max-deliveries advisories become dead letters.

A job message delivered WorkerConfig.retry.max_deliveries times without an outcome is given up by JetStream,
which says so in an advisory naming the message's stream sequence; the message itself stays in JOBS. The
advisories are kept in a stream of their own (syllabus.jetstream), so none is lost while no scheduler runs, and
read here through a work-queue consumer: any number of schedulers may take them, each advisory once. The job
of one whose record has not ended is failed and dead-lettered like any failure; the message is then removed.
"""

from __future__ import annotations

import contextlib
import json
import logging

from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from scheduler.relay import Relay
from syllabus import lifecycle
from syllabus.events import event_for, event_msg_id
from syllabus.runtime import Runtime
from syllabus.v1 import job_pb2

log = logging.getLogger(__name__)
CONSUMER = "scheduler-advisories"
E = job_pb2


class MaxDeliveries(Relay):
    consumer = CONSUMER
    what = "max-deliveries advisories"
    when = "as JetStream gives jobs up"

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._events = runtime.events
        self._dead_letters = runtime.dead_letters
        self._parents = runtime.parents

    def _stream(self) -> str:
        return self._topology.advisories_stream

    def _subjects(self) -> str:
        return self._topology.max_deliveries_subjects

    def _name(self, msg: Msg) -> str:
        return f"an advisory on {msg.subject}"

    async def _relay(self, msg: Msg) -> None:
        try:
            advisory = json.loads(msg.data)
            seq, deliveries = int(advisory["stream_seq"]), int(advisory["deliveries"])
        except (ValueError, KeyError, TypeError):
            log.error("dropping an unreadable advisory on %s", msg.subject)
            with contextlib.suppress(Exception):
                await msg.term()
            return
        await self.dead_letter(seq, deliveries)
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
