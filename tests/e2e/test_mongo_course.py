"""A course from prompt to PDF with `syllabus up` on a real MongoDB: every service stores its records there.

Runs wherever SYLLABUS_TEST_MONGO_URL points at a MongoDB server (CI starts a replica set for it), like the store
contract suite, and is skipped with that reason elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from syllabus.ids import new_id
from syllabus.store import records
from syllabus.v1 import job_pb2
from tests.e2e.conftest import running_stack
from tests.store.conftest import MONGO_SKIP_REASON, MONGO_URL_VARIABLE

URL = os.environ.get(MONGO_URL_VARIABLE, "")
PROMPT = "Message queues for beginners"
MODULES = 2

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not URL, reason=MONGO_SKIP_REASON)]


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A database of its own, dropped afterwards."""
    name = f"syllabus_test_{new_id()}"
    yield name
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(URL)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


async def test_a_course_is_written_and_rendered_on_mongodb(tmp_path: Path, database: str) -> None:
    out = tmp_path / "queues.pdf"
    mongo = {"SYLLABUS_MONGO_URL": URL, "SYLLABUS_MONGO_DATABASE": database}
    async with running_stack(tmp_path, mongo) as stack:
        argv = ["course", PROMPT, "--modules", str(MODULES), "--provider", "offline", "--out", str(out)]
        ran = await stack.syllabus(*argv)
        assert ran.code == 0, ran.err + stack.log_tail()
    assert out.read_bytes().startswith(b"%PDF-")
    # Nothing went to the embedded store: it would be a file in SYLLABUS_HOME.
    assert not (tmp_path / "home" / "store.db").exists()

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(URL)
    try:
        db = client[database]
        [course] = [records.parse_course(doc["data"]) async for doc in db["courses"].find()]
        jobs = [records.parse_job(doc["data"]) async for doc in db["jobs"].find()]
    finally:
        await client.close()

    assert course.prompt == PROMPT and course.offline_draft
    assert len(course.modules) == MODULES
    assert all(module.HasField("lesson") and module.HasField("quiz") for module in course.modules)
    assert course.documents
    # The course job, a lesson and a quiz per module and the render job, each stored and ended as SUCCEEDED.
    expected = ["generate_course", *["generate_lesson", "generate_quiz"] * MODULES, "render_document"]
    assert sorted(job.spec.WhichOneof("kind") or "" for job in jobs) == sorted(expected)
    assert {job.state for job in jobs} == {job_pb2.JOB_STATE_SUCCEEDED}
    assert {job.id for job in jobs if not job.parent_id} == {course.job_id}
