"""The system-of-record interface every store implements (embedded SQLite, MongoDB).

Records are protobuf messages. Every conditional update (the attempt lease, fan-in, cancellation) is a
`change` function applied atomically: the store reads the record, calls `change`, and writes the result only
if nobody wrote the record in between (optimistic concurrency on a revision), retrying otherwise. The rules
live in one place (the callers' change functions), not once per store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

from syllabus.v1 import course_pb2, job_pb2

# Returns the new record, or None to refuse the change (the stored record stays as it is).
JobChange = Callable[[job_pb2.Job], job_pb2.Job | None]
CourseChange = Callable[[course_pb2.Course], course_pb2.Course | None]
ScheduleChange = Callable[[job_pb2.Schedule], job_pb2.Schedule | None]


class Inserted(NamedTuple):
    job: job_pb2.Job
    # False when a job with the same (tenant, idempotency key) existed: `job` is that earlier job.
    created: bool


class Updated(NamedTuple):
    # The record as stored after the call (changed or not); None when there is no such record.
    job: job_pb2.Job | None
    applied: bool


@dataclass(frozen=True)
class JobQuery:
    tenant: str
    states: frozenset[int] = frozenset()
    kind: str = ""
    # Every one of these must match.
    labels: Mapping[str, str] = field(default_factory=dict)
    parent_id: str = ""
    page_size: int = 50
    # Opaque: the next_page_token of the previous page.
    page_token: str = ""
    schedule_id: str = ""
    # "created": newest first; "ended": ended jobs only, most recently ended first.
    order: Literal["created", "ended"] = "created"
    # Also count every job matching the filters, over all pages (JobPage.total_size).
    with_total: bool = False
    # Only jobs created at or after / before these times (ns); 0 means no bound.
    created_after_ns: int = 0
    created_before_ns: int = 0


class JobPage(NamedTuple):
    jobs: list[job_pb2.Job]
    next_page_token: str
    # Set when the query asked for it.
    total_size: int | None = None


class JobCount(NamedTuple):
    """How many of a tenant's jobs share a kind, task name ("" unless a task), priority and state."""

    kind: str
    task: str
    priority: int
    state: int
    jobs: int
    # The earliest create time among them, ns.
    oldest_create_ns: int


@dataclass(frozen=True)
class ActivityQuery:
    """A tenant's jobs over [since_ns, until_ns) in buckets of bucket_ns (bucket i starts at since_ns + i *
    bucket_ns), of one kind or task name if `kind` is set."""

    tenant: str
    since_ns: int
    until_ns: int
    bucket_ns: int
    kind: str = ""
    # Upper bounds (inclusive, ascending, ns) of the run-duration buckets; one more bucket holds longer runs.
    duration_bounds_ns: tuple[int, ...] = ()


@dataclass(frozen=True)
class Activity:
    """What ActivityQuery asks for, each figure keyed by bucket index (absent: none)."""

    created: dict[int, int]
    # Jobs whose first attempt started in the bucket.
    started: dict[int, int]
    # (bucket, ended state) -> jobs that ended in the bucket in that state.
    ended: dict[tuple[int, int], int]
    # Jobs that ended in the bucket without ever starting (canceled while they waited).
    ended_unstarted: dict[int, int]
    # Jobs created before since_ns and neither started nor ended then: waiting when the window begins.
    waiting_at_start: int
    # Duration bucket index -> jobs ended in the window whose run (end less first start) fell in it.
    durations: dict[int, int]


class CoursePage(NamedTuple):
    courses: list[course_pb2.Course]
    next_page_token: str


class InvalidPageToken(ValueError):
    """A page token that this store did not produce."""


