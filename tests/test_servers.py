"""The embedded servers: they start on their own port, answer, keep their data, and leave nothing behind."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import nats
import pytest
from redis.asyncio import Redis

from onemachine.servers import NatsServer, ServerError, ValkeyServer

# A bound on waits so a broken server fails the test instead of hanging it; never reached when things work.
DEADLINE = 60.0


def _alive(pid: int) -> bool:
    # The server is our child and stop() reaps it, so a stopped server has no /proc entry at all.
    return Path(f"/proc/{pid}").exists()


async def test_nats_starts_answers_and_stops(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats")
    await server.start()
    pid = server.pid
    assert pid is not None and _alive(pid)
    assert server.url.startswith("nats://127.0.0.1:")
    try:
        nc = await nats.connect(server.url)
        try:
            info = await nc.jetstream().account_info()
            assert info.streams == 0
        finally:
            await nc.close()
    finally:
        await server.stop()
    assert not _alive(pid)
    assert not server.running
    assert "Server is ready" in server.log_path.read_text()
    assert (tmp_path / "nats" / "jetstream").is_dir()


async def test_valkey_starts_answers_and_stops(tmp_path: Path) -> None:
    async with ValkeyServer(tmp_path / "valkey") as server:
        pid = server.pid
        assert pid is not None and _alive(pid)
        client = Redis.from_url(server.url)
        try:
            assert await client.ping()
        finally:
            await client.aclose()
    assert not _alive(pid)
    assert "Ready to accept connections" in server.log_path.read_text()


async def test_valkey_keeps_data_across_restarts(tmp_path: Path) -> None:
    async with ValkeyServer(tmp_path / "valkey") as server:
        client = Redis.from_url(server.url)
        try:
            await client.set("course", "rust")
        finally:
            await client.aclose()
    async with ValkeyServer(tmp_path / "valkey") as server:
        client = Redis.from_url(server.url)
        try:
            assert await client.get("course") == b"rust"
        finally:
            await client.aclose()
    # The log of the earlier run is kept next to the current one.
    assert (tmp_path / "valkey" / "valkey-server.log.1").is_file()


async def test_nats_keeps_streams_across_restarts(tmp_path: Path) -> None:
    async with NatsServer(tmp_path / "nats") as server:
        nc = await nats.connect(server.url)
        try:
            await nc.jetstream().add_stream(name="KEEP", subjects=["keep.>"])
        finally:
            await nc.close()
    async with NatsServer(tmp_path / "nats") as server:
        nc = await nats.connect(server.url)
        try:
            assert (await nc.jetstream().stream_info("KEEP")).config.name == "KEEP"
        finally:
            await nc.close()


async def test_server_dying_before_ready_reports_its_log(tmp_path: Path) -> None:
    async with NatsServer(tmp_path / "first") as first:
        taken = int(first.url.rsplit(":", 1)[1])
        second = NatsServer(tmp_path / "second", port=taken)
        with pytest.raises(ServerError, match="exited with code") as caught:
            await second.start()
        # The error quotes the server's own last words, so the reason is visible without opening files.
        assert "address already in use" in str(caught.value).lower()
        assert not second.running


async def test_valkey_on_taken_port_fails_with_its_log(tmp_path: Path) -> None:
    async with ValkeyServer(tmp_path / "first") as first:
        assert first.port is not None
        second = ValkeyServer(tmp_path / "second", port=first.port)
        with pytest.raises(ServerError, match="Address already in use"):
            await second.start()
        assert not second.running


async def test_stop_is_safe_twice_and_before_start(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats")
    await server.stop()
    await server.start()
    await server.stop()
    await server.stop()
    assert not server.running


async def test_session_servers_answer(nats_url: str, redis_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().account_info()
    finally:
        await nc.close()
    client = Redis.from_url(redis_url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()


_PARENT = """
import asyncio, sys
from pathlib import Path
from onemachine.servers import NatsServer

async def main() -> None:
    server = NatsServer(Path(sys.argv[1]))
    await server.start()
    print(server.pid, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfd to await a non-child's exit")
async def test_server_dies_with_a_killed_parent(tmp_path: Path) -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PARENT, str(tmp_path / "nats"), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    assert parent.stdout is not None
    pid = int(await asyncio.wait_for(parent.stdout.readline(), DEADLINE))
    # The server is not our child, so its exit is awaited through a pidfd: readable once it has exited.
    pidfd = os.pidfd_open(pid)
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    loop.add_reader(pidfd, exited.set)
    try:
        parent.kill()
        await parent.wait()
        await asyncio.wait_for(exited.wait(), DEADLINE)
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
