"""The store's activity figures (jobs created, started and ended per time bucket, the queue depth when the window
begins, run durations) and ListJobs' creation time range and task-name filter, for every store; and an embedded
database made before start times were kept getting them filled in."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from syllabus.store import records
from syllabus.store.base import ActivityQuery, JobQuery, Store
from syllabus.store.embedded import EmbeddedStore
from syllabus.v1 import job_pb2
from tests.store.test_counts_and_order import _FIRST_SCHEMA, NOW, SECOND, job

E = job_pb2
BOUNDS = (1 * SECOND, 10 * SECOND, 60 * SECOND)
WINDOW = ActivityQuery(
    "acme", since_ns=NOW, until_ns=NOW + 60 * SECOND, bucket_ns=10 * SECOND, duration_bounds_ns=BOUNDS
)


def started_at(ns: int) -> Callable[[job_pb2.Job], job_pb2.Job]:
    def change(stored: job_pb2.Job) -> job_pb2.Job:
        stored.state = E.JOB_STATE_RUNNING
        stored.start_time.FromNanoseconds(ns)
        return stored

    return change


def ended_at(ns: int, state: job_pb2.JobState, started: int | None = None) -> Callable[[job_pb2.Job], job_pb2.Job]:
    def change(stored: job_pb2.Job) -> job_pb2.Job:
        stored.state = state
        if started is not None:
            stored.start_time.FromNanoseconds(started)
        stored.end_time.FromNanoseconds(ns)
        return stored

    return change


async def test_activity_counts_each_figure_per_bucket_for_the_tenant_and_kind(store: Store) -> None:
    waiting_before = job(created=NOW - 100 * SECOND)
    started_in_window = job(created=NOW - 50 * SECOND)
    failed_fast = job(created=NOW + 12 * SECOND)
    canceled_waiting = job(created=NOW + 15 * SECOND)
    long_done = job(created=NOW - 200 * SECOND)
    other_tenant = job(created=NOW + 1 * SECOND, tenant="other")
    task = job(created=NOW + 45 * SECOND, task="math.add")
    every = [waiting_before, started_in_window, failed_fast, canceled_waiting, long_done, other_tenant, task]
    await store.insert_jobs(every)
    # Starts through the batched update (the workers' claims), ends through single updates and a batch.
    await store.update_jobs(
        [
            (started_in_window.id, started_at(NOW + 5 * SECOND)),
            (long_done.id, started_at(NOW - 150 * SECOND)),
            (other_tenant.id, started_at(NOW + 2 * SECOND)),
        ]
    )
    await store.update_job(started_in_window.id, ended_at(NOW + 25 * SECOND, E.JOB_STATE_SUCCEEDED))
    await store.update_job(long_done.id, ended_at(NOW - 100 * SECOND, E.JOB_STATE_SUCCEEDED))
    await store.update_jobs(
        [
            (failed_fast.id, ended_at(NOW + 14 * SECOND, E.JOB_STATE_FAILED, started=NOW + 13 * SECOND)),
            (canceled_waiting.id, ended_at(NOW + 35 * SECOND, E.JOB_STATE_CANCELED)),
        ]
    )

    seen = await store.activity(WINDOW)
    assert seen.created == {1: 2, 4: 1}
    assert seen.started == {0: 1, 1: 1}
    assert seen.ended == {(1, E.JOB_STATE_FAILED): 1, (2, E.JOB_STATE_SUCCEEDED): 1, (3, E.JOB_STATE_CANCELED): 1}
    assert seen.ended_unstarted == {3: 1}
    # The job still queued, and the one that started only after the window began.
    assert seen.waiting_at_start == 2
    # Runs of 1 s (at most the first bound) and 20 s (within the third).
    assert seen.durations == {0: 1, 2: 1}

    tasks = await store.activity(replace(WINDOW, kind="math.add"))
    assert (tasks.created, tasks.started, tasks.ended, tasks.waiting_at_start) == ({4: 1}, {}, {}, 0)
    builtin = await store.activity(replace(WINDOW, kind="summarize_text"))
    assert builtin.created == {1: 2} and builtin.waiting_at_start == 2
    empty = await store.activity(replace(WINDOW, tenant="nobody"))
    assert (empty.created, empty.ended, empty.waiting_at_start, empty.durations) == ({}, {}, 0, {})


async def test_a_retried_dead_letter_no_longer_counts_as_started(store: Store) -> None:
    made = job(created=NOW + SECOND)
    await store.insert_jobs([made])
    await store.update_jobs([(made.id, started_at(NOW + 2 * SECOND))])
    assert (await store.activity(WINDOW)).started == {0: 1}

    def revive(stored: job_pb2.Job) -> job_pb2.Job:
        stored.state = E.JOB_STATE_QUEUED
        stored.ClearField("start_time")
        return stored

    await store.update_jobs([(made.id, revive)])
    assert (await store.activity(WINDOW)).started == {}


async def test_list_jobs_by_creation_time_range_and_by_task_name(store: Store) -> None:
    early, middle, late = (job(created=NOW + offset * SECOND) for offset in (-10, 0, 10))
    add, mul = job(created=NOW, task="math.add"), job(created=NOW, task="math.mul")
    await store.insert_jobs([early, middle, late, add, mul])

    def ids(page_jobs: list[job_pb2.Job]) -> set[str]:
        return {made.id for made in page_jobs}

    ranged = await store.list_jobs(
        JobQuery("acme", created_after_ns=NOW, created_before_ns=NOW + 10 * SECOND, with_total=True)
    )
    assert ids(ranged.jobs) == {middle.id, add.id, mul.id} and ranged.total_size == 3
    assert ids((await store.list_jobs(JobQuery("acme", created_after_ns=NOW + SECOND))).jobs) == {late.id}
    assert ids((await store.list_jobs(JobQuery("acme", created_before_ns=NOW))).jobs) == {early.id}
    by_task = await store.list_jobs(JobQuery("acme", kind="math.add", created_after_ns=NOW, with_total=True))
    assert ids(by_task.jobs) == {add.id} and by_task.total_size == 1
    assert ids((await store.list_jobs(JobQuery("acme", kind="task"))).jobs) == {add.id, mul.id}
    assert ids((await store.list_jobs(JobQuery("acme", kind="summarize_text"))).jobs) == {early.id, middle.id, late.id}


async def test_a_database_of_the_first_schema_gets_its_start_times_filled_in(db_path: Path) -> None:
    old = job(E.JOB_STATE_SUCCEEDED, created=NOW, ended=NOW + 3 * SECOND)
    old.start_time.FromNanoseconds(NOW + SECOND)
    db_path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.executescript(_FIRST_SCHEMA)
        row = records.job_columns(old)
        conn.execute(
            "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
            (row.id, row.tenant, row.state, row.kind, row.parent_id, row.idempotency_key, row.data),
        )
        conn.commit()
    store = EmbeddedStore(db_path)
    await store.open()
    try:
        seen = await store.activity(WINDOW)
        assert (seen.created, seen.started, seen.durations) == ({0: 1}, {0: 1}, {1: 1})
    finally:
        await store.close()
