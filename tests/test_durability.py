"""What is on disk when an acknowledgement comes: the nats-server `syllabus up` starts syncs JetStream before it
acknowledges (read back from the server's own monitoring), the embedded store syncs its WAL at each commit, MongoDB
writes wait for a journaled majority; each can be relaxed by a setting."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NatsClient
from pymongo import AsyncMongoClient, ReadPreference, WriteConcern

from onemachine.stack import embedded_nats, run_up
from syllabus.config import CommonConfig, ConfigError, SupervisorConfig
from syllabus.ids import new_id
from syllabus.jetstream import ensure_topology
from syllabus.store.embedded import EmbeddedStore
from syllabus.store.factory import open_store
from syllabus.store.mongo import MongoStore, durable_database
from syllabus.topology import Topology

# JetStream's own sync interval, in the nanoseconds /varz gives it in.
TWO_MINUTES_NS = 120 * 10**9


async def jetstream_config(home: Path, env: dict[str, str]) -> dict[str, Any]:
    """The JetStream settings a nats-server started as `syllabus up` starts it (with `env`) says it runs with."""
    server = embedded_nats(home, SupervisorConfig.from_env(env))
    async with server, httpx.AsyncClient() as http:
        answer = await http.get(server.monitor_url + "/varz", timeout=10)
    answer.raise_for_status()
    config: dict[str, Any] = answer.json()["jetstream"]["config"]
    return config


async def test_up_starts_a_nats_that_syncs_before_it_acknowledges(tmp_path: Path) -> None:
    config = await jetstream_config(tmp_path, {})

    assert config.get("sync_always") is True
    assert config["store_dir"] == str(tmp_path / "nats" / "jetstream")


@pytest.mark.parametrize(("setting", "interval_ns"), [("default", TWO_MINUTES_NS), ("10s", 10 * 10**9)])
async def test_nats_sync_can_be_traded_for_speed(tmp_path: Path, setting: str, interval_ns: int) -> None:
    config = await jetstream_config(tmp_path, {"SYLLABUS_NATS_SYNC": setting})

    assert not config.get("sync_always")
    assert config["sync_interval"] == interval_ns


@pytest.mark.parametrize("setting", ["sometimes", "0s", "-1m", "2 m", "1.5s"])
def test_a_bad_nats_sync_is_one_line_naming_it(setting: str) -> None:
    with pytest.raises(ConfigError, match=f"^SYLLABUS_NATS_SYNC={setting!r} is not valid: expected always, default"):
        SupervisorConfig.from_env({"SYLLABUS_NATS_SYNC": setting})


def test_durable_settings_are_the_defaults() -> None:
    assert SupervisorConfig.from_env({}).nats_sync == "always"
    common = CommonConfig.from_env({})
    assert (common.store_sync, common.stream_replicas) == ("full", 1)
    relaxed = CommonConfig.from_env({"SYLLABUS_STORE_SYNC": "NORMAL", "SYLLABUS_STREAM_REPLICAS": "3"})
    assert (relaxed.store_sync, relaxed.stream_replicas) == ("normal", 3)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SYLLABUS_STORE_SYNC", "off", "full or normal"),
        ("SYLLABUS_STREAM_REPLICAS", "0", "an integer from 1 to 5"),
        ("SYLLABUS_STREAM_REPLICAS", "6", "an integer from 1 to 5"),
        ("SYLLABUS_STREAM_REPLICAS", "three", "an integer from 1 to 5"),
    ],
)
def test_bad_store_settings_are_one_line_naming_them(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}={value!r} is not valid: expected {expected}$"):
        CommonConfig.from_env({variable: value})


async def sqlite_settings(store: EmbeddedStore) -> tuple[str, int]:
    """journal_mode and synchronous of the store's own connection (each connection has its own synchronous)."""

    def read(conn: sqlite3.Connection) -> tuple[str, int]:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
        return mode, synchronous

    return await store._read(read)


@pytest.mark.parametrize(("setting", "synchronous"), [("", 2), ("normal", 1)])
async def test_the_embedded_store_syncs_its_wal_at_each_commit_unless_relaxed(
    tmp_path: Path, setting: str, synchronous: int
) -> None:
    store = open_store(CommonConfig.from_env({"SYLLABUS_HOME": str(tmp_path), "SYLLABUS_STORE_SYNC": setting}))
    assert isinstance(store, EmbeddedStore)
    await store.open()
    try:
        # 2 is FULL, 1 NORMAL: in WAL mode FULL syncs the log before each commit returns.
        assert await sqlite_settings(store) == ("wal", synchronous)
        assert await store.get_job(new_id()) is None
    finally:
        await store.close()


def test_the_embedded_store_refuses_an_unknown_sync(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sync must be one of full, normal"):
        EmbeddedStore(tmp_path / "store.db", "off")


# No server is reached: a client connects on its first operation, and these only read its settings.
@pytest.mark.parametrize(
    ("url", "concern"),
    [
        ("mongodb://127.0.0.1:1", WriteConcern(w="majority", j=True)),
        ("mongodb://127.0.0.1:1/?readPreference=secondaryPreferred", WriteConcern(w="majority", j=True)),
        ("mongodb://127.0.0.1:1/?wtimeoutMS=5000", WriteConcern(w="majority", j=True, wtimeout=5000)),
        ("mongodb://127.0.0.1:1/?w=1&journal=false", WriteConcern(w=1, j=False)),
    ],
)
async def test_mongo_writes_wait_for_a_journaled_majority_and_reads_go_to_the_primary(
    url: str, concern: WriteConcern
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        jobs = durable_database(client, "syllabus")["jobs"]
        assert jobs.write_concern == concern
        assert jobs.read_preference == ReadPreference.PRIMARY
    finally:
        await client.close()


@pytest.mark.skipif(not os.environ.get("SYLLABUS_TEST_MONGO_URL"), reason="SYLLABUS_TEST_MONGO_URL not set")
async def test_an_open_mongo_store_writes_durably() -> None:
    url = os.environ["SYLLABUS_TEST_MONGO_URL"]
    database = f"syllabus_test_{new_id()}"
    store = MongoStore(url, database)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    await store.open()
    try:
        jobs = store._collection("jobs")
        assert jobs.write_concern == durable_database(client, database)["jobs"].write_concern
        assert jobs.write_concern.document.get("w") == client.write_concern.document.get("w", "majority")
        assert jobs.read_preference == ReadPreference.PRIMARY
    finally:
        await store.close()
        try:
            await client.drop_database(database)
        finally:
            await client.close()


async def test_replicas_on_a_single_server_are_one_line_naming_the_setting(nc: NatsClient, topology: Topology) -> None:
    with pytest.raises(ConfigError, match=r"^SYLLABUS_STREAM_REPLICAS=3 needs a NATS cluster"):
        await ensure_topology(nc, dataclasses.replace(topology, replicas=3))


def test_up_refuses_replicas_for_the_single_server_it_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in [name for name in os.environ if name.startswith("SYLLABUS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SYLLABUS_HOME", str(tmp_path))
    monkeypatch.setenv("SYLLABUS_STREAM_REPLICAS", "3")

    assert run_up(argparse.Namespace(workers=None, cluster=None)) == 2
    err = capsys.readouterr().err
    assert err == (
        "syllabus: SYLLABUS_STREAM_REPLICAS=3 needs a NATS cluster: set SYLLABUS_NATS_URL to its servers, or run "
        "`syllabus up --cluster 3` (`up` alone starts a single nats-server)\n"
    )
    assert not (tmp_path / "nats").exists()
