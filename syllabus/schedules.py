"""Recurring schedules: their timing, the jobs their firings make, and the JetStream message schedules that fire.

A schedule's record (its template, policies and recent runs) lives in the store; its timer is one message on
`scheduled.recurring.<id>` in the SCHEDULED stream whose `Nats-Schedule` header (a 6-field cron or `@every`)
makes the stream's leader store a copy on `scheduled.fired.<id>` at each firing. No process keeps time: the
scheduler's firing relay turns each stored firing into jobs. A firing's jobs have ids derived from the schedule
and the time each was due, so a firing relayed twice makes each job once.

Cron is evaluated with croniter (and zoneinfo for time zones) for what the server does not say: the next run
times shown to people, and which runs an outage skipped.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from google.protobuf import timestamp_pb2
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from syllabus.errors import InvalidRequest
from syllabus.topology import Topology
from syllabus.v1 import job_pb2

SCHEDULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
# The names nats-server accepts besides 6-field cron expressions.
_NAMED = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
DEFAULT_CATCHUP = timedelta(seconds=60)
# A firing this late is still on time: the server fires within milliseconds, a busy relay takes longer.
_SLACK = timedelta(seconds=1)
# A firing stored this much before its time still stands for it (clocks of a cluster's nodes differ a little).
EARLY_FIRING = timedelta(milliseconds=500)
# Jobs one firing may make when it catches up after an outage.
MAX_CATCHUP_JOBS = 100
RECENT_RUNS = 10
NEXT_RUNS = 5
_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789abcdefghjkmnpqrstvwxyz")


@dataclass(frozen=True)
class Timing:
    """When a schedule fires: a 6-field cron expression (or a named one) in a time zone, or an interval."""

    cron: str
    interval: timedelta | None
    zone: ZoneInfo

    @property
    def expression(self) -> str:
        """The `Nats-Schedule` header value."""
        if self.interval is not None:
            return f"@every {int(self.interval.total_seconds())}s"
        return self.cron

    def times_after(self, start: datetime) -> Iterator[datetime]:
        """The firing times after `start` (exclusive), in UTC."""
        if self.interval is not None:
            step, when = self.interval, start
            while True:
                when += step
                yield when
        yield from _cron_times(self.cron, self.zone, start)


def _cron_times(cron: str, zone: ZoneInfo, start: datetime) -> Iterator[datetime]:
    """As nats-server's cron (robfig/cron's algorithm) fires across daylight-saving changes: a wall time the
    clocks skip never fires, and one they pass twice fires twice."""
    walls = croniter(cron, start.astimezone(zone).replace(tzinfo=None), second_at_beginning=True)
    while True:
        wall: datetime = walls.get_next(datetime)
        instants = {wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)}
        for instant in sorted(instants):
            if instant > start and instant.astimezone(zone).replace(tzinfo=None) == wall:
                yield instant


def timing_of(schedule: job_pb2.Schedule, field: str = "schedule") -> Timing:
    """The schedule's timing, or InvalidRequest naming the field at fault."""
    has_interval = schedule.HasField("interval")
    if bool(schedule.cron) == has_interval:
        raise InvalidRequest(f"{field}.cron", "set exactly one of cron and interval")
    try:
        zone = ZoneInfo(schedule.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"{field}.time_zone", f"{schedule.time_zone!r} is not an IANA time zone name") from None
    if has_interval:
        if schedule.interval.nanos:
            raise InvalidRequest(f"{field}.interval", "must be whole seconds")
        return Timing("", schedule.interval.ToTimedelta(), zone)
    return Timing(_six_fields(schedule.cron, f"{field}.cron"), None, zone)


def _six_fields(cron: str, field: str) -> str:
    text = " ".join(cron.split())
    if text.startswith("@"):
        if text.lower() not in _NAMED:
            raise InvalidRequest(field, f"{cron!r}: names are {', '.join(sorted(_NAMED))}; use interval for @every")
        return text.lower()
    fields = text.split(" ")
    if len(fields) == 5:
        fields.insert(0, "0")  # nats-server wants the seconds
    if len(fields) != 6 or not croniter.is_valid(" ".join(fields), second_at_beginning=True):
        raise InvalidRequest(field, f"{cron!r} is not a cron expression of 5 or 6 fields")
    return " ".join(fields)


