"""Turns each firing of a recurring schedule's timer into its jobs (syllabus.firings).

Any number of schedulers may relay: the consumer is a work queue, and a firing handled twice makes its jobs once.
A firing of a schedule that no longer exists removes the timer that fired it, should its deletion have stopped
between the two; and a relay starting arms the timer of every running schedule that has none, should its
creation or resumption have stopped between storing the record and arming it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from scheduler.relay import Relay
from syllabus.firings import Firings
from syllabus.runtime import Runtime
from syllabus.schedules import Timers

log = logging.getLogger(__name__)
CONSUMER = "scheduler-firings"


class FiringRelay(Relay):
    consumer = CONSUMER
    what = "schedule firings"
    when = "as they fire"

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._firings = Firings(runtime.store, runtime.submitter)
        self._timers = Timers(self._js, runtime.topology)

    def _subjects(self) -> str:
        return self._topology.fired_subjects

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        sub = await super()._subscribe()
        for tenant in await self._store.tenants():
            for schedule in await self._store.list_schedules(tenant):
                if not schedule.paused and not await self._timers.armed(schedule.id):
                    log.warning("schedule %s had no timer (its creation stopped half way): armed now", schedule.id)
                    await self._timers.arm(schedule)
        return sub

    def _name(self, msg: Msg) -> str:
        return f"a firing of schedule {msg.subject.rsplit('.', 1)[-1]}"

    async def _relay(self, msg: Msg) -> None:
        schedule_id = msg.subject.rsplit(".", 1)[-1]
        fired = msg.metadata.timestamp.astimezone(UTC)
        if await self._store.get_schedule(schedule_id) is None:
            await self._timers.disarm(schedule_id)
            await msg.ack_sync()
            return
        jobs = await self._firings.fired(schedule_id, fired, _next_run(msg))
        if jobs:
            log.info("schedule %s fired: %s", schedule_id, ", ".join(job.id for job in jobs))
        await msg.ack_sync()


def _next_run(msg: Msg) -> datetime | None:
    text = (msg.headers or {}).get("Nats-Schedule-Next", "")
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None  # "purge" for a one-off, or a server that does not say
