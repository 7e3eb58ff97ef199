"""The single-machine store: one SQLite file shared by every local process (gateway, generator, renderer).

SQLite calls block, so each store runs all of them on one dedicated thread that owns the connection; the
event loop only awaits. A transaction always begins and ends inside one call on that thread, so a cancelled
coroutine can never leave a transaction (or its write lock) open. Conditional updates read, call `change` on
the event loop with no lock held, then write only if the revision is still the one they read.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from syllabus.store import records
from syllabus.store.base import (
    CourseChange,
    CoursePage,
    Inserted,
    JobChange,
    JobPage,
    JobQuery,
    ScheduleChange,
    Updated,
)
from syllabus.v1 import course_pb2, job_pb2

T = TypeVar("T")
M = TypeVar("M", course_pb2.Course, job_pb2.Schedule)

SCHEMA_VERSION = 1
# Other processes hold the write lock for one short transaction at a time; wait for them rather than fail.
BUSY_TIMEOUT_SECONDS = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    state INTEGER NOT NULL,
    kind TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs (tenant, idempotency_key) WHERE idempotency_key != '';
CREATE INDEX IF NOT EXISTS jobs_tenant_id ON jobs (tenant, id DESC);
CREATE INDEX IF NOT EXISTS jobs_tenant_state_id ON jobs (tenant, state, id);
CREATE INDEX IF NOT EXISTS jobs_tenant_kind_id ON jobs (tenant, kind, id);
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs (parent_id, id);
CREATE TABLE IF NOT EXISTS job_labels (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (job_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_labels_key_value ON job_labels (key, value, job_id);
CREATE TABLE IF NOT EXISTS courses (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    revision INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS courses_tenant_id ON courses (tenant, id DESC);
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    revision INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS schedules_tenant_id ON schedules (tenant, id);
"""


class EmbeddedStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor: ThreadPoolExecutor | None = None
        # Created, used and closed on the executor's thread only.
        self._conn: sqlite3.Connection | None = None

    # Lifecycle.

    async def open(self) -> None:
        if self._executor is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="syllabus-store")
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor = executor

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # Queued behind every call already submitted, so those finish first.
        await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        executor.shutdown(wait=False)

    def _connect(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; every write transaction is an explicit BEGIN IMMEDIATE.
        conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            # WAL lets readers in other processes go on while one process writes.
            conn.execute("PRAGMA journal_mode = WAL")
            # This is the system of record: a committed job must survive a power cut, not only a crash.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            _create_schema(conn, self._path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            raise RuntimeError("the store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise RuntimeError("the store is closed")
        return fn(self._conn)

    def _reader(self, table: str, record_id: str) -> Callable[[], Awaitable[tuple[int, bytes] | None]]:
        return functools.partial(self._run, functools.partial(_read, table=table, record_id=record_id))

    def _record_writer(self, table: str, record_id: str) -> Callable[[M, M, int], Awaitable[bool]]:
        async def write(_: M, after: M, revision: int) -> bool:
            data = records.serialize(after)
            return await self._run(
                functools.partial(_write_record, table=table, record_id=record_id, data=data, revision=revision)
            )

        return write

    # Jobs.

    async def insert_jobs(self, jobs: Sequence[job_pb2.Job]) -> list[Inserted]:
        for job in jobs:
            records.require_id(job.id, "job")
        rows = [records.job_columns(job) for job in jobs]
        outcome = await self._run(functools.partial(_insert_jobs, rows=rows))
        return [
            Inserted(records.parse_job(row.data), True)
            if existing is None
            else Inserted(records.parse_job(existing), False)
            for row, existing in zip(rows, outcome, strict=True)
        ]

    async def get_job(self, job_id: str) -> job_pb2.Job | None:
        row = await self._run(functools.partial(_read, table="jobs", record_id=job_id))
        return None if row is None else records.parse_job(row[1])

    async def delete_jobs(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            await self._run(functools.partial(_delete_jobs, job_ids=list(job_ids)))

    async def list_jobs(self, query: JobQuery) -> JobPage:
        limit = records.page_limit(query.page_size)
        after_id = records.decode_page_token(records.JOBS_TOKEN, query.page_token)
        rows = await self._run(functools.partial(_list_jobs, query=query, after_id=after_id, limit=limit + 1))
        return JobPage(
            [records.parse_job(data) for _, data in rows[:limit]], _next_token(records.JOBS_TOKEN, rows, limit)
        )

    async def update_job(self, job_id: str, change: JobChange) -> Updated:
        async def write(before: job_pb2.Job, after: job_pb2.Job, revision: int) -> bool:
            labels_changed = before.options.labels != after.options.labels
            return await self._run(
                functools.partial(
                    _write_job, row=records.job_columns(after), revision=revision, labels_changed=labels_changed
                )
            )

        job, applied = await records.conditional_update(
            self._reader("jobs", job_id), records.parse_job, change, records.check_job_identity, write
        )
        return Updated(job, applied)

    # Courses.

    async def insert_course(self, course: course_pb2.Course) -> None:
        records.require_id(course.id, "course")
        await self._run(
            functools.partial(
                _insert_record,
                table="courses",
                record_id=course.id,
                tenant=course.tenant,
                data=records.serialize(course),
            )
        )

    async def get_course(self, course_id: str) -> course_pb2.Course | None:
        row = await self._run(functools.partial(_read, table="courses", record_id=course_id))
        return None if row is None else records.parse_course(row[1])

    async def list_courses(self, tenant: str, page_size: int, page_token: str) -> CoursePage:
        limit = records.page_limit(page_size)
        after_id = records.decode_page_token(records.COURSES_TOKEN, page_token)
        rows = await self._run(functools.partial(_list_courses, tenant=tenant, after_id=after_id, limit=limit + 1))
        return CoursePage(
            [records.parse_course(data) for _, data in rows[:limit]], _next_token(records.COURSES_TOKEN, rows, limit)
        )

    async def update_course(self, course_id: str, change: CourseChange) -> course_pb2.Course | None:
        course, _ = await records.conditional_update(
            self._reader("courses", course_id),
            records.parse_course,
            change,
            records.check_course_identity,
            self._record_writer("courses", course_id),
        )
        return course

    # Schedules.

    async def insert_schedule(self, schedule: job_pb2.Schedule) -> None:
        records.require_id(schedule.id, "schedule")
        await self._run(
            functools.partial(
                _insert_record,
                table="schedules",
                record_id=schedule.id,
                tenant=schedule.tenant,
                data=records.serialize(schedule),
            )
        )

    async def get_schedule(self, schedule_id: str) -> job_pb2.Schedule | None:
        row = await self._run(functools.partial(_read, table="schedules", record_id=schedule_id))
        return None if row is None else records.parse_schedule(row[1])

    async def list_schedules(self, tenant: str) -> list[job_pb2.Schedule]:
        rows = await self._run(functools.partial(_list_schedules, tenant=tenant))
        return [records.parse_schedule(data) for data in rows]

    async def update_schedule(self, schedule_id: str, change: ScheduleChange) -> job_pb2.Schedule | None:
        schedule, _ = await records.conditional_update(
            self._reader("schedules", schedule_id),
            records.parse_schedule,
            change,
            records.check_schedule_identity,
            self._record_writer("schedules", schedule_id),
        )
        return schedule

    async def delete_schedule(self, schedule_id: str) -> bool:
        return await self._run(functools.partial(_delete_schedule, schedule_id=schedule_id))


def _next_token(kind: str, rows: list[tuple[str, bytes]], limit: int) -> str:
    # One row more than the page was read: it exists only if there is a next page.
    return records.encode_page_token(kind, rows[limit - 1][0]) if len(rows) > limit else ""


# Everything below runs on the store's thread.


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so a transaction never fails
    # halfway because another process wrote after it began reading.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _create_schema(conn: sqlite3.Connection, path: Path) -> None:
    # In a transaction: processes starting together must not each see an empty file and race to migrate it.
    with _transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{path} has schema version {version}; this build knows up to {SCHEMA_VERSION}")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _read(conn: sqlite3.Connection, table: str, record_id: str) -> tuple[int, bytes] | None:
    row = conn.execute(f"SELECT revision, data FROM {table} WHERE id = ?", (record_id,)).fetchone()
    return None if row is None else (row[0], row[1])


def _insert_jobs(conn: sqlite3.Connection, rows: list[records.JobColumns]) -> list[bytes | None]:
    """For each row, None when inserted, else the data of the job that holds its idempotency key."""
    outcome: list[bytes | None] = []
    with _transaction(conn):
        for row in rows:
            if row.idempotency_key:
                # The redundant `!= ''` lets SQLite prove the partial unique index applies and use it.
                existing = conn.execute(
                    "SELECT data FROM jobs WHERE tenant = ? AND idempotency_key = ? AND idempotency_key != ''",
                    (row.tenant, row.idempotency_key),
                ).fetchone()
                if existing is not None:
                    outcome.append(existing[0])
                    continue
            try:
                conn.execute(
                    "INSERT INTO jobs (id, tenant, state, kind, parent_id, idempotency_key, revision, data)"
                    " VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                    (row.id, row.tenant, row.state, row.kind, row.parent_id, row.idempotency_key, row.data),
                )
            except sqlite3.IntegrityError:
                raise records.DuplicateId(f"job {row.id} already exists") from None
            _insert_labels(conn, row)
            outcome.append(None)
    return outcome


def _insert_labels(conn: sqlite3.Connection, row: records.JobColumns) -> None:
    conn.executemany(
        "INSERT INTO job_labels (job_id, key, value) VALUES (?, ?, ?)",
        [(row.id, key, value) for key, value in row.labels.items()],
    )


def _delete_jobs(conn: sqlite3.Connection, job_ids: list[str]) -> None:
    # Their labels go with them (ON DELETE CASCADE).
    with _transaction(conn):
        conn.executemany("DELETE FROM jobs WHERE id = ?", [(job_id,) for job_id in job_ids])


def _write_job(conn: sqlite3.Connection, row: records.JobColumns, revision: int, labels_changed: bool) -> bool:
    with _transaction(conn):
        cursor = conn.execute(
            "UPDATE jobs SET state = ?, kind = ?, parent_id = ?, data = ?, revision = revision + 1"
            " WHERE id = ? AND revision = ?",
            (row.state, row.kind, row.parent_id, row.data, row.id, revision),
        )
        if cursor.rowcount != 1:
            return False
        if labels_changed:
            conn.execute("DELETE FROM job_labels WHERE job_id = ?", (row.id,))
            _insert_labels(conn, row)
    return True


def _list_jobs(conn: sqlite3.Connection, query: JobQuery, after_id: str, limit: int) -> list[tuple[str, bytes]]:
    clauses = ["tenant = ?"]
    params: list[str | int] = [query.tenant]
    if query.states:
        clauses.append(f"state IN ({', '.join('?' * len(query.states))})")
        params.extend(sorted(query.states))
    if query.kind:
        clauses.append("kind = ?")
        params.append(query.kind)
    if query.parent_id:
        clauses.append("parent_id = ?")
        params.append(query.parent_id)
    for key, value in sorted(query.labels.items()):
        clauses.append("EXISTS (SELECT 1 FROM job_labels WHERE job_id = jobs.id AND key = ? AND value = ?)")
        params.extend((key, value))
    if after_id:
        clauses.append("id < ?")
        params.append(after_id)
    params.append(limit)
    sql = f"SELECT id, data FROM jobs WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?"
    return [(row[0], row[1]) for row in conn.execute(sql, params)]


def _insert_record(conn: sqlite3.Connection, table: str, record_id: str, tenant: str, data: bytes) -> None:
    try:
        conn.execute(f"INSERT INTO {table} (id, tenant, revision, data) VALUES (?, ?, 1, ?)", (record_id, tenant, data))
    except sqlite3.IntegrityError:
        raise records.DuplicateId(f"{table} record {record_id} already exists") from None


def _write_record(conn: sqlite3.Connection, table: str, record_id: str, data: bytes, revision: int) -> bool:
    cursor = conn.execute(
        f"UPDATE {table} SET data = ?, revision = revision + 1 WHERE id = ? AND revision = ?",
        (data, record_id, revision),
    )
    return cursor.rowcount == 1


def _list_courses(conn: sqlite3.Connection, tenant: str, after_id: str, limit: int) -> list[tuple[str, bytes]]:
    if after_id:
        cursor = conn.execute(
            "SELECT id, data FROM courses WHERE tenant = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (tenant, after_id, limit),
        )
    else:
        cursor = conn.execute("SELECT id, data FROM courses WHERE tenant = ? ORDER BY id DESC LIMIT ?", (tenant, limit))
    return [(row[0], row[1]) for row in cursor]


def _list_schedules(conn: sqlite3.Connection, tenant: str) -> list[bytes]:
    return [row[0] for row in conn.execute("SELECT data FROM schedules WHERE tenant = ? ORDER BY id", (tenant,))]


def _delete_schedule(conn: sqlite3.Connection, schedule_id: str) -> bool:
    return conn.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,)).rowcount == 1
