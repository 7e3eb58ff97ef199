"""The embedded store's write-ahead log is copied back into the database file by a thread of its own, not by the
commits: commits leave the log to it (up to the backstop), and it stops with the store."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from syllabus.ids import new_id
from syllabus.store.checkpoints import BACKSTOP_PAGES
from syllabus.store.embedded import EmbeddedStore
from syllabus.submit import build_job
from syllabus.v1 import job_pb2
from tests.conditions import eventually

THREAD = "syllabus-store-checkpoints"


def job() -> job_pb2.Job:
    spec = job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text="x" * 2000))
    built = build_job(spec, job_pb2.JobOptions(), tenant="default", default_max_attempts=3)
    built.id = new_id()
    return built


async def test_the_log_is_checkpointed_off_the_commits_and_the_thread_stops_with_the_store(db_path: Path) -> None:
    store = EmbeddedStore(db_path, sync="normal")
    await store.open()
    try:
        # A commit checkpoints by itself only past the backstop, far beyond what this test writes.
        autocheckpoint = await store._read(lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        assert autocheckpoint == BACKSTOP_PAGES
        before = await _size(db_path)
        for _ in range(20):
            await store.insert_jobs([job() for _ in range(20)])
        # 400 jobs of 2 KB are in the log; the database file grows only when they are copied into it.
        await eventually(lambda: _grown(db_path, before), timeout=30)
        assert THREAD in {thread.name for thread in threading.enumerate()}
    finally:
        await store.close()
    assert THREAD not in {thread.name for thread in threading.enumerate()}
    # What was checkpointed is the committed data: it reads back after a reopen.
    again = EmbeddedStore(db_path, sync="normal")
    await again.open()
    try:
        assert [count.jobs for count in await again.count_jobs("default", 0)] == [400]
    finally:
        await again.close()


async def _grown(path: Path, size: int) -> bool:
    return await _size(path) > size


async def _size(path: Path) -> int:
    return await asyncio.to_thread(lambda: path.stat().st_size)
