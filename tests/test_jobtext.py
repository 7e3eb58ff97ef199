"""The CLI's input parsing and text rendering: pure functions, no servers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.duration_pb2 import Duration

from cli import jobargs, jobtext
from cli.jobargs import UsageError
from syllabus.v1 import job_pb2

E = job_pb2


def test_a_time_without_a_zone_is_local_time() -> None:
    local = datetime(2030, 1, 31, 9, 0).astimezone()
    assert jobargs.parse_time("2030-01-31T09:00:00").ToDatetime(UTC) == local
    assert jobargs.parse_time("2030-01-31T09:00:00+02:00").ToJsonString() == "2030-01-31T07:00:00Z"


def test_states_by_any_name_repeated_or_comma_separated() -> None:
    assert jobargs.parse_states(["queued,RUNNING", "job_state_failed", ""]) == [
        E.JOB_STATE_QUEUED,
        E.JOB_STATE_RUNNING,
        E.JOB_STATE_FAILED,
    ]
    with pytest.raises(UsageError, match="'unspecified' is not a job state"):
        jobargs.parse_states(["unspecified"])


def test_kinds_by_alias_or_name() -> None:
    assert jobargs.resolve_kind("summarize") == "summarize_text"
    assert jobargs.resolve_kind("Generate-Course") == "generate_course"
    assert set(jobargs.kinds()) >= {"summarize_text", "generate_course", "render_document"}


def test_a_spec_of_another_kind_is_refused() -> None:
    spec = jobargs.parse_spec('{"generateCourse": {"prompt": "Go"}}', "generate_course")
    assert spec.generate_course.prompt == "Go"
    with pytest.raises(UsageError, match="holds a generate_course spec, not summarize_text"):
        jobargs.parse_spec('{"generate_course": {"prompt": "Go"}}', "summarize_text")


def test_progress_bar_is_clamped_and_rounded() -> None:
    assert jobtext.bar(0) == "[" + "-" * 20 + "]"
    assert jobtext.bar(52) == "[" + "#" * 10 + "-" * 10 + "]"
    assert jobtext.bar(250) == "[" + "#" * 20 + "]"


def test_durations_read_naturally() -> None:
    assert [jobtext.seconds_text(s) for s in (0.25, 59.9, 61, 3600 * 2 + 60 * 5)] == ["0.2s", "59.9s", "1m01s", "2h05m"]


def test_watch_view_follows_attempts_progress_and_errors() -> None:
    view = jobtext.WatchView(max_attempts=3)
    lines = []
    for event in [
        E.JobEvent(type=E.JOB_EVENT_TYPE_QUEUED, state=E.JOB_STATE_QUEUED),
        E.JobEvent(type=E.JOB_EVENT_TYPE_STARTED, state=E.JOB_STATE_RUNNING, attempt=1),
        E.JobEvent(
            type=E.JOB_EVENT_TYPE_PROGRESS,
            state=E.JOB_STATE_RUNNING,
            attempt=1,
            progress=E.JobProgress(percent=40, message="outline ready"),
        ),
        E.JobEvent(
            type=E.JOB_EVENT_TYPE_RETRYING,
            state=E.JOB_STATE_RETRYING,
            attempt=1,
            error=E.JobError(type="ProviderUnavailable", message="503"),
            retry_delay=Duration(seconds=5),
        ),
        E.JobEvent(type=E.JOB_EVENT_TYPE_STARTED, state=E.JOB_STATE_RUNNING, attempt=2),
        E.JobEvent(type=E.JOB_EVENT_TYPE_SUCCEEDED, state=E.JOB_STATE_SUCCEEDED, attempt=2, terminal=True),
    ]:
        view.apply(event)
        lines.append(view.line())
    assert lines == [
        "QUEUED     waiting for a worker",
        "RUNNING    attempt 1/3    0%  attempt 1 started",
        "RUNNING    attempt 1/3   40%  outline ready",
        "RETRYING   attempt 1/3   40%  ProviderUnavailable: 503; next attempt in 5.0s",
        "RUNNING    attempt 2/3    0%  attempt 2 started",
        "SUCCEEDED  attempt 2/3  100%  done",
    ]
    assert view.tty_line() == "SUCCEEDED  attempt 2/3  [####################]  100%  done"
