"""What a schedule's firing does: make its jobs from the template, then note the run on the schedule's record.

The jobs are submitted before the record is changed, each under an id and an idempotency key derived from the
schedule and the time it was due (syllabus.schedules.job_id): a firing handled again after a crash finds its
jobs stored and makes none twice, and a firing no newer than the newest one noted has been handled.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from opentelemetry import trace

from syllabus import lifecycle, schedules
from syllabus.store.base import Store
from syllabus.submit import Submitter, build_job
from syllabus.v1 import job_pb2

UNFINISHED = "the previous run is unfinished"
_tracer = trace.get_tracer("syllabus.scheduler")


def job_from(schedule: job_pb2.Schedule, due: datetime | None) -> job_pb2.Job:
    """The job a firing due at `due` makes (a fresh id when None: a trigger by hand)."""
    job = build_job(
        schedule.spec,
        schedule.options,
        tenant=schedule.tenant,
        # The gateway resolved the attempts into the template when the schedule was written.
        default_max_attempts=schedule.options.max_attempts,
    )
    if due is not None:
        job.id = schedules.job_id(schedule.id, due)
        # The key makes a second submission of the same firing return the first job (and publish it again if
        # the first submission may have died before publishing).
        job.options.idempotency_key = f"schedule:{schedule.id}:{int(due.timestamp() * 1000)}"
    job.schedule_id = schedule.id
    return job


class Firings:
    def __init__(self, store: Store, submitter: Submitter) -> None:
        self._store = store
        self._submitter = submitter

    async def fired(self, schedule_id: str, fired: datetime, next_run: datetime | None) -> list[job_pb2.Job]:
        """Handles one firing of the schedule's timer at `fired`; `next_run` is when the server fires next.
        Returns the jobs made (none for a paused or deleted schedule, or a firing already handled)."""
        schedule = await self._store.get_schedule(schedule_id)
        if schedule is None or schedule.paused or _handled(schedule, fired):
            return []
        slots, missed = schedules.due_slots(schedule, fired)
        skipped: list[job_pb2.ScheduleRun] = []
        if schedules.overlap_skips(schedule):
            if await self._previous_unfinished(schedule):
                skipped = [_run(when, fired, skipped=UNFINISHED) for when in slots]
                slots = []
            else:
                # Caught-up runs would overlap each other: only the newest runs.
                skipped = [_run(when, fired, skipped=UNFINISHED) for when in slots[:-1]]
                slots = slots[-1:]
        # The firing is the root of its jobs' trace (a trigger by hand is in the caller's).
        with _tracer.start_as_current_span("schedule fire", attributes={"syllabus.schedule.id": schedule_id}):
            jobs = [job_from(schedule, when) for when in slots]
        made = await self._submitter.submit(jobs) if jobs else []
        runs = [_run(when, fired, job=item.job) for when, item in zip(slots, made, strict=True)] + skipped
        if missed:
            window = int(schedules.catchup_window(schedule).total_seconds())
            runs.append(
                _run(fired, fired, skipped=f"{missed} firings missed by more than the catch-up window ({window}s)")
            )
        await self._note(schedule_id, runs, next_run)
        return [item.job for item in made]

    async def triggered(self, schedule: job_pb2.Schedule) -> job_pb2.Job:
        """One job now from the template, whatever the timing, pause or overlap policy."""
        now = lifecycle.now().ToDatetime(tzinfo=UTC)
        (made,) = await self._submitter.submit([job_from(schedule, None)])
        await self._note(schedule.id, [_run(now, now, job=made.job, triggered=True)], None)
        return made.job

    async def _previous_unfinished(self, schedule: job_pb2.Schedule) -> bool:
        for run in schedule.recent_runs:
            if run.job_id:
                job = await self._store.get_job(run.job_id)
                return job is not None and not lifecycle.is_terminal(job.state)
        return False

    async def _note(self, schedule_id: str, runs: Sequence[job_pb2.ScheduleRun], next_run: datetime | None) -> None:
        def change(schedule: job_pb2.Schedule) -> job_pb2.Schedule | None:
            updated = job_pb2.Schedule()
            updated.CopyFrom(schedule)
            newest = sorted(runs, key=lambda run: run.fire_time.ToNanoseconds(), reverse=True)
            kept = [*newest, *schedule.recent_runs][: schedules.RECENT_RUNS]
            del updated.recent_runs[:]
            updated.recent_runs.extend(kept)
            if next_run is not None and not schedule.paused:
                updated.next_run_time.CopyFrom(schedules.stamp(next_run))
            return updated

        await self._store.update_schedule(schedule_id, change)


def _handled(schedule: job_pb2.Schedule, fired: datetime) -> bool:
    """A firing no later than the newest one noted was handled (or overtaken: the timer fires in order)."""
    clocked = [run for run in schedule.recent_runs if not run.triggered and run.HasField("actual_time")]
    return bool(clocked) and fired <= schedules.to_datetime(clocked[0].actual_time)


def _run(
    due: datetime, fired: datetime, *, job: job_pb2.Job | None = None, skipped: str = "", triggered: bool = False
) -> job_pb2.ScheduleRun:
    run = job_pb2.ScheduleRun(skipped=skipped, triggered=triggered)
    run.fire_time.CopyFrom(schedules.stamp(due))
    run.actual_time.CopyFrom(schedules.stamp(fired))
    if job is not None:
        run.job_id = job.id
        run.state = job.state
    return run
