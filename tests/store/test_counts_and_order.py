"""Counting jobs for queue stats, listing ended jobs by end time, totals and the schedule filter; and an
embedded database made before these existed still opening with every job counted and ordered."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from syllabus.ids import new_id
from syllabus.store import records
from syllabus.store.base import InvalidPageToken, JobCount, JobQuery, Store
from syllabus.store.embedded import EmbeddedStore
from syllabus.v1 import job_pb2

E = job_pb2
SECOND = 1_000_000_000
NOW = 1_800_000_000 * SECOND


def job(
    state: job_pb2.JobState = E.JOB_STATE_QUEUED,
    *,
    tenant: str = "acme",
    task: str = "",
    priority: job_pb2.Priority = E.PRIORITY_UNSPECIFIED,
    created: int = NOW,
    ended: int | None = None,
    schedule_id: str = "",
) -> job_pb2.Job:
    made = job_pb2.Job(id=new_id(), tenant=tenant, state=state, schedule_id=schedule_id)
    if task:
        made.kind = "task"
        made.spec.task.name = task
    else:
        made.kind = "summarize_text"
        made.spec.summarize_text.text = "x"
    made.options.priority = priority
    made.create_time.FromNanoseconds(created)
    if ended is not None:
        made.end_time.FromNanoseconds(ended)
    return made


def ending_at(ns: int, state: job_pb2.JobState = E.JOB_STATE_SUCCEEDED) -> Callable[[job_pb2.Job], job_pb2.Job]:
    def change(stored: job_pb2.Job) -> job_pb2.Job:
        stored.state = state
        stored.end_time.FromNanoseconds(ns)
        return stored

    return change


def by_key(counts: list[JobCount]) -> dict[tuple[str, str, int, int], tuple[int, int]]:
    return {(c.kind, c.task, c.priority, c.state): (c.jobs, c.oldest_create_ns) for c in counts}


async def test_counts_group_by_kind_task_priority_and_state_with_ended_ones_in_the_window(store: Store) -> None:
    await store.insert_jobs(
        [
            job(created=NOW - 50 * SECOND),
            job(created=NOW - 20 * SECOND),
            job(E.JOB_STATE_RUNNING),
            job(priority=E.PRIORITY_BATCH),
            job(task="math.add", created=NOW - 7 * SECOND),
            job(task="math.mul"),
            job(E.JOB_STATE_WAITING),
            job(E.JOB_STATE_SCHEDULED),
            job(E.JOB_STATE_SUCCEEDED, ended=NOW - 10 * SECOND),
            job(E.JOB_STATE_FAILED, ended=NOW - 30 * SECOND),
            # Ended before the window: not counted.
            job(E.JOB_STATE_SUCCEEDED, ended=NOW - 3600 * SECOND),
            job(tenant="other"),
        ]
    )
    counts = by_key(await store.count_jobs("acme", NOW - 60 * SECOND))
    assert counts == {
        ("summarize_text", "", 0, E.JOB_STATE_QUEUED): (2, NOW - 50 * SECOND),
        ("summarize_text", "", 0, E.JOB_STATE_RUNNING): (1, NOW),
        ("summarize_text", "", E.PRIORITY_BATCH, E.JOB_STATE_QUEUED): (1, NOW),
        ("task", "math.add", 0, E.JOB_STATE_QUEUED): (1, NOW - 7 * SECOND),
        ("task", "math.mul", 0, E.JOB_STATE_QUEUED): (1, NOW),
        ("summarize_text", "", 0, E.JOB_STATE_WAITING): (1, NOW),
        ("summarize_text", "", 0, E.JOB_STATE_SCHEDULED): (1, NOW),
        ("summarize_text", "", 0, E.JOB_STATE_SUCCEEDED): (1, NOW),
        ("summarize_text", "", 0, E.JOB_STATE_FAILED): (1, NOW),
    }


async def test_counts_follow_updates_that_end_a_job_and_that_revive_it(store: Store) -> None:
    first, second = job(E.JOB_STATE_RUNNING), job(E.JOB_STATE_RUNNING)
    await store.insert_jobs([first, second])
    # One through the batched path, one on its own.
    await store.update_jobs([(first.id, ending_at(NOW))])
    await store.update_job(second.id, ending_at(NOW, E.JOB_STATE_FAILED))
    counts = by_key(await store.count_jobs("acme", NOW - SECOND))
    assert counts == {
        ("summarize_text", "", 0, E.JOB_STATE_SUCCEEDED): (1, NOW),
        ("summarize_text", "", 0, E.JOB_STATE_FAILED): (1, NOW),
    }

    def revive(stored: job_pb2.Job) -> job_pb2.Job:
        stored.state = E.JOB_STATE_QUEUED
        stored.ClearField("end_time")
        return stored

    await store.update_jobs([(second.id, revive)])
    counts = by_key(await store.count_jobs("acme", NOW - SECOND))
    assert counts[("summarize_text", "", 0, E.JOB_STATE_QUEUED)] == (1, NOW)
    assert ("summarize_text", "", 0, E.JOB_STATE_FAILED) not in counts
    ended = await store.list_jobs(JobQuery("acme", order="ended"))
    assert [j.id for j in ended.jobs] == [first.id]


async def test_ended_order_lists_only_ended_jobs_most_recent_first_across_pages(store: Store) -> None:
    ended = [job(E.JOB_STATE_SUCCEEDED, ended=NOW + (i // 2) * SECOND) for i in range(7)]
    # Inserted in an order unlike both the ids' and the end times'.
    await store.insert_jobs([*ended[3:], job(), job(E.JOB_STATE_RUNNING), *ended[:3]])
    expected = [j.id for j in sorted(ended, key=lambda j: (j.end_time.ToNanoseconds(), j.id), reverse=True)]
    seen: list[str] = []
    token = ""
    while True:
        page = await store.list_jobs(JobQuery("acme", order="ended", page_size=2, page_token=token, with_total=True))
        assert page.total_size == 7
        seen += [j.id for j in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert seen == expected


async def test_total_counts_every_match_and_the_schedule_filter_keeps_a_schedules_jobs(store: Store) -> None:
    made = [job(schedule_id="nightly") for _ in range(3)]
    await store.insert_jobs([*made, job(), job(schedule_id="hourly")])
    page = await store.list_jobs(JobQuery("acme", schedule_id="nightly", page_size=2, with_total=True))
    assert page.total_size == 3 and len(page.jobs) == 2
    rest = await store.list_jobs(JobQuery("acme", schedule_id="nightly", page_size=2, page_token=page.next_page_token))
    assert {j.id for j in [*page.jobs, *rest.jobs]} == {j.id for j in made}
    assert rest.total_size is None
    everything = await store.list_jobs(JobQuery("acme", with_total=True, page_size=1))
    assert everything.total_size == 5


async def test_a_token_of_one_order_is_refused_by_the_other(store: Store) -> None:
    await store.insert_jobs([job(E.JOB_STATE_SUCCEEDED, ended=NOW + i) for i in range(3)])
    by_end = await store.list_jobs(JobQuery("acme", order="ended", page_size=1))
    by_creation = await store.list_jobs(JobQuery("acme", page_size=1))
    with pytest.raises(InvalidPageToken):
        await store.list_jobs(JobQuery("acme", page_token=by_end.next_page_token))
    with pytest.raises(InvalidPageToken):
        await store.list_jobs(JobQuery("acme", order="ended", page_token=by_creation.next_page_token))


_FIRST_SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, state INTEGER NOT NULL, kind TEXT NOT NULL,
    parent_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, revision INTEGER NOT NULL, data BLOB NOT NULL
);
PRAGMA user_version = 1;
"""