def catchup_window(schedule: job_pb2.Schedule) -> timedelta:
    return schedule.catchup_window.ToTimedelta() if schedule.HasField("catchup_window") else DEFAULT_CATCHUP


def overlap_skips(schedule: job_pb2.Schedule) -> bool:
    return schedule.overlap_policy != job_pb2.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL


def to_datetime(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def stamp(when: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(when)
    return out


def next_runs(schedule: job_pb2.Schedule, now: datetime, count: int = NEXT_RUNS) -> list[datetime]:
    """The next `count` firings from now, for people to read. An interval counts from its last expected firing."""
    timing = timing_of(schedule)
    start = now
    if timing.interval is not None and schedule.HasField("next_run_time"):
        start = to_datetime(schedule.next_run_time) - timing.interval
        while start + timing.interval < now:
            start += timing.interval
    times = timing.times_after(start)
    return [next(times) for _ in range(count)]


def first_run(timing: Timing, armed: datetime) -> datetime:
    """When a timer armed at `armed` first fires (the server counts an interval from when it stored the timer)."""
    return next(timing.times_after(armed.replace(microsecond=0)))


def due_slots(schedule: job_pb2.Schedule, fired: datetime) -> tuple[list[datetime], int]:
    """The times a firing at `fired` stands for, and how many of them fall outside the catch-up window.

    Normally one: the time it was due. After an outage the server fires once for all it missed; each missed time
    inside the catch-up window is run (the newest MAX_CATCHUP_JOBS), the others are counted as skipped."""
    timing = timing_of(schedule)
    latest = fired.replace(microsecond=0)
    slots: list[datetime] = []
    if schedule.HasField("next_run_time"):
        expected = to_datetime(schedule.next_run_time)
        if expected <= fired + EARLY_FIRING:
            slots.append(expected)
            for when in timing.times_after(expected):
                if when > fired + EARLY_FIRING:
                    break
                slots.append(when)
    if not slots:
        # Off the expected timing (a timer re-armed, clocks apart): the firing stands for itself.
        slots = [latest]
    window = catchup_window(schedule) + _SLACK
    kept = [when for when in slots if fired - when <= window]
    if not kept:
        # Even a firing late beyond the window is the server saying "now": it runs once, as its own time.
        kept = [slots[-1]]
    return kept[-MAX_CATCHUP_JOBS:], len(slots) - len(kept[-MAX_CATCHUP_JOBS:])


def job_id(schedule_id: str, due: datetime) -> str:
    """A ULID whose time is `due` and whose randomness is a hash of the schedule and `due`: each firing of a
    schedule makes the same id however often it is relayed, and ids still sort by time."""
    millis = int(due.timestamp() * 1000)
    digest = hashlib.sha256(f"{schedule_id}\0{millis}".encode()).digest()
    value = (millis << 80) | int.from_bytes(digest[:10], "big")
    return base64.b32encode(value.to_bytes(20, "big"))[6:].translate(_CROCKFORD).decode()


class Timers:
    """Each schedule's timer message in the SCHEDULED stream: arming replaces it, disarming removes it."""

    def __init__(self, js: JetStreamContext, topology: Topology) -> None:
        self._js = js
        self._topology = topology

    async def arm(self, schedule: job_pb2.Schedule) -> None:
        timing = timing_of(schedule)
        headers = {
            "Nats-Schedule": timing.expression,
            "Nats-Schedule-Target": self._topology.fired_subject(schedule.id),
        }
        if timing.interval is None and schedule.time_zone:
            headers["Nats-Schedule-Time-Zone"] = schedule.time_zone
        await self._js.publish(self._topology.timer_subject(schedule.id), b"", headers=headers)

    async def disarm(self, schedule_id: str) -> None:
        await self._js.purge_stream(self._topology.scheduled_stream, subject=self._topology.timer_subject(schedule_id))

    async def armed(self, schedule_id: str) -> bool:
        try:
            await self._js.get_last_msg(self._topology.scheduled_stream, self._topology.timer_subject(schedule_id))
        except NotFoundError:
            return False
        return True
