from __future__ import annotations

from pathlib import Path

from syllabus.config import CommonConfig
from syllabus.ids import new_id
from syllabus.store.embedded import EmbeddedStore
from syllabus.store.factory import open_store
from syllabus.store.mongo import MongoStore


async def test_without_mongo_the_embedded_store_lives_under_home(tmp_path: Path) -> None:
    store = open_store(CommonConfig(home=tmp_path / "home"))

    assert isinstance(store, EmbeddedStore)
    await store.open()
    try:
        assert await store.get_job(new_id()) is None
    finally:
        await store.close()
    assert (tmp_path / "home" / "store.db").is_file()


def test_a_mongo_url_selects_mongo(tmp_path: Path) -> None:
    store = open_store(CommonConfig(home=tmp_path, mongo_url="mongodb://127.0.0.1:1", mongo_database="other"))

    assert isinstance(store, MongoStore)
    assert not (tmp_path / "store.db").exists()
