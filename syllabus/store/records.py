"""What both stores share: the indexed columns of a job, page tokens and page sizes, the identity rules.

Records are kept as serialized protobuf; the columns beside them only exist to filter and to enforce
uniqueness, so they are always derived from the message, never written on their own.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import NamedTuple, TypeVar

from google.protobuf import timestamp_pb2

from syllabus.store.base import InvalidPageToken
from syllabus.v1 import course_pb2, job_pb2

M = TypeVar("M", job_pb2.Job, course_pb2.Course, job_pb2.Schedule)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

# A token names what it pages through, so a courses token handed to list_jobs is refused, not misread.
JOBS_TOKEN = "jobs"
# Pages of ended jobs by end time: the token holds the last job's end time and id.
ENDED_JOBS_TOKEN = "ended-jobs"
COURSES_TOKEN = "courses"
_TOKEN_VERSION = "v1"


class DuplicateId(ValueError):
    """A record with this id already exists."""


class JobColumns(NamedTuple):
    id: str
    tenant: str
    state: int
    kind: str
    parent_id: str
    idempotency_key: str
    labels: dict[str, str]
    data: bytes
    # The task's name for a task job, else "": jobs are counted per task name (a pool serves several).
    task: str = ""
    priority: int = 0
    create_ns: int = 0
    # Set only once the job ended (SUCCEEDED, FAILED, CANCELED): it orders and windows the ended jobs.
    end_ns: int | None = None
    schedule_id: str = ""
    # When its first attempt started; None until then (and again once a dead letter's retry clears it).
    start_ns: int | None = None


ENDED_STATES = frozenset({job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELED})


def end_ns(job: job_pb2.Job) -> int | None:
    if job.state not in ENDED_STATES or not job.HasField("end_time"):
        return None
    return _ns(job.end_time)


def start_ns(job: job_pb2.Job) -> int | None:
    if not job.HasField("start_time"):
        return None
    return _ns(job.start_time)


def _ns(stamp: timestamp_pb2.Timestamp) -> int:
    # Read on every update of a job: ToNanoseconds would validate the value first, in Python.
    return stamp.seconds * 1_000_000_000 + stamp.nanos


def job_columns(job: job_pb2.Job) -> JobColumns:
    return JobColumns(
        id=job.id,
        tenant=job.tenant,
        state=int(job.state),
        kind=job.kind,
        parent_id=job.parent_id,
        idempotency_key=job.options.idempotency_key,
        labels=dict(job.options.labels),
        data=serialize(job),
        task=job.spec.task.name if job.spec.HasField("task") else "",
        priority=int(job.options.priority),
        create_ns=job.create_time.ToNanoseconds(),
        end_ns=end_ns(job),
        schedule_id=job.schedule_id,
        start_ns=start_ns(job),
    )


def serialize(message: job_pb2.Job | job_pb2.Schedule | course_pb2.Course) -> bytes:
    # Deterministic so that equal records give equal bytes (map order would otherwise vary).
    data: bytes = message.SerializeToString(deterministic=True)
    return data


def parse_job(data: bytes) -> job_pb2.Job:
    job = job_pb2.Job()
    job.ParseFromString(data)
    return job


def parse_course(data: bytes) -> course_pb2.Course:
    course = course_pb2.Course()
    course.ParseFromString(data)
    return course


def parse_schedule(data: bytes) -> job_pb2.Schedule:
    schedule = job_pb2.Schedule()
    schedule.ParseFromString(data)
    return schedule


def require_id(record_id: str, what: str) -> None:
    if not record_id:
        raise ValueError(f"{what} has no id")


def check_job_identity(before: job_pb2.Job, after: job_pb2.Job) -> None:
    """A change may rewrite a job's content but not what identifies it (id, tenant, idempotency key)."""
    if (after.id, after.tenant, after.options.idempotency_key) != (
        before.id,
        before.tenant,
        before.options.idempotency_key,
    ):
        raise ValueError(f"a change to job {before.id} altered its id, tenant or idempotency key")


def check_course_identity(before: course_pb2.Course, after: course_pb2.Course) -> None:
    if (after.id, after.tenant) != (before.id, before.tenant):
        raise ValueError(f"a change to course {before.id} altered its id or tenant")


def check_schedule_identity(before: job_pb2.Schedule, after: job_pb2.Schedule) -> None:
    if (after.id, after.tenant) != (before.id, before.tenant):
        raise ValueError(f"a change to schedule {before.id} altered its id or tenant")


def page_limit(page_size: int) -> int:
    if page_size < 0:
        raise ValueError(f"page_size must be >= 0, got {page_size}")
    if page_size == 0:
        return DEFAULT_PAGE_SIZE
    return min(page_size, MAX_PAGE_SIZE)


def encode_page_token(kind: str, last_id: str) -> str:
    raw = f"{_TOKEN_VERSION}:{kind}:{last_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(kind: str, token: str) -> str:
    """The last id of the previous page, or "" for the first page."""
    if not token:
        return ""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidPageToken("page token is not valid") from None
    version, _, rest = raw.partition(":")
    token_kind, _, last_id = rest.partition(":")
    if version != _TOKEN_VERSION or token_kind != kind or not last_id:
        raise InvalidPageToken("page token is not valid")
    return last_id


def encode_end_token(end: int, last_id: str) -> str:
    return encode_page_token(ENDED_JOBS_TOKEN, f"{end}/{last_id}")


def decode_end_token(token: str) -> tuple[int, str] | None:
    """(end time in ns, id) of the previous page's last job, or None for the first page."""
    if not token:
        return None
    end, _, last_id = decode_page_token(ENDED_JOBS_TOKEN, token).partition("/")
    if not end.isdigit() or not last_id:
        raise InvalidPageToken("page token is not valid")
    return int(end), last_id


async def conditional_update(
    read: Callable[[], Awaitable[tuple[int, bytes] | None]],
    parse: Callable[[bytes], M],
    change: Callable[[M], M | None],
    check: Callable[[M, M], None],
    write: Callable[[M, M, int], Awaitable[bool]],
) -> tuple[M | None, bool]:
    """Optimistic concurrency, the same for every store and record type.

    `read` gives (revision, data); `write(before, after, revision)` stores `after` only if the record is still
    at `revision` and says whether it did. A lost race starts over from a fresh read, so `change` may run more
    than once and must depend only on the record it is given. It gets its own copy, and runs with no lock held.
    """
    while True:
        row = await read()
        if row is None:
            return None, False
        revision, data = row
        before = parse(data)
        after = change(parse(data))
        if after is None:
            return before, False
        if after == before:
            # Nothing to write; skipping it spares the other writers a conflict.
            return before, True
        check(before, after)
        if await write(before, after, revision):
            return after, True
