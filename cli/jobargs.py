"""Command-line input turned into job messages: kinds, protojson specs, labels, times, states.

Every mistake raises UsageError with a one-line message naming the option, so the CLI can print it as is.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from syllabus.v1 import job_pb2


class UsageError(ValueError):
    """Invalid command-line input. The message is one line."""


_KINDS = tuple(field.name for field in job_pb2.JobSpec.DESCRIPTOR.oneofs_by_name["kind"].fields)
# Short names people type; the full kind names work too.
ALIASES = {
    "summarize": "summarize_text",
    "course": "generate_course",
    "render": "render_document",
    "report": "render_report",
}
STATES = {
    value.name.removeprefix("JOB_STATE_").lower(): cast(job_pb2.JobState, value.number)
    for value in job_pb2.JobState.DESCRIPTOR.values
    if value.number != job_pb2.JOB_STATE_UNSPECIFIED
}


def kinds() -> tuple[str, ...]:
    return _KINDS


def resolve_kind(name: str) -> str:
    """The JobSpec kind for `name`: an alias ("summarize"), a kind ("summarize_text" or "summarize-text")."""
    key = name.strip().lower().replace("-", "_")
    kind = ALIASES.get(key, key)
    if kind not in _KINDS:
        known = ", ".join([*ALIASES, *_KINDS])
        raise UsageError(f"unknown job kind {name!r}: use one of {known}")
    return kind


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def parse_json(text: str, option: str = "--json") -> dict[str, object]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{option} must be a JSON object, e.g. {example_spec('summarize_text')}")
    return data


def parse_spec(text: str, kind: str, option: str = "--json") -> job_pb2.JobSpec:
    """A JobSpec from protojson: either the whole spec ({"summarizeText": {...}}) or just the kind's message."""
    data = parse_json(text, option)
    spec_fields = {name for f in job_pb2.JobSpec.DESCRIPTOR.fields for name in (f.name, f.json_name)}
    if not (data.keys() & spec_fields):
        # Only the kind's own message, e.g. {"text": "..."} for summarize_text.
        data = {kind: data}
    spec = job_pb2.JobSpec()
    try:
        json_format.ParseDict(data, spec)
    except json_format.ParseError as exc:
        raise UsageError(f"{option} does not fit a JobSpec: {_one_line(str(exc))}") from None
    given = spec.WhichOneof("kind")
    if given != kind:
        raise UsageError(f"{option} holds a {given or 'empty'} spec, not {kind}")
    return spec


def read_text_file(path: str, option: str) -> str:
    """A file's text for an option; - reads stdin."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{option} {path}: cannot read it: {_one_line(reason)}") from None


def task_spec(name: str | None, text: str | None) -> job_pb2.JobSpec:
    """A task job: its name, and its input as a JSON object (none is an empty one)."""
    if not name:
        raise UsageError("give the task's name: syllabus submit task NAME --json '{...}'")
    spec = job_pb2.JobSpec(task=job_pb2.Task(name=name))
    json_format.ParseDict(parse_json(text, "--json") if text is not None else {}, spec.task.json)
    return spec


def example_spec(kind: str) -> str:
    if kind == "summarize_text":
        return '\'{"summarizeText": {"text": "..."}}\''
    field = job_pb2.JobSpec.DESCRIPTOR.fields_by_name[kind]
    return f"'{{\"{field.json_name}\": {{...}}}}'"


def parse_labels(items: Iterable[str], option: str = "--label") -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {item!r} is not key=value")
        labels[key.strip()] = value
    return labels


def parse_time(text: str, option: str = "--run-at") -> Timestamp:
    """An ISO 8601 time; without a zone it is local time."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option} {text!r} is not an ISO 8601 time, e.g. 2030-01-31T09:00:00Z") from None
    if when.tzinfo is None:
        when = when.astimezone()
    stamp = Timestamp()
    stamp.FromDatetime(when.astimezone(UTC))
    return stamp


def parse_seconds(text: str, option: str, *, positive: bool = False) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        raise UsageError(f"{option} {text!r} is not a number of seconds {'> 0' if positive else '>= 0'}")
    return seconds


def delay_to_time(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) + timedelta(seconds=seconds))
    return stamp


def duration(seconds: float) -> Duration:
    value = Duration()
    value.FromNanoseconds(round(seconds * 1e9))
    return value


def parse_states(items: Iterable[str], option: str = "--state") -> list[job_pb2.JobState]:
    """States by name ("running", "JOB_STATE_RUNNING"), repeated or comma-separated."""
    states: list[job_pb2.JobState] = []
    for item in items:
        for part in item.split(","):
            name = part.strip().lower().removeprefix("job_state_")
            if not name:
                continue
            if name not in STATES:
                raise UsageError(f"{option} {part.strip()!r} is not a job state: use one of {', '.join(STATES)}")
            states.append(STATES[name])
    return states
