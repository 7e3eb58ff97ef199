"""Which store a process uses: MongoDB when configured, otherwise the embedded file under SYLLABUS_HOME."""

from __future__ import annotations

from syllabus.config import CommonConfig
from syllabus.store.base import Store
from syllabus.store.embedded import EmbeddedStore


def open_store(config: CommonConfig) -> Store:
    """The configured store, not yet opened: the caller awaits `open()` inside its event loop."""
    if config.mongo_url:
        # Imported only here: a process on the embedded store never loads pymongo.
        from syllabus.store.mongo import MongoStore

        return MongoStore(config.mongo_url, config.mongo_database)
    return EmbeddedStore(config.home / "store.db", config.store_sync)
