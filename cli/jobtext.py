"""Jobs, events and dead letters as text for people: the `get` summary, tables, the watch progress line.

Pure functions of the messages (no I/O), so the CLI's output is easy to test and to keep consistent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from syllabus import anyjson
from syllabus.v1 import admin_service_pb2, job_pb2

BAR_WIDTH = 20


def state_name(state: int) -> str:
    try:
        return job_pb2.JobState.Name(state).removeprefix("JOB_STATE_")
    except ValueError:
        return f"STATE_{state}"


def event_name(event_type: int) -> str:
    try:
        return job_pb2.JobEventType.Name(event_type).removeprefix("JOB_EVENT_TYPE_")
    except ValueError:
        return f"EVENT_{event_type}"


def to_json(message: Message) -> str:
    """Protojson, as buf curl and grpcurl print it (lowerCamel field names, enum names)."""
    return json.dumps(anyjson.to_dict(message), indent=2)


def time_text(stamp: Timestamp) -> str:
    if stamp.seconds == 0 and stamp.nanos == 0:
        return "-"
    return stamp.ToDatetime(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _between(start: Timestamp, end: Timestamp) -> float:
    return (end.ToNanoseconds() - start.ToNanoseconds()) / 1e9


def _indented(text: str, prefix: str = "  ") -> list[str]:
    return [prefix + line for line in text.splitlines() or [""]]


def _error_lines(errors: Sequence[job_pb2.JobError]) -> list[str]:
    lines = []
    for error in errors:
        permanent = " (permanent)" if error.permanent else ""
        lines.append(f"  attempt {error.attempt}  {time_text(error.time)}  {error.type}: {error.message}{permanent}")
    return lines


def _attempt_lines(attempts: Sequence[job_pb2.JobAttempt]) -> list[str]:
    lines = []
    for attempt in attempts:
        where = f"{attempt.worker_id} on {attempt.host}" if attempt.host else attempt.worker_id or "unknown worker"
        if attempt.HasField("end_time"):
            took = seconds_text(_between(attempt.start_time, attempt.end_time))
            ended = f"{state_name(attempt.outcome)} after {took}"
        else:
            ended = "running"
        lines.append(f"  attempt {attempt.attempt}  {time_text(attempt.start_time)}  {where}  {ended}")
    return lines


def _packed(value: any_pb2.Any) -> str:
    """A typed message as JSON when its type is known here (the CLI has no user protos), else its type and size."""
    try:
        return json_format.MessageToJson(value, indent=None)
    except TypeError:
        return f"a {value.TypeName()} message ({len(value.value)} bytes)"


def spec_text(spec: job_pb2.JobSpec) -> str:
    if spec.WhichOneof("kind") != "task":
        return json_format.MessageToJson(spec, indent=None)
    task = spec.task
    if task.WhichOneof("input") == "message":
        return f"{task.name} {_packed(task.message)}"
    return f"{task.name} {json_format.MessageToJson(task.json, indent=None)}"


def result_output(result: job_pb2.JobResult) -> str:
    """A task's structured result, as text; empty when there is none."""
    output = result.WhichOneof("output")
    if output == "message":
        return _packed(result.message)
    if output == "json":
        return json.dumps(json_format.MessageToDict(result.json), indent=2, sort_keys=True)
    return ""


def job_summary(job: job_pb2.Job) -> str:
    """What `syllabus get` prints: one field a line, then the result and the error history."""
    rows: list[tuple[str, str]] = [
        ("job", job.id),
        ("kind", job.kind),
        ("spec", _short(spec_text(job.spec), 100)),
        ("state", state_name(job.state) + ("  (cancel requested)" if job.cancel_requested else "")),
        ("attempts", f"{job.attempt} of {job.max_attempts}"),
    ]
    if job.stall_count:
        rows.append(("stalled", f"{job.stall_count} time(s): its worker stopped heart-beating"))
    if job.status_message:
        rows.append(("status", job.status_message))
    if job.parent_id:
        rows.append(("parent", job.parent_id))
    if job.options.labels:
        rows.append(("labels", " ".join(f"{k}={v}" for k, v in sorted(job.options.labels.items()))))
    if job.options.HasField("run_at"):
        rows.append(("run at", time_text(job.options.run_at)))
    rows.append(("created", time_text(job.create_time)))
    if job.HasField("start_time"):
        rows.append(("started", time_text(job.start_time)))
    if job.HasField("end_time"):
        took = (
            f"  (took {seconds_text(_between(job.create_time, job.end_time))})" if job.HasField("create_time") else ""
        )
        rows.append(("ended", time_text(job.end_time) + took))
    if job.HasField("progress"):
        rows.append(("progress", f"{job.progress.percent:.0f}%  {job.progress.message}".rstrip()))
    result = job.result
    if result.reference:
        rows.append(("reference", result.reference))
    for artifact in result.artifacts:
        rows.append(("artifact", f"{artifact.name} ({artifact.content_type}, {artifact.size_bytes} bytes)"))
    if result.usage.input_tokens or result.usage.output_tokens:
        usage = result.usage
        rows.append(
            (
                "usage",
                f"{usage.input_tokens} tokens in, {usage.output_tokens} out, ~${usage.estimated_cost_usd:.4f}",
            )
        )
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    if result.text:
        lines += ["result", *_indented(result.text)]
    if output := result_output(result):
        lines += ["result", *_indented(output)]
    if job.attempts:
        lines += [f"attempt history ({len(job.attempts)})", *_attempt_lines(job.attempts)]
    if job.errors:
        lines += [f"errors ({len(job.errors)})", *_error_lines(job.errors)]
    return "\n".join(lines)


