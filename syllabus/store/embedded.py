"""The single-machine store: one SQLite file shared by every local process (gateway, generator, renderer).

SQLite calls block, so each store runs all of them on one dedicated thread that owns the connection; the
event loop only awaits. Writes are group-committed: whatever writes are waiting when the thread comes round
run in one IMMEDIATE transaction (each in its own savepoint, so one failing write does not undo the others)
and share one commit. A transaction begins and ends inside one turn of that thread, so a cancelled coroutine
can never leave it (or its write lock) open. Conditional updates read, call `change` and write inside that
transaction, holding the database's write lock, so no other process can write in between.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from syllabus.errors import StoreUnavailable
from syllabus.store import records
from syllabus.store.base import (
    Activity,
    ActivityQuery,
    CourseChange,
    CoursePage,
    Inserted,
    JobChange,
    JobCount,
    JobPage,
    JobQuery,
    ScheduleChange,
    Updated,
)
from syllabus.store.checkpoints import BACKSTOP_PAGES, Checkpointer
from syllabus.v1 import course_pb2, job_pb2

T = TypeVar("T")
M = TypeVar("M", course_pb2.Course, job_pb2.Schedule)

SCHEMA_VERSION = 3
# Host parameters per statement: SQLite's default limit is 32,766 (999 before 3.32); a batch reads in chunks.
_MAX_PARAMS = 500
# Other processes hold the write lock for one short transaction at a time (milliseconds); wait for them rather than
# fail. A lock held longer is an outage (another program holds it): the call fails with StoreUnavailable, which its
# caller retries with back-off or answers UNAVAILABLE, rather than every later call of the process queueing behind it.
BUSY_TIMEOUT_SECONDS = 5.0
# SQLite's primary result codes that say the database cannot be used now, not that the call was wrong: locked, busy,
# disk full, an I/O error.
_OUTAGE_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR})

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
CREATE TABLE IF NOT EXISTS course_versions (
    course_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (course_id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    revision INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS schedules_tenant_id ON schedules (tenant, id);
"""

