"""Schedule timing without a server: cron and intervals, time zones across daylight-saving changes, catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import duration_pb2
from hypothesis import given
from hypothesis import strategies as st

from syllabus import schedules
from syllabus.errors import InvalidRequest
from syllabus.v1 import job_pb2


def cron(expression: str, zone: str = "") -> job_pb2.Schedule:
    return job_pb2.Schedule(cron=expression, time_zone=zone)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def runs(schedule: job_pb2.Schedule, start: str, count: int) -> list[str]:
    return [when.strftime("%Y-%m-%dT%H:%MZ") for when in schedules.next_runs(schedule, at(start), count)]


def test_five_fields_gain_seconds_and_names_pass_as_nats_server_takes_them() -> None:
    assert schedules.timing_of(cron("*/5  9-17 * * 1-5")).expression == "0 */5 9-17 * * 1-5"
    assert schedules.timing_of(cron("30 */5 * * * *")).expression == "30 */5 * * * *"
    assert schedules.timing_of(cron("@Hourly")).expression == "@hourly"
    every = job_pb2.Schedule(interval=duration_pb2.Duration(seconds=90))
    assert schedules.timing_of(every).expression == "@every 90s"


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (job_pb2.Schedule(), "schedule.cron"),
        (cron("* * * *"), "schedule.cron"),
        (cron("@fortnightly"), "schedule.cron"),
        (cron("0 0 25 * * * *"), "schedule.cron"),
        (cron("@daily", "Europe/Atlantis"), "schedule.time_zone"),
        (cron("@daily", "../etc/passwd"), "schedule.time_zone"),
    ],
)
def test_bad_timing_names_the_field(schedule: job_pb2.Schedule, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        schedules.timing_of(schedule)
    assert caught.value.field == field


def test_a_wall_time_the_clocks_skip_never_fires_and_one_they_pass_twice_fires_twice() -> None:
    # Amsterdam: 2026-03-29 02:00 CET jumps to 03:00 CEST; 2026-10-25 03:00 CEST falls back to 02:00 CET.
    daily = cron("30 2 * * *", "Europe/Amsterdam")
    assert runs(daily, "2026-03-27T12:00Z", 3) == ["2026-03-28T01:30Z", "2026-03-30T00:30Z", "2026-03-31T00:30Z"]
    assert runs(daily, "2026-10-24T12:00Z", 3) == ["2026-10-25T00:30Z", "2026-10-25T01:30Z", "2026-10-26T01:30Z"]
    # An hourly cron keeps firing every hour of real time through both changes.
    hourly = cron("0 * * * *", "Europe/Amsterdam")
    assert runs(hourly, "2026-03-28T23:30Z", 3) == ["2026-03-29T00:00Z", "2026-03-29T01:00Z", "2026-03-29T02:00Z"]
    assert runs(hourly, "2026-10-24T23:30Z", 3) == ["2026-10-25T00:00Z", "2026-10-25T01:00Z", "2026-10-25T02:00Z"]
    # The same expression in UTC knows nothing of it.
    assert runs(cron("30 2 * * *"), "2026-03-28T12:00Z", 2) == ["2026-03-29T02:30Z", "2026-03-30T02:30Z"]


def test_an_interval_counts_from_its_last_expected_firing() -> None:
    schedule = job_pb2.Schedule(interval=duration_pb2.Duration(seconds=10))
    schedule.next_run_time.FromDatetime(at("2026-12-07T10:00:05Z"))
    times = schedules.next_runs(schedule, at("2026-12-07T10:00:31Z"), 3)
    assert [when.second for when in times] == [35, 45, 55]


def firing(schedule: job_pb2.Schedule, expected: str, fired: str) -> tuple[list[str], int]:
    schedule.next_run_time.FromDatetime(at(expected))
    slots, missed = schedules.due_slots(schedule, at(fired))
    return [when.strftime("%H:%M:%S") for when in slots], missed


def test_a_firing_on_time_stands_for_its_own_time() -> None:
    every = job_pb2.Schedule(interval=duration_pb2.Duration(seconds=10))
    assert firing(every, "2026-12-07T10:00:10Z", "2026-12-07T10:00:10.004Z") == (["10:00:10"], 0)
    # Off the expected timing (re-armed, or a clock apart): the firing is its own time.
    assert firing(every, "2026-12-07T10:00:30Z", "2026-12-07T10:00:12.5Z") == (["10:00:12"], 0)


def test_firings_missed_in_an_outage_run_within_the_window_and_are_counted_beyond_it() -> None:
    minutely = cron("* * * * *")
    minutely.catchup_window.FromSeconds(150)
    assert firing(minutely, "2026-12-07T10:00:00Z", "2026-12-07T10:05:20Z") == (["10:03:00", "10:04:00", "10:05:00"], 3)
    minutely.catchup_window.FromSeconds(0)
    assert firing(minutely, "2026-12-07T10:00:00Z", "2026-12-07T10:05:20Z") == (["10:05:00"], 5)
    every = job_pb2.Schedule(interval=duration_pb2.Duration(seconds=1))
    every.catchup_window.FromSeconds(3600)
    slots, missed = firing(every, "2026-12-07T08:00:00Z", "2026-12-07T09:00:00Z")
    assert (len(slots), slots[-1], missed) == (
        schedules.MAX_CATCHUP_JOBS,
        "09:00:00",
        3601 - schedules.MAX_CATCHUP_JOBS,
    )


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=40),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
)
def test_job_ids_are_ulids_of_the_due_time_the_same_for_the_same_firing(schedule_id: str, due: datetime) -> None:
    due = due.replace(microsecond=0)
    first = schedules.job_id(schedule_id, due)
    assert first == schedules.job_id(schedule_id, due)
    assert len(first) == 26
    assert first != schedules.job_id(schedule_id, due + timedelta(seconds=1))
    assert first != schedules.job_id(schedule_id + "x", due)
    # Time-ordered like every other id: sorting by id sorts by due time.
    assert first < schedules.job_id(schedule_id, due + timedelta(seconds=1))


@given(
    interval=st.integers(min_value=1, max_value=3600),
    window=st.integers(min_value=0, max_value=7200),
    late=st.integers(min_value=0, max_value=10 * 3600 * 1000),
)
def test_a_late_firing_stands_for_each_due_time_once_within_the_window(interval: int, window: int, late: int) -> None:
    every = job_pb2.Schedule(interval=duration_pb2.Duration(seconds=interval))
    every.catchup_window.FromSeconds(window)
    expected = at("2026-12-07T10:00:00Z")
    every.next_run_time.FromDatetime(expected)
    fired = expected + timedelta(milliseconds=late)
    slots, missed = schedules.due_slots(every, fired)
    due = [expected + timedelta(seconds=interval * n) for n in range(late // (interval * 1000) + 2)]
    due = [when for when in due if when <= fired + schedules.EARLY_FIRING]
    # Every due time is run or counted as missed, none twice, none after the firing, in order.
    assert len(slots) + missed == len(due)
    assert slots == sorted(set(slots)) and set(slots) <= set(due)
    assert slots[-1] == due[-1], "the newest due time always runs"
    assert all(fired - when <= timedelta(seconds=window + 1) for when in slots[:-1])
    assert len(slots) <= schedules.MAX_CATCHUP_JOBS