def dead_letter_summary(dead: admin_service_pb2.DeadLetter) -> str:
    head = [
        f"dead letter of job {dead.job_id}",
        f"  reason       {dead.reason}",
        f"  dead since   {time_text(dead.dead_letter_time)}",
        f"  subject      {dead.subject}",
        "",
    ]
    return "\n".join(head) + job_summary(dead.job)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is left ragged."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, str(row[-1])]).rstrip())
    return "\n".join(lines)


def _short(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def jobs_table(jobs: Sequence[job_pb2.Job]) -> str:
    rows = []
    for job in jobs:
        progress = f"{job.progress.percent:.0f}% {job.progress.message}".strip() if job.HasField("progress") else ""
        labels = ",".join(f"{k}={v}" for k, v in sorted(job.options.labels.items()))
        rows.append(
            [
                job.id,
                job.kind,
                state_name(job.state),
                f"{job.attempt}/{job.max_attempts}",
                time_text(job.create_time),
                labels,
                _short(progress, 40),
            ]
        )
    return table(["ID", "KIND", "STATE", "ATTEMPT", "CREATED", "LABELS", "PROGRESS"], rows)


def dead_letters_table(letters: Sequence[admin_service_pb2.DeadLetter]) -> str:
    rows = []
    for dead in letters:
        last = dead.job.errors[-1] if dead.job.errors else None
        error = f"{last.type}: {last.message}" if last is not None else ""
        when = time_text(dead.dead_letter_time)
        rows.append([dead.job_id, dead.job.kind, str(len(dead.job.errors)), when, dead.reason, _short(error)])
    return table(["JOB", "KIND", "ERRORS", "DEAD SINCE", "REASON", "LAST ERROR"], rows)


def bar(percent: float, width: int = BAR_WIDTH) -> str:
    filled = round(max(0.0, min(100.0, percent)) / 100 * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


@dataclass
class WatchView:
    """What a watch shows after each event: the job's state, attempt, progress and what just happened."""

    max_attempts: int = 0
    state: str = ""
    attempt: int = 0
    percent: float = 0.0
    note: str = ""

    def apply(self, event: job_pb2.JobEvent) -> None:
        self.state = state_name(event.state)
        self.attempt = event.attempt or self.attempt
        kind = event.type
        if kind == job_pb2.JOB_EVENT_TYPE_STARTED:
            # A new attempt starts from nothing.
            self.percent = 0.0
        if event.HasField("progress"):
            self.percent = event.progress.percent
        if kind == job_pb2.JOB_EVENT_TYPE_SUCCEEDED:
            self.percent = 100.0
        self.note = self._note(event)

    def _note(self, event: job_pb2.JobEvent) -> str:
        error = f"{event.error.type}: {event.error.message}" if event.HasField("error") else ""
        kind = event.type
        if kind == job_pb2.JOB_EVENT_TYPE_PROGRESS:
            return event.progress.message
        if kind == job_pb2.JOB_EVENT_TYPE_RETRYING:
            delay = event.retry_delay.ToNanoseconds() / 1e9
            return f"{error}; next attempt in {seconds_text(delay)}"
        if kind in (job_pb2.JOB_EVENT_TYPE_FAILED, job_pb2.JOB_EVENT_TYPE_DEAD_LETTERED):
            return error or event_name(kind).lower().replace("_", " ")
        notes = {
            job_pb2.JOB_EVENT_TYPE_SCHEDULED: "waiting for its run time",
            job_pb2.JOB_EVENT_TYPE_QUEUED: "waiting for a worker",
            job_pb2.JOB_EVENT_TYPE_STARTED: f"attempt {event.attempt} started",
            job_pb2.JOB_EVENT_TYPE_SUCCEEDED: "done",
            job_pb2.JOB_EVENT_TYPE_CANCELED: "canceled",
            job_pb2.JOB_EVENT_TYPE_CANCEL_REQUESTED: "cancel requested; stopping the running attempt",
        }
        return notes.get(kind, event_name(kind).lower().replace("_", " "))

    def _attempt(self) -> str:
        if not self.attempt:
            return ""
        return f"attempt {self.attempt}/{self.max_attempts}" if self.max_attempts else f"attempt {self.attempt}"

    def _percent(self) -> str:
        # Before an attempt runs there is no progress to speak of.
        return f"{self.percent:3.0f}%" if self.percent > 0 or self.state == "RUNNING" else ""

    def line(self) -> str:
        """A plain line, for logs and pipes."""
        parts = (f"{self.state:<9}", self._attempt(), self._percent(), self.note)
        return "  ".join(part for part in parts if part).rstrip()

    def tty_line(self) -> str:
        """The same with a progress bar, for a line that is redrawn in place."""
        parts = (f"{self.state:<9}", self._attempt(), bar(self.percent), f"{self.percent:3.0f}%", self.note)
        return "  ".join(part for part in parts if part).rstrip()
