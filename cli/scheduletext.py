"""Schedules as text for people: the one-line summary, the list table and the `get` view. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence

from cli.jobtext import seconds_text, spec_text, state_name, table, time_text
from syllabus.v1 import job_pb2


def timing_text(schedule: job_pb2.Schedule) -> str:
    if schedule.HasField("interval"):
        return f"every {seconds_text(schedule.interval.seconds)}"
    return f"cron {schedule.cron} ({schedule.time_zone or 'UTC'})"


def _next(schedule: job_pb2.Schedule) -> str:
    return "paused" if schedule.paused else time_text(schedule.next_run_time)


def _run_text(run: job_pb2.ScheduleRun) -> str:
    if run.skipped:
        return f"skipped: {run.skipped}"
    by_hand = ", triggered" if run.triggered else ""
    return f"{run.job_id} {state_name(run.state)}{by_hand}"


def schedule_line(schedule: job_pb2.Schedule) -> str:
    """`nightly: cron 30 2 * * * (Europe/Amsterdam), next run 2026-12-08 01:30:00 UTC`."""
    return f"{schedule.id}: {timing_text(schedule)}, next run {_next(schedule)}"


def schedules_table(schedules: Sequence[job_pb2.Schedule]) -> str:
    if not schedules:
        return "no schedules"
    rows = [
        [
            schedule.id,
            timing_text(schedule),
            _next(schedule),
            _run_text(schedule.recent_runs[0]) if schedule.recent_runs else "-",
        ]
        for schedule in schedules
    ]
    return table(["ID", "TIMING", "NEXT RUN", "LAST RUN"], rows)


def schedule_summary(schedule: job_pb2.Schedule) -> str:
    overlap = "allow" if schedule.overlap_policy == job_pb2.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL else "skip"
    catch_up = seconds_text(schedule.catchup_window.seconds) if schedule.HasField("catchup_window") else "60.0s"
    lines = [
        f"schedule   {schedule.id}" + (f"  ({schedule.description})" if schedule.description else ""),
        f"timing     {timing_text(schedule)}",
        f"job        {spec_text(schedule.spec)}",
        f"policies   overlap {overlap}, catch-up {catch_up}",
        f"created    {time_text(schedule.create_time)}",
    ]
    if schedule.paused:
        lines.append("next runs  paused")
    else:
        lines += [
            f"next runs  {time_text(stamp)}" if i == 0 else f"           {time_text(stamp)}"
            for i, stamp in enumerate(schedule.next_run_times)
        ]
    for i, run in enumerate(schedule.recent_runs):
        lead = "last runs  " if i == 0 else "           "
        lines.append(f"{lead}{time_text(run.fire_time)}  {_run_text(run)}")
    return "\n".join(lines)