# Job columns later than the first schema: added to a table that lacks them (a new one, or one made by an older
# build, whose rows are then filled in from their records) before their indexes are made.
_ADDED_JOB_COLUMNS = {
    "task": "TEXT NOT NULL DEFAULT ''",
    "priority": "INTEGER NOT NULL DEFAULT 0",
    "create_ns": "INTEGER NOT NULL DEFAULT 0",
    "end_ns": "INTEGER",
    "schedule_id": "TEXT NOT NULL DEFAULT ''",
    "start_ns": "INTEGER",
}
_ADDED_JOB_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_tenant_end ON jobs (tenant, end_ns DESC, id DESC) WHERE end_ns IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_tenant_schedule ON jobs (tenant, schedule_id, id) WHERE schedule_id != '';
CREATE INDEX IF NOT EXISTS jobs_tenant_state_create ON jobs (tenant, state, create_ns);
CREATE INDEX IF NOT EXISTS jobs_tenant_create ON jobs (tenant, create_ns);
CREATE INDEX IF NOT EXISTS jobs_tenant_start ON jobs (tenant, start_ns) WHERE start_ns IS NOT NULL;
"""
_NOT_ENDED_STATES = tuple(
    sorted(int(state) for state in job_pb2.JobState.values() if state and state not in records.ENDED_STATES)
)


Settled = list[tuple["asyncio.Future[Any]", Any, BaseException | None]]


@dataclass
class _Call:
    fn: Callable[[sqlite3.Connection], Any]
    write: bool
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


# PRAGMA synchronous values the store accepts (CommonConfig.store_sync).
SYNC_MODES = ("full", "normal")


class EmbeddedStore:
    def __init__(self, path: Path, sync: str = "full") -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, not {sync!r}")
        self._path = path
        self._sync = sync
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Created, used and closed on the store's thread only.
        self._conn: sqlite3.Connection | None = None
        self._checkpoints = Checkpointer(path, sync)

    # Lifecycle.

    async def open(self) -> None:
        if self._thread is not None:
            return
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._serve, args=(loop, opened), name="syllabus-store", daemon=True)
        self._thread.start()
        try:
            await opened
        except BaseException as exc:
            self._thread.join()
            self._thread = None
            # Opening writes (the schema), so a locked or full database file stops it too: an outage, tried again.
            outage = _outage(exc)
            if outage is None:
                raise
            raise outage from exc
        self._checkpoints.start()

    async def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        await asyncio.to_thread(self._checkpoints.stop)
        # Queued behind every call already submitted, so those finish first.
        self._calls.put(None)
        await asyncio.to_thread(thread.join)

    def _serve(self, loop: asyncio.AbstractEventLoop, opened: asyncio.Future[None]) -> None:
        failure: BaseException | None = None
        try:
            self._connect()
        except BaseException as exc:
            failure = exc
        started: Settled = [(opened, None, failure)]
        loop.call_soon_threadsafe(_settle, started)
        if failure is not None:
            return
        assert self._conn is not None
        conn = self._conn
        stopping = False
        while not stopping:
            batch = [self._calls.get()]
            while True:
                try:
                    batch.append(self._calls.get_nowait())
                except queue.Empty:
                    break
            stopping = None in batch
            calls = [call for call in batch if call is not None]
            outcomes = _run_batch(conn, calls)
            by_loop: dict[asyncio.AbstractEventLoop, Settled] = {}
            for call, (result, error) in zip(calls, outcomes, strict=True):
                by_loop.setdefault(call.loop, []).append((call.future, result, error))
            for target, settled in by_loop.items():
                # One wake-up of the event loop per batch, not one per call.
                target.call_soon_threadsafe(_settle, settled)
        self._disconnect()

    def _connect(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; every write transaction is an explicit BEGIN IMMEDIATE.
        conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
        try:
            # WAL lets readers in other processes go on while one process writes.
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL in WAL mode syncs the log before a commit returns, so a job acknowledged to its caller is on disk
            # even after a power cut, as its message is in JetStream with sync always; a group commit shares the
            # sync. NORMAL only survives a crash of the process (kill -9 included): a power cut may lose the
            # last commits.
            conn.execute(f"PRAGMA synchronous = {self._sync.upper()}")
            conn.execute("PRAGMA foreign_keys = ON")
            # The log is checkpointed by a thread of its own (syllabus.store.checkpoints), not inside commits.
            conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
            _create_schema(conn, self._path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def _call(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        if self._thread is None:
            raise RuntimeError("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put(_Call(fn, write, future, loop))
        try:
            return await future
        except sqlite3.OperationalError as exc:
            outage = _outage(exc)
            if outage is None:
                raise
            raise outage from exc

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._call(fn, write=False)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._call(fn, write=True)

    # Jobs.

    async def insert_jobs(self, jobs: Sequence[job_pb2.Job]) -> list[Inserted]:
        for job in jobs:
            records.require_id(job.id, "job")
        rows = [records.job_columns(job) for job in jobs]
        outcome = await self._write(functools.partial(_insert_jobs, rows=rows))
        return [
            Inserted(job, True) if existing is None else Inserted(records.parse_job(existing), False)
            for job, existing in zip(jobs, outcome, strict=True)
        ]

    async def get_job(self, job_id: str) -> job_pb2.Job | None:
        row = await self._read(functools.partial(_select, table="jobs", record_id=job_id))
        return None if row is None else records.parse_job(row)

    async def delete_jobs(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            await self._write(functools.partial(_delete_jobs, job_ids=list(job_ids)))

    async def list_jobs(self, query: JobQuery) -> JobPage:
        limit = records.page_limit(query.page_size)
        if query.order == "ended":
            after: tuple[int, str] | str | None = records.decode_end_token(query.page_token)
        else:
            after = records.decode_page_token(records.JOBS_TOKEN, query.page_token)
        rows, total = await self._read(functools.partial(_list_jobs, query=query, after=after, limit=limit + 1))
        token = ""
        if len(rows) > limit:
            # One row more than the page was read: there is a next page.
            last_id, last_end, _ = rows[limit - 1]
            if query.order == "ended":
                token = records.encode_end_token(last_end or 0, last_id)
            else:
                token = records.encode_page_token(records.JOBS_TOKEN, last_id)
        return JobPage([records.parse_job(data) for _, _, data in rows[:limit]], token, total)

    async def update_job(self, job_id: str, change: JobChange) -> Updated:
        job, applied = await self._write(functools.partial(_update_job, job_id=job_id, change=change))
        return Updated(job, applied)

    async def update_jobs(self, changes: Sequence[tuple[str, JobChange]]) -> list[Updated]:
        if not changes:
            return []
        # One call of the store's thread, so one transaction: all of them or (a change raised) none.
        outcome = await self._write(functools.partial(_update_jobs, changes=list(changes)))
        return [Updated(job, applied) for job, applied in outcome]

    async def count_jobs(self, tenant: str, ended_since_ns: int) -> list[JobCount]:
        rows = await self._read(functools.partial(_count_jobs, tenant=tenant, ended_since_ns=ended_since_ns))
        return [JobCount(*row) for row in rows]

    async def activity(self, query: ActivityQuery) -> Activity:
        return await self._read(functools.partial(_activity, query=query))

    async def ended_jobs(self, tenant: str, ended_before_ns: int, limit: int) -> list[job_pb2.Job]:
        rows = await self._read(
            functools.partial(_ended_jobs, tenant=tenant, ended_before_ns=ended_before_ns, limit=limit)
        )
        return [records.parse_job(data) for data in rows]

    async def delete_ended_jobs(self, job_ids: Sequence[str], ended_before_ns: int) -> list[str]:
        if not job_ids:
            return []
        deleted: list[str] = await self._write(
            functools.partial(_delete_ended_jobs, job_ids=list(job_ids), ended_before_ns=ended_before_ns)
        )
        return deleted

    async def waiting_jobs(
        self, tenant: str, created_after_ns: int, created_before_ns: int, limit: int
    ) -> list[job_pb2.Job]:
        rows = await self._read(
            functools.partial(
                _waiting_jobs, tenant=tenant, after_ns=created_after_ns, before_ns=created_before_ns, limit=limit
            )
        )
        return [records.parse_job(data) for data in rows]

    # Courses.

    async def insert_course(self, course: course_pb2.Course) -> None:
        records.require_id(course.id, "course")
        await self._write(
            functools.partial(
                _insert_record,
                table="courses",
                record_id=course.id,
                tenant=course.tenant,
                data=records.serialize(course),
            )
        )

    async def get_course(self, course_id: str) -> course_pb2.Course | None:
        row = await self._read(functools.partial(_select, table="courses", record_id=course_id))
        return None if row is None else records.parse_course(row)

    async def list_courses(self, tenant: str, page_size: int, page_token: str) -> CoursePage:
        limit = records.page_limit(page_size)
        after_id = records.decode_page_token(records.COURSES_TOKEN, page_token)
        rows = await self._read(functools.partial(_list_courses, tenant=tenant, after_id=after_id, limit=limit + 1))
        return CoursePage(
            [records.parse_course(data) for _, data in rows[:limit]], _next_token(records.COURSES_TOKEN, rows, limit)
        )

    async def update_course(self, course_id: str, change: CourseChange) -> course_pb2.Course | None:
        update = functools.partial(
            _update_record,
            table="courses",
            record_id=course_id,
            parse=records.parse_course,
            change=change,
            check=records.check_course_identity,
            keep=_keep_course_version,
        )
        course: course_pb2.Course | None = await self._write(update)
        return course

    async def get_course_version(self, course_id: str, version: int) -> course_pb2.Course | None:
        row = await self._read(functools.partial(_select_course_version, course_id=course_id, version=version))
        return None if row is None else records.parse_course(row)

    async def list_course_versions(self, course_id: str) -> list[course_pb2.Course]:
        rows = await self._read(functools.partial(_list_course_versions, course_id=course_id))
        return [records.parse_course(data) for data in rows]

    # Schedules.

    async def insert_schedule(self, schedule: job_pb2.Schedule) -> None:
        records.require_id(schedule.id, "schedule")
        await self._write(
            functools.partial(
                _insert_record,
                table="schedules",
                record_id=schedule.id,
                tenant=schedule.tenant,
                data=records.serialize(schedule),
            )
        )

    async def get_schedule(self, schedule_id: str) -> job_pb2.Schedule | None:
        row = await self._read(functools.partial(_select, table="schedules", record_id=schedule_id))
        return None if row is None else records.parse_schedule(row)

    async def list_schedules(self, tenant: str) -> list[job_pb2.Schedule]:
        rows = await self._read(functools.partial(_list_schedules, tenant=tenant))
        return [records.parse_schedule(data) for data in rows]

    async def tenants(self) -> list[str]:
        found: list[str] = await self._read(_tenants)
        return found

    async def update_schedule(self, schedule_id: str, change: ScheduleChange) -> job_pb2.Schedule | None:
        update = functools.partial(
            _update_record,
            table="schedules",
            record_id=schedule_id,
            parse=records.parse_schedule,
            change=change,
            check=records.check_schedule_identity,
        )
        schedule: job_pb2.Schedule | None = await self._write(update)
        return schedule

    async def delete_schedule(self, schedule_id: str) -> bool:
        deleted: bool = await self._write(functools.partial(_delete_schedule, schedule_id=schedule_id))
        return deleted


def _outage(exc: BaseException) -> StoreUnavailable | None:
    """StoreUnavailable for an error that says the database cannot be used now; None for any other."""
    if isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode & 0xFF in _OUTAGE_CODES:
        return StoreUnavailable(str(exc))
    return None


class _CallFailed(Exception):
    """A write of a batch raised: the whole transaction was rolled back."""


def _write_all(conn: sqlite3.Connection, writes: list[tuple[int, _Call]]) -> dict[int, tuple[Any, None]]:
    """The fast path: every write in one transaction, no savepoints (they cost as much as the writes)."""
    done: dict[int, tuple[Any, None]] = {}
    with _transaction(conn):
        for i, call in writes:
            try:
                done[i] = (call.fn(conn), None)
            except Exception as exc:
                raise _CallFailed from exc
    return done


def _write_each(
    conn: sqlite3.Connection, writes: list[tuple[int, _Call]]
) -> dict[int, tuple[Any, BaseException | None]]:
    """Writes in one transaction, each in a savepoint: a failing one is undone alone and reports its error.
    Changes are functions of the record they are given, so running them again here is safe."""
    done: dict[int, tuple[Any, BaseException | None]] = {}
    try:
        with _transaction(conn):
            for i, call in writes:
                conn.execute("SAVEPOINT call")
                try:
                    done[i] = (call.fn(conn), None)
                except Exception as exc:
                    conn.execute("ROLLBACK TO call")
                    done[i] = (None, exc)
                conn.execute("RELEASE call")
    except Exception as exc:
        done = {i: (None, exc) for i, _ in writes}
    return done


def _settle(settled: Settled) -> None:
    for future, result, error in settled:
        if future.done():  # the caller was cancelled meanwhile
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def _run_batch(conn: sqlite3.Connection, calls: list[_Call]) -> list[tuple[Any, BaseException | None]]:
    """Writes in one transaction, then reads. Calls in one batch were concurrent, so any order among them is
    one the callers could have seen."""
    outcomes: dict[int, tuple[Any, BaseException | None]] = {}
    writes = [(i, call) for i, call in enumerate(calls) if call.write]
    if writes:
        try:
            outcomes.update(_write_all(conn, writes))
        except _CallFailed:
            # Rare: some write raised. Do the batch again with a savepoint each, so only that one is undone.
            outcomes.update(_write_each(conn, writes))
        except Exception as exc:
            # BEGIN or COMMIT itself failed (e.g. the database stayed locked): none of the writes happened.
            outcomes.update((i, (None, exc)) for i, _ in writes)
    for i, call in enumerate(calls):
        if not call.write:
            try:
                outcomes[i] = (call.fn(conn), None)
            except Exception as exc:
                outcomes[i] = (None, exc)
    return [outcomes[i] for i in range(len(calls))]


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
    try:
        conn.execute("COMMIT")
    except BaseException:
        # A commit that failed (the disk full) may leave the transaction open, and the next BEGIN would fail.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _create_schema(conn: sqlite3.Connection, path: Path) -> None:
    # In a transaction: processes starting together must not each see an empty file and race to migrate it.
    with _transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{path} has schema version {version}; this build knows up to {SCHEMA_VERSION}")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        _add_job_columns(conn)
        for statement in _ADDED_JOB_INDEXES.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _add_job_columns(conn: sqlite3.Connection) -> None:
    present = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    missing = [name for name in _ADDED_JOB_COLUMNS if name not in present]
    if not missing:
        return
    for name in missing:
        conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {_ADDED_JOB_COLUMNS[name]}")
    filled = []
    for job_id, data in conn.execute("SELECT id, data FROM jobs"):
        row = records.job_columns(records.parse_job(data))
        filled.append((row.task, row.priority, row.create_ns, row.end_ns, row.schedule_id, row.start_ns, job_id))
    conn.executemany(
        "UPDATE jobs SET task = ?, priority = ?, create_ns = ?, end_ns = ?, schedule_id = ?, start_ns = ? WHERE id = ?",
        filled,
    )


def _select(conn: sqlite3.Connection, table: str, record_id: str) -> bytes | None:
    row = conn.execute(f"SELECT data FROM {table} WHERE id = ?", (record_id,)).fetchone()
    return None if row is None else bytes(row[0])


def _insert_jobs(conn: sqlite3.Connection, rows: list[records.JobColumns]) -> list[bytes | None]:
    """For each row, None when inserted, else the data of the job that holds its idempotency key."""
    outcome: list[bytes | None] = []
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
                "INSERT INTO jobs (id, tenant, state, kind, parent_id, idempotency_key, revision, data,"
                " task, priority, create_ns, end_ns, schedule_id, start_ns)"
                " VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.id,
                    row.tenant,
                    row.state,
                    row.kind,
                    row.parent_id,
                    row.idempotency_key,
                    row.data,
                    row.task,
                    row.priority,
                    row.create_ns,
                    row.end_ns,
                    row.schedule_id,
                    row.start_ns,
                ),
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
    conn.executemany("DELETE FROM jobs WHERE id = ?", [(job_id,) for job_id in job_ids])


def _update_job(conn: sqlite3.Connection, job_id: str, change: JobChange) -> tuple[job_pb2.Job | None, bool]:
    data = _select(conn, "jobs", job_id)
    if data is None:
        return None, False
    before = records.parse_job(data)
    after = change(records.parse_job(data))
    if after is None:
        return before, False
    if after == before:
        return before, True
    records.check_job_identity(before, after)
    _write_job(conn, before, after)
    return after, True


def _write_job(conn: sqlite3.Connection, before: job_pb2.Job, after: job_pb2.Job) -> None:
    row = records.job_columns(after)
    # Only the columns that changed are set: SQLite rewrites every index on a column named in SET.
    columns: dict[str, object] = {"state": row.state, "data": row.data}
    if (row.kind, row.parent_id) != (before.kind, before.parent_id):
        columns |= {"kind": row.kind, "parent_id": row.parent_id}
    if row.end_ns != records.end_ns(before):
        columns["end_ns"] = row.end_ns
    if row.start_ns != records.start_ns(before):
        columns["start_ns"] = row.start_ns
    if row.priority != before.options.priority:
        columns["priority"] = row.priority
    sets = ", ".join(f"{name} = ?" for name in columns)
    conn.execute(f"UPDATE jobs SET {sets}, revision = revision + 1 WHERE id = ?", (*columns.values(), row.id))
    if before.options.labels != after.options.labels:
        conn.execute("DELETE FROM job_labels WHERE job_id = ?", (row.id,))
        _insert_labels(conn, row)


def _update_jobs(
    conn: sqlite3.Connection, changes: list[tuple[str, JobChange]]
) -> list[tuple[job_pb2.Job | None, bool]]:
    """Every job read in one statement and the plain updates written in one executemany: per-statement overhead
    is most of an update's cost. An update that also moves a job's kind, parent or labels is written on its own;
    a batch that names a job twice goes one update after another."""
    ids = [job_id for job_id, _ in changes]
    if len(set(ids)) != len(ids):
        return [_update_job(conn, job_id, change) for job_id, change in changes]
    found: dict[str, bytes] = {}
    for chunk in range(0, len(ids), _MAX_PARAMS):
        part = ids[chunk : chunk + _MAX_PARAMS]
        rows = conn.execute(f"SELECT id, data FROM jobs WHERE id IN ({', '.join('?' * len(part))})", part)
        found.update((row[0], row[1]) for row in rows)
    outcome: list[tuple[job_pb2.Job | None, bool]] = []
    # The columns each update sets -> the values of the updates that set those: one executemany per set.
    writes: dict[tuple[str, ...], list[tuple[object, ...]]] = {}
    for job_id, change in changes:
        data = found.get(job_id)
        if data is None:
            outcome.append((None, False))
            continue
        before = records.parse_job(data)
        after = change(records.parse_job(data))
        if after is None or after == before:
            outcome.append((before, after is not None))
            continue
        records.check_job_identity(before, after)
        if (
            (after.kind, after.parent_id) != (before.kind, before.parent_id)
            or before.options.labels != after.options.labels
            or before.options.priority != after.options.priority
        ):
            _write_job(conn, before, after)
        else:
            # Only the time columns that moved are named: SQLite rewrites every index on a column named in SET.
            columns: tuple[str, ...] = ("state",)
            values: tuple[object, ...] = (int(after.state),)
            if (start := records.start_ns(after)) != records.start_ns(before):
                columns, values = (*columns, "start_ns"), (*values, start)
            if (end := records.end_ns(after)) != records.end_ns(before):
                columns, values = (*columns, "end_ns"), (*values, end)
            writes.setdefault(columns, []).append((*values, records.serialize(after), job_id))
        outcome.append((after, True))
    for columns, values_list in writes.items():
        sets = "".join(f"{name} = ?, " for name in columns)
        conn.executemany(f"UPDATE jobs SET {sets}data = ?, revision = revision + 1 WHERE id = ?", values_list)
    return outcome


def _update_record(
    conn: sqlite3.Connection,
    table: str,
    record_id: str,
    parse: Callable[[bytes], M],
    change: Callable[[M], M | None],
    check: Callable[[M, M], None],
    keep: Callable[[sqlite3.Connection, M, M], None] | None = None,
) -> M | None:
    """The record as it is after `change`: unchanged when the change refuses (None) or alters nothing. `keep`
    writes whatever else the change implies (in the same transaction)."""
    data = _select(conn, table, record_id)
    if data is None:
        return None
    before = parse(data)
    after = change(parse(data))
    if after is None or after == before:
        return before
    check(before, after)
    if keep is not None:
        keep(conn, before, after)
    conn.execute(
        f"UPDATE {table} SET data = ?, revision = revision + 1 WHERE id = ?", (records.serialize(after), record_id)
    )
    return after


def _keep_course_version(conn: sqlite3.Connection, before: course_pb2.Course, after: course_pb2.Course) -> None:
    if after.version > before.version:
        conn.execute(
            "INSERT OR REPLACE INTO course_versions (course_id, version, data) VALUES (?, ?, ?)",
            (before.id, before.version, records.serialize(before)),
        )


def _select_course_version(conn: sqlite3.Connection, course_id: str, version: int) -> bytes | None:
    row = conn.execute(
        "SELECT data FROM course_versions WHERE course_id = ? AND version = ?", (course_id, version)
    ).fetchone()
    return None if row is None else bytes(row[0])


def _list_course_versions(conn: sqlite3.Connection, course_id: str) -> list[bytes]:
    rows = conn.execute("SELECT data FROM course_versions WHERE course_id = ? ORDER BY version", (course_id,))
    return [bytes(row[0]) for row in rows]


def _list_jobs(
    conn: sqlite3.Connection, query: JobQuery, after: tuple[int, str] | str | None, limit: int
) -> tuple[list[tuple[str, int | None, bytes]], int | None]:
    """A page (one row more than asked, if there is one) and, if asked for, the count of every matching job."""
    clauses, params = _job_filters(query)
    where = " AND ".join(clauses)
    total = None
    if query.with_total:
        total = int(conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", params).fetchone()[0])
    if isinstance(after, tuple):
        where += " AND (end_ns < ? OR (end_ns = ? AND id < ?))"
        params += [after[0], after[0], after[1]]
    elif after:
        where += " AND id < ?"
        params.append(after)
    order = "end_ns DESC, id DESC" if query.order == "ended" else "id DESC"
    sql = f"SELECT id, end_ns, data FROM jobs WHERE {where} ORDER BY {order} LIMIT ?"
    rows = [(row[0], row[1], row[2]) for row in conn.execute(sql, [*params, limit])]
    return rows, total


# A kind, or a task name: task jobs are all of kind "task", told apart by their task's name.
_KIND_CLAUSE = "(kind = ? OR (kind = 'task' AND task = ?))"


def _job_filters(query: JobQuery) -> tuple[list[str], list[str | int]]:
    clauses = ["tenant = ?"]
    params: list[str | int] = [query.tenant]
    if query.order == "ended":
        clauses.append("end_ns IS NOT NULL")
    if query.schedule_id:
        # The redundant `!= ''` lets SQLite prove the partial index applies.
        clauses.append("schedule_id = ? AND schedule_id != ''")
        params.append(query.schedule_id)
    if query.states:
        clauses.append(f"state IN ({', '.join('?' * len(query.states))})")
        params.extend(sorted(query.states))
    if query.kind:
        clauses.append(_KIND_CLAUSE)
        params.extend((query.kind, query.kind))
    if query.created_after_ns:
        clauses.append("create_ns >= ?")
        params.append(query.created_after_ns)
    if query.created_before_ns:
        clauses.append("create_ns < ?")
        params.append(query.created_before_ns)
    if query.parent_id:
        clauses.append("parent_id = ?")
        params.append(query.parent_id)
    for key, value in sorted(query.labels.items()):
        clauses.append("EXISTS (SELECT 1 FROM job_labels WHERE job_id = jobs.id AND key = ? AND value = ?)")
        params.extend((key, value))
    return clauses, params


def _count_jobs(
    conn: sqlite3.Connection, tenant: str, ended_since_ns: int
) -> list[tuple[str, str, int, int, int, int]]:
    # Two halves of one statement, each served by its own index: the jobs not ended by state, the ended by end time.
    columns = "kind, task, priority, state, COUNT(*), MIN(create_ns)"
    group = "GROUP BY kind, task, priority, state"
    states = ", ".join("?" * len(_NOT_ENDED_STATES))
    sql = (
        f"SELECT {columns} FROM jobs WHERE tenant = ? AND state IN ({states}) {group}"
        f" UNION ALL SELECT {columns} FROM jobs WHERE tenant = ? AND end_ns >= ? {group}"
    )
    params = [tenant, *_NOT_ENDED_STATES, tenant, ended_since_ns]
    return [(row[0], row[1], row[2], row[3], row[4], row[5]) for row in conn.execute(sql, params)]


def _activity(conn: sqlite3.Connection, query: ActivityQuery) -> Activity:
    """Each figure one grouped statement on its own index: by create, start or end time within the window."""
    where = "tenant = ?"
    params: list[str | int] = [query.tenant]
    if query.kind:
        where += f" AND {_KIND_CLAUSE}"
        params += [query.kind, query.kind]
    since, until, width = query.since_ns, query.until_ns, query.bucket_ns

    def grouped(column: str, *more: str) -> list[tuple[int, ...]]:
        sql = (
            f"SELECT ({column} - ?) / ?, {', '.join(more) or 'COUNT(*)'} FROM jobs"
            f" WHERE {where} AND {column} >= ? AND {column} < ? GROUP BY 1{', 2' if more else ''}"
        )
        return [tuple(row) for row in conn.execute(sql, [since, width, *params, since, until])]

    ended: dict[tuple[int, int], int] = {}
    unstarted: dict[int, int] = {}
    for bucket, state, jobs, never in grouped("end_ns", "state", "COUNT(*)", "SUM(start_ns IS NULL)"):
        ended[(bucket, state)] = jobs
        unstarted[bucket] = unstarted.get(bucket, 0) + never
    # Waiting at `since`: never started nor ended (still waiting now), started since, or ended since unstarted.
    waiting_sql = (
        f"SELECT (SELECT COUNT(*) FROM jobs WHERE {where} AND state IN ({', '.join('?' * len(_WAITING))})"
        " AND create_ns < ? AND start_ns IS NULL)"
        f" + (SELECT COUNT(*) FROM jobs WHERE {where} AND start_ns >= ? AND create_ns < ?)"
        f" + (SELECT COUNT(*) FROM jobs WHERE {where} AND end_ns >= ? AND start_ns IS NULL AND create_ns < ?)"
    )
    waiting_params = [*params, *_WAITING, since, *params, since, since, *params, since, since]
    bounds = query.duration_bounds_ns
    which = " ".join(f"WHEN end_ns - start_ns <= {int(bound)} THEN {i}" for i, bound in enumerate(bounds))
    durations_sql = (
        f"SELECT CASE {which} ELSE {len(bounds)} END, COUNT(*) FROM jobs"
        f" WHERE {where} AND end_ns >= ? AND end_ns < ? AND start_ns IS NOT NULL GROUP BY 1"
        if bounds
        else f"SELECT 0, COUNT(*) FROM jobs WHERE {where} AND end_ns >= ? AND end_ns < ? AND start_ns IS NOT NULL"
    )
    durations = {row[0]: row[1] for row in conn.execute(durations_sql, [*params, since, until]) if row[1]}
    return Activity(
        created={row[0]: row[1] for row in grouped("create_ns")},
        started={row[0]: row[1] for row in grouped("start_ns")},
        ended=ended,
        ended_unstarted={bucket: never for bucket, never in unstarted.items() if never},
        waiting_at_start=int(conn.execute(waiting_sql, waiting_params).fetchone()[0]),
        durations=durations,
    )


def _insert_record(conn: sqlite3.Connection, table: str, record_id: str, tenant: str, data: bytes) -> None:
    try:
        conn.execute(f"INSERT INTO {table} (id, tenant, revision, data) VALUES (?, ?, 1, ?)", (record_id, tenant, data))
    except sqlite3.IntegrityError:
        raise records.DuplicateId(f"{table} record {record_id} already exists") from None


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


# A skip scan of the (tenant, ...) index: one lookup per tenant rather than a read of every job.
_TENANTS = """
WITH RECURSIVE seen(tenant) AS (
    SELECT MIN(tenant) FROM jobs
    UNION ALL
    SELECT (SELECT MIN(tenant) FROM jobs WHERE tenant > seen.tenant) FROM seen WHERE seen.tenant IS NOT NULL
)
SELECT tenant FROM seen WHERE tenant IS NOT NULL UNION SELECT DISTINCT tenant FROM schedules ORDER BY 1
"""


def _tenants(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute(_TENANTS)]


def _delete_schedule(conn: sqlite3.Connection, schedule_id: str) -> bool:
    return conn.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,)).rowcount == 1


_ENDED = tuple(sorted(int(state) for state in records.ENDED_STATES))
_WAITING = (int(job_pb2.JOB_STATE_QUEUED), int(job_pb2.JOB_STATE_SCHEDULED))


def _ended_jobs(conn: sqlite3.Connection, tenant: str, ended_before_ns: int, limit: int) -> list[bytes]:
    cursor = conn.execute(
        "SELECT data FROM jobs WHERE tenant = ? AND end_ns IS NOT NULL AND end_ns < ?"
        f" AND state IN ({', '.join('?' * len(_ENDED))}) ORDER BY end_ns, id LIMIT ?",
        (tenant, ended_before_ns, *_ENDED, limit),
    )
    return [row[0] for row in cursor]


def _delete_ended_jobs(conn: sqlite3.Connection, job_ids: list[str], ended_before_ns: int) -> list[str]:
    deleted = []
    for job_id in job_ids:
        # Their labels go with them (ON DELETE CASCADE).
        cursor = conn.execute(
            f"DELETE FROM jobs WHERE id = ? AND end_ns < ? AND state IN ({', '.join('?' * len(_ENDED))})",
            (job_id, ended_before_ns, *_ENDED),
        )
        if cursor.rowcount == 1:
            deleted.append(job_id)
    return deleted


def _waiting_jobs(conn: sqlite3.Connection, tenant: str, after_ns: int, before_ns: int, limit: int) -> list[bytes]:
    cursor = conn.execute(
        "SELECT data FROM jobs WHERE tenant = ? AND state IN (?, ?) AND create_ns > ? AND create_ns <= ?"
        " ORDER BY create_ns, id LIMIT ?",
        (tenant, *_WAITING, after_ns, before_ns, limit),
    )
    return [row[0] for row in cursor]