async def test_a_database_of_the_first_schema_gets_its_jobs_counted_and_ordered(db_path: Path) -> None:
    old = [
        job(E.JOB_STATE_SUCCEEDED, ended=NOW, task="math.add", schedule_id="nightly"),
        job(E.JOB_STATE_QUEUED, priority=E.PRIORITY_BATCH, created=NOW - SECOND),
    ]
    db_path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.executescript(_FIRST_SCHEMA)
        for made in old:
            row = records.job_columns(made)
            conn.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                (row.id, row.tenant, row.state, row.kind, row.parent_id, row.idempotency_key, row.data),
            )
        conn.commit()
    store = EmbeddedStore(db_path)
    await store.open()
    try:
        counts = by_key(await store.count_jobs("acme", NOW - SECOND))
        assert counts == {
            ("task", "math.add", 0, E.JOB_STATE_SUCCEEDED): (1, NOW),
            ("summarize_text", "", E.PRIORITY_BATCH, E.JOB_STATE_QUEUED): (1, NOW - SECOND),
        }
        ended = await store.list_jobs(JobQuery("acme", order="ended", schedule_id="nightly", with_total=True))
        assert [j.id for j in ended.jobs] == [old[0].id] and ended.total_size == 1
        # New jobs go in beside the old ones.
        await store.insert_jobs([job()])
        assert (await store.list_jobs(JobQuery("acme", with_total=True))).total_size == 3
    finally:
        await store.close()
