"""Fixtures of the store contract suite: every test that takes `store` runs against each store."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from syllabus.ids import new_id
from syllabus.store.base import Store
from syllabus.store.embedded import EmbeddedStore
from syllabus.store.mongo import MongoStore

MONGO_URL_VARIABLE = "SYLLABUS_TEST_MONGO_URL"
MONGO_SKIP_REASON = (
    "SYLLABUS_TEST_MONGO_URL not set: the MongoDB contract suite runs wherever it points at a real server"
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "store.db"


@pytest.fixture(params=["embedded", "mongo"])
async def store(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Store]:
    if request.param == "embedded":
        embedded = EmbeddedStore(db_path)
        await embedded.open()
        try:
            yield embedded
        finally:
            await embedded.close()
        return

    url = os.environ.get(MONGO_URL_VARIABLE, "")
    if not url:
        pytest.skip(MONGO_SKIP_REASON)
    # A database of its own per test, dropped after: tests never see each other's records.
    database = f"syllabus_test_{new_id()}"
    mongo = MongoStore(url, database)
    try:
        await mongo.open()
        yield mongo
    finally:
        await mongo.close()
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
        try:
            await client.drop_database(database)
        finally:
            await client.close()