class Store(Protocol):
    async def open(self) -> None:
        """Connect and create tables/indexes (idempotent)."""

    async def close(self) -> None: ...

    # Jobs. A job's id is time-ordered (syllabus.ids.new_id), so newest first is id descending.
    async def insert_jobs(self, jobs: Sequence[job_pb2.Job]) -> list[Inserted]:
        """Insert each job, in order, unless its (tenant, options.idempotency_key) is taken (non-empty keys)."""

    async def get_job(self, job_id: str) -> job_pb2.Job | None: ...

    async def delete_jobs(self, job_ids: Sequence[str]) -> None:
        """Remove records whose jobs never reached the queue (their publish failed), freeing their keys."""

    async def list_jobs(self, query: JobQuery) -> JobPage:
        """Newest first. Raises InvalidPageToken for a token it did not produce."""

    async def update_job(self, job_id: str, change: JobChange) -> Updated: ...

    async def count_jobs(self, tenant: str, ended_since_ns: int) -> list[JobCount]:
        """The tenant's jobs counted in one grouped query: every job not ended, and the ended ones (SUCCEEDED,
        FAILED, CANCELED) whose end time is at or after `ended_since_ns`."""

    async def activity(self, query: ActivityQuery) -> Activity:
        """The tenant's jobs over time, each figure in one grouped query (the dashboard's charts)."""

    async def ended_jobs(self, tenant: str, ended_before_ns: int, limit: int) -> list[job_pb2.Job]:
        """The tenant's jobs that ended (SUCCEEDED, FAILED, CANCELED) before `ended_before_ns`, earliest ended
        first, at most `limit` (retention removes them a batch at a time)."""

    async def delete_ended_jobs(self, job_ids: Sequence[str], ended_before_ns: int) -> list[str]:
        """Delete those of `job_ids` that are still ended before `ended_before_ns` (one retried from the dead-letter
        queue since it was listed is not); returns the ids deleted."""

    async def waiting_jobs(
        self, tenant: str, created_after_ns: int, created_before_ns: int, limit: int
    ) -> list[job_pb2.Job]:
        """The tenant's QUEUED or SCHEDULED jobs created after `created_after_ns` and at or before
        `created_before_ns`, oldest first, at most `limit` (the orphan sweep looks for those never published)."""

    async def update_jobs(self, changes: Sequence[tuple[str, JobChange]]) -> list[Updated]:
        """Many update_job calls in one: each change applied to its own job on its own terms, the answers in
        order, in as few round trips as the store allows (the workers claim and settle a batch at once). Changes
        of one job apply in the order given, each to the record the one before it left. A change that raises
        fails the whole call; which of the others were applied is then unknown, as if each had been its own
        update_job call cut short."""

    # Courses.
    async def insert_course(self, course: course_pb2.Course) -> None: ...

    async def get_course(self, course_id: str) -> course_pb2.Course | None: ...

    async def list_courses(self, tenant: str, page_size: int, page_token: str) -> CoursePage: ...

    async def update_course(self, course_id: str, change: CourseChange) -> course_pb2.Course | None:
        """Returns the stored course after the call (changed or not), None if there is no such course.

        A change that raises the course's `version` keeps the record it replaces as that earlier version, in the
        same write: no version is lost, and none is kept that was not replaced."""

    async def get_course_version(self, course_id: str, version: int) -> course_pb2.Course | None:
        """An earlier version of the course as update_course kept it; None if there is none."""

    async def list_course_versions(self, course_id: str) -> list[course_pb2.Course]:
        """The earlier versions of the course that update_course kept, oldest first."""

    # Schedules (the scheduler's recurring jobs).
    async def insert_schedule(self, schedule: job_pb2.Schedule) -> None: ...

    async def get_schedule(self, schedule_id: str) -> job_pb2.Schedule | None: ...

    async def list_schedules(self, tenant: str) -> list[job_pb2.Schedule]: ...

    async def tenants(self) -> list[str]:
        """Every tenant that has a job or a schedule, sorted (the scheduler's sweeps go through each)."""

    async def update_schedule(self, schedule_id: str, change: ScheduleChange) -> job_pb2.Schedule | None: ...

    async def delete_schedule(self, schedule_id: str) -> bool: ...
