"""Errors that cross module boundaries, each mapped to one gRPC status by the gateway."""

from __future__ import annotations


class QueueFull(Exception):
    """JOBS refused the job (its limits are reached and it discards new messages): the caller backs off."""

    def __init__(self, retry_after: float = 5.0) -> None:
        super().__init__(f"the job queue is full; retry in {retry_after:g}s")
        self.retry_after = retry_after


class LimitReached(Exception):
    """A tenant's limit refuses the call: its rate, its waiting jobs, or its spend budget. `retry_after` says when
    waiting helps (None: not by itself, e.g. a budget spent until the period ends far off)."""

    def __init__(self, message: str, subject: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.subject = subject
        self.retry_after = retry_after


class LimitsUnavailable(Exception):
    """The limits cannot be checked (Redis is away) and they are configured to refuse rather than let calls by."""


class BrokerUnavailable(Exception):
    """NATS did not acknowledge in time (down, partitioned, or reconnecting)."""


class StoreUnavailable(Exception):
    """The store cannot take a call now through no fault of the call: its database is locked by another process
    past the busy timeout, or its disk is full. An outage (syllabus.outages), like a lost MongoDB server."""


class JobNotFound(Exception):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} not found")
        self.job_id = job_id


class NotFound(Exception):
    """Something other than a job that the caller named and that is not there (or not theirs)."""

    def __init__(self, resource_type: str, name: str) -> None:
        super().__init__(f"{resource_type.rsplit('.', 1)[-1].lower()} {name!r} not found")
        self.resource_type = resource_type
        self.name = name


class AlreadyExists(Exception):
    """A create named an id that is taken."""


class InvalidRequest(Exception):
    """A request that passed the proto rules but breaks a rule only the service knows."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


class InvalidFields(Exception):
    """Several fields break rules only the service checks, e.g. the protovalidate rules of a task's own input."""

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {text}" for field, text in violations))
        self.violations = violations


class Conflict(Exception):
    """The request does not fit the job's current state (FAILED_PRECONDITION)."""


class WatchFellBehind(Exception):
    """A watch's client read so much slower than events came that the gateway stopped buffering for it."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the watch fell more than {limit} events behind and was ended; watch again after the last "
            "sequence received (after_sequence, or Last-Event-ID)"
        )
